"""Workers in lab network namespaces (bench.remote.fleet) and interop with grpc-go's benchmark worker.

Slow tests build real fleets (root: namespaces, veth, a bridge) and check two things:

* **nothing is left**: namespaces, processes and the harness's uplink interface are gone after a fleet's block
  ends normally, by an exception, by SIGTERM, and after the process that owned it is SIGKILLed (the reaper);
* **validity** (issue 17's "done when"): a unary and a streaming (ping-pong bidi) BenchmarkService cell driven
  through workers in two namespaces gives the rows a local run gives, within the run's noise, for the lab's
  worker pair and with grpc-go's worker as server and as client. Runs are interleaved (A, driven, A) and the
  bound comes from the same test's own repeat difference, with a floor and a cap (see :func:`_check_close`).

The fast tests check the pieces that need no process: the names the reaper recognises, the pinned grpc-go
version, and what the driver makes of a grpc-go client's stats.
"""

from __future__ import annotations

import ipaddress
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import pytest

from bench.remote import driver, fleet, go_worker, loghist
from bench.run import measure as runner
from bench.run import netns, placement
from bench.spec import Settings
from bench.studies import interop
from protos.grpc.testing import stats_pb2

REPO = Path(__file__).resolve().parents[1]
# Short windows: the bound below is derived from each comparison's own repeat difference, which short windows
# widen; the cap keeps a window off by 2x or the CPU of the wrong process failing.
SETTINGS = Settings(duration=1.0, warmup=0.5, repetitions=1, server_cpus=(0,), loadgen_cpus=(1,), cell_timeout=30.0)
# The interop study's cells (16 sync threads: grpc-go's client holds its 8 ping-pong streams open for the window)
CELLS = {rpc: interop.cell_for(rpc) for rpc in ("unary", "bidi")}
GONE_S = 10.0

needs_root = pytest.mark.skipif(netns.privilege_problem() is not None, reason=f"{netns.privilege_problem()}")
needs_go_worker = pytest.mark.skipif(go_worker.missing() is not None, reason=f"{go_worker.missing()}")


# -- fast ----------------------------------------------------------------------------------------------------


def test_fleet_namespace_names_carry_the_harness_pid_so_the_reaper_and_the_sweep_find_them() -> None:
    assert netns.owner_pid("grpclab-4242-interop-3-hub") == 4242
    assert netns.owner_pid("grpclab-4242-interop-3-host-go0") == 4242
    assert netns.owner_pid("grpclab-4242-loadtest-1-host-server-0") == 4242  # a pod's name
    assert netns.owner_pid("grpclab-4242-run-1-srv") == 4242  # a link cell's, as before
    assert netns.owner_pid("grpclab-4242-interop-3-host-") is None and netns.owner_pid("other-4242-x-1-hub") is None


def test_host_names_are_checked_before_anything_is_built() -> None:
    lab = fleet.Fleet(tag="names")
    for bad in ("", "has space", "a/b", "x" * 41):
        with pytest.raises(ValueError, match="host name"):
            lab.host(bad)
    with pytest.raises(fleet.FleetError, match="not set up"):
        lab.host("ok")


def test_a_fleet_takes_the_first_free_slash_24_of_the_benchmarking_range_never_the_link_cells() -> None:
    net = ipaddress.ip_network
    assert fleet.first_free_subnet([]) == net("198.18.1.0/24")
    taken = [net("198.18.1.0/24"), net("198.18.2.128/25"), net("10.0.0.0/8")]  # another fleet, a stray route
    assert fleet.first_free_subnet(taken) == net("198.18.3.0/24")
    with pytest.raises(fleet.FleetError, match="no free /24"):
        fleet.first_free_subnet([net("198.18.0.0/15")])


def test_a_fleet_without_the_privilege_says_why_in_one_line_and_builds_nothing(monkeypatch) -> None:
    monkeypatch.setattr(netns, "privilege_problem", lambda: "network namespaces need root (CAP_SYS_ADMIN missing)")
    monkeypatch.setattr(netns, "create", lambda name: pytest.fail(f"created {name}"))
    with pytest.raises(fleet.FleetError, match=r"^fleet: network namespaces need root \(CAP_SYS_ADMIN missing\)$"):
        with fleet.Fleet(tag="unprivileged"):
            pass


