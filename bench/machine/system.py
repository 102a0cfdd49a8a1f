"""`grpclab system`: the machine's state that changes results, each item OK or a warning saying what it does.

In the spirit of `pyperf system show`. Read from /proc, /sys and /dev only (plus `systemd-detect-virt`
when reading the real machine): CPU model and topology, cpuidle driver and states, cpufreq, the PM QoS
CPU latency request (/dev/cpu_dma_latency), isolated CPUs, kernel switches, virtualization, steal time,
load, CPU pressure, transparent huge pages, swappiness.

Every read goes through ``root`` (default "/"), so the tests run this over small fake trees
(tests/data/system/*). ``collect()`` gathers the facts into a typed ``SystemFacts``; its ``checks``
turn them into OK/warning items. ``to_json()`` is what a run's manifest records; ``render()`` is text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from . import cpu_latency
from .wakeup import WakeupProbe

SCHEMA_VERSION = 1
DEFAULT_PINNING = (0, 1)  # the lab's default server and load-generator CPUs (spec settings)
STEAL_INTERVAL_S = 0.25

# Thresholds for the warnings (each check's text says what crossing it does to results).
LOAD_WARN = 0.5  # 1-minute load average: half a CPU's worth of other work competes with the pinned processes
PRESSURE_WARN_PCT = 5.0  # PSI "some": share of the last 10 s (or 60 s) in which a task waited for a CPU
STEAL_WARN = 0.01  # share of CPU time the hypervisor gave to someone else

# Kernel command-line switches that change how CPUs idle, clock, schedule or isolate; shown when present.
CMDLINE_SWITCHES = (
    "isolcpus",
    "nohz_full",
    "rcu_nocbs",
    "nohz",
    "idle",
    "cpuidle.off",
    "cpuidle.governor",
    "cpuidle_haltpoll.force",
    "haltpoll.guest_halt_poll_ns",
    "intel_idle.max_cstate",
    "processor.max_cstate",
    "intel_pstate",
    "amd_pstate",
    "cpufreq.default_governor",
    "mitigations",
    "nosmt",
    "threadirqs",
    "skew_tick",
    "transparent_hugepage",
)

OK = "ok"
WARNING = "warning"


# --- the facts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    model: str
    online: tuple[int, ...]
    cores: int | None  # distinct physical cores (by SMT sibling sets); None: topology not exposed
    packages: int | None
    smt_siblings: tuple[tuple[int, ...], ...]  # groups of online CPUs that share a core (only groups of 2+)


@dataclass(frozen=True)
class IdleState:
    index: int
    name: str
    desc: str
    exit_latency_us: int | None
    target_residency_us: int | None
    disabled_on: tuple[int, ...]  # online CPUs where this state is disabled

    @property
    def polling(self) -> bool:
        return self.name.upper() == "POLL"


@dataclass(frozen=True)
class CpuIdle:
    driver: str | None  # None: no cpuidle in sysfs; "none": no driver registered
    governor: str | None
    states: tuple[IdleState, ...]
    guest_halt_poll_ns: int | None  # the haltpoll governor's polling window (KVM guests), when it exists

    def sleeping_states(self, cpus: Iterable[int] | None = None) -> tuple[IdleState, ...]:
        """Enabled states that stop the CPU (every state but polling) on any of ``cpus`` (default: all)."""
        wanted = None if cpus is None else set(cpus)
        found = []
        for state in self.states:
            if state.polling:
                continue
            disabled = set(state.disabled_on)
            if wanted is None and not disabled:
                found.append(state)
            elif wanted is not None and wanted - disabled:
                found.append(state)
        return tuple(found)


@dataclass(frozen=True)
class CpuFreq:
    exposed: bool
    driver: str | None
    governors: dict[str, list[int]]  # governor -> online CPUs using it
    boost: bool | None  # turbo/boost enabled (None: not exposed)


@dataclass(frozen=True)
class Virtualization:
    hypervisor_flag: bool  # the CPU's "hypervisor" flag (x86): running as a guest
    vm: str | None  # systemd-detect-virt --vm, or /sys/hypervisor/type; None: not known
    container: str | None  # systemd-detect-virt --container


@dataclass(frozen=True)
class Activity:
    loadavg: tuple[float, float, float] | None
    steal_interval_s: float | None
    steal: float | None  # share of CPU time stolen during the interval
    steal_since_boot: float | None
    cpu_pressure_some: dict[str, float] | None  # PSI "some" avg10/avg60/avg300, in %


@dataclass(frozen=True)
class Kernel:
    release: str | None
    cmdline: str | None
    switches: dict[str, str]  # CMDLINE_SWITCHES present on the command line (flags without a value: "")
    isolated: tuple[int, ...]
    nohz_full: tuple[int, ...]
    thp: str | None
    swappiness: int | None


@dataclass(frozen=True)
class Check:
    """One item: its name, what was found, OK or warning, and what it does to results (and what to do)."""

    name: str
    status: str  # OK | WARNING
    value: str
    effect: str = ""

    @classmethod
    def from_json(cls, data: dict) -> Check:
        return cls(name=data["name"], status=data["status"], value=data["value"], effect=data.get("effect", ""))


@dataclass(frozen=True)
class SystemFacts:
    cpu: Cpu
    cpuidle: CpuIdle
    cpufreq: CpuFreq
    cpu_latency_request_us: int | None  # the effective PM QoS request; NO_REQUEST_US: none; None: unreadable
    virtualization: Virtualization
    activity: Activity
    kernel: Kernel
    pinning: tuple[int, ...] = DEFAULT_PINNING
    wakeup: WakeupProbe | None = None
    checks: tuple[Check, ...] = field(default=(), compare=False)

    @property
    def cpu_latency_held(self) -> bool:
        return self.cpu_latency_request_us is not None and self.cpu_latency_request_us < cpu_latency.NO_REQUEST_US

    def warnings(self) -> list[Check]:
        return [check for check in self.checks if check.status == WARNING]

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("checks")
        data["wakeup"] = self.wakeup.to_json() if self.wakeup else None
        return {
            "schema_version": SCHEMA_VERSION,
            **data,
            "cpu_latency_held": self.cpu_latency_held,
            "checks": [asdict(check) for check in self.checks],
        }

    @classmethod
    def from_json(cls, data: dict) -> SystemFacts:
        """The facts as ``to_json`` wrote them (a run's manifest); ValueError/KeyError/TypeError when malformed."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"system facts schema_version {version!r}; this grpclab reads {SCHEMA_VERSION}")
        known = {f.name for f in fields(cls)}
        return _decode(cls, {k: v for k, v in data.items() if k in known})  # the rest is derived (cpu_latency_held)

    def render(self) -> str:
        return render_checks(self.checks)


def _decode(kind: object, value: object) -> object:
    """A JSON value as ``kind`` (a dataclass of this module, or a tuple/dict/list/optional of such)."""
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return _decode(next(a for a in args if a is not type(None)), value)
    if isinstance(kind, type) and hasattr(kind, "from_json") and kind is not SystemFacts:
        return kind.from_json(value)  # Check, WakeupProbe: their own readers
    if isinstance(kind, type) and is_dataclass(kind):
        if not isinstance(value, dict):
            raise TypeError(f"{kind.__name__}: expected an object, got {type(value).__name__}")
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _decode(hints[f.name], value[f.name]) for f in fields(kind) if f.name in value})
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item) for item in value)
        return tuple(_decode(a, item) for a, item in zip(args, value, strict=True))
    if origin is list:
        return [_decode(args[0], item) for item in value]
    if origin is dict:
        return {str(k): _decode(args[1], v) for k, v in value.items()}
    if kind in (int, float, str, bool):
        if not isinstance(value, int | float | str | bool):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)
    raise TypeError(f"cannot read {kind!r}")


