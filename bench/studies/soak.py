"""Soak: does a server stay bounded (RSS, threads, descriptors) and healthy under long mixed load? (issue 19)

    python -m bench.studies.soak                                   # sync and aio, ~1,000,000 RPCs each
    python -m bench.studies.soak --impl aio --rpcs 20000 --cycle-rpcs 2000 --out /tmp/soak

One server per model (`grpclab serve --impl IMPL`, pinned to the server CPU by bench.run.server_process) gets
**cycles** of the same mix, each bounded in RPCs, the whole run bounded in RPCs (`--rpcs`) and time
(`--max-seconds`). A cycle is, in this order:

1. a **deadline storm**: unary calls and long server streams with 1 ms deadlines (ending OK, DEADLINE_EXCEEDED,
   or CANCELLED when the server resets the expired stream first), 20 % of the cycle's RPCs;
2. a **cancel storm**: bidi streams cancelled after their first reply and server streams of 1,000,000
   messages cancelled after their third, the request stream still open (CANCELLED), 10 %;
3. **normal load**: every RPC kind (bench.load.workload, the Python load generator's own calls, replies
   checked), unary 40 %, server stream, client stream and bidi 10 % each, all of which must end OK.

The load comes from this process (grpc.aio, `--concurrency` RPCs in flight over `--connections`
connections), pinned to the load-generator CPU. A sampler reads the server's RSS, threads and open file
descriptors from /proc every `--sample-interval` seconds (the timeline), and once more at the end of every
cycle, right after its normal load, and health is checked there too.

**The rule.** Every cycle repeats the same mix, so once the server has seen the mix a few times, a server
without a leak only reuses what it already holds. The first third of the cycles (at least 2) is the
settling phase; its highest cycle-end value is the *settled* level. The *final* level is the median of the
last three cycle-end values. A metric **keeps growing** when final - settled exceeds its tolerance:

* RSS: 16 MiB + 10 % of the settled RSS. The allocators (glibc's arenas, Python's obmalloc) keep and
  fragment freed memory, so RSS wanders after settling without any leak; the tolerance covers that
  wander (measured in the full runs, see the README) while a leak of 100 bytes per RPC over the
  two thirds of a million-RPC run (~64 MiB) still fails;
* threads: 2 (a thread pool may start one more worker late);
* descriptors: 8 (a few connections may be in the middle of closing; a leak of one descriptor per
  cancelled stream would add thousands).

The run also fails when the server stops serving: health not SERVING at a cycle end or after the load, a
normal-load RPC or a final check call not OK, an unexpected status in a storm, or the server process gone.
Exit code 0 (every model passed), 1 (a model failed: its verdict line says which rule), 2 (bad input).

Output, in the output directory: `soak.md` (per model: the checks, the RPC counts, the timeline at cycle
ends) and `soak-<impl>.json` (settings, machine, checks, counts and every sample).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The parts of the lab this study stands on:
from bench.load.channels import open_channel  # the load generator's channels
from bench.load.workload import Workload  # the load generator's calls, with reply checks
from bench.machine import environment  # machine description
from bench.run import server_process  # the launcher
from bench.run.executor import sigterm_interrupts  # SIGTERM ends a run like Ctrl-C
from bench.spec.compression import Compression
from bench.studies import UsageError, check_cpus, new_out_dir
from protos import chat_pb2, chat_pb2_grpc, greet_pb2, greet_pb2_grpc, number_stream_pb2, number_stream_pb2_grpc
from servers.config import IMPLS

METRICS = ("rss_mib", "threads", "fds")
RPC_TIMEOUT_S = 10.0  # normal load: far above any RPC's time; a stuck server fails it
STORM_DEADLINE_S = 0.001
LONG_STREAM = 1_000_000  # messages a storm's server stream asks for (never all sent)
# Share of a cycle's RPCs per part (sums to 1)
MIX = {
    "deadline_unary": 0.10,
    "deadline_server_stream": 0.10,
    "cancel_bidi": 0.05,
    "cancel_server_stream": 0.05,
    "unary": 0.40,
    "server_stream": 0.10,
    "client_stream": 0.10,
    "bidi": 0.10,
}
NORMAL = ("unary", "server_stream", "client_stream", "bidi")
# What each part's RPCs may end with; anything else means the server misbehaved. A server may end a call whose
# deadline passed by resetting its stream (RST_STREAM CANCEL) before the client's own timer fires: the client then
# sees CANCELLED. The aio servers do it for a few percent of the storm's calls, the tutorial's bare one as much.
ALLOWED = {
    "deadline_unary": {"OK", "DEADLINE_EXCEEDED", "CANCELLED"},
    "deadline_server_stream": {"OK", "DEADLINE_EXCEEDED", "CANCELLED"},
    "cancel_bidi": {"CANCELLED"},
    "cancel_server_stream": {"CANCELLED"},
    **{rpc: {"OK"} for rpc in NORMAL},
}


@dataclass(frozen=True)
class Settings:
    impls: tuple[str, ...] = ("sync", "aio")
    rpcs: int = 1_000_000  # per model
    cycle_rpcs: int = 20_000
    max_seconds: float = 1800.0  # per model: the load stops after this, whatever the count
    concurrency: int = 64
    connections: int = 8
    payload_size: int = 1024  # normal load: request and reply payload, text
    stream_messages: int = 10
    sample_interval: float = 0.5
    server_cpu: int = 0
    loadgen_cpu: int = 1
    rss_tolerance_mib: float = 16.0
    rss_tolerance_fraction: float = 0.10
    threads_tolerance: int = 2
    fds_tolerance: int = 8


# --- the rule ---------------------------------------------------------------------------------------


@dataclass
class Check:
    metric: str
    start: float  # first sample of the run
    settled: float  # highest cycle-end value of the settling phase
    peak: float  # highest sample of the whole run (timeline included)
    final: float  # median of the last three cycle-end values
    growth: float  # final - settled
    tolerance: float
    ok: bool


def tolerance(metric: str, settled: float, settings: Settings) -> float:
    if metric == "rss_mib":
        return settings.rss_tolerance_mib + settings.rss_tolerance_fraction * settled
    return float(settings.threads_tolerance if metric == "threads" else settings.fds_tolerance)


def settle_cycles(cycles: int) -> int:
    """The settling phase: the first third of the cycles, at least 2."""
    return max(2, cycles // 3)


def judge(cycle_ends: Sequence[dict], timeline: Sequence[dict], settings: Settings) -> list[Check]:
    """One Check per metric from the cycle-end samples (at least 3 cycles: 2 settling, 1 to compare)."""
    if len(cycle_ends) < 3:
        raise ValueError(f"need at least 3 cycles to judge growth, got {len(cycle_ends)}")
    settling = settle_cycles(len(cycle_ends))
    if settling >= len(cycle_ends):
        settling = len(cycle_ends) - 1
    checks = []
    for metric in METRICS:
        values = [s[metric] for s in cycle_ends]
        settled = max(values[:settling])
        after = values[settling:]
        final = statistics.median(after[-3:])
        limit = tolerance(metric, settled, settings)
        everything = [s[metric] for s in (*timeline, *cycle_ends)]
        checks.append(
            Check(
                metric=metric,
                start=(timeline[0] if timeline else cycle_ends[0])[metric],
                settled=settled,
                peak=max(everything),
                final=final,
                growth=final - settled,
                tolerance=limit,
                ok=final - settled <= limit,
            )
        )
    return checks


# --- sampling the server ----------------------------------------------------------------------------


def read_server(pids: Sequence[int]) -> dict:
    """RSS (MiB), threads and open descriptors summed over the server's processes, from /proc."""
    rss = threads = fds = 0
    for pid in pids:
        proc = psutil.Process(pid)
        with proc.oneshot():
            rss += proc.memory_info().rss
            threads += proc.num_threads()
            fds += proc.num_fds()
    return {"rss_mib": rss / 2**20, "threads": threads, "fds": fds}