def test_the_go_worker_is_built_at_the_grpc_go_version_servers_go_pins() -> None:
    assert go_worker.pinned_version() == "v1.85.0"
    makefile = (REPO / "Makefile").read_text()
    # the Makefile reads the version from servers/go/go.mod (one place), and builds the worker package at it
    assert "awk '$$1 == \"google.golang.org/grpc\" {print $$2}' servers/go/go.mod" in makefile
    assert f"go install {go_worker.PACKAGE}@$(GRPC_GO_VERSION)" in makefile
    assert f"GO_WORKER_NAME := {go_worker.BINARY_NAME}" in makefile


def test_without_the_go_worker_its_command_names_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_worker, "binary", lambda: None)
    assert "make setup" in go_worker.missing() and "v1.85.0" in go_worker.missing()
    with pytest.raises(FileNotFoundError, match="make setup"):
        go_worker.command()


def test_a_grpc_go_clients_latencies_are_its_ok_rpcs() -> None:
    # grpc-go's worker answers no request_results (it does not count failed RPCs): every latency is an OK RPC
    hist = loghist.LogHistogram(0.01, 60e9)
    for value in [100_000] * 700 + [300_000] * 300:
        hist.add(value)
    stats = stats_pb2.ClientStats(time_elapsed=2.0, time_user=0.5, time_system=0.1, latencies=hist.to_proto())
    result = driver.load_result(stats, stats_pb2.HistogramParams(resolution=0.01, max_possible=60e9))
    assert (result.ok, result.errors, result.window_s) == (1000, {}, 2.0)


def test_the_readmes_interop_figures_are_what_the_committed_run_gives() -> None:
    run = json.loads((REPO / "results" / "interop-2026-12-01" / "interop.json").read_text())
    meta, rows = run["meta"], run["rows"]
    readme = (REPO / "README.md").read_text()
    assert readme.split("<!-- interop:begin -->\n", 1)[1].split("<!-- interop:end -->", 1)[0] == (
        interop.render_table(rows)
    )
    text = " ".join(readme.split("**Measured: the four pairings.**", 1)[1].split("**Not yet**", 1)[0].split())

    def median(server: str, client: str, rpc: str, key: str) -> float:
        mine = [r[key] for r in rows if (r["server"], r["client"], r["rpc"]) == (server, client, rpc)]
        assert len(mine) == meta["settings"]["rounds"] == 3
        return statistics.median(mine)

    quoted = [
        f"grpc-go's server costs {median('go', 'lab', 'unary', 'server_cpu_us_per_rpc'):.1f} µs",
        f"the lab's sync server costs {median('lab', 'lab', 'unary', 'server_cpu_us_per_rpc'):.1f};",
        f"the lab's generator costs {median('go', 'lab', 'unary', 'loadgen_cpu_us_per_rpc'):.1f} µs",
        f"grpc-go's client costs {median('go', 'go', 'unary', 'loadgen_cpu_us_per_rpc'):.1f}.",
        f"itself does {median('go', 'go', 'unary', 'rps'):,.0f} unary RPC/s",
        f"client ({median('lab', 'go', 'unary', 'server_cpu_us_per_rpc'):.1f} µs)",
    ]
    for phrase in quoted:
        assert phrase in text, phrase
    env, settings = meta["environment"], meta["settings"]
    assert env["cpu_model"] == "AMD EPYC" and env["cores"] == 2 and "2-vCPU AMD EPYC KVM guest" in text
    assert meta["cpu_latency_hold"] == "on" and f"CPUs {meta['busy_before']:.0%} busy".replace("%", " %") in text
    assert meta["started_at"].startswith("2026-12-01T18:18") and meta["ended_at"].startswith("2026-12-01T18:20")
    assert "2026-12-01 18:18-18:20 UTC" in text and "the lab's sync server with 16 threads" in text
    assert all(interop.cell_for(rpc).workers == 16 for rpc in interop.RPCS)
    # Little's law: with every stream served, 8 in flight at RPC/s give a mean of 8 / RPC/s, and each p50 sits just
    # under it (the 15:04 run's starved bidi rows were at half)
    shares = [
        median(server, client, rpc, "lat_p50_ms") / (8 / median(server, client, rpc, "rps") * 1000)
        for server, client in interop.PAIRINGS
        for rpc in interop.RPCS
    ]
    assert 0.85 < min(shares) and max(shares) <= 1.0
    assert f"Every p50 is {min(shares):.0%}-{max(shares):.0%}".replace("%", "", 1).replace("%", " %") in text
    assert f"commit {env['git']['commit'][:7]}" in text and f"grpcio {env['versions']['grpcio']}" in text
    shown = (settings["warmup"], settings["duration"], settings["payload_size"], settings["concurrency"])
    assert shown == (1, 3, 1024, 8) and "1 s warm-up and a 3 s window" in text and "8 RPCs in flight" in text