def render_checks(checks: Sequence[Check]) -> str:
    """Text: one line per item, a warning's effect indented under it (also for checks read from a manifest)."""
    width = max((len(check.name) for check in checks), default=0)
    lines = []
    for check in checks:
        mark = "ok  " if check.status == OK else "WARN"
        lines.append(f"{mark} {check.name:<{width}}  {check.value}")
        if check.effect:
            lines.append(f"     {'':<{width}}  -> {check.effect}")
    warnings = sum(check.status == WARNING for check in checks)
    lines.append(f"{warnings} warning{'s' if warnings != 1 else ''}" if warnings else "no warnings")
    return "\n".join(lines)


# --- reading (everything under root) ----------------------------------------------------------------------


class _Reader:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, relative: str) -> Path:
        return self.root / relative

    def text(self, relative: str) -> str | None:
        try:
            return self.path(relative).read_text(errors="replace").strip()
        except OSError:
            return None

    def int(self, relative: str) -> int | None:
        text = self.text(relative)
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None


def parse_cpu_list(text: str | None) -> tuple[int, ...]:
    """'0-3,8,10-11' -> (0, 1, 2, 3, 8, 10, 11); '', '(null)' or None -> ()."""
    if not text or text.strip() in ("", "(null)"):
        return ()
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.split(":")[0]  # isolcpus=2-7:2/8 style strides are not expanded (shown as given)
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                cpus.extend(range(int(lo), int(hi) + 1))
            elif part:
                cpus.append(int(part))
        except ValueError:
            continue
    return tuple(sorted(set(cpus)))


