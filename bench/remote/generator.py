"""One load-generator process of the lab's worker: the lab's Python generator, its windows set by Marks.

``python -m bench.remote.generator --parent PID`` (started by bench.remote.client_side; exits when PID dies).

The local harness tells its generator the measured window before the load starts (bench.load.worker). A
driver of gRPC's protocol does not: it sends Marks whenever it likes, and each Mark ends a period and,
with ``reset``, starts the next. So this process runs the very same closed and open loops
(``bench.load.worker.closed_loop`` / ``open_loop``, the same Workload, channels and histograms) with a recorder
that cuts the load into *segments* at the marks, by each RPC's *intended* start, the lab's rule:

* a mark line is stamped with this process's CLOCK_MONOTONIC when it is read: the segment boundary;
* every RPC belongs to the segment its intended start falls in (closed loop: its actual start; open loop:
  the schedule's time, so a late send still counts where it was due: coordinated omission corrected);
* the segment that a mark ends is answered only when every RPC of it has finished (and, in open loop,
  when the schedule has passed the mark), bounded by the RPC deadline plus a margin: slow RPCs are
  waited for, never dropped.

Protocol on stdin/stdout, one JSON object per line:
  in  {job}                -> connects its channels (bench.load.job.LoadJob.to_json; ``duration`` bounds the load)
  out {"event": "ready"}
  in  {"start": true}      -> the load starts
  in  {"mark": true}       -> out {"event": "segment", "ok", "errors", "hist": {...}, "busy_s", "unfinished"}
  in  {"close": true}      -> stops the load, closes the channels, exits
  out {"event": "error", "message": ...} when it cannot go on.

What this relies on in bench.load.worker: ``_one`` asks ``rec.counts(intended)`` once per RPC before the
call and then calls ``rec.success(intended, done, timings)`` or ``rec.failure(code)`` in the same task;
``open_loop`` asks ``rec.counts(intended)`` for each scheduled RPC and then records into ``rec.lag``.
tests/test_remote_segments.py checks segment attribution against those loops.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import json
import os
import sys
import time
from collections import defaultdict

from ..load import histogram
from ..load.channels import open_channel
from ..load.job import LoadJob
from ..load.worker import Recorder, busy_s, closed_loop, emit, open_loop
from ..load.workload import for_job

NS = 1_000_000_000
WAIT_MARGIN_S = 5.0  # beyond the RPC deadline: how long a mark waits for its segment's RPCs
_SEGMENT: contextvars.ContextVar[int] = contextvars.ContextVar("grpclab_segment", default=0)
_FOREVER = 2**62


class Segments:
    """The load's RPCs by segment (the marks cut them), with the RPCs of each segment still in flight."""

    def __init__(self) -> None:
        self.edges: list[int] = []  # mark times, ns
        self._recorders: dict[int, Recorder] = {}
        self.inflight: defaultdict[int, int] = defaultdict(int)
        # open loop: RPCs the schedule gave each segment, and those of them whose call has begun. The schedule
        # creates a task per RPC that begins its call later: until it has, the RPC is in neither count above.
        self.scheduled: defaultdict[int, int] = defaultdict(int)
        self.begun: defaultdict[int, int] = defaultdict(int)
        self.scheduled_to = 0  # the latest intended start seen: the open-loop schedule has reached it
        self.load_done = False
        self._changed = asyncio.Event()

    def segment_of(self, intended_ns: int) -> int:
        return bisect.bisect_right(self.edges, intended_ns)

    def recorder(self, segment: int) -> Recorder:
        if segment not in self._recorders:
            self._recorders[segment] = Recorder(0, _FOREVER)
        return self._recorders[segment]

    # -- the recorder interface bench.load.worker's loops use ---------------------------------------------

    def counts(self, intended_ns: int) -> bool:
        _SEGMENT.set(self.segment_of(intended_ns))
        self.scheduled_to = max(self.scheduled_to, intended_ns)
        return True

    def success(self, intended_ns: int, done_ns: int, timings) -> None:
        self.recorder(self.segment_of(intended_ns)).success(intended_ns, done_ns, timings)

    def failure(self, code: str) -> None:
        self.recorder(_SEGMENT.get()).failure(code)

    @property
    def lag(self):
        # open_loop reads this exactly once per scheduled RPC, right after counts() (see the module doc)
        segment = _SEGMENT.get()
        self.scheduled[segment] += 1
        return self.recorder(segment).lag

    # -- in flight (through :class:`TrackedWorkload`) and the marks -----------------------------------------

    def started(self) -> int:
        segment = _SEGMENT.get()
        self.inflight[segment] += 1
        self.begun[segment] += 1
        return segment

    def finished(self, segment: int) -> None:
        self.inflight[segment] -= 1
        self._changed.set()

    def mark_loop_done(self) -> None:
        self.load_done = True
        self._changed.set()

    async def cut(self, edge_ns: int, timeout: float) -> tuple[Recorder, int]:
        """End the current segment at ``edge_ns``; its recorder once its RPCs are done, and how many were not."""
        self.edges.append(edge_ns)
        segment = len(self.edges) - 1
        deadline = time.monotonic() + timeout
        while not self._complete(segment, edge_ns) and time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        not_begun = max(0, self.scheduled.pop(segment, 0) - self.begun.pop(segment, 0))
        unfinished = self.inflight.pop(segment, 0) + not_begun
        return self._recorders.pop(segment, None) or Recorder(0, _FOREVER), unfinished

    def _complete(self, segment: int, edge_ns: int) -> bool:
        scheduled = self.load_done or self.scheduled_to >= edge_ns
        all_begun = self.begun.get(segment, 0) >= self.scheduled.get(segment, 0)
        return self.inflight.get(segment, 0) == 0 and all_begun and scheduled


