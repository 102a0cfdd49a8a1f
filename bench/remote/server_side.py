"""The lab worker's server (RunServer): `grpclab serve` for a ServerConfig, and ServerStats at each Mark.

The server is the lab's own (bench.run.server_process starts it as the local harness does: its own
session, ``--exit-with-parent``, pinned with taskset to ``core_list``), bound to the worker's own address,
with grpc.testing.BenchmarkService beside the tutorial's services (``--benchmark-service``, not for the Go
reference server). The worker answers only once the server's health service says SERVING.

Stats since the last Mark with ``reset`` (or since setup):

* ``time_elapsed``: wall seconds (this host's monotonic clock); ``time_user`` / ``time_system``: CPU of every
  server process (all of a ``--processes N`` server) from /proc, as the local harness reads it;
* ``total_cpu_time`` / ``idle_cpu_time``: the whole machine's CPU clock ticks in the period, all and idle
  (/proc/stat: user through steal, and idle + iowait), what gRPC's C++ worker reports and its driver turns
  into the summary's server_cpu_usage;
* ``core_stats``: ``grpclab.wire_tx_bytes`` / ``grpclab.wire_rx_bytes`` (the kernel's TCP counters of the
  server's sockets in the period, sock_diag, as bench.run.sampling reads them), ``grpclab.rss_bytes`` (now),
  ``grpclab.processes``, ``grpclab.cpus`` (how many CPUs it is pinned to; 0: not pinned).
  A counter the kernel would not give is left out.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import psutil

from protos.grpc.core import stats_pb2 as core_stats_pb2
from protos.grpc.testing import control_pb2, stats_pb2

from ..run import placement, server_process
from ..run.sampling import TcpCounters
from .configs import Refused, ServerPlan


class LabServer:
    """The server of one RunServer stream."""

    def __init__(self, plan: ServerPlan, host: str, certs_dir: Path | None) -> None:
        self.plan = plan
        self.host = host
        self.certs_dir = certs_dir
        self.process: server_process.ServerProcess | None = None
        self.counters = TcpCounters()
        self._lock = threading.Lock()
        self._stopped = False  # stop() came: a start() still under way stops what it started
        self._reset_at = 0.0
        self._at_reset = (0.0, 0.0, 0, 0)  # user, system, tx, rx
        self._ticks_at_reset = (0, 0)  # the machine's CPU ticks: all, idle

    def start(self) -> None:
        """Start it and wait until it is healthy; Refused when it does not come up."""
        args = [*self.plan.args(self.certs_dir), "--host", self.host, "--exit-with-parent"]
        try:
            process = server_process.start(args, cpus=list(self.plan.cpus))
        except server_process.ServerStartError as exc:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        with self._lock:
            stopped, self.process = self._stopped, process
        if stopped:
            process.stop()
            raise Refused(grpc.StatusCode.CANCELLED, "the stream ended while the server was starting")
        try:
            placement.wait_healthy(self.target, self.certs_dir if self.plan.tls != "off" else None)
        except server_process.ServerStartError as exc:
            self.stop()
            raise Refused(grpc.StatusCode.UNAVAILABLE, str(exc)) from None
        self._reset_at = time.monotonic()
        self._at_reset = self._read()
        self._ticks_at_reset = machine_ticks()

    @property
    def port(self) -> int:
        assert self.process is not None
        return self.process.port

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def stop(self) -> int | None:
        """Stop the server (idempotent, from any thread); its exit code, None if none was started."""
        with self._lock:
            self._stopped, process = True, self.process
        self.counters.close()
        return process.stop() if process is not None else None

    def _read(self) -> tuple[float, float, int, int]:
        user = system = 0.0
        assert self.process is not None
        for pid in self.process.pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            user, system = user + times.user, system + times.system
        wire = self.counters.read(self.port)
        tx, rx = wire if wire is not None else (-1, -1)
        return user, system, tx, rx

    def _rss(self) -> int:
        assert self.process is not None
        total = 0
        for pid in self.process.pids:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def status(self, *, reset: bool, cores: int) -> control_pb2.ServerStatus:
        assert self.process is not None
        if self.process.proc.poll() is not None:
            raise Refused(grpc.StatusCode.INTERNAL, f"the server exited with code {self.process.proc.returncode}")
        now = time.monotonic()
        current = self._read()
        ticks = machine_ticks()
        user, system, tx, rx = (a - b for a, b in zip(current, self._at_reset, strict=True))
        counts = {
            "grpclab.rss_bytes": self._rss(),
            "grpclab.processes": len(self.process.pids),
            "grpclab.cpus": len(self.plan.cpus),
        }
        if current[2] >= 0 and self._at_reset[2] >= 0:
            counts |= {"grpclab.wire_tx_bytes": tx, "grpclab.wire_rx_bytes": rx}
        stats = stats_pb2.ServerStats(
            time_elapsed=now - self._reset_at,
            time_user=user,
            time_system=system,
            total_cpu_time=max(0, ticks[0] - self._ticks_at_reset[0]),
            idle_cpu_time=max(0, ticks[1] - self._ticks_at_reset[1]),
            core_stats=core_stats_pb2.Stats(
                metrics=[core_stats_pb2.Metric(name=name, count=max(0, value)) for name, value in counts.items()]
            ),
        )
        if reset:
            self._reset_at, self._at_reset, self._ticks_at_reset = now, current, ticks
        return control_pb2.ServerStatus(stats=stats, port=self.port, cores=cores)


def machine_ticks(stat: str | None = None) -> tuple[int, int]:
    """The machine's CPU clock ticks since boot, (all, idle), from /proc/stat's ``cpu`` line ((0, 0): unreadable).

    All is user + nice + system + idle + iowait + irq + softirq + steal (guest time is already in user and nice);
    idle is idle + iowait, as gRPC's C++ worker counts them.
    """
    if stat is None:
        try:
            with open("/proc/stat") as f:
                stat = f.readline()
        except OSError:
            return 0, 0
    fields = stat.split()
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return 0, 0
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return user + nice + system + idle + iowait + irq + softirq + steal, idle + iowait
