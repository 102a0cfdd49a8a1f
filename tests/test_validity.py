"""Measurement validity: the lab's honesty guards.

Each test puts a *known* cost into a real server through the test-only fault knobs
(servers/faults.py: a sleep, CPU time, a stall) or sends a known number of bytes, runs
one repetition through the harness's own code path (bench.run.measure: real server
pinned to CPU 0, real load generator pinned to CPU 1, kernel counters), and checks
that the row measures that cost back. If one of these fails, the lab's numbers lie.

Every bound below says where its slack comes from. Cells are kept short (a window of
1-2 s) so each test takes a few seconds; the numbers a failing test measured are in
its captured stdout.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_impls import GO_BUILT, GO_MISSING

from bench.load import histogram
from bench.machine import cpu_latency
from bench.run import measure as runner
from bench.run.placement import LocalPlacement
from bench.spec import Cell, Settings, parse_spec
from servers import certs
from servers.faults import ENV_CPU_US, ENV_DELAY_US, ENV_STALL

pytestmark = [
    pytest.mark.slow,  # real servers and load generators: not part of `pytest -m "not slow"`
    pytest.mark.skipif(
        not {0, 1} <= os.sched_getaffinity(0), reason="the lab pins the server to CPU 0 and the load generator to CPU 1"
    ),
]

GO_NEEDED = pytest.mark.skipif(not GO_BUILT, reason=GO_MISSING)

# Printed for every measured row (pytest shows it when a test fails, or with -rP).
SHOWN = (
    "rpcs",
    "rpcs_ok",
    "errors_by_code",
    "rps",
    "lat_mean_ms",
    "lat_p50_ms",
    "lat_p99_ms",
    "lat_max_ms",
    "send_lag_p99_ms",
    "server_cpu_us_per_rpc",
    "server_cpu_util",
    "loadgen_cpu_util",
    "wire_rx_bytes_per_rpc",
    "wire_tx_bytes_per_rpc",
    "payload_ratio",
    "loadgen_saturated",
    "notes",
)


class Lab:
    """Measures one repetition of a cell through bench.run.measure; rows are memoized per module."""

    def __init__(self, certs_dir: Path) -> None:
        self.certs_dir = certs_dir
        self._rows: dict[str, dict] = {}

    def cell(self, settings: dict, axes: dict) -> tuple[Cell, Settings]:
        """The one cell (and settings) of a tiny spec, validated and normalized like any spec's."""
        spec = parse_spec(
            {
                "name": "validity",
                "settings": {"repetitions": 1, "loadgen_processes": 1, **settings},
                "axes": {axis: [value] for axis, value in axes.items()},
            }
        )
        assert len(spec.cells) == 1
        return spec.cells[0], spec.settings

    def row(
        self,
        env: dict[str, str] | None = None,
        *,
        duration: float = 2.0,
        warmup: float = 0.5,
        cell_timeout: float = 30.0,
        condition: str = "",
        **axes: object,
    ) -> dict:
        """The row of one repetition; ``condition`` names anything else the test changed (memo key)."""
        axes = {"rpc": "unary", "concurrency": 1, **axes}
        cell, settings = self.cell({"duration": duration, "warmup": warmup, "cell_timeout": cell_timeout}, axes)
        key = json.dumps([cell.key(), settings.duration, settings.warmup, settings.cell_timeout, env, condition])
        if key not in self._rows:
            ctx = runner.Context(
                run_id="validity",
                settings=settings,
                certs_dir=self.certs_dir,
                placement=LocalPlacement.from_settings(settings),
                server=runner.ServerCode(env=env or {}),
            )
            stalled_before, began = cpu_pressure_us(), time.monotonic()
            row = runner.measure(cell, 0, 0, ctx)
            stalled_after, ended = cpu_pressure_us(), time.monotonic()
            shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items() if k in SHOWN}
            if stalled_before is not None and stalled_after is not None:
                # A failure on a busy machine is noise, not a lab bug: say how busy it was.
                shown["cpu_pressure"] = round((stalled_after - stalled_before) / 1e6 / (ended - began), 2)
            print(f"{cell.key()} env={env or {}} {condition}: {shown}")
            assert not row["failed"], row["error"]
            self._rows[key] = row
        return self._rows[key]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab(certs.generate(tmp_path_factory.mktemp("certs")).dir)