class Sampler(threading.Thread):
    """Samples the server every ``interval`` seconds into ``timeline``, tagged with the part running."""

    def __init__(self, pids: Sequence[int], interval: float, began: float, reader=read_server) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.pids, self.interval, self.began, self.reader = list(pids), interval, began, reader
        self.timeline: list[dict] = []
        self.part = "start"
        self.cycle = 0
        self.error = ""
        self._halt = threading.Event()

    def sample(self) -> dict:
        values = self.reader(self.pids)
        return {"t": round(time.monotonic() - self.began, 3), "cycle": self.cycle, "part": self.part, **values}

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.timeline.append(self.sample())
            except psutil.Error as exc:
                self.error = f"server process gone: {exc}"
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


# --- the load ---------------------------------------------------------------------------------------


async def _status(call: Awaitable) -> str:
    try:
        await call
        return "OK"
    except grpc.aio.AioRpcError as exc:
        return exc.code().name


async def deadline_unary(channel: grpc.aio.Channel) -> str:
    stub = greet_pb2_grpc.GreeterStub(channel)
    return await _status(stub.SayHello(greet_pb2.HelloRequest(name="storm"), timeout=STORM_DEADLINE_S))


async def deadline_server_stream(channel: grpc.aio.Channel) -> str:
    stub = number_stream_pb2_grpc.NumberServiceStub(channel)
    call = stub.GetNumbers(number_stream_pb2.NumberRequest(limit=LONG_STREAM), timeout=STORM_DEADLINE_S)

    async def drain() -> None:
        async for _ in call:
            pass

    return await _status(drain())


