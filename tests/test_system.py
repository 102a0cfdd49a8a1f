"""`grpclab system`'s facts and checks, over fake /proc, /sys and /dev trees (tests/data/system/*): pure logic.

kvm-haltpoll: the lab's 2-vCPU KVM guest (cpuidle haltpoll, guest halt polling off, no cpufreq).
intel-metal: a 4-thread Intel laptop-like box (2 cores x 2 SMT, intel_idle C-states with C6 disabled on
CPU 3, intel_pstate powersave with turbo on, CPUs 2-3 isolated, mitigations off, a busy moment).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from bench.machine import cpu_latency, system
from bench.machine.wakeup import RoundTrips, WakeupProbe

DATA = Path(__file__).parent / "data" / "system"


@pytest.fixture
def tree(tmp_path: Path):
    """tree(name) -> a writable copy of a fake machine (tests change files in it)."""

    def copy(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(DATA / name, root)
        return root

    return copy


def collect(root: Path, **kwargs) -> system.SystemFacts:
    return system.collect(root, steal_interval_s=kwargs.pop("steal_interval_s", 0), **kwargs)


def check(facts: system.SystemFacts, name: str) -> system.Check:
    (found,) = [c for c in facts.checks if c.name == name]
    return found


def set_request(root: Path, us: int) -> None:
    (root / "dev/cpu_dma_latency").write_bytes(struct.pack("=i", us))


# --- the KVM guest ---------------------------------------------------------------------------------------


def test_kvm_guest_facts():
    facts = collect(DATA / "kvm-haltpoll")
    assert facts.cpu == system.Cpu(model="AMD EPYC", online=(0, 1), cores=2, packages=1, smt_siblings=())
    idle = facts.cpuidle
    assert (idle.driver, idle.governor, idle.guest_halt_poll_ns) == ("haltpoll", "haltpoll", 0)
    assert [(s.name, s.exit_latency_us, s.disabled_on, s.polling) for s in idle.states] == [
        ("POLL", 0, (), True),
        ("haltpoll idle", 1, (), False),
    ]
    assert facts.cpufreq == system.CpuFreq(exposed=False, driver=None, governors={}, boost=None)
    assert facts.cpu_latency_request_us == cpu_latency.NO_REQUEST_US and not facts.cpu_latency_held
    assert facts.virtualization.hypervisor_flag and facts.virtualization.vm is None  # no systemd-detect-virt here
    # only the kernel's part of the command line: `idle=poll` after ' -- ' belongs to init
    assert facts.kernel.switches == {
        "mitigations": "auto,no_guest_host,no_guest_guest",
        "cpuidle_haltpoll.force": "1",
        "haltpoll.guest_halt_poll_ns": "0",
    }
    assert facts.kernel.isolated == () and facts.kernel.nohz_full == ()  # '(null)' is none
    assert (facts.kernel.release, facts.kernel.thp, facts.kernel.swappiness) == ("6.18.44", "madvise", 60)
    assert facts.activity.loadavg == (0.08, 0.21, 0.30)
    assert facts.activity.cpu_pressure_some == {"avg10": 0.02, "avg60": 0.10, "avg300": 0.05}
    assert facts.activity.steal_since_boot == pytest.approx(19 / (36107 + 11220 + 320021 + 376 + 1082 + 19))


def test_kvm_guest_without_a_hold_warns_about_halting_vcpus_and_only_that():
    facts = collect(DATA / "kvm-haltpoll")
    assert [c.name for c in facts.warnings()] == ["cpuidle"]
    idle = check(facts, "cpuidle")
    assert "guest halt polling off (guest_halt_poll_ns=0)" in idle.value
    assert "haltpoll idle (exit 1 us)" in idle.value
    # what it does to results, why the driver's 1 us is not the cost, and what to do
    assert "idle vCPUs halt" in idle.effect and "two wake-ups per round trip" in idle.effect
    assert "more than the 1 us the driver reports" in idle.effect and "grpclab system --wakeup" in idle.effect
    assert "hold /dev/cpu_dma_latency at 0" in idle.effect and "grpclab system tune" in idle.effect
    assert check(facts, "cpufreq").status == "ok" and "not exposed" in check(facts, "cpufreq").value
    assert not [c for c in facts.checks if c.name == "boost"]  # no boost item where there is no cpufreq
    assert "virtual machine" in check(facts, "virtualization").value


def test_a_held_request_below_every_sleeping_state_clears_the_cpuidle_warning(tree):
    root = tree("kvm-haltpoll")
    set_request(root, 0)
    facts = collect(root)
    assert facts.cpu_latency_held and facts.cpu_latency_request_us == 0
    assert facts.warnings() == []
    assert "request of 0 us is held" in check(facts, "cpuidle").effect
    assert check(facts, "cpu_dma_latency").value.startswith("held at 0 us")
    # a request the halt state still satisfies (its exit latency 1 us <= 5 us) keeps nothing awake
    set_request(root, 5)
    assert check(collect(root), "cpuidle").status == "warning"


def test_guest_halt_polling_on_is_said(tree):
    root = tree("kvm-haltpoll")
    (root / "sys/module/haltpoll/parameters/guest_halt_poll_ns").write_text("200000\n")
    idle = check(collect(root), "cpuidle")
    assert "guest halt polling up to 200000 ns" in idle.value
    assert idle.status == "warning" and "halt after polling 200 us" in idle.effect


def test_a_measured_wakeup_cost_replaces_the_drivers_figure():
    probe = WakeupProbe(
        cpus=(0, 1),
        rounds=200,
        gap_ms=2.0,
        request_us=cpu_latency.NO_REQUEST_US,
        as_is=RoundTrips(median_us=56.0, p10_us=44.0, p90_us=62.0),
        held=RoundTrips(median_us=6.0, p10_us=5.0, p90_us=15.0),
    )
    assert probe.wakeup_us == 25.0
    facts = collect(DATA / "kvm-haltpoll", wakeup=probe)
    idle = check(facts, "cpuidle")
    assert "waking one costs ~25 us here (measured)" in idle.effect
    assert "56 us as the machine is" in idle.value and "6 us with /dev/cpu_dma_latency held at 0" in idle.value
    assert WakeupProbe.from_json(json.loads(json.dumps(probe.to_json()))) == probe


# --- the Intel box ---------------------------------------------------------------------------------------


def test_intel_box_facts():
    facts = collect(DATA / "intel-metal")
    assert facts.cpu.online == (0, 1, 2, 3) and facts.cpu.cores == 2 and facts.cpu.packages == 1
    assert facts.cpu.smt_siblings == ((0, 2), (1, 3))
    states = {s.name: s for s in facts.cpuidle.states}
    assert [s.name for s in facts.cpuidle.states] == ["POLL", "C1", "C1E", "C6"]
    assert states["C6"].exit_latency_us == 133 and states["C6"].disabled_on == (3,)
    assert facts.cpuidle.governor == "menu"  # from current_governor_ro
    assert facts.cpufreq == system.CpuFreq(
        exposed=True, driver="intel_pstate", governors={"powersave": [0, 1, 2, 3]}, boost=True
    )
    assert not facts.virtualization.hypervisor_flag
    assert facts.kernel.isolated == (2, 3) and facts.kernel.nohz_full == (2, 3)
    assert facts.kernel.switches["isolcpus"] == "2,3" and facts.kernel.switches["mitigations"] == "off"


def test_intel_box_warnings_say_what_each_does():
    facts = collect(DATA / "intel-metal")
    assert [c.name for c in facts.warnings()] == ["cpuidle", "cpufreq", "boost", "isolation", "load", "cpu pressure"]
    idle = check(facts, "cpuidle")
    assert "idle CPUs may sleep in C1, C1E, C6" in idle.effect and "up to 133 us" in idle.effect
    assert "C6 (exit 133 us) disabled on CPU 3" in idle.value
    assert "lowers the clock of lightly loaded CPUs" in check(facts, "cpufreq").effect
    assert "on (turbo)" == check(facts, "boost").value
    isolation = check(facts, "isolation")
    assert isolation.value == "isolated 2-3, nohz_full 2-3" and "CPU 0-1 is not" in isolation.effect
    assert "other work ran" in check(facts, "load").effect and "1.72" in check(facts, "load").value
    assert "avg10 12.50 %" in check(facts, "cpu pressure").value
    assert "mitigations=off" in check(facts, "kernel").effect  # a note on an OK item, not a warning
    assert check(facts, "kernel").status == "ok"
    assert "bare metal" in check(facts, "virtualization").value
    assert "always" in check(facts, "memory").value and "khugepaged" in check(facts, "memory").effect


def test_pinning_decides_the_smt_and_isolation_items():
    siblings = collect(DATA / "intel-metal", pinning=(0, 2))
    assert check(siblings, "cpu").status == "warning" and "SMT siblings (0,2)" in check(siblings, "cpu").effect
    isolated = collect(DATA / "intel-metal", pinning=(2, 3))
    assert check(isolated, "cpu").status == "ok" and check(isolated, "isolation").status == "ok"
    # C6 is disabled on CPU 3 only: CPU 2 may still use it
    assert "C6" in check(isolated, "cpuidle").effect
    only_3 = collect(DATA / "intel-metal", pinning=(3,))
    effect = check(only_3, "cpuidle").effect
    assert "may sleep in C1, C1E and" in effect and "up to 10 us" in effect


def test_the_performance_governor_and_turbo_off_are_ok(tree):
    root = tree("intel-metal")
    for cpu in range(4):
        (root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor").write_text("performance\n")
    (root / "sys/devices/system/cpu/intel_pstate/no_turbo").write_text("1\n")
    facts = collect(root)
    assert check(facts, "cpufreq").status == "ok" and check(facts, "boost") == system.Check("boost", "ok", "off")


# --- steal, idle=poll, missing files ---------------------------------------------------------------------


def test_steal_is_measured_over_the_interval(tree):
    root = tree("kvm-haltpoll")
    stat = root / "proc/stat"
    before = "cpu  1000 0 500 8000 0 0 0 100 0 0\n"
    # over the interval: 200 jiffies in all, 10 of them stolen (5 %)
    after = "cpu  1100 0 550 8040 0 0 0 110 0 0\n"
    stat.write_text(before)
    slept = []

    def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        stat.write_text(after)

    facts = system.collect(root, steal_interval_s=0.2, sleep=fake_sleep)
    assert slept == [0.2]
    assert facts.activity.steal == pytest.approx(10 / 200)
    steal = check(facts, "steal")
    assert steal.status == "warning" and steal.value.startswith("5.0% over 0.2 s")
    assert "slower and varies" in steal.effect


def test_idle_poll_on_the_kernel_command_line_is_ok(tree):
    root = tree("kvm-haltpoll")
    (root / "proc/cmdline").write_text("quiet idle=poll\n")
    idle = check(collect(root), "cpuidle")
    assert idle.status == "ok" and idle.value == "idle=poll: idle CPUs never sleep"


def test_no_cpuidle_driver_cannot_be_held_off(tree):
    root = tree("kvm-haltpoll")
    shutil.rmtree(root / "sys/devices/system/cpu/cpu0/cpuidle")
    shutil.rmtree(root / "sys/devices/system/cpu/cpu1/cpuidle")
    (root / "sys/devices/system/cpu/cpuidle/current_driver").write_text("none\n")
    set_request(root, 0)
    idle = check(collect(root), "cpuidle")
    assert idle.status == "warning" and "/dev/cpu_dma_latency cannot prevent it" in idle.effect


def test_an_empty_tree_is_all_unknown_and_no_error(tmp_path):
    facts = system.collect(tmp_path, steal_interval_s=0.1, sleep=lambda s: None)
    assert facts.cpu.model == "unknown" and facts.cpu.online == ()
    assert facts.cpu_latency_request_us is None
    assert check(facts, "cpu").status == "warning"  # 0 CPUs known: cannot separate server and generator
    assert check(facts, "cpu_dma_latency").value.startswith("not readable")
    assert check(facts, "steal").value.startswith("not measured")
    assert check(facts, "cpu pressure").value.startswith("not available")
    json.dumps(facts.to_json())


# --- output ----------------------------------------------------------------------------------------------


def test_json_shape_and_round_trip_of_the_checks():
    facts = collect(DATA / "intel-metal")
    data = json.loads(json.dumps(facts.to_json()))
    assert data["schema_version"] == system.SCHEMA_VERSION
    assert set(data) == {
        "schema_version",
        "cpu",
        "cpuidle",
        "cpufreq",
        "cpu_latency_request_us",
        "cpu_latency_held",
        "virtualization",
        "activity",
        "kernel",
        "pinning",
        "wakeup",
        "checks",
    }
    assert data["cpuidle"]["states"][3] == {
        "index": 3,
        "name": "C6",
        "desc": "MWAIT 0x20",
        "exit_latency_us": 133,
        "target_residency_us": 400,
        "disabled_on": [3],
    }
    assert data["cpu_latency_held"] is False and data["pinning"] == [0, 1]
    assert [system.Check.from_json(c) for c in data["checks"]] == list(facts.checks)


def test_render_has_one_line_per_item_and_an_effect_under_each_warning():
    facts = collect(DATA / "intel-metal")
    text = facts.render()
    lines = text.splitlines()
    items = [line for line in lines if line.startswith(("ok  ", "WARN"))]
    assert len(items) == len(facts.checks)
    for check_ in facts.warnings():
        at = next(i for i, line in enumerate(lines) if line.startswith("WARN") and f" {check_.name} " in line)
        assert lines[at + 1].strip().startswith("-> ")
    assert lines[-1] == f"{len(facts.warnings())} warnings"
    assert system.render_checks([]) == "no warnings"


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,8,10-11", (0, 1, 2, 3, 8, 10, 11)), ("", ()), ("(null)", ()), ("5", (5,)), ("2-7:2/8", (2, 3, 4, 5, 6, 7))],
)
def test_cpu_lists(text, cpus):
    assert system.parse_cpu_list(text) == cpus
    if cpus:
        assert system.parse_cpu_list(system.format_cpu_list(cpus)) == cpus