def cpu_pressure_us() -> int | None:
    """Total us some task waited for a CPU (Linux PSI); its growth rate is how contended the machine is."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(f.readline().rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None


def call_hist(row: dict, which: str = "call"):
    return histogram.decode(row[f"hdr_{which}"])


def count_at_least(row: dict, ms: float) -> int:
    """How many of the row's RPCs took at least ``ms`` (from its call-latency histogram)."""
    recorded = call_hist(row).get_recorded_iterator()
    return sum(it.count_at_value_iterated_to for it in recorded if it.value_iterated_to >= ms * 1000)


# -- 1. a known server delay is measured as latency ------------------------------------------

# Two cells that differ only in the server's injected sleep per RPC.
DELAYS_US = (5_000, 25_000)


def delay_row(lab: Lab, impl: str, delay_us: int = DELAYS_US[1]) -> dict:
    """Low load: one RPC in flight, closed loop, every RPC sleeps ``delay_us`` in the server."""
    return lab.row({ENV_DELAY_US: str(delay_us)}, impl=impl)


@pytest.mark.parametrize("impl", ["sync", "aio"])
def test_injected_delay_is_measured_as_the_median_latency(lab, impl):
    """The same cell with two injected delays: the medians differ by the delays' difference.

    Everything else in a round trip is the same in both cells and cancels: the loopback, Python and
    gRPC on both ends, and the wake-ups of idle CPUs (the server's after its sleep, the generator's
    when the reply arrives). Those depend on the machine, from ~0.1 ms to over 1 ms per RPC (a KVM
    guest whose idle vCPUs halt: `grpclab system` says which), so no absolute bound on them holds
    everywhere. A generator that mis-times RPCs (a wrong clock or unit, timing part of the call)
    changes the difference; one that adds or drops time per RPC breaks Little's law below.
    """
    short, long = (delay_row(lab, impl, delay_us) for delay_us in DELAYS_US)
    for row, delay_us in ((short, DELAYS_US[0]), (long, DELAYS_US[1])):
        assert row["errors"] == 0 and row["rpcs_ok"] > 0
        # Nothing can be faster than the sleep: the histogram's smallest value is at least the
        # delay (to the histogram's resolution: 3 significant digits).
        hist = call_hist(row)
        assert hist.get_min_value() >= hist.get_lowest_equivalent_value(delay_us), (delay_us, hist.get_min_value())
        # Little's law with one RPC in flight: rps x mean latency = the fraction of the window an
        # RPC was in flight, just under 1. What is not in flight is the generator's own gap between
        # RPCs (recording one, starting the next: ~10 us here, under 0.2 % of a 5 ms RPC; 2 % is
        # allowed). Counting RPCs by their start adds or drops at most one RPC's time at the window's
        # edges (mean / duration). A generator that dropped or double-counted RPCs, or added time to
        # each or took time off it, breaks this: 0.3 ms off every RPC is 5 % of the 5 ms cell.
        busy = row["rps"] * row["lat_mean_ms"] / 1000
        edge = row["lat_mean_ms"] / 1000 / row["duration_s"]
        assert 1 - edge - 0.02 <= busy <= 1 + edge + 0.005, (delay_us, busy)
        # One RPC in flight: the row says that the generator's own time is in every round trip.
        assert "one RPC in flight: every round trip includes the load generator's own" in row["notes"]
    step_ms = (DELAYS_US[1] - DELAYS_US[0]) / 1000
    measured_ms = long["lat_p50_ms"] - short["lat_p50_ms"]
    assert abs(measured_ms - step_ms) <= 0.05 * step_ms, (short["lat_p50_ms"], long["lat_p50_ms"])


# -- 2. a server stall: open loop shows it, closed loop hides it ------------------------------