def format_cpu_list(cpus: Iterable[int]) -> str:
    """(0, 1, 2, 5) -> '0-2,5'."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    start = prev = None
    for cpu in ordered + [None]:
        if start is not None and (cpu is None or cpu != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if cpu is not None and start is None:
            start = cpu
        prev = cpu
    return ",".join(parts)


def _cpuinfo(read: _Reader) -> tuple[str, set[str], int]:
    text = read.text("proc/cpuinfo") or ""
    model, flags, processors = "unknown", set(), 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            processors += 1
        elif key in ("model name", "Processor", "cpu model") and model == "unknown":
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags, processors


def _cpu(read: _Reader, model: str, processors: int) -> Cpu:
    online = parse_cpu_list(read.text("sys/devices/system/cpu/online")) or tuple(range(processors))
    sibling_sets: set[tuple[int, ...]] = set()
    packages: set[int] = set()
    for cpu in online:
        topology = f"sys/devices/system/cpu/cpu{cpu}/topology"
        siblings = parse_cpu_list(read.text(f"{topology}/thread_siblings_list"))
        if siblings:
            sibling_sets.add(tuple(c for c in siblings if c in online) or (cpu,))
        package = read.int(f"{topology}/physical_package_id")
        if package is not None:
            packages.add(package)
    return Cpu(
        model=model,
        online=online,
        cores=len(sibling_sets) or None,
        packages=len(packages) or None,
        smt_siblings=tuple(sorted(s for s in sibling_sets if len(s) > 1)),
    )


def _cpuidle(read: _Reader, online: tuple[int, ...]) -> CpuIdle:
    base = "sys/devices/system/cpu/cpuidle"
    driver = read.text(f"{base}/current_driver")
    governor = read.text(f"{base}/current_governor") or read.text(f"{base}/current_governor_ro")
    states: dict[int, IdleState] = {}
    disabled: dict[int, list[int]] = {}
    for cpu in online:
        directory = read.path(f"sys/devices/system/cpu/cpu{cpu}/cpuidle")
        try:
            names = sorted(p.name for p in directory.iterdir() if p.name.startswith("state"))
        except OSError:
            continue
        for name in names:
            try:
                index = int(name[len("state") :])
            except ValueError:
                continue
            rel = f"sys/devices/system/cpu/cpu{cpu}/cpuidle/{name}"
            if index not in states:
                states[index] = IdleState(
                    index=index,
                    name=read.text(f"{rel}/name") or name,
                    desc=read.text(f"{rel}/desc") or "",
                    exit_latency_us=read.int(f"{rel}/latency"),
                    target_residency_us=read.int(f"{rel}/residency"),
                    disabled_on=(),
                )
            if read.int(f"{rel}/disable") == 1:
                disabled.setdefault(index, []).append(cpu)
    ordered = tuple(replace(state, disabled_on=tuple(disabled.get(i, ()))) for i, state in sorted(states.items()))
    return CpuIdle(
        driver=driver,
        governor=governor,
        states=ordered,
        guest_halt_poll_ns=read.int("sys/module/haltpoll/parameters/guest_halt_poll_ns"),
    )


def _cpufreq(read: _Reader, online: tuple[int, ...]) -> CpuFreq:
    governors: dict[str, list[int]] = {}
    driver = None
    boosts: list[bool] = []
    for cpu in online:
        rel = f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        governor = read.text(f"{rel}/scaling_governor")
        if governor is not None:
            governors.setdefault(governor, []).append(cpu)
        driver = driver or read.text(f"{rel}/scaling_driver")
        per_policy = read.int(f"{rel}/boost")  # amd-pstate and newer kernels: per policy
        if per_policy is not None:
            boosts.append(per_policy == 1)
    boost: bool | None = None
    no_turbo = read.int("sys/devices/system/cpu/intel_pstate/no_turbo")
    global_boost = read.int("sys/devices/system/cpu/cpufreq/boost")
    if no_turbo is not None:
        boost = no_turbo == 0
    elif global_boost is not None:
        boost = global_boost == 1
    elif boosts:
        boost = any(boosts)
    return CpuFreq(exposed=bool(governors), driver=driver, governors=governors, boost=boost)


def _virtualization(read: _Reader, flags: set[str], detect_virt: bool) -> Virtualization:
    vm = read.text("sys/hypervisor/type")
    container = None
    if detect_virt and shutil.which("systemd-detect-virt"):
        vm = _detect_virt("--vm") or vm
        container = _detect_virt("--container")
    return Virtualization(hypervisor_flag="hypervisor" in flags, vm=vm, container=container)


def _detect_virt(option: str) -> str | None:
    try:
        done = subprocess.run(["systemd-detect-virt", option], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = done.stdout.strip()
    return found if found and found != "none" else None


def _cpu_times(read: _Reader) -> list[int] | None:
    """The 'cpu' line of /proc/stat: user nice system idle iowait irq softirq steal (guest time is in user)."""
    for line in (read.text("proc/stat") or "").splitlines():
        if line.startswith("cpu "):
            try:
                return [int(x) for x in line.split()[1:9]]
            except ValueError:
                return None
    return None


def _steal(before: list[int] | None, after: list[int] | None) -> float | None:
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    total = sum(after) - sum(before)
    return (after[7] - before[7]) / total if total > 0 else None


def _pressure(read: _Reader) -> dict[str, float] | None:
    for line in (read.text("proc/pressure/cpu") or "").splitlines():
        if line.startswith("some "):
            found = {}
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                if key.startswith("avg"):
                    try:
                        found[key] = float(value)
                    except ValueError:
                        pass
            return found or None
    return None


def _loadavg(read: _Reader) -> tuple[float, float, float] | None:
    try:
        parts = (read.text("proc/loadavg") or "").split()
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None


def parse_cmdline(cmdline: str) -> dict[str, str]:
    """The switches of CMDLINE_SWITCHES on a kernel command line (the part before ' -- ', which is init's)."""
    kernel_part = cmdline.split(" -- ", 1)[0]
    found: dict[str, str] = {}
    for word in kernel_part.split():
        key, _, value = word.partition("=")
        if key in CMDLINE_SWITCHES:
            found[key] = value
    return found


def _kernel(read: _Reader) -> Kernel:
    cmdline = read.text("proc/cmdline")
    thp_text = read.text("sys/kernel/mm/transparent_hugepage/enabled")
    thp = None
    if thp_text:
        chosen = [w for w in thp_text.split() if w.startswith("[")]
        thp = chosen[0].strip("[]") if chosen else thp_text
    return Kernel(
        release=read.text("proc/sys/kernel/osrelease"),
        cmdline=cmdline,
        switches=parse_cmdline(cmdline or ""),
        isolated=parse_cpu_list(read.text("sys/devices/system/cpu/isolated")),
        nohz_full=parse_cpu_list(read.text("sys/devices/system/cpu/nohz_full")),
        thp=thp,
        swappiness=read.int("proc/sys/vm/swappiness"),
    )


def collect(
    root: Path | str = "/",
    *,
    pinning: Sequence[int] = DEFAULT_PINNING,
    steal_interval_s: float = STEAL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
    detect_virt: bool | None = None,
    wakeup: WakeupProbe | None = None,
) -> SystemFacts:
    """Read the machine's facts under ``root`` and check them.

    ``pinning``: the CPUs the server and load generators use (SMT siblings and isolation are judged for
    them). Steal time is sampled over ``steal_interval_s`` (``sleep`` waits; tests pass their own).
    ``detect_virt``: run systemd-detect-virt (default: only when reading the real machine, root "/").
    ``wakeup``: a wake-up probe measured beforehand (bench.machine.wakeup.probe), used in the cpuidle check.
    """
    read = _Reader(Path(root))
    if detect_virt is None:
        detect_virt = Path(root) == Path("/")
    model, flags, processors = _cpuinfo(read)
    cpu = _cpu(read, model, processors)
    before = _cpu_times(read)
    if steal_interval_s > 0:
        sleep(steal_interval_s)
    after = _cpu_times(read)
    boot = _steal([0] * 8, after) if after else None
    activity = Activity(
        loadavg=_loadavg(read),
        steal_interval_s=steal_interval_s if steal_interval_s > 0 else None,
        steal=_steal(before, after) if steal_interval_s > 0 else None,
        steal_since_boot=boot,
        cpu_pressure_some=_pressure(read),
    )
    facts = SystemFacts(
        cpu=cpu,
        cpuidle=_cpuidle(read, cpu.online),
        cpufreq=_cpufreq(read, cpu.online),
        cpu_latency_request_us=cpu_latency.read_request_us(read.path("dev/cpu_dma_latency")),
        virtualization=_virtualization(read, flags, detect_virt),
        activity=activity,
        kernel=_kernel(read),
        pinning=tuple(pinning),
        wakeup=wakeup,
    )
    return replace(facts, checks=tuple(evaluate(facts)))


# --- the checks -------------------------------------------------------------------------------------------

HOLD_ADVICE = (
    "hold /dev/cpu_dma_latency at 0 while measuring: `grpclab run` holds it for its duration by default (unless "
    "settings.cpu_latency_hold = false or --no-cpu-latency-hold); for other measurements `grpclab system tune` "
    "holds it until Ctrl-C"
)


def evaluate(facts: SystemFacts) -> list[Check]:
    """Every item, in display order."""
    return [
        _check_cpu(facts),
        _check_cpuidle(facts),
        _check_cpu_latency(facts),
        _check_cpufreq(facts),
        *_check_boost(facts),
        _check_isolation(facts),
        _check_kernel(facts),
        _check_virtualization(facts),
        _check_steal(facts),
        _check_load(facts),
        _check_pressure(facts),
        _check_memory(facts),
    ]


def _check_cpu(facts: SystemFacts) -> Check:
    cpu = facts.cpu
    parts = [f"{len(cpu.online)} CPUs online ({format_cpu_list(cpu.online)})"]
    if cpu.cores is not None:
        parts.append(f"{cpu.cores} cores")
    if cpu.packages is not None:
        parts.append(f"{cpu.packages} package{'s' if cpu.packages != 1 else ''}")
    groups = " ".join(format_cpu_list(group) for group in cpu.smt_siblings)
    parts.append(f"SMT siblings {groups}" if groups else "no SMT siblings")
    value = f"{cpu.model}: " + ", ".join(parts)
    if len(cpu.online) < 2:
        return Check(
            "cpu",
            WARNING,
            value,
            "the server and the load generator need separate CPUs; on one they take turns, and every figure "
            "includes the other's work",
        )
    shared = [g for g in cpu.smt_siblings if len(set(g) & set(facts.pinning)) > 1]
    if shared:
        pinned = format_cpu_list(facts.pinning)
        return Check(
            "cpu",
            WARNING,
            value,
            f"the lab's CPUs {pinned} include SMT siblings ({' '.join(format_cpu_list(g) for g in shared)}): "
            "hyper-threads of one core share its execution units and caches, so the server and the load "
            "generator slow each other; pin them to different cores (--server-cpus, --loadgen-cpus)",
        )
    return Check("cpu", OK, value)


def _state_text(state: IdleState) -> str:
    latency = f"exit {state.exit_latency_us} us" if state.exit_latency_us is not None else "exit latency unknown"
    text = f"{state.name} ({latency})"
    if state.disabled_on:
        text += f" disabled on CPU {format_cpu_list(state.disabled_on)}"
    return text


def _check_cpuidle(facts: SystemFacts) -> Check:
    idle = facts.cpuidle
    halt_poll = facts.kernel.switches.get("haltpoll.guest_halt_poll_ns")
    poll_ns = idle.guest_halt_poll_ns if idle.guest_halt_poll_ns is not None else _int_or_none(halt_poll)
    if facts.kernel.switches.get("idle") == "poll":
        return Check(
            "cpuidle",
            OK,
            "idle=poll: idle CPUs never sleep",
            "wake-ups cost nothing, at the price of a busy-polling CPU (low-load latency is lower than on a default "
            "machine)",
        )
    if idle.driver is None and not idle.states:
        return Check("cpuidle", OK, "not exposed (no /sys/devices/system/cpu/cpuidle)")
    if idle.driver in (None, "none") and not idle.states:
        return Check(
            "cpuidle",
            WARNING,
            "no cpuidle driver: idle CPUs halt (the architecture's default idle)",
            "every wake-up of a halted CPU is in low-load latency (two per round trip with one RPC in flight), and "
            "without a cpuidle driver /dev/cpu_dma_latency cannot prevent it; boot with idle=poll (or a cpuidle "
            "driver: cpuidle_haltpoll.force=1 in a KVM guest) for latency measurements",
        )
    head = f"driver {idle.driver}, governor {idle.governor}"
    if idle.driver == "haltpoll" and poll_ns is not None:
        head += f", guest halt polling {'off (guest_halt_poll_ns=0)' if poll_ns == 0 else f'up to {poll_ns} ns'}"
    value = head + ": " + ", ".join(_state_text(s) for s in idle.states)
    if facts.wakeup is not None:
        value += f"; measured: {facts.wakeup.describe()}"
    sleeping = idle.sleeping_states(facts.pinning)
    if not sleeping:
        return Check("cpuidle", OK, value, "every sleeping state is disabled: idle CPUs poll")
    request = facts.cpu_latency_request_us
    shallowest = min((s.exit_latency_us for s in sleeping if s.exit_latency_us is not None), default=None)
    if facts.cpu_latency_held and shallowest is not None and request is not None and request < shallowest:
        return Check(
            "cpuidle",
            OK,
            value,
            f"a /dev/cpu_dma_latency request of {request} us is held: idle CPUs poll instead of sleeping, "
            "so wake-ups cost almost nothing while it lasts",
        )
    deepest = max(sleeping, key=lambda s: s.exit_latency_us or 0)
    probe = facts.wakeup
    if probe is not None and probe.wakeup_us is not None:
        cost = f"waking one costs ~{probe.wakeup_us:.0f} us here (measured)"
    elif idle.driver == "haltpoll":
        cost = (
            f"waking one goes through the hypervisor, which costs more than the {deepest.exit_latency_us} us the "
            "driver reports (`grpclab system --wakeup` measures it)"
        )
    else:
        cost = f"waking one from {deepest.name} costs up to {deepest.exit_latency_us} us (the driver's exit latency)"
    if idle.driver == "haltpoll":
        what = "idle vCPUs halt"
        if poll_ns:
            what += f" after polling {poll_ns / 1000:g} us"
    else:
        what = f"idle CPUs may sleep in {', '.join(s.name for s in sleeping)}"
    return Check(
        "cpuidle",
        WARNING,
        value,
        f"{what} and {cost}: low-load latency includes two wake-ups per round trip (one RPC in flight), so it "
        f"measures the machine's idle states as much as gRPC; {HOLD_ADVICE}",
    )


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _check_cpu_latency(facts: SystemFacts) -> Check:
    request = facts.cpu_latency_request_us
    if request is None:
        return Check("cpu_dma_latency", OK, "not readable (needs root, or no /dev/cpu_dma_latency)")
    if request >= cpu_latency.NO_REQUEST_US:
        return Check("cpu_dma_latency", OK, f"no request held ({request}: the kernel's default)")
    return Check("cpu_dma_latency", OK, f"held at {request} us by some process (released when it closes the device)")


def _check_cpufreq(facts: SystemFacts) -> Check:
    freq = facts.cpufreq
    if not freq.exposed:
        return Check(
            "cpufreq",
            OK,
            "not exposed (typical of a VM: the host sets the clock, and the lab can neither see nor fix it)",
        )
    governors = ", ".join(f"{g} on CPU {format_cpu_list(cpus)}" for g, cpus in sorted(freq.governors.items()))
    value = f"driver {freq.driver}, governor {governors}"
    pinned = set(facts.pinning)
    ramping = sorted(g for g, cpus in freq.governors.items() if g != "performance" and pinned & set(cpus))
    if ramping:
        return Check(
            "cpufreq",
            WARNING,
            value,
            f"governor {'/'.join(ramping)} lowers the clock of lightly loaded CPUs: a low-load cell (one RPC in "
            "flight) can run at a lower clock than a busy one, so figures across load levels compare clocks as well "
            "as code; use the performance governor while measuring (cpupower frequency-set -g performance)",
        )
    return Check("cpufreq", OK, value)


def _check_boost(facts: SystemFacts) -> list[Check]:
    boost = facts.cpufreq.boost
    if boost is None:
        return []
    if boost:
        return [
            Check(
                "boost",
                WARNING,
                "on (turbo)",
                "the clock then depends on temperature and on how many cores are busy, so repetitions and runs vary "
                "more; turn it off for comparisons (echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo, or "
                "echo 0 > /sys/devices/system/cpu/cpufreq/boost)",
            )
        ]
    return [Check("boost", OK, "off")]


def _check_isolation(facts: SystemFacts) -> Check:
    kernel = facts.kernel
    if not kernel.isolated and not kernel.nohz_full:
        return Check(
            "isolation",
            OK,
            "no isolated CPUs (isolcpus, nohz_full): the scheduler may run other tasks on the lab's CPUs, "
            "which is fine on an idle machine",
        )
    value = ", ".join(
        f"{name} {format_cpu_list(cpus)}"
        for name, cpus in (("isolated", kernel.isolated), ("nohz_full", kernel.nohz_full))
        if cpus
    )
    outside = sorted(set(facts.pinning) - set(kernel.isolated)) if kernel.isolated else []
    if outside:
        return Check(
            "isolation",
            WARNING,
            value,
            f"the lab's CPUs {format_cpu_list(facts.pinning)} are not all isolated (CPU {format_cpu_list(outside)} "
            "is not): pin the server and load generator to isolated CPUs (--server-cpus, --loadgen-cpus) to keep "
            "other tasks off them",
        )
    return Check("isolation", OK, value)


def _check_kernel(facts: SystemFacts) -> Check:
    kernel = facts.kernel
    switches = " ".join(f"{k}={v}" if v else k for k, v in kernel.switches.items())
    value = f"Linux {kernel.release or 'unknown'}" + (f"; {switches}" if switches else "")
    notes = []
    mitigations = kernel.switches.get("mitigations")
    if mitigations == "off":
        notes.append(
            "mitigations=off makes system calls and context switches cheaper than on a default kernel: figures do "
            "not compare with a mitigated machine"
        )
    if any(k in kernel.switches for k in ("intel_idle.max_cstate", "processor.max_cstate")):
        notes.append("C-states are limited on the command line: wake-ups are cheaper than on a default machine")
    return Check("kernel", OK, value, "; ".join(notes))


def _check_virtualization(facts: SystemFacts) -> Check:
    virt = facts.virtualization
    if virt.vm is None and not virt.hypervisor_flag:
        value = "bare metal (no hypervisor flag)" if virt.container is None else "no hypervisor flag"
        effect = ""
    else:
        value = f"virtual machine ({virt.vm or 'hypervisor flag set'})"
        effect = (
            "vCPUs are threads of the host: pinning pins vCPUs, not physical cores, and the host's other work "
            "shows as steal time (below); figures do not transfer to bare metal"
        )
    if virt.container:
        value += f", in a container ({virt.container})"
    return Check("virtualization", OK, value, effect)


def _check_steal(facts: SystemFacts) -> Check:
    activity = facts.activity
    if activity.steal is None and activity.steal_since_boot is None:
        return Check("steal", OK, "not measured (no /proc/stat)")
    parts = []
    if activity.steal is not None:
        parts.append(f"{activity.steal:.1%} over {activity.steal_interval_s:g} s")
    if activity.steal_since_boot is not None:
        parts.append(f"{activity.steal_since_boot:.1%} since boot")
    value = ", ".join(parts)
    stolen = max(x for x in (activity.steal, activity.steal_since_boot) if x is not None)
    if stolen >= STEAL_WARN:
        return Check(
            "steal",
            WARNING,
            value,
            "the hypervisor gave this VM's CPU time to other work: every measurement runs slower and varies by "
            "about that share; measure when the host is quieter, and compare only runs with similar steal",
        )
    return Check("steal", OK, value)


def _check_load(facts: SystemFacts) -> Check:
    load = facts.activity.loadavg
    if load is None:
        return Check("load", OK, "not available (no /proc/loadavg)")
    value = f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min) on {len(facts.cpu.online)} CPUs"
    if load[0] >= LOAD_WARN:
        return Check(
            "load",
            WARNING,
            value,
            "other work ran in the last minute: it competes with the pinned server and load generator for CPUs "
            "and caches, so results are slower and noisier; benchmark on an idle machine (the load average lags: "
            "it decays over minutes after the work ends)",
        )
    return Check("load", OK, value)