async def cancel_bidi(channel: grpc.aio.Channel) -> str:
    call = chat_pb2_grpc.ChatServiceStub(channel).Chat(timeout=RPC_TIMEOUT_S)
    try:
        await call.write(chat_pb2.ChatRequest(message="cancel me"))
        reply = await call.read()
        if reply is grpc.aio.EOF or reply.message != "You said: cancel me":
            return "WRONG_REPLY"
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    call.cancel()  # mid-stream: the request stream is still open
    return "CANCELLED" if await call.code() == grpc.StatusCode.CANCELLED else (await call.code()).name


async def cancel_server_stream(channel: grpc.aio.Channel) -> str:
    stub = number_stream_pb2_grpc.NumberServiceStub(channel)
    call = stub.GetNumbers(number_stream_pb2.NumberRequest(limit=LONG_STREAM), timeout=RPC_TIMEOUT_S)
    try:
        for expected in range(3):
            reply = await call.read()
            if reply is grpc.aio.EOF or reply.number != expected:
                return "WRONG_REPLY"
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    call.cancel()
    return "CANCELLED" if await call.code() == grpc.StatusCode.CANCELLED else (await call.code()).name


def normal(workload: Workload) -> Callable[[grpc.aio.Channel], Awaitable[str]]:
    stubs: dict[int, object] = {}

    async def one(channel: grpc.aio.Channel) -> str:
        stub = stubs.get(id(channel))
        if stub is None:
            stub = stubs[id(channel)] = workload.stub(channel)
        try:
            await workload.call(stub, RPC_TIMEOUT_S)
            return "OK"
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        except Exception as exc:  # noqa: BLE001 - a wrong reply (ReplyMismatch) is a finding, not a crash
            return f"WRONG_REPLY: {exc}"

    return one


async def run_part(count: int, concurrency: int, channels: Sequence[grpc.aio.Channel], one, deadline: float) -> Counter:
    """``count`` calls of ``one``, ``concurrency`` at a time over the channels; stops early at ``deadline``."""
    outcomes: Counter = Counter()
    next_index = 0

    async def worker(k: int) -> None:
        nonlocal next_index
        channel = channels[k % len(channels)]
        while next_index < count and time.monotonic() < deadline:
            next_index += 1
            outcomes[await one(channel)] += 1

    await asyncio.gather(*(worker(k) for k in range(min(concurrency, count))))
    return outcomes


async def health_status(channel: grpc.aio.Channel) -> str:
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@dataclass
class ModelResult:
    impl: str
    started_at: str = ""
    elapsed_s: float = 0.0
    cycles: int = 0
    rpcs: int = 0
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # part -> status -> count
    unexpected: dict[str, int] = field(default_factory=dict)  # "part: status" -> count
    health: list[str] = field(default_factory=list)  # at every cycle end, then after the load
    final_calls: dict[str, str] = field(default_factory=dict)  # rpc -> status after the load
    checks: list[Check] = field(default_factory=list)
    cycle_ends: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    stopped_by: str = ""  # "rpcs" or "time"
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def part_counts(cycle_rpcs: int) -> dict[str, int]:
    return {part: max(1, round(share * cycle_rpcs)) for part, share in MIX.items()}