STALL_MS = 1000
STALL_RATE = 200.0
# After 100 RPCs (0.5 s into the window at 200 RPC/s; earlier in closed loop, which is faster),
# every RPC start waits until the 1 s stall is over. No warm-up, so the stall is in the window.
STALL_ENV = {ENV_STALL: f"100:{STALL_MS}"}


def open_stall_row(lab: Lab, cap: int) -> dict:
    return lab.row(STALL_ENV, warmup=0.0, mode="open", rate=STALL_RATE, concurrency=cap)


@pytest.mark.parametrize(
    "cap",
    [
        pytest.param(512, id="sends-on-schedule"),
        # 32 RPCs in flight are reached 0.16 s into the stall: from then on the generator
        # itself waits, like a closed loop, and only timing from the *intended* send time
        # (coordinated-omission correction) keeps the stall in the numbers.
        pytest.param(32, id="cap-reached-latency-from-intended-time"),
    ],
)
def test_open_loop_latency_shows_a_server_stall(lab, cap):
    """Open loop offers 200 RPC/s whatever the server does, so the ~200 RPCs due during the 1 s
    stall each wait for its end: their latencies spread evenly over 0..1 s. That is half the
    400 RPCs of the 2 s window, and the p99 (the 4th slowest) is about 990 ms."""
    row = open_stall_row(lab, cap)
    assert row["errors"] == 0
    # every scheduled RPC is counted, the ones held up by the stall included
    assert row["rpcs"] == pytest.approx(STALL_RATE * row["duration_s"], abs=1)
    assert row["lat_max_ms"] >= 0.95 * STALL_MS
    assert row["lat_p99_ms"] >= 0.8 * STALL_MS, row["lat_p99_ms"]
    assert row["lat_p90_ms"] >= 0.5 * STALL_MS, row["lat_p90_ms"]  # ~800 ms: 40 of 400 RPCs waited > 0.8 s
    # RPCs due in the stall's first half waited more than half of it: rate x half the stall
    half = STALL_RATE * STALL_MS / 1000 / 2
    assert abs(count_at_least(row, STALL_MS / 2) - half) <= 0.2 * half, count_at_least(row, STALL_MS / 2)
    if cap == 512:
        # the generator kept its schedule: the latency is the server's, not the client's
        assert row["send_lag_p99_ms"] < 0.1 * STALL_MS, row["send_lag_p99_ms"]
    else:
        # the generator was held back for most of the stall, yet the latency above still shows it
        assert row["send_lag_p99_ms"] >= 0.5 * STALL_MS, row["send_lag_p99_ms"]


def test_closed_loop_latency_hides_the_same_stall(lab):
    """Why the lab has an open loop: coordinated omission.

    The same 1 s stall, closed loop with one RPC in flight: the generator waits for the
    stalled RPC before sending the next, so the stall is *one* slow RPC among the
    thousands a 2 s window holds, and p99 stays at the fast RPCs' sub-millisecond to
    few-millisecond latency. A user whose requests keep arriving during the stall (what
    open loop models) would have seen hundreds of slow requests. The closed-loop p99
    understates the stall by orders of magnitude; only its max shows that anything happened.
    """
    closed = lab.row(STALL_ENV, warmup=0.0, concurrency=1)
    opened = open_stall_row(lab, 512)
    assert closed["errors"] == 0
    assert closed["lat_max_ms"] >= 0.95 * STALL_MS  # the stall happened inside the window ...
    # ... and was one RPC of many: under 1 % of them, so it cannot reach p99. (100 RPCs come before
    # the stall and the stalled one after them: more than 100 for any round trip under ~10 ms.)
    assert closed["rpcs"] > 100, closed["rpcs"]
    assert count_at_least(closed, 0.5 * STALL_MS) == 1
    # p99 is a fast RPC's latency, a small fraction of the stall (however fast the machine is)
    assert closed["lat_p99_ms"] < 0.05 * STALL_MS, closed["lat_p99_ms"]
    assert opened["lat_p99_ms"] > 20 * closed["lat_p99_ms"], (opened["lat_p99_ms"], closed["lat_p99_ms"])