# -- slow: nothing left ----------------------------------------------------------------------------------------


ECHO_PORT = 7007
ECHO = f"""
import socket, sys
with socket.create_server((sys.argv[1], {ECHO_PORT})) as server:
    print("listening", flush=True)
    for _ in range(2):
        connection, _ = server.accept()
        connection.sendall(b"ok")
        connection.close()
"""
CALL = f"""
import socket, sys
with socket.create_connection((sys.argv[1], {ECHO_PORT}), timeout=5) as connection:
    sys.stdout.write(connection.recv(2).decode())
"""


def _uplinks() -> set[str]:
    """The interfaces of the harness's own namespace (a fleet's uplink end is one of them while it lives)."""
    return {name for _, name in socket.if_nameindex()}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], namespaces: list[str], uplink: str) -> None:
    deadline = time.monotonic() + GONE_S
    while time.monotonic() < deadline:
        if (
            not any(map(_alive, pids))
            and not set(namespaces) & set(netns.lab_namespaces())
            and uplink not in _uplinks()
        ):
            return
        time.sleep(0.05)
    left = [pid for pid in pids if _alive(pid)]
    raise AssertionError(
        f"left: processes {left}, namespaces {set(namespaces) & set(netns.lab_namespaces())}, "
        f"uplink {uplink in _uplinks()}"
    )


@pytest.mark.slow
@needs_root
def test_a_fleet_leaves_nothing_after_its_block_and_after_an_exception() -> None:
    for fail in (False, True):
        with pytest.raises(RuntimeError) if fail else nullcontext():
            with fleet.Fleet(tag="gone") as lab:
                hosts = [lab.host("a"), lab.host("b")]
                sleepers = [host.launch(["sleep", "60"]) for host in hosts]
                namespaces, uplink = [lab.hub] + [h.namespace for h in hosts], lab.uplink_if
                assert set(namespaces) <= set(netns.lab_namespaces()) and uplink in _uplinks()
                # nsenter forks no child: the launched pid itself enters the namespace (a moment after it starts)
                deadline = time.monotonic() + GONE_S
                while netns.processes_in([hosts[0].namespace]) != [sleepers[0].pid] and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert netns.processes_in([hosts[0].namespace]) == [sleepers[0].pid]
                # the hosts reach each other over the bridge, and the harness reaches them over its uplink
                listener = hosts[1].launch([sys.executable, "-c", ECHO, hosts[1].address], stdout=subprocess.PIPE)
                assert listener.stdout.readline() == b"listening\n"
                caller = hosts[0].launch([sys.executable, "-c", CALL, hosts[1].address], stdout=subprocess.PIPE)
                assert caller.communicate(timeout=10)[0] == b"ok" and caller.returncode == 0
                with socket.create_connection((hosts[1].address, ECHO_PORT), timeout=5) as harness_side:
                    assert harness_side.recv(2) == b"ok"
                if fail:
                    raise RuntimeError("a failure inside the block")
        for sleeper in sleepers:
            assert sleeper.poll() is not None
        _wait_gone([s.pid for s in sleepers], namespaces, uplink)
        with pytest.raises(fleet.FleetError, match="its fleet is closed"):
            hosts[0].launch(["true"])  # nothing may start that the fleet would no longer end