async def drive(target: str, settings: Settings, sampler: Sampler, result: ModelResult) -> None:
    began = time.monotonic()
    deadline = began + settings.max_seconds
    channels = [open_channel(target, aio=True) for _ in range(settings.connections)]
    plain = Compression.parse("none")
    workloads = {rpc: Workload(rpc, settings.payload_size, "text", plain, settings.stream_messages) for rpc in NORMAL}
    calls = {
        "deadline_unary": deadline_unary,
        "deadline_server_stream": deadline_server_stream,
        "cancel_bidi": cancel_bidi,
        "cancel_server_stream": cancel_server_stream,
        **{rpc: normal(workloads[rpc]) for rpc in NORMAL},
    }
    counts = part_counts(settings.cycle_rpcs)
    cycle_size = sum(counts.values())
    outcomes: dict[str, Counter] = {part: Counter() for part in MIX}
    try:
        while True:
            if result.rpcs + cycle_size > settings.rpcs:
                result.stopped_by = "rpcs"
                break
            if time.monotonic() >= deadline:
                result.stopped_by = "time"
                break
            sampler.cycle = result.cycles
            for part, count in counts.items():
                sampler.part = part
                got = await run_part(count, settings.concurrency, channels, calls[part], deadline)
                outcomes[part].update(got)
                result.rpcs += sum(got.values())
            sampler.part = "cycle end"
            result.cycle_ends.append(sampler.sample())
            result.health.append(await health_status(channels[0]))
            result.cycles += 1
        sampler.part = "after"
        result.health.append(await health_status(channels[0]))
        for rpc in NORMAL:
            result.final_calls[rpc] = await normal(workloads[rpc])(channels[0])
    finally:
        for channel in channels:
            await channel.close()
    result.outcomes = {part: dict(c) for part, c in outcomes.items()}
    for part, counter in outcomes.items():
        for status, n in counter.items():
            if status not in ALLOWED[part]:
                result.unexpected[f"{part}: {status}"] = n


