"""The Python load generator, parent side: splits a cell over worker processes and merges their results.

Each worker process gets its share of the :class:`~bench.load.job.LoadJob`; the merged
:class:`~bench.load.job.LoadResult` is what ghz hands back too.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from . import histogram
from .job import LoadError, LoadJob, LoadResult

if TYPE_CHECKING:
    from ..run.placement import LoadgenHost

READY_TIMEOUT_S = 20.0
DRAIN_MARGIN_S = 15.0  # after the window: time for counted RPCs to finish before workers are killed


def worker_count(requested: int, connections: int, concurrency: int, channel: str = "reuse") -> int:
    # A TCP connection cannot be shared across processes, and a process with no RPC
    # in flight is idle: never more workers than connections or concurrency. A channel per
    # call shares no connection, so only concurrency bounds it.
    return max(1, min(requested, connections if channel == "reuse" else concurrency, concurrency))


def _command() -> list[str]:
    return [sys.executable, "-m", "bench.load.worker", "--parent", str(os.getpid())]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class PythonLoad:
    """One cell's load: ``start()`` returns the measured window; ``result()`` waits for the merged result.

    The workers keep their connections open until ``result()``: the runner reads the
    server's TCP counters at the window's end, between the two calls.
    """

    def __init__(self, job: LoadJob, processes: int, host: LoadgenHost) -> None:
        self.job = job
        self.n = worker_count(processes, job.connections, job.concurrency, job.channel)
        self.host = host
        self.procs: list[subprocess.Popen] = []
        self._logs: list[str] = []
        self.window: tuple[float, float] | None = None

    def start(self) -> tuple[float, float]:
        for i in range(self.n):
            log = tempfile.NamedTemporaryFile(prefix="grpclab-loadgen-", suffix=".log", delete=False)  # noqa: SIM115
            proc = self.host.launch(
                _command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=os.getcwd(),
            )
            log.close()
            self.procs.append(proc)
            self._logs.append(log.name)
            proc.stdin.write(json.dumps(self.job.share(i, self.n).to_json()) + "\n")
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
        lo = start + self.job.warmup
        self.window = (lo, lo + self.job.duration)
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
        deadline = self.window[1] + self.job.rpc_timeout + DRAIN_MARGIN_S
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
            window_s=self.job.duration,
            ok=sum(m["ok"] for m in messages),
            errors=errors,
            cpu_s=sum(m["cpu_s"] for m in messages),
            hists={name: histogram.merge([m["hist"][name] for m in messages]) for name in messages[0]["hist"]},
            busy_s=self._busy_s(messages),
            time_to_first_rpc_ms=_median(
                [m["time_to_first_rpc_ms"] for m in messages if m.get("time_to_first_rpc_ms")]
            ),
        )

    def _busy_s(self, messages: list[dict]) -> float | None:
        """The generator's busy time: the aio workers' loop threads added up; for the sync clients, whose
        workers each read their (shared) CPUs' busy time (bench.load.sync_clients.busy_s), the largest."""
        readings = [m.get("busy_s") for m in messages]
        if any(r is None for r in readings):
            return None
        return sum(readings) if self.job.client == "aio" else max(readings)

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