OWNER = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from bench.remote.fleet import Fleet
    from bench.run import netns
    try:
        with Fleet(tag="owner") as lab:
            a, b = lab.host("a"), lab.host("b")
            launched = a.launch(["sleep", "60"])
            # a process the fleet did not launch, without a parent-death signal: only the reaper ends it
            stray = subprocess.Popen(["nsenter", f"--net={netns.NETNS_DIR / b.namespace}", "--", "sleep", "60"],
                                     start_new_session=True)
            print(json.dumps({"pids": [launched.pid, stray.pid], "namespaces": [lab.hub, a.namespace, b.namespace],
                              "uplink": lab.uplink_if}), flush=True)
            time.sleep(60)
    except KeyboardInterrupt:
        sys.exit(3)
    """
)


def _owner() -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER], cwd=REPO, stdout=subprocess.PIPE, text=True)
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=30.0):
            proc.kill()
            raise AssertionError("the fleet's owner printed nothing in 30 s")
    return proc, json.loads(proc.stdout.readline())


@pytest.mark.slow
@needs_root
def test_a_fleet_leaves_nothing_after_sigterm_or_sigkill_of_its_owner() -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc, made = _owner()
        assert set(made["namespaces"]) <= set(netns.lab_namespaces()) and all(map(_alive, made["pids"]))
        os.kill(proc.pid, sig)
        code = proc.wait(GONE_S)
        assert code == (3 if sig == signal.SIGTERM else -signal.SIGKILL)  # SIGTERM: the block's own cleanup ran
        # SIGTERM: the fleet ended both, the stray too (it is inside a namespace of the fleet); SIGKILL: the reaper
        try:
            _wait_gone(made["pids"], made["namespaces"], made["uplink"])
        finally:
            for pid in filter(_alive, made["pids"]):
                os.kill(pid, signal.SIGKILL)


# -- slow: validity ----------------------------------------------------------------------------------------------


def _check_close(name: str, a: dict, driven: dict, b: dict, floors: dict[str, float], cap: float = 0.3) -> list[str]:
    """Which of the driven row's metrics are off the mean of the two reference rows by more than the noise allows.

    The noise is the two reference rows' own relative difference, measured here; the bound is twice that, at
    least the metric's floor (what a 1 s window's run-to-run spread is on this machine, on its quietest
    runs) and at most ``cap``: a window off by 2x, or the CPU of the other process (2x to 4x here), still fails.
    """
    problems = []
    for row in (a, driven, b):
        assert not row["failed"], f"{name}: {row['error']}"
        assert row["errors"] == 0 and row["rpcs_ok"] > 0, name
    for metric, floor in floors.items():
        x, y, d = a[metric], b[metric], driven[metric]
        reference = (x + y) / 2
        tolerance = min(cap, max(floor, 2 * abs(x - y) / reference))
        print(f"{name} {metric}: ref {x:.1f} {y:.1f} driven {d:.1f} ratio {d / reference:.3f} tol {tolerance:.2f}")
        if abs(d / reference - 1) > tolerance:
            problems.append(f"{name} {metric}: driven {d:.1f}, reference {x:.1f} and {y:.1f} (±{tolerance:.0%})")
    return problems


def _compared(
    name: str, triple: Callable[[], tuple[dict, dict, dict]], floors: dict[str, float], cap: float = 0.3
) -> list[str]:
    """:func:`_check_close` on ``triple()`` (reference, driven, reference); once more if it fails.

    The machine is shared (other work that needs no lock, the kernel's own threads): a burst on one CPU during one
    window can move that window's CPU per RPC by a third. A wrong measurement fails both attempts.
    """
    problems = _check_close(name, *triple(), floors, cap)
    return _check_close(name, *triple(), floors, cap) if problems else []


@pytest.fixture(scope="module")
def lab_fleet() -> Iterator[dict[str, str]]:
    """Workers: two lab workers apart, grpc-go's as server (CPU 0) and as client (CPU 1) apart, and the same three
    kinds together in one namespace (different driver ports)."""
    with fleet.Fleet(tag="validity") as lab:
        server_cpus, client_cpus = SETTINGS.server_cpus, SETTINGS.loadgen_cpus
        workers = dict(zip(("lab_a", "lab_b"), fleet.start_workers(lab, ["lab", "lab"]), strict=True))
        if go_worker.missing() is None:
            go = fleet.start_workers(lab, ["go", "go"], cpus=[server_cpus, client_cpus])
            workers.update(go_server=go[0], go_client=go[1])
            together = lab.host("together")
            workers.update(
                together_lab=fleet.start_worker(together, "lab", driver_port=10001),
                together_go_server=fleet.start_worker(together, "go", server_cpus, driver_port=10000),
                together_go_client=fleet.start_worker(together, "go", client_cpus, driver_port=10002),
            )
        yield workers


@pytest.mark.slow
@needs_root
def test_lab_workers_in_two_namespaces_measure_what_a_local_run_measures(lab_fleet, tmp_path: Path) -> None:
    """Local, driven across two namespaces, local: the driven row against the lab's own run of the same cell.

    The local run is `grpclab run`'s measurement with the same pinning, across two namespaces too: the cell with
    ``link = "veth"`` (the harness's server and generator in namespaces S and L joined by a veth pair). Over
    loopback it would not be the same cell: crossing namespaces is kernel work per message on both sides, which a
    fresh-clone CI run measured as 8-20 % more CPU per RPC and 15-22 % fewer RPC/s than 127.0.0.1, in both
    attempts. The driven run crosses a veth pair, the hub's bridge and another veth pair: one bridge more.
    """
    ctx = runner.Context("local", SETTINGS, tmp_path, placement.for_settings(SETTINGS, "fleet-check"))
    problems = []
    floors = {"rps": 0.2, "server_cpu_us_per_rpc": 0.15, "loadgen_cpu_us_per_rpc": 0.15, "wire_bytes_per_rpc": 0.1}
    for rpc, cell in CELLS.items():

        def triple(cell=cell) -> tuple[dict, dict, dict]:
            local_a = runner.measure(replace(cell, link="veth"), 0, 0, ctx)
            driven = driver.run_scenario(cell, SETTINGS, lab_fleet["lab_a"], lab_fleet["lab_b"])
            local_b = runner.measure(replace(cell, link="veth"), 1, 1, ctx)
            assert abs(driven["duration_s"] - SETTINGS.duration) < 0.3
            return local_a, driven, local_b

        problems += _compared(f"lab {rpc}", triple, floors)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@needs_root
@needs_go_worker
def test_grpc_go_worker_as_server_and_as_client_across_namespaces_measures_what_it_does_in_one(lab_fleet) -> None:
    """grpc-go's worker against the lab's, in two namespaces, against the same pair in one namespace.

    There is no lab-local run of a grpc-go worker to compare with (it listens on every address, so it never runs
    on the host, and the lab's harness does not run grpc-go's client). The reference is therefore the same two
    workers, same pinning, in one namespace, where their traffic takes that namespace's loopback: what differs is
    the network between them (veth, bridge, veth) and nothing else, which is what "across two namespaces" adds.
    Interleaved: together, apart, together; the bound is derived from the two together-runs' own difference.
    """
    problems = []
    pairs = {
        "go server, lab client": ((lab_fleet["go_server"], lab_fleet["lab_a"]),
                                  (lab_fleet["together_go_server"], lab_fleet["together_lab"])),
        "lab server, go client": ((lab_fleet["lab_a"], lab_fleet["go_client"]),
                                  (lab_fleet["together_lab"], lab_fleet["together_go_client"])),
    }  # fmt: skip
    # Crossing veth, bridge and veth is real kernel work per message on both sides, the same few microseconds
    # whoever sends: a larger share of grpc-go's CPU per message than of the lab's. In a fresh-clone CI run the
    # lab server / grpc-go client bidi cell (~20,000 messages/s) cost 14-16 % more server and 19-30 % more client
    # CPU per message apart than together, and 12-15 % fewer messages/s, in both attempts. The bounds leave that
    # room; a window off by 2x (100 %) or the other process's CPU (47 against 27 us here: 74 %) still fails.
    floors = {"rps": 0.25, "server_cpu_us_per_rpc": 0.35, "loadgen_cpu_us_per_rpc": 0.35}
    for name, (apart, together) in pairs.items():
        for rpc, cell in CELLS.items():

            def triple(cell=cell, apart=apart, together=together) -> tuple[dict, dict, dict]:
                return tuple(driver.run_scenario(cell, SETTINGS, *pair) for pair in (together, apart, together))

            problems += _compared(f"{name} {rpc}", triple, floors, cap=0.4)
    assert not problems, "\n".join(problems)
