"""One Python load-generator process: ``python -m bench.load.worker`` (started by bench.load.python_load).

``--parent PID``: exit when that process (the harness) dies, even by SIGKILL.

Protocol on stdin/stdout, one JSON object per line:
  in  {job}                          -> connects its channels (bench.load.job.LoadJob.to_json)
  out {"event": "ready"}
  in  {"start": MONOTONIC_SECONDS}   -> load from start; measure [start+warmup, +duration)
  out {"event": "result", ...}       (or {"event": "error", "message": ...})
  in  {"close": true}                -> closes its channels and exits
CLOCK_MONOTONIC is system-wide on Linux, so every worker and the runner share one timeline.

The client API is the job's ``client``: grpc.aio here (on asyncio, or uvloop for ``event_loop``), the sync
clients in bench.load.sync_clients, with the same protocol and rules. ``channel = "per-call"`` gives every
RPC its own channel (:class:`PerCall`). Before reporting ready, a worker times connect + first call on a
fresh channel (``time_to_first_rpc_ms``).

Which RPCs count: those whose *intended* start falls in the measured window. In
closed loop the intended start is the actual start; in open loop it is the
schedule's time, and latency is measured from it even when the send happens late
(coordinated omission corrected, as wrk2 does). Every counted RPC is awaited
after the window (bounded by its deadline), so slow RPCs are not dropped.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time

import grpc

from . import histogram
from .channels import open_channel
from .job import LoadJob
from .workload import ReplyMismatch, Workload
from .workload import for_job as workload_for_job

NS = 1_000_000_000
CLOSE_WAIT_S = 60.0


class Recorder:
    """Counts and latency histograms of the measured window."""

    def __init__(self, measure_from_ns: int, measure_to_ns: int) -> None:
        self.lo, self.hi = measure_from_ns, measure_to_ns
        self.call = histogram.new()
        self.msg = histogram.new()
        self.first = histogram.new()
        self.lag = histogram.new()
        self.ok = 0
        self.errors: dict[str, int] = {}

    def counts(self, intended_ns: int) -> bool:
        return self.lo <= intended_ns < self.hi

    def success(self, intended_ns: int, done_ns: int, timings) -> None:
        self.ok += 1
        histogram.record_ns(self.call, done_ns - intended_ns)
        if timings is not None:
            if timings.first_ns is not None:
                histogram.record_ns(self.first, timings.first_ns)
            for gap in timings.gaps_ns or ():
                histogram.record_ns(self.msg, gap)

    def failure(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


async def _one(workload: Workload, stub, timeout: float, intended_ns: int, rec: Recorder) -> None:
    counted = rec.counts(intended_ns)
    try:
        timings = await workload.call(stub, timeout)
    except grpc.aio.AioRpcError as exc:
        if counted:
            rec.failure(exc.code().name)
        return
    except ReplyMismatch:
        if counted:
            rec.failure("DATA_LOSS")
        return
    if counted:
        rec.success(intended_ns, time.monotonic_ns(), timings)


async def closed_loop(workload: Workload, stub, timeout: float, end_ns: int, rec: Recorder) -> None:
    while (start := time.monotonic_ns()) < end_ns:
        await _one(workload, stub, timeout, start, rec)


async def open_loop(workload, stubs, timeout, start_ns, end_ns, rate, arrival, cap, seed, rec) -> None:
    """Send on the schedule; when ``cap`` RPCs are in flight, send late but keep the intended time."""
    rng = random.Random(seed)
    slots = asyncio.Semaphore(cap)
    tasks: set[asyncio.Task] = set()
    intended = start_ns
    i = 0

    async def guarded(stub, intended_ns: int) -> None:
        try:
            await _one(workload, stub, timeout, intended_ns, rec)
        finally:
            slots.release()

    while intended < end_ns:
        now = time.monotonic_ns()
        if intended > now:
            await asyncio.sleep((intended - now) / NS)
        await slots.acquire()
        if rec.counts(intended):
            histogram.record_ns(rec.lag, max(0, time.monotonic_ns() - intended))
        task = asyncio.create_task(guarded(stubs[i % len(stubs)], intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
        gap = rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate
        intended += int(gap * NS)
    if tasks:
        await asyncio.gather(*tasks)


def busy_s() -> float | None:
    """Seconds the calling thread has been on a CPU or runnable, waiting for one (Linux schedstat).

    Called on the event loop's thread, where all of the generator's Python work runs: when
    it is busy this much of the window, the generator is the limit, whether it got the CPU
    or another process on its CPU did (process CPU time alone misses the latter).
    """
    try:
        with open("/proc/thread-self/schedstat") as f:
            run_ns, wait_ns = f.read().split()[:2]
        return (int(run_ns) + int(wait_ns)) / NS
    except (OSError, ValueError):
        return None


async def _cpu_at(moment_ns: int) -> tuple[float, float | None, int]:
    """(process CPU s, this thread's busy s, when read) at ``moment_ns``, or as soon after as the loop can."""
    delay = moment_ns - time.monotonic_ns()
    if delay > 0:
        await asyncio.sleep(delay / NS)
    return time.process_time(), busy_s(), time.monotonic_ns()


def _channel(job: LoadJob) -> grpc.aio.Channel:
    return open_channel(
        job.target, tls_dir=job.tls_dir, compression=job.compression.grpc, aio=True, preset=job.channel_options
    )


class PerCall:
    """``channel = "per-call"``: the workload's RPC on a channel of its own, opened for it and closed after it.

    It stands in for the workload where the loops call ``call(stub, timeout)``; the stub they pass is unused.
    Latency includes opening the channel (TCP connect, HTTP/2 and TLS handshakes) and closing it.
    """

    def __init__(self, job: LoadJob, workload: Workload) -> None:
        self.job = job
        self.workload = workload

    async def call(self, stub, timeout: float):
        async with _channel(self.job) as channel:
            return await self.workload.call(self.workload.stub(channel), timeout)


async def _time_to_first_rpc_ms(job: LoadJob, workload: Workload) -> float | None:
    """Connect + first call on a fresh channel, ms (bench.load.sync_clients.time_to_first_rpc_ms)."""
    began = time.perf_counter_ns()
    channel = _channel(job)
    try:
        await workload.call(workload.stub(channel), job.rpc_timeout)
        return (time.perf_counter_ns() - began) / 1e6
    except (grpc.aio.AioRpcError, ReplyMismatch):
        return None
    finally:
        await channel.close()


def result_message(rec: Recorder, cpu_s: float, busy_s: float | None, time_to_first_rpc_ms: float | None) -> dict:
    return {
        "event": "result",
        "ok": rec.ok,
        "errors": rec.errors,
        "cpu_s": cpu_s,
        "busy_s": busy_s,
        "hist": {name: histogram.encode(getattr(rec, name)) for name in ("call", "msg", "first", "lag")},
        "time_to_first_rpc_ms": time_to_first_rpc_ms,
    }


async def run(job: LoadJob, read_line) -> dict:
    workload = workload_for_job(job)
    channels = [_channel(job) for _ in range(job.connections)]
    try:
        await asyncio.wait_for(asyncio.gather(*(ch.channel_ready() for ch in channels)), job.connect_timeout)
        first_ms = await _time_to_first_rpc_ms(job, workload)
        stubs = [workload.stub(ch) for ch in channels]
        if job.channel == "per-call":
            # The channel above only showed that the server is there; every RPC brings its own.
            for ch in channels:
                await ch.close()
            channels, workload, stubs = [], PerCall(job, workload), [None]
        emit({"event": "ready"})
        start_ns = int(float(json.loads(await read_line())["start"]) * NS)
        lo = start_ns + int(job.warmup * NS)
        hi = lo + int(job.duration * NS)
        rec = Recorder(lo, hi)
        timeout = job.rpc_timeout
        delay = start_ns - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / NS)
        cpu = asyncio.gather(_cpu_at(lo), _cpu_at(hi))
        if job.mode == "open":
            await open_loop(
                workload, stubs, timeout, start_ns, hi, job.rate, job.arrival, job.concurrency, job.seed, rec
            )
        else:
            await asyncio.gather(
                *(closed_loop(workload, stubs[i % len(stubs)], timeout, hi, rec) for i in range(job.concurrency))
            )
        (cpu_lo, busy_lo, at_lo), (cpu_hi, busy_hi, at_hi) = await cpu
        # A busy loop reads late, and not equally late at both edges: rescale to the window.
        scale = (hi - lo) / (at_hi - at_lo) if at_hi > at_lo else 1.0
        busy = (busy_hi - busy_lo) * scale if busy_lo is not None and busy_hi is not None else None
        result = result_message(rec, (cpu_hi - cpu_lo) * scale, busy, first_ms)
        emit(result)
        # Keep the connections until the runner has read the kernel's TCP counters at the
        # window's end (it says "close", or its end of stdin closes); a closed socket has no counters.
        try:
            await asyncio.wait_for(read_line(), CLOSE_WAIT_S)
        except TimeoutError:
            pass
        return result
    finally:
        for ch in channels:
            await ch.close()


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    from servers.serve import exit_with_parent

    # Die with the harness, even when it is SIGKILLed: an orphan would go on loading the
    # machine (up to its connect timeout, or to the window's end against a dead server).
    # The harness passes its pid: after the imports it may be gone and getppid() be init.
    args = sys.argv[1:]
    exit_with_parent(int(args[1]) if args[:1] == ["--parent"] else os.getppid())
    job = LoadJob.from_json(json.loads(sys.stdin.readline()))
    loop_reader = asyncio.StreamReader

    async def amain() -> dict:
        loop = asyncio.get_running_loop()
        reader = loop_reader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        return await run(job, reader.readline)

    try:
        if job.client != "aio":
            from . import sync_clients

            sync_clients.run(job, sys.stdin.readline)
        elif job.event_loop == "uvloop":
            import uvloop

            uvloop.run(amain())
        else:
            asyncio.run(amain())
    except Exception as exc:  # noqa: BLE001 - reported to the parent as this cell's error
        emit({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