def _check_pressure(facts: SystemFacts) -> Check:
    some = facts.activity.cpu_pressure_some
    if some is None:
        return Check("cpu pressure", OK, "not available (no /proc/pressure/cpu: kernel without PSI, or psi=0)")
    value = ", ".join(f"{k} {v:.2f} %" for k, v in some.items()) + " (some task waited for a CPU)"
    recent = max(some.get("avg10", 0.0), some.get("avg60", 0.0))
    if recent >= PRESSURE_WARN_PCT:
        return Check(
            "cpu pressure",
            WARNING,
            value,
            "tasks are waiting for CPUs: a server or load generator that waits for its CPU adds that wait to latency "
            "and loses throughput; benchmark on an idle machine",
        )
    return Check("cpu pressure", OK, value)


def _check_memory(facts: SystemFacts) -> Check:
    kernel = facts.kernel
    value = f"transparent huge pages {kernel.thp or 'unknown'}, swappiness {kernel.swappiness}"
    effect = ""
    if kernel.thp == "always":
        effect = "THP always: RSS figures include huge-page rounding, and khugepaged may briefly stall a process"
    return Check("memory", OK, value, effect)


def main(as_json: bool = False, probe_wakeup: bool = False, pinning: Sequence[int] = DEFAULT_PINNING) -> int:
    """`grpclab system`: print the facts and warnings (text or JSON). Warnings are not errors: exit 0."""
    wakeup = None
    note = None
    if probe_wakeup:
        from .wakeup import WakeupError, probe

        try:
            wakeup = probe((pinning[0], pinning[1]))
        except WakeupError as exc:
            note = f"warning: {exc}"
    facts = collect(pinning=pinning, wakeup=wakeup)
    if as_json:
        print(json.dumps(facts.to_json(), indent=2))
    else:
        print(facts.render())
    if note:
        print(note, file=sys.stderr)
    return 0
