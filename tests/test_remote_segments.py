"""The worker's generator cuts the load at Marks by each RPC's intended start (bench.remote.generator.Segments).

These run bench.load.worker's own closed and open loops, in this process, against a fake call that only awaits:
no server, no process. They are marked slow because they sleep (about a second in all).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.load.worker import closed_loop, open_loop
from bench.remote.generator import NS, Segments, TrackedWorkload

pytestmark = pytest.mark.slow

CALL_S = 0.003


class FakeWorkload:
    """A call that takes CALL_S and succeeds; counts the calls begun."""

    def __init__(self) -> None:
        self.calls = 0

    def stub(self, channel: object) -> None:
        return None

    async def call(self, stub: object, timeout: float) -> None:
        self.calls += 1
        await asyncio.sleep(CALL_S)


async def _cut_twice(segments: Segments, load: asyncio.Future) -> list[tuple[int, int]]:
    """Mark at 0.1 s and 0.2 s, then end the load and cut the rest: (ok, unfinished) of each segment."""
    out = []
    for _ in range(2):
        await asyncio.sleep(0.1)
        recorder, unfinished = await segments.cut(time.monotonic_ns(), timeout=5.0)
        out.append((recorder.ok, unfinished))
    await load
    recorder, unfinished = await segments.cut(time.monotonic_ns(), timeout=5.0)
    out.append((recorder.ok, unfinished))
    return out


def test_closed_loop_every_rpc_lands_in_exactly_one_segment_and_marks_wait_for_theirs() -> None:
    async def main() -> tuple[list[tuple[int, int]], int]:
        segments, fake = Segments(), FakeWorkload()
        workload = TrackedWorkload(fake, segments)
        end = time.monotonic_ns() + int(0.3 * NS)
        loops = (closed_loop(workload, None, 1.0, end, segments) for _ in range(4))
        load = asyncio.ensure_future(asyncio.gather(*loops))
        load.add_done_callback(lambda _: segments.mark_loop_done())
        return await _cut_twice(segments, load), fake.calls

    cuts, calls = asyncio.run(main())
    assert [unfinished for _, unfinished in cuts] == [0, 0, 0]
    assert sum(ok for ok, _ in cuts) == calls  # none lost, none twice
    assert all(ok > 0 for ok, _ in cuts[:2])


def test_open_loop_segments_hold_the_rpcs_scheduled_between_their_marks() -> None:
    rate = 2000.0  # one RPC every 0.5 ms, constant: which intended starts fall between two marks is exact
    gap_ns = int(NS / rate)

    async def main() -> tuple[list[tuple[int, int]], list[int], int, int]:
        segments, fake = Segments(), FakeWorkload()
        workload = TrackedWorkload(fake, segments)
        start = time.monotonic_ns()
        end = start + int(0.3 * NS)
        load = asyncio.ensure_future(open_loop(workload, [None], 1.0, start, end, rate, "constant", 8, 0, segments))
        load.add_done_callback(lambda _: segments.mark_loop_done())
        cuts = await _cut_twice(segments, load)
        return cuts, list(segments.edges), start, fake.calls

    cuts, edges, start, calls = asyncio.run(main())
    scheduled = [start + k * gap_ns for k in range(-(-int(0.3 * NS) // gap_ns))]
    expected = [
        sum(1 for t in scheduled if t < edges[0]),
        sum(1 for t in scheduled if edges[0] <= t < edges[1]),
        sum(1 for t in scheduled if t >= edges[1]),
    ]
    assert [ok for ok, _ in cuts] == expected  # by intended start, even for the RPCs sent late (cap 8 in flight)
    assert [unfinished for _, unfinished in cuts] == [0, 0, 0] and calls == len(scheduled)