class TrackedWorkload:
    """A workload whose calls are counted in flight per segment (so a mark can wait for them)."""

    def __init__(self, workload, segments: Segments) -> None:
        self._workload = workload
        self._segments = segments

    def stub(self, channel):
        return self._workload.stub(channel)

    async def call(self, stub, timeout: float):
        segment = self._segments.started()
        try:
            return await self._workload.call(stub, timeout)
        finally:
            self._segments.finished(segment)


def segment_message(recorder: Recorder, unfinished: int, busy_s: float | None) -> dict:
    return {
        "event": "segment",
        "ok": recorder.ok,
        "errors": recorder.errors,
        "hist": {name: histogram.encode(getattr(recorder, name)) for name in ("call", "msg", "first", "lag")},
        "busy_s": busy_s,
        "unfinished": unfinished,
    }


async def run(job: LoadJob, read_line) -> None:
    segments = Segments()
    workload = TrackedWorkload(for_job(job), segments)
    channels = [
        open_channel(job.target, tls_dir=job.tls_dir, compression=job.compression.grpc, aio=True)
        for _ in range(job.connections)
    ]
    load: asyncio.Future | None = None
    try:
        await asyncio.wait_for(asyncio.gather(*(ch.channel_ready() for ch in channels)), job.connect_timeout)
        stubs = [workload.stub(ch) for ch in channels]
        emit({"event": "ready"})
        if "start" not in json.loads(await read_line() or "{}"):
            return
        start_ns = time.monotonic_ns()
        end_ns = start_ns + int(job.duration * NS)  # the bound on the whole load
        timeout = job.rpc_timeout
        if job.mode == "open":
            coro = open_loop(workload, stubs, timeout, start_ns, end_ns, job.rate, job.arrival, job.concurrency,
                         job.seed, segments)  # fmt: skip
        else:
            coro = asyncio.gather(
                *(
                    closed_loop(workload, stubs[i % len(stubs)], timeout, end_ns, segments)
                    for i in range(job.concurrency)
                )
            )
        load = asyncio.ensure_future(coro)
        load.add_done_callback(lambda _: segments.mark_loop_done())
        while True:
            line = await read_line()
            message = json.loads(line) if line else {"close": True}
            if message.get("close"):
                return
            if message.get("mark"):
                edge = time.monotonic_ns()
                busy = busy_s()
                recorder, unfinished = await segments.cut(edge, timeout + WAIT_MARGIN_S)
                emit(segment_message(recorder, unfinished, busy))
            if load.done() and load.exception() is not None:
                raise load.exception()
    finally:
        if load is not None and not load.done():
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)
        for ch in channels:
            await ch.close()


def main() -> int:
    from servers.serve import exit_with_parent

    args = sys.argv[1:]
    exit_with_parent(int(args[1]) if args[:1] == ["--parent"] else os.getppid())
    job = LoadJob.from_json(json.loads(sys.stdin.readline()))

    async def amain() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await run(job, reader.readline)

    try:
        asyncio.run(amain())
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which answers the driver with it
        emit({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