def soak_one(impl: str, settings: Settings, env: dict[str, str] | None = None, progress=print) -> ModelResult:
    """Start the model's server, soak it, stop it; returns the result with its verdict (``problems``)."""
    result = ModelResult(impl=impl, started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    began = time.monotonic()
    server = server_process.start(
        ["--impl", impl, "--port", "0", "--exit-with-parent"], env=env, cpus=[settings.server_cpu]
    )
    affinity = os.sched_getaffinity(0)
    sampler = Sampler(server.pids, settings.sample_interval, began)
    try:
        os.sched_setaffinity(0, {settings.loadgen_cpu})  # the load generator's CPU, as the harness pins it
        sampler.timeline.append(sampler.sample())
        sampler.start()
        asyncio.run(drive(server.target, settings, sampler, result))
    except psutil.Error as exc:  # a cycle-end sample found the server gone
        result.problems.append(f"server process gone: {exc}")
    finally:
        os.sched_setaffinity(0, affinity)
        sampler.stop()
        code = server.stop()
    result.elapsed_s = time.monotonic() - began
    result.timeline = sampler.timeline
    if sampler.error:
        result.problems.append(sampler.error)
    if code != 0:
        result.problems.append(f"server exited with code {code} on SIGTERM")
    verdict(result, settings)
    progress(verdict_line(result))
    return result


def verdict(result: ModelResult, settings: Settings) -> None:
    """Fill ``result.checks`` and ``result.problems``."""
    if result.cycles < 3:
        result.problems.append(
            f"only {result.cycles} cycles ran (stopped by {result.stopped_by}): need 3 to judge growth; "
            "raise --rpcs or --max-seconds, or lower --cycle-rpcs"
        )
    else:
        result.checks = judge(result.cycle_ends, result.timeline, settings)
        for c in result.checks:
            if not c.ok:
                result.problems.append(
                    f"{c.metric} kept growing: {_fmt(c.metric, c.settled)} settled -> {_fmt(c.metric, c.final)} "
                    f"final (+{_fmt(c.metric, c.growth)}, tolerance {_fmt(c.metric, c.tolerance)})"
                )
    bad_health = [h for h in result.health if h != "SERVING"]
    if bad_health or not result.health:
        result.problems.append(f"health not SERVING: {bad_health[:3] or 'never checked'}")
    failed_calls = {rpc: s for rpc, s in result.final_calls.items() if s != "OK"}
    if failed_calls or len(result.final_calls) < len(NORMAL):
        result.problems.append(f"after the load the server did not serve every RPC: {failed_calls}")
    if result.unexpected:
        result.problems.append(f"unexpected statuses: {result.unexpected}")


def _fmt(metric: str, value: float) -> str:
    return f"{value:.1f} MiB" if metric == "rss_mib" else f"{value:g}"


def verdict_line(result: ModelResult) -> str:
    head = f"soak {result.impl}: {'PASS' if result.passed else 'FAIL'}"
    what = f"{result.rpcs:,} RPCs in {result.cycles} cycles, {result.elapsed_s:.0f} s"
    if not result.passed:
        return f"{head}: {'; '.join(result.problems)} ({what})"
    growth = ", ".join(
        f"{c.metric} {'+' if c.growth >= 0 else ''}{_fmt(c.metric, c.growth)} <= {_fmt(c.metric, c.tolerance)}"
        for c in result.checks
    )
    return f"{head}: {growth} after settling; health SERVING throughout ({what})"


# --- report -----------------------------------------------------------------------------------------


def render_markdown(meta: dict, results: Sequence[ModelResult]) -> str:
    s, env = meta["settings"], meta["environment"]
    lines = [
        "# Soak",
        "",
        f"- measured {meta['started_at']} .. {meta['ended_at']}, commit {str(env['git'].get('commit'))[:10]}"
        f"{' (dirty)' if env['git'].get('dirty') else ''}",
        f"- machine: {env['cpu_model']}, {env['cores']} CPUs, Linux {env['kernel']}, Python "
        f"{env['versions']['python']}, grpcio {env['versions']['grpcio']}",
        f"- per model: up to {s['rpcs']:,} RPCs or {s['max_seconds']:g} s, in cycles of {s['cycle_rpcs']:,}: "
        "deadline storm (1 ms: unary + long server streams, 20 %), cancel storm (bidi after 1 reply, server "
        "streams after 3 messages, 10 %), normal load (unary 40 %, each stream kind 10 %); "
        f"{s['concurrency']} in flight on {s['connections']} connections, {s['payload_size']} B text payloads, "
        f"{s['stream_messages']} messages per stream; server on CPU {s['server_cpu']}, load (grpc.aio, this "
        f"process) on CPU {s['loadgen_cpu']}",
        "- rule: settled = highest cycle-end value of the first third of the cycles; final = median of the last "
        f"3; fail when final - settled > tolerance (RSS {s['rss_tolerance_mib']:g} MiB + "
        f"{100 * s['rss_tolerance_fraction']:g} % of settled, threads {s['threads_tolerance']}, descriptors "
        f"{s['fds_tolerance']}); and health SERVING at every cycle end, every RPC served after the load",
        "",
        render_tables(results),
    ]
    return "\n".join(lines) + "\n"


def render_tables(results: Sequence[ModelResult]) -> str:
    """The checks and the counts per model, and each model's cycle-end series (what the README quotes)."""
    lines = [
        "| server | metric | start | settled | peak | final | growth | tolerance | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        for c in r.checks:
            lines.append(
                f"| {r.impl} | {c.metric} | {_fmt(c.metric, c.start)} | {_fmt(c.metric, c.settled)} | "
                f"{_fmt(c.metric, c.peak)} | {_fmt(c.metric, c.final)} | {_fmt(c.metric, c.growth)} | "
                f"{_fmt(c.metric, c.tolerance)} | {'bounded' if c.ok else 'GROWING'} |"
            )
    lines += ["", "| server | RPCs | cycles | time | RPC/s | storms: deadline exceeded / cancelled | verdict |"]
    lines.append("|---|---:|---:|---:|---:|---|---|")
    for r in results:
        exceeded = sum(r.outcomes.get(p, {}).get("DEADLINE_EXCEEDED", 0) for p in MIX)
        cancelled = sum(r.outcomes.get(p, {}).get("CANCELLED", 0) for p in MIX)
        rate = r.rpcs / r.elapsed_s if r.elapsed_s else math.nan
        lines.append(
            f"| {r.impl} | {r.rpcs:,} | {r.cycles} | {r.elapsed_s:.0f} s | {rate:,.0f} | {exceeded:,} / "
            f"{cancelled:,} | {'PASS' if r.passed else 'FAIL: ' + '; '.join(r.problems)} |"
        )
    for r in results:
        lines += ["", f"{r.impl}, at cycle ends: RSS MiB / threads / descriptors", ""]
        lines.append(
            " ".join(f"{s['rss_mib']:.0f}/{s['threads']}/{s['fds']}" for s in r.cycle_ends) or "(no cycle ended)"
        )
    return "\n".join(lines)


def load_run(out_dir: Path) -> list[ModelResult]:
    """The results of a finished soak directory, one per soak-<impl>.json, in the run's model order."""
    found = []
    for path in sorted(out_dir.glob("soak-*.json")):
        doc = json.loads(path.read_text())
        data = dict(doc["result"])
        data["checks"] = [Check(**c) for c in data["checks"]]
        found.append((doc["settings"]["impls"].index(data["impl"]), ModelResult(**data)))
    return [r for _, r in sorted(found, key=lambda pair: pair[0])]


def check(settings: Settings) -> None:
    bad = [i for i in settings.impls if i not in IMPLS]
    if bad or not settings.impls:
        raise UsageError(f"--impl: unknown server model {bad[0] if bad else ''!r}; allowed: {', '.join(IMPLS)}")
    if settings.cycle_rpcs < len(MIX) * 10:
        raise UsageError(f"--cycle-rpcs: at least {len(MIX) * 10}, got {settings.cycle_rpcs}")
    if settings.rpcs < 3 * settings.cycle_rpcs:
        raise UsageError(f"--rpcs: at least 3 cycles ({3 * settings.cycle_rpcs}), got {settings.rpcs}")
    for flag, value in (
        ("--max-seconds", settings.max_seconds),
        ("--concurrency", settings.concurrency),
        ("--connections", settings.connections),
        ("--sample-interval", settings.sample_interval),
    ):
        if value <= 0:
            raise UsageError(f"{flag}: must be > 0, got {value}")
    check_cpus(settings.server_cpu, settings.loadgen_cpu)


def run(
    settings: Settings, out_dir: Path, env: dict[str, str] | None = None, progress=print
) -> tuple[dict, list[ModelResult]]:
    check(settings)
    new_out_dir(out_dir)
    meta = {
        "study": "soak",
        "settings": asdict(settings),
        "environment": environment.describe(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results = []
    with sigterm_interrupts():
        for impl in settings.impls:
            result = soak_one(impl, settings, env, progress)
            results.append(result)
            doc = {**meta, "result": asdict(result), "passed": result.passed}
            (out_dir / f"soak-{impl}.json").write_text(json.dumps(doc, indent=1) + "\n")
    meta["ended_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    (out_dir / "soak.md").write_text(render_markdown(meta, results))
    return meta, results


def parse_settings(argv: Sequence[str] | None) -> tuple[Settings, Path | None]:
    d = Settings()
    p = argparse.ArgumentParser(prog="python -m bench.studies.soak", description=__doc__.splitlines()[0])
    p.add_argument("--impl", default=",".join(d.impls), help=f"server models, comma-separated ({', '.join(IMPLS)})")
    p.add_argument("--rpcs", type=int, default=d.rpcs, help="RPCs per model (the run's bound in count)")
    p.add_argument("--cycle-rpcs", type=int, default=d.cycle_rpcs, help="RPCs per cycle of the mix")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds, help="per model (the bound in time)")
    p.add_argument("--concurrency", type=int, default=d.concurrency)
    p.add_argument("--connections", type=int, default=d.connections)
    p.add_argument("--payload-size", type=int, default=d.payload_size)
    p.add_argument("--sample-interval", type=float, default=d.sample_interval)
    p.add_argument("--server-cpu", type=int, default=d.server_cpu)
    p.add_argument("--loadgen-cpu", type=int, default=d.loadgen_cpu)
    p.add_argument("--out", type=Path, default=None, help="output directory (default results/soak-<time>)")
    a = p.parse_args(argv)
    settings = replace(
        d,
        impls=tuple(x.strip() for x in a.impl.split(",") if x.strip()),
        rpcs=a.rpcs,
        cycle_rpcs=a.cycle_rpcs,
        max_seconds=a.max_seconds,
        concurrency=a.concurrency,
        connections=a.connections,
        payload_size=a.payload_size,
        sample_interval=a.sample_interval,
        server_cpu=a.server_cpu,
        loadgen_cpu=a.loadgen_cpu,
    )
    return settings, a.out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings, out = parse_settings(argv)
        out = out or Path("results") / f"soak-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
        _, results = run(settings, out, progress=lambda line: print(line, flush=True))
    except UsageError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 2
    except server_process.ServerStartError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    print(f"written: {out}/soak.md", file=sys.stderr)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