# -- 3. open loop offers the rate it is asked for ---------------------------------------------

RATE = 300.0


def test_open_loop_constant_arrivals_achieve_the_rate(lab):
    row = lab.row(mode="open", rate=RATE, arrival="constant", concurrency=32)
    assert row["errors"] == 0
    assert row["offered_rps"] == RATE
    assert row["rps"] == pytest.approx(RATE, rel=0.02)
    # rps counts RPCs by their *scheduled* start, so it is also checked that they were sent
    # then: sends are never early and at most max-lag late, so the RPCs actually sent in the
    # window differ from the scheduled ones by at most rate x max lag. A max lag under 2 % of
    # the window proves the achieved send rate is within 2 % too.
    max_lag_s = call_hist(row, "lag").get_max_value() / 1e6
    assert max_lag_s <= 0.02 * row["duration_s"], f"generator fell {max_lag_s * 1000:.1f} ms behind its schedule"


def test_open_loop_poisson_arrivals_achieve_the_rate(lab):
    """Poisson arrivals: the number of arrivals in a window of T s at rate r is Poisson(rT)
    distributed (exponential gaps are memoryless, so where the window starts does not matter):
    mean rT = 600, standard deviation sqrt(600) = 24.5, i.e. 4.1 % of the mean. The bound is 4
    standard deviations (16 %), which a correct generator exceeds with probability 6e-5 per
    seed; the seed is fixed, so the outcome is repeatable. A generator using the wrong mean gap
    (say 1/(2r), or the rate per process twice) is off by 50 % or more."""
    row = lab.row(mode="open", rate=RATE, arrival="poisson", concurrency=32)
    assert row["errors"] == 0
    expected = RATE * row["duration_s"]
    assert abs(row["rpcs"] - expected) <= 4 * math.sqrt(expected), row["rpcs"]
    assert row["rps"] == pytest.approx(RATE, rel=4 / math.sqrt(expected))


# -- 4. injected CPU per RPC is measured back -------------------------------------------------

CPU_US = 2000


@pytest.mark.parametrize("impl", ["sync", "aio"])
def test_injected_cpu_per_rpc_is_recovered(lab, impl):
    """The knob burns 2000 us of thread CPU time per RPC (exactly, even when preempted).

    Both cells run open loop at the same rate, so everything but the knob is the same:
    idle costs (pollers, timers) spread over the same number of RPCs and the per-RPC
    work runs at the same batching. 200 RPC/s x 2.3 ms keeps the burning server under
    half its CPU, so it never falls behind the window. /proc's 10 ms CPU ticks over 400
    RPCs are +-25 us per RPC per cell, ~2.5 % of the burn in the worst case.
    """
    axes = dict(impl=impl, mode="open", rate=200.0, concurrency=16)
    base = lab.row(**axes)
    burned = lab.row({ENV_CPU_US: str(CPU_US)}, **axes)
    assert base["errors"] == burned["errors"] == 0
    extra = burned["server_cpu_us_per_rpc"] - base["server_cpu_us_per_rpc"]
    assert extra == pytest.approx(CPU_US, rel=0.15), (base["server_cpu_us_per_rpc"], burned["server_cpu_us_per_rpc"])


# -- 5. wire bytes are what crossed the loopback ----------------------------------------------

SIZE = 16 * 1024
# Per RPC and direction: HTTP/2 HEADERS (HPACK-compressed after the first), two DATA frame
# headers (16 KiB + framing exceeds one 16 KiB frame), the gRPC message prefix, the protobuf
# fields around the payload, WINDOW_UPDATE and PING frames: measured 70-100 B.
FRAMING = 200


def wire_row(lab: Lab, kind: str, compression: str = "none") -> dict:
    # The kernel's counters are read by `ss` (a subprocess) at the window's edges; the runner
    # rescales for when each reading really happened, and what remains (ms of jitter in that
    # estimate, an RPC's worth at each edge) is ~0.1 % of a 2 s window. The framing is ~0.5 %.
    return lab.row(payload_size=SIZE, payload_kind=kind, compression=compression, duration=2.0)


