"""The lab worker's client (RunClient): generator processes for a ClientConfig, and ClientStats at each Mark.

The plan (bench.remote.configs.client_plan) is split over ``client_processes`` generator processes
(bench.remote.generator, each given its share of the job as the local harness's generator processes
are), pinned to ``core_list``. At a Mark this side stamps the time and reads the processes' CPU from
/proc (user and system separately), then has every process cut its segment (every RPC whose intended
start is before the mark, each waited for). The stats answered cover the period since the last Mark
with ``reset`` (or since setup):

* ``latencies``: the period's call latencies as gRPC's log-bucket histogram (ns), at the config's
  histogram_params (bench.remote.loghist);
* ``time_elapsed``: wall seconds of the period (this host's monotonic clock), ``time_user`` /
  ``time_system``: the generator processes' CPU in the period, from /proc;
* ``request_results``: RPCs of the period by status code (0 = OK);
* ``core_stats``: what the lab measures besides (the lab's driver reads them back exactly):
  ``grpclab.hist.<call|msg|first|lag>`` (the HDR histograms: each HDR bucket's start in us, its count),
  ``grpclab.busy_us`` (time the generators' event loops ran or waited for a CPU: saturation),
  ``grpclab.processes``, ``grpclab.cpus`` (how many CPUs they were pinned to; 0: not pinned),
  ``grpclab.unfinished`` (RPCs of the period still in flight when waiting for them ran out of time).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import psutil

from protos.grpc.core import stats_pb2 as core_stats_pb2
from protos.grpc.testing import stats_pb2

from ..load import histogram
from ..load.python_load import READY_TIMEOUT_S, worker_count
from ..run import server_process
from . import loghist
from .configs import ClientPlan, Refused

CODES = {code.name: code.value[0] for code in grpc.StatusCode}
HISTS = ("call", "msg", "first", "lag")


class LabClient:
    """The generator processes of one RunClient stream."""

    def __init__(self, plan: ClientPlan) -> None:
        self.plan = plan
        self.n = worker_count(plan.processes, plan.job.connections, plan.job.concurrency)
        self.procs: list[subprocess.Popen] = []
        self._logs: list[str] = []
        self._period = _Period()
        self._reset_at = time.monotonic()
        self._cpu_at_reset = (0.0, 0.0)
        # the generators' event-loop busy seconds (cumulative, summed) at the last mark and at the last reset
        self._busy_last: float | None = None
        self._busy_at_reset: float | None = None
        self._lock = threading.Lock()
        self._stopped = False  # stop() came: a start() still under way stops what it started

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the processes, connect, start the load; Refused(UNAVAILABLE ...) when they cannot."""
        job = self.plan.job
        try:
            for i in range(self.n):
                share = job.share(i, self.n)
                log = tempfile.NamedTemporaryFile(prefix="grpclab-worker-gen-", suffix=".log", delete=False)  # noqa: SIM115
                command = [sys.executable, "-m", "bench.remote.generator", "--parent", str(os.getpid())]
                proc = server_process.popen_pinned(
                    command,
                    list(self.plan.cpus),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    cwd=Path(__file__).resolve().parents[2],
                )
                log.close()
                with self._lock:
                    stopped = self._stopped
                    self.procs.append(proc)
                    self._logs.append(log.name)
                if stopped:
                    raise Refused(grpc.StatusCode.CANCELLED, "the stream ended while the load was starting")
                self._send(proc, share.to_json())
            deadline = time.monotonic() + READY_TIMEOUT_S
            for proc in self.procs:
                message = self._read(proc, deadline)
                if message.get("event") != "ready":
                    raise Refused(grpc.StatusCode.UNAVAILABLE, f"load generator did not connect to {job.target}: "
                                  f"{message.get('message', message)}")  # fmt: skip
            for proc in self.procs:
                self._send(proc, {"start": True})
            self._reset_at = time.monotonic()
            self._cpu_at_reset = self._cpu()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the load and the processes (idempotent, from any thread): ``close`` to each, then SIGKILL."""
        with self._lock:
            self._stopped = True
            procs, self.procs = self.procs, []
            logs, self._logs = self._logs, []
        for proc in procs:
            try:
                if proc.poll() is None:
                    self._send(proc, {"close": True})
                    proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + 5.0
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream and not stream.closed:
                    stream.close()
        for log in logs:
            try:
                os.unlink(log)
            except OSError:
                pass

    # -- marks ------------------------------------------------------------------------------------------

    def stats(self, *, mark: bool, reset: bool) -> stats_pb2.ClientStats:
        """The stats since the last reset; ``mark``: cut the generators' segments now (else: nothing new)."""
        now = time.monotonic()
        cpu = self._cpu()
        if mark:
            for proc in self.procs:
                self._send(proc, {"mark": True})
            deadline = now + self.plan.job.rpc_timeout + 30.0
            messages = [self._read(proc, deadline) for proc in self.procs]
            failed = [m for m in messages if m.get("event") != "segment"]
            if failed:
                raise Refused(grpc.StatusCode.INTERNAL, f"load generator failed: {failed[0].get('message', failed[0])}")
            self._period.add(messages)
            busy = [m.get("busy_s") for m in messages]
            self._busy_last = None if None in busy else sum(busy)
        out = self._period.to_proto(
            elapsed=now - self._reset_at,
            user=cpu[0] - self._cpu_at_reset[0],
            system=cpu[1] - self._cpu_at_reset[1],
            busy_s=None if None in (self._busy_last, self._busy_at_reset) else self._busy_last - self._busy_at_reset,
            processes=self.n,
            cpus=len(self.plan.cpus),
            resolution=self.plan.resolution,
            max_possible=self.plan.max_possible,
        )
        if reset:
            self._period = _Period()
            self._busy_at_reset = self._busy_last
            self._reset_at, self._cpu_at_reset = now, cpu
        return out

    # -- plumbing -------------------------------------------------------------------------------------

    def _cpu(self) -> tuple[float, float]:
        user = system = 0.0
        for proc in self.procs:
            try:
                times = psutil.Process(proc.pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            user, system = user + times.user, system + times.system
        return user, system

    def _send(self, proc: subprocess.Popen, message: dict) -> None:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    def _read(self, proc: subprocess.Popen, deadline: float) -> dict:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                raise Refused(grpc.StatusCode.DEADLINE_EXCEEDED, "load generator did not answer in time")
        line = proc.stdout.readline()
        if not line:
            raise Refused(grpc.StatusCode.INTERNAL, f"load generator exited: {self._log_tail(proc)}")
        return json.loads(line)

    def _log_tail(self, proc: subprocess.Popen) -> str:
        try:
            with open(self._logs[self.procs.index(proc)], errors="replace") as f:
                lines = f.read().strip().splitlines()
        except (OSError, ValueError):
            lines = []
        return lines[-1] if lines else f"exit code {proc.poll()}"


class _Period:
    """The generators' segments since the last reset, merged."""

    def __init__(self) -> None:
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.hists = {name: histogram.new() for name in HISTS}
        self.unfinished = 0

    def add(self, messages: list[dict]) -> None:
        for m in messages:
            self.ok += m["ok"]
            for code, count in m["errors"].items():
                self.errors[code] = self.errors.get(code, 0) + count
            for name in HISTS:
                self.hists[name].add(histogram.decode(m["hist"][name]))
            self.unfinished += m.get("unfinished", 0)

    def to_proto(self, *, elapsed, user, system, busy_s, processes, cpus, resolution, max_possible):
        latencies = loghist.from_hdr(self.hists["call"], resolution, max_possible)
        results = [stats_pb2.RequestResultCount(status_code=0, count=self.ok)] if self.ok else []
        results += [
            stats_pb2.RequestResultCount(status_code=CODES.get(code, grpc.StatusCode.UNKNOWN.value[0]), count=count)
            for code, count in sorted(self.errors.items())
        ]
        metrics = [
            core_stats_pb2.Metric(
                name=f"grpclab.hist.{name}",
                histogram=core_stats_pb2.Histogram(
                    buckets=[core_stats_pb2.Bucket(start=s, count=c) for s, c in loghist.hdr_buckets(hist)]
                ),
            )
            for name, hist in self.hists.items()
        ]
        counts = {"grpclab.processes": processes, "grpclab.cpus": cpus, "grpclab.unfinished": self.unfinished}
        if busy_s is not None:
            counts["grpclab.busy_us"] = max(0, round(busy_s * 1e6))
        metrics += [core_stats_pb2.Metric(name=name, count=value) for name, value in counts.items()]
        return stats_pb2.ClientStats(
            latencies=latencies.to_proto(),
            time_elapsed=elapsed,
            time_user=user,
            time_system=system,
            request_results=results,
            core_stats=core_stats_pb2.Stats(metrics=metrics),
        )
