"""The Python load generator, parent side: splits a cell over worker processes and merges their results.

Both load generators (this one and ghz) hand the runner a :class:`LoadResult`,
so rows from either have the same columns and the same histogram format.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from . import histogram

READY_TIMEOUT_S = 20.0
DRAIN_MARGIN_S = 15.0  # after the window: time for counted RPCs to finish before workers are killed


class LoadError(RuntimeError):
    """The load generator failed for this cell (message says how)."""


@dataclass
class LoadResult:
    loadgen: str
    processes: int
    window_s: float
    ok: int
    errors: dict[str, int]
    cpu_s: float  # generator CPU seconds spent in the measured window, all processes
    hists: dict[str, HdrHistogram]  # "call", "msg", "first", "lag" (microseconds)
    notes: list[str] = field(default_factory=list)
    # seconds the generator's event loop was running or waiting for a CPU, all processes (None: unknown)
    busy_s: float | None = None

    @property
    def rpcs(self) -> int:
        return self.ok + sum(self.errors.values())


def split(total: int, parts: int) -> list[int]:
    """Spread ``total`` over ``parts`` as evenly as possible (earlier parts get the remainder)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def worker_count(requested: int, connections: int, concurrency: int) -> int:
    # A TCP connection cannot be shared across processes, and a process with no RPC
    # in flight is idle: never more workers than connections or concurrency.
    return max(1, min(requested, connections, concurrency))


def _command(cpus: list[int] | None) -> list[str]:
    command = [sys.executable, "-m", "bench.load.worker", "--parent", str(os.getpid())]
    taskset = shutil.which("taskset")
    if cpus and taskset:
        command = [taskset, "-c", ",".join(map(str, cpus)), *command]
    return command


class PythonLoad:
    """One cell's load: ``start()`` returns the measured window; ``result()`` waits for the merged result.

    The workers keep their connections open until ``result()``: the runner reads the
    server's TCP counters at the window's end, between the two calls.
    """

    def __init__(self, job: dict, processes: int, cpus: list[int] | None, rpc_timeout: float) -> None:
        self.job = {**job, "rpc_timeout": rpc_timeout}
        self.n = worker_count(processes, job["connections"], job["concurrency"])
        self.cpus = cpus
        self.procs: list[subprocess.Popen] = []
        self._logs: list[str] = []
        self.window: tuple[float, float] | None = None

    def start(self) -> tuple[float, float]:
        conns = split(self.job["connections"], self.n)
        concs = split(self.job["concurrency"], self.n)
        for i in range(self.n):
            job = {
                **self.job,
                "connections": conns[i],
                "concurrency": concs[i],
                "rate": self.job.get("rate", 0) / self.n,
                "seed": self.job.get("seed", 0) * 1000 + i,
            }
            log = tempfile.NamedTemporaryFile(prefix="grpclab-loadgen-", suffix=".log", delete=False)  # noqa: SIM115
            proc = subprocess.Popen(
                _command(self.cpus),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=os.getcwd(),
            )
            log.close()
            if self.cpus and not shutil.which("taskset"):
                os.sched_setaffinity(proc.pid, self.cpus)
            self.procs.append(proc)
            self._logs.append(log.name)
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
        deadline = time.monotonic() + READY_TIMEOUT_S
        for proc in self.procs:
            message = self._read(proc, deadline)
            if message.get("event") != "ready":
                raise LoadError(f"load generator did not connect: {message.get('message', message)}")
        start = time.monotonic() + 0.05
        for proc in self.procs:
            proc.stdin.write(json.dumps({"start": start}) + "\n")
            proc.stdin.flush()
        lo = start + self.job["warmup"]
        self.window = (lo, lo + self.job["duration"])
        return self.window

    def _read(self, proc: subprocess.Popen, deadline: float) -> dict:
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                raise LoadError("load generator timed out")
        line = proc.stdout.readline()
        if not line:
            raise LoadError(f"load generator exited: {self._log_tail(proc)}")
        return json.loads(line)

    def _log_tail(self, proc: subprocess.Popen) -> str:
        try:
            with open(self._logs[self.procs.index(proc)], errors="replace") as f:
                lines = f.read().strip().splitlines()
        except OSError:
            lines = []
        return lines[-1] if lines else f"exit code {proc.poll()}"

    def result(self) -> LoadResult:
        assert self.window is not None
        deadline = self.window[1] + self.job["rpc_timeout"] + DRAIN_MARGIN_S
        messages = [self._read(proc, deadline) for proc in self.procs]
        for proc in self.procs:
            proc.stdin.write(json.dumps({"close": True}) + "\n")
            proc.stdin.close()
        for proc in self.procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        failed = [m for m in messages if m.get("event") != "result"]
        if failed:
            raise LoadError(f"load generator failed: {failed[0].get('message', failed[0])}")
        errors: dict[str, int] = {}
        for m in messages:
            for code, count in m["errors"].items():
                errors[code] = errors.get(code, 0) + count
        return LoadResult(
            loadgen="python",
            processes=self.n,
            window_s=self.job["duration"],
            ok=sum(m["ok"] for m in messages),
            errors=errors,
            cpu_s=sum(m["cpu_s"] for m in messages),
            hists={name: histogram.merge([m["hist"][name] for m in messages]) for name in messages[0]["hist"]},
            busy_s=None if any(m.get("busy_s") is None for m in messages) else sum(m["busy_s"] for m in messages),
        )

    def close(self) -> None:
        """Kill whatever still runs (failure or Ctrl-C) and remove the logs."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream and not stream.closed:
                    stream.close()
        for log in self._logs:
            try:
                os.unlink(log)
            except OSError:
                pass