@pytest.mark.parametrize("kind", ["random", "text"])
def test_wire_bytes_carry_the_payload_both_ways(lab, kind):
    """Without compression a 16 KiB payload crosses the loopback as at least 16 KiB each way
    (request to the server: rx; reply from it: tx), plus framing."""
    row = wire_row(lab, kind)
    assert row["errors"] == 0
    for direction in ("rx", "tx"):
        per_rpc = row[f"wire_{direction}_bytes_per_rpc"]
        assert SIZE <= per_rpc < SIZE * 1.1 + FRAMING, (direction, per_rpc)


@pytest.mark.parametrize("compression", ["app-gzip-6", "grpc-gzip"])
def test_compression_shrinks_wire_bytes_by_the_payload_ratio(lab, compression):
    """16 KiB of JSON-like text compresses ~5x. The wire bytes must shrink by at least that
    ratio / 1.5: the slack is the per-RPC framing, which does not compress (~100 B on ~3 KiB)."""
    plain = wire_row(lab, "text")
    packed = wire_row(lab, "text", compression)
    assert packed["errors"] == 0
    ratio = packed["payload_ratio"]
    assert ratio > 3, ratio
    for direction in ("rx", "tx"):
        shrink = plain[f"wire_{direction}_bytes_per_rpc"] / packed[f"wire_{direction}_bytes_per_rpc"]
        assert shrink >= ratio / 1.5, (direction, shrink, ratio)
        # and not more than the payload can shrink: the framing is still there
        assert shrink <= ratio * 1.05, (direction, shrink, ratio)


# -- 6. a saturated load generator is flagged -------------------------------------------------


# Client streams of 16 KiB text with app-level gzip at level 9: per call the generator
# compresses 16 messages at zlib's slowest level (~5 ms), while the server only inflates them,
# which is far cheaper, and compresses one reply (~2 ms in all). With 8 calls in flight the
# generator always has work, so its CPU is certainly the bottleneck and the server's is not.
CLIENT_BOUND = dict(
    rpc="client_stream",
    stream_messages=16,
    payload_size=SIZE,
    payload_kind="text",
    compression="app-gzip-9",
    concurrency=8,
    duration=1.0,
)


def test_busy_load_generator_is_flagged_and_an_idle_one_is_not(lab):
    busy = lab.row(**CLIENT_BOUND)
    assert busy["errors"] == 0
    assert busy["loadgen_cpu_util"] > busy["server_cpu_util"], (busy["loadgen_cpu_util"], busy["server_cpu_util"])
    assert busy["loadgen_saturated"], busy["loadgen_cpu_util"]
    assert "load generator saturated" in busy["notes"]
    assert not busy["server_saturated"]
    idle = delay_row(lab, "sync")  # < 40 RPC/s, each waiting 25 ms in the server
    assert not idle["loadgen_saturated"] and not idle["server_saturated"]
    # the same generator, a small fraction as busy (its CPU per RPC is the same; its RPCs are fewer)
    assert idle["loadgen_cpu_util"] < 0.2 * busy["loadgen_cpu_util"], idle["loadgen_cpu_util"]
    assert "saturated" not in idle["notes"]


