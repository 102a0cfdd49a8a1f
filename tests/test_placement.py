"""bench.run.placement: where a cell's server and generators run (today: this machine, pinned to CPUs)."""

from __future__ import annotations

import os
import subprocess

import psutil
import pytest

from bench.run import placement, server_process
from bench.run.manifest import PlacementInfo
from bench.run.placement import LocalLoadgenHost, LocalPlacement, RunError, ServerLaunch
from bench.spec import DEFAULTS, Cell, Settings

CPUS = sorted(os.sched_getaffinity(0))
CELL = Cell(**DEFAULTS)


def test_check_names_the_setting_and_the_flag_of_a_cpu_this_machine_lacks():
    LocalPlacement((CPUS[0],), (CPUS[-1],)).check()
    missing = max(CPUS) + 1
    with pytest.raises(RunError, match=rf"settings.loadgen_cpus: CPU {missing} is not available.*--loadgen-cpus"):
        LocalPlacement((CPUS[0],), (missing,)).check()


def test_describe_and_the_cell_site_carry_the_cpus():
    local = placement.for_settings(Settings(server_cpus=(0,), loadgen_cpus=(1, 2)))
    assert local.describe() == PlacementInfo(kind="local", server_cpus=(0,), loadgen_cpus=(1, 2))
    with local.cell(CELL) as site:
        assert site.server.cpus == (0,) and site.loadgen.cpus == (1, 2)


class _Recorded:
    """Stands in for subprocess.Popen: records the command, starts nothing."""

    launched: list[list[str]] = []

    def __init__(self, command, **popen) -> None:
        self.pid = os.getpid()
        _Recorded.launched.append(command)


@pytest.mark.parametrize("taskset", ["/usr/bin/taskset", None])
def test_generators_are_pinned_with_taskset_or_affinity(monkeypatch, taskset):
    pinned: list[tuple[int, list[int]]] = []
    _Recorded.launched = []
    monkeypatch.setattr(subprocess, "Popen", _Recorded)
    monkeypatch.setattr(server_process.shutil, "which", lambda name: taskset if name == "taskset" else None)
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: pinned.append((pid, list(cpus))))
    LocalLoadgenHost((1, 3)).launch(["gen", "--x"])
    LocalLoadgenHost(()).launch(["gen"])  # not pinned
    if taskset:
        assert _Recorded.launched == [[taskset, "-c", "1,3", "gen", "--x"], ["gen"]] and pinned == []
    else:
        assert _Recorded.launched == [["gen", "--x"], ["gen"]] and pinned == [(os.getpid(), [1, 3])]


@pytest.mark.slow
def test_a_local_server_is_pinned_healthy_sampled_and_stopped():
    cpus = (CPUS[0],)
    with LocalPlacement(cpus, (CPUS[-1],)).cell(CELL) as site:
        server = site.server.start(ServerLaunch(("--impl", "sync", "--grace", "0.5")))
        try:
            host, port = server.target.rsplit(":", 1)
            assert host == "127.0.0.1" and int(port) > 0
            pids = server.process.pids
            assert all(psutil.Process(pid).cpu_affinity() == list(cpus) for pid in pids)
            first, second = server.sample(), server.sample()
            assert second.cpu_s >= first.cpu_s > 0 and second.rss_bytes > 0
            assert second.cpu_at >= first.cpu_at
        finally:
            assert server.stop() == 0
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids)


@pytest.mark.slow
def test_a_server_that_does_not_start_raises_and_leaves_nothing(tmp_path):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with LocalPlacement((CPUS[0],), (CPUS[-1],)).cell(CELL) as site:
        with pytest.raises(server_process.ServerStartError, match="did not start"):
            site.server.start(ServerLaunch(("--impl", "sync", "--tls", str(tmp_path / "no-certs"))))
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