def test_busy_load_generator_that_shares_its_cpu_is_still_flagged(lab):
    """Another process on the load generator's CPU takes part of it: the generator then uses
    less CPU than it wants and its CPU utilization stays well under 90 %, yet it is even more
    the limit. The flag counts the time its event loop was running *or waiting for the CPU*."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    try:
        os.sched_setaffinity(hog.pid, {1})
        shared = lab.row(condition="CPU 1 shared with a busy loop", **CLIENT_BOUND)
    finally:
        hog.kill()
        hog.wait()
    assert shared["errors"] == 0
    assert shared["loadgen_cpu_util"] < 0.85, shared["loadgen_cpu_util"]  # the other process did take its share
    assert shared["loadgen_saturated"]


# -- 7. failed RPCs are counted by status code, and only OK RPCs make throughput --------------


def test_failed_rpcs_are_counted_by_code_and_rps_counts_only_ok(lab):
    """A real failure through the runner: RPC deadlines shorter than a server stall.

    (A message over the server's size limit cannot be had through the runner: it does not pass
    --max-message-bytes, and the spec caps payloads at 16 MiB, under the servers' 64 MiB.)

    The runner gives every RPC a deadline of max(1 s, cell_timeout - warmup - duration):
    1 s here. A 1.5 s stall begins after RPC 100 (0.3 s into the window at 200 RPC/s); an
    RPC sent during its first 0.5 s would wait longer than its deadline and fails with
    DEADLINE_EXCEEDED; one sent later waits < 1 s and succeeds. So about 200 x 0.5 = 100 of
    the window's 400 RPCs fail. The in-flight cap is above the stall's backlog, so every
    RPC is sent on schedule and the arithmetic holds.
    """
    rate, stall_s, deadline_s = 200.0, 1.5, 1.0
    row = lab.row(
        {ENV_STALL: f"100:{int(stall_s * 1000)}"},
        impl="aio",
        mode="open",
        rate=rate,
        concurrency=1024,
        warmup=0.2,
        duration=2.0,
        cell_timeout=0.2 + 2.0 + deadline_s,
    )
    by_code = json.loads(row["errors_by_code"])
    assert set(by_code) == {"DEADLINE_EXCEEDED"}, by_code
    assert row["errors"] == by_code["DEADLINE_EXCEEDED"]
    expected = rate * (stall_s - deadline_s)
    assert abs(row["errors"] - expected) <= 0.2 * expected, row["errors"]
    # every offered RPC counted once, failed or not ...
    assert row["rpcs"] == row["rpcs_ok"] + row["errors"] == pytest.approx(rate * row["duration_s"], abs=1)
    # ... but throughput and latency are the OK ones only
    assert row["rps"] == row["rpcs_ok"] / row["duration_s"]
    assert row["rps"] < 0.8 * rate
    assert call_hist(row).get_total_count() == row["rpcs_ok"]
    # A success cannot have taken longer than its deadline, plus however late it was sent and
    # however long the generator's event loop took to notice the reply (scheduling: ms).
    max_lag_ms = call_hist(row, "lag").get_max_value() / 1000
    assert row["lat_max_ms"] <= deadline_s * 1000 + max_lag_ms + 50, (row["lat_max_ms"], max_lag_ms)


# -- 8. handler work: the worker-count knee under waiting, blocking and CPU handlers ---------------------------
#
# The handler_* axes (servers/work.py) put a known amount of work into every RPC. The server models then differ in
# ways that follow from the work alone, so each test derives its bounds from what is injected and from cells it
# measures itself, never from how fast this machine is:
#   - a wait overlaps in every model: a pool of w threads serves at most w RPCs per wait, aio and go as many as are
#     in flight;
#   - a blocking call holds aio's one event loop (at most one RPC per block), nothing else;
#   - CPU work holding the GIL is CPU-bound in every Python model: threads do not add CPUs.
# 16 RPCs in flight, unary, Python generator (which must not be the limit: checked in every cell). Measured as
# `grpclab run` measures by default, with /dev/cpu_dma_latency held at 0 (idle CPUs poll) where the machine allows
# it: without the hold every round trip also pays the machine's wake-ups from idle, which the bounds would have to
# absorb as slack.

WORK_MS = 5.0
WORK_CPU_US = 2000
IN_FLIGHT = 16
SYNC_THREADS = (1, 4, 8, 16)


@pytest.fixture(scope="module")
def run_lab(lab: Lab) -> Iterator[Lab]:
    """A Lab measuring under the CPU-latency hold, as runs do (held until the module's last test has run)."""
    with cpu_latency.hold(0) as state:
        print(f"cpu latency: {state.describe()}")
        yield Lab(lab.certs_dir)


def work_row(lab: Lab, impl: str, *, workers: int = 4, concurrency: int = IN_FLIGHT, **work: float) -> dict:
    row = lab.row(impl=impl, workers=workers, concurrency=concurrency, payload_size=0, **work)
    assert row["errors"] == 0 and row["rpcs_ok"] > 0
    assert not row["loadgen_saturated"], "the generator was the limit: the cell measures the client"
    return row


def cpu_limit(row: dict) -> float:
    """RPC/s the server's one CPU allows at the CPU per RPC it measured in this cell."""
    return 1e6 / row["server_cpu_us_per_rpc"]


def burned_at_least(row: dict, cpu_us: float) -> bool:
    """The server spent at least ``cpu_us`` of CPU per RPC, within what the window's edges blur: the RPCs in flight
    there (up to ``IN_FLIGHT``) had part of their CPU spent outside the window but count inside it (or the reverse)."""
    return row["server_cpu_us_per_rpc"] >= cpu_us * (1 - IN_FLIGHT / row["rpcs"])


def at_most_one_per(row: dict, seconds: float) -> bool:
    """No more RPCs than one per ``seconds`` back to back (one more may start in the window and end after it)."""
    return row["rpcs"] <= row["duration_s"] / seconds + 1


def test_sync_rpc_per_second_grows_with_threads_while_handlers_wait(run_lab):
    """Each thread serves one waiting RPC at a time: one thread does at most one RPC per 5 ms, and w threads w of
    them, until the 16 RPCs in flight or the CPU are the limit. S, the service time per RPC with one thread (the wait
    plus that thread's own work), is measured by the one-thread cell."""
    rows = {w: work_row(run_lab, "sync", workers=w, handler_wait_ms=WORK_MS) for w in SYNC_THREADS}
    wait_s = WORK_MS / 1000
    assert at_most_one_per(rows[1], wait_s), rows[1]["rpcs"]
    service_s = 1 / rows[1]["rps"]
    assert service_s >= wait_s
    for w, row in rows.items():
        # never more than w RPCs per wait, and near w per service time unless the in-flight count or the CPU limits
        assert row["rps"] <= w / wait_s * 1.02, (w, row["rps"])
        if w <= 8:
            assert row["rps"] >= 0.8 * min(w / service_s, cpu_limit(row)), (w, row["rps"], service_s)
    assert rows[8]["rps"] >= 5 * rows[1]["rps"], (rows[1]["rps"], rows[8]["rps"])  # issue 18's bar
    assert rows[16]["rps"] >= 1.2 * rows[8]["rps"], (rows[8]["rps"], rows[16]["rps"])


def test_sync_threads_treat_a_blocking_call_like_a_wait(run_lab):
    waiting = work_row(run_lab, "sync", workers=8, handler_wait_ms=WORK_MS)
    blocking = work_row(run_lab, "sync", workers=8, handler_block_ms=WORK_MS)
    assert blocking["rps"] == pytest.approx(waiting["rps"], rel=0.15)


@pytest.mark.parametrize("impl", ["aio", pytest.param("go", marks=GO_NEEDED)])
def test_waits_overlap_without_threads(run_lab, impl):
    """aio awaits, go parks the goroutine: the 16 waits overlap. Issue 18 asks for 70 % of 16 / 5 ms "or its CPU
    limit"; the bounds below are that, in terms measured in this test, so they hold on a slower machine too:

    - With one RPC in flight the cell's mean latency L1 is the wait plus everything else an RPC costs end to end
      (both sides' code, loopback); 16 RPCs cannot do better than 16 / L1 (perfect overlap).
    - The CPU limit of one event loop that overlaps the waits: the loop runs every RPC's code in turn, so at worst
      an RPC waits, besides its own L1, for the 15 others' server CPU c (all 16 arrive together and queue):
      16 / (L1 + 15 c). A server that does not overlap makes about 1 / L1, 10x less; one that overlaps only half
      the waits makes about half of 16 / L1, under the bound here.
    """
    alone = work_row(run_lab, impl, concurrency=1, handler_wait_ms=WORK_MS)
    together = work_row(run_lab, impl, handler_wait_ms=WORK_MS)
    latency_s = alone["lat_mean_ms"] / 1000
    assert latency_s >= WORK_MS / 1000
    overlapped = IN_FLIGHT / latency_s
    queued = IN_FLIGHT / (latency_s + (IN_FLIGHT - 1) * together["server_cpu_us_per_rpc"] / 1e6)
    print(f"{impl}: {together['rps']:.0f} RPC/s = {together['rps'] / overlapped:.0%} of 16 / L1, "
          f"{together['rps'] / queued:.0%} of 16 / (L1 + 15 c), "
          f"{together['rps'] / (IN_FLIGHT / (WORK_MS / 1000)):.0%} of 16 / 5 ms")  # fmt: skip
    assert together["rps"] >= 0.9 * queued, (together["rps"], queued)
    assert together["rps"] <= 1.05 * overlapped, (together["rps"], overlapped)


def test_a_blocking_call_holds_the_aio_event_loop(run_lab):
    """time.sleep in an aio handler: one RPC per 5 ms (plus its own CPU), however many are in flight, and each
    RPC waits for the ones ahead of it: p50 about 16 x 5 ms. The same work awaited overlaps (at least 8x more)."""
    blocking = work_row(run_lab, "aio", handler_block_ms=WORK_MS)
    waiting = work_row(run_lab, "aio", handler_wait_ms=WORK_MS)
    block_s = WORK_MS / 1000
    assert at_most_one_per(blocking, block_s), blocking["rpcs"]
    assert blocking["rps"] >= 0.8 / (block_s + blocking["server_cpu_us_per_rpc"] / 1e6), blocking["rps"]
    assert blocking["lat_p50_ms"] >= 0.8 * IN_FLIGHT * WORK_MS, blocking["lat_p50_ms"]
    assert waiting["rps"] >= 8 * blocking["rps"], (waiting["rps"], blocking["rps"])


@GO_NEEDED
def test_a_blocking_call_holds_no_other_goroutine(run_lab):
    """The same blocking sleep in the Go server (a nanosleep system call): the runtime gives the goroutine's thread
    up to the call and runs the others, so 16 blocking handlers overlap like 16 waiting ones."""
    waiting = work_row(run_lab, "go", handler_wait_ms=WORK_MS)
    blocking = work_row(run_lab, "go", handler_block_ms=WORK_MS)
    assert blocking["rps"] >= 0.85 * waiting["rps"], (blocking["rps"], waiting["rps"])
    assert blocking["rps"] >= 8 / (WORK_MS / 1000 + blocking["server_cpu_us_per_rpc"] / 1e6)


def test_more_threads_do_not_raise_rpc_per_second_of_cpu_bound_handlers(run_lab):
    """2 ms of Python CPU per RPC, holding the GIL: one thread already keeps the server's CPU busy, and eight take
    turns on the same CPU (and the same GIL), so RPC/s stays at the CPU's limit."""
    rows = {w: work_row(run_lab, "sync", workers=w, handler_cpu_us=WORK_CPU_US) for w in (1, 8)}
    for w, row in rows.items():
        assert burned_at_least(row, WORK_CPU_US), (w, row["server_cpu_us_per_rpc"])
        assert row["rps"] >= 0.85 * cpu_limit(row), (w, row["rps"], cpu_limit(row))  # CPU-bound
    assert rows[8]["rps"] <= 1.1 * rows[1]["rps"], (rows[1]["rps"], rows[8]["rps"])


@pytest.mark.parametrize("impl", ["aio", pytest.param("go", marks=GO_NEEDED)])
def test_cpu_bound_handlers_are_held_to_the_cpu_without_threads_too(run_lab, impl):
    row = work_row(run_lab, impl, handler_cpu_us=WORK_CPU_US)
    assert burned_at_least(row, WORK_CPU_US), row["server_cpu_us_per_rpc"]
    assert row["rps"] >= 0.85 * cpu_limit(row), (row["rps"], cpu_limit(row))
    assert row["rps"] <= 1e6 / WORK_CPU_US * 1.02
