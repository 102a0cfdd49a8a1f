"""What do the lab's own servers cost beyond a server written like the tutorial? (issue 19)

    python -m bench.studies.overhead                         # every cell, 10 rounds -> results/overhead-<time>/
    python -m bench.studies.overhead --rpc unary --impl sync --rounds 4 --duration 2 --out /tmp/ov

Cells: server model (sync, aio) x RPC kind (unary, server stream, client stream, bidi) x TLS (off, on). Each cell
is measured on two servers, one after the other on the same pinning and load:

* **lab**: `grpclab serve --impl sync --workers 10` or `--impl aio` (health, reflection, lab.Control, all of it);
* **bare**: bench.studies.bare_server, the tutorial's `grpc.server(futures.ThreadPoolExecutor(max_workers=10))`
  or a plain `grpc.aio.server()` with the four services and nothing else.

Both are started by bench.run.server_process (the harness's launcher) pinned to the server CPU, and loaded by ghz
(bench.load.ghz, the harness's driver, with a LoadJob) placed on the load-generator CPU like the harness's generators
(bench.run.placement): `-c 16` on one connection, closed loop, 0-byte payloads by default, as the issue measured them.
Without ghz, the Python load generator (bench.load.python_load) does it.

**Rounds.** Every round measures every cell once on each server, the cells in a shuffled order and the two servers
of a cell back to back in an order chosen by a seeded coin flip (A B, B A, ...), each on a freshly started server.
Slow drift of the machine therefore hits both sides alike, and rounds are independent repetitions.

**The measure** is server CPU per RPC: the server process's on-CPU time (every thread, bench.run.sampling:
its CPU clock; /proc's utime + stime before issue 15) read at the window's edges, rescaled to the window,
divided by the OK RPCs ghz started in it.
CPU per RPC is what the lab's bookkeeping adds to; RPC/s also moves with scheduling and wake-ups (it is reported,
not judged).

**The verdict** per cell is bare/lab of CPU per RPC: the Hodges-Lehmann ratio (median of all bare_i / lab_j)
with its Moses 95 % interval, both from bench.gate.stats (the regression gate's statistics, exact at these sample
sizes). The goal, from the issue, is bare/lab >= 0.97: the lab may cost at most ~3 % more per RPC than the
tutorial's server. A cell meets it when the estimate is >= 0.97; the interval says how sure that is.

Output, in the output directory: `overhead.md` (the table, with the machine and settings in its header),
`overhead.json` (the same plus every window), and `windows.jsonl` (every window as it was measured, so an
interrupted run keeps what it measured). `--render DIR` prints the table of an existing run again.

While measuring it holds /dev/cpu_dma_latency at 0 (bench.machine.cpu_latency) when it can, and records
whether it did: on a cpuidle-haltpoll VM idle vCPUs otherwise halt, and waking them costs both servers latency
and CPU time per RPC (README, "Idle CPUs and /dev/cpu_dma_latency").
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

# The parts of the lab this study stands on, and nothing else of bench/:
from bench.gate import stats  # the regression gate's statistics
from bench.load.ghz import GhzLoad, find_ghz  # ghz driver
from bench.load.job import LoadError, LoadJob  # what a generator is asked to do
from bench.load.python_load import PythonLoad  # Python load generator (when ghz is missing)
from bench.machine import cpu_latency, environment  # idle CPUs kept polling; what the run was measured on
from bench.run import sampling, server_process  # server CPU, the launcher
from bench.run.executor import certificates, sigterm_interrupts  # what every run has: its certs, SIGTERM
from bench.run.placement import LocalLoadgenHost  # generators pinned as the harness pins them
from bench.spec import DEFAULTS, Cell  # a load job is a harness cell's
from bench.spec import Settings as RunSettings
from bench.studies import UsageError, check_cpus, new_out_dir

IMPLS = ("sync", "aio")
RPCS = ("unary", "server_stream", "client_stream", "bidi")
TLS = ("off", "on")
ARMS = ("lab", "bare")
WORKERS = 10  # the tutorial's thread pool, for both sync servers
LAB_ENTRY = server_process.LAB_SERVE
BARE_ENTRY = ("bench.studies.bare_server",)
GOAL = 0.97
RPC_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Settings:
    rounds: int = 10
    duration: float = 4.0  # seconds measured per window
    warmup: float = 1.0  # seconds of load discarded before each window
    concurrency: int = 16
    connections: int = 1
    payload_size: int = 0  # request and reply payload, bytes (text)
    stream_messages: int = 10  # messages per streaming call
    impls: tuple[str, ...] = IMPLS
    rpcs: tuple[str, ...] = RPCS
    tls: tuple[str, ...] = TLS
    loadgen: str = "ghz"  # ghz or python (resolved from "auto" before a run)
    server_cpu: int = 0
    loadgen_cpu: int = 1
    seed: int = 1
    goal: float = GOAL
    alpha: float = stats.DEFAULT_ALPHA
    cpu_latency_hold: bool = True


@dataclass(frozen=True)
class Cell3:
    impl: str
    rpc: str
    tls: str

    @property
    def name(self) -> str:
        return f"{self.impl}/{self.rpc}/tls-{self.tls}"


@dataclass
class Window:
    """One measured window of one server."""

    impl: str
    rpc: str
    tls: str
    arm: str
    round: int
    order: int  # position in the whole run
    started_at: str = ""
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    window_s: float = 0.0
    server_cpu_s: float = math.nan
    cpu_us_per_rpc: float = math.nan
    rps: float = math.nan
    loadgen_cpu_util: float = math.nan
    error: str = ""

    @property
    def usable(self) -> bool:
        return not self.error and self.ok > 0 and not self.errors and math.isfinite(self.cpu_us_per_rpc)


# --- one window -------------------------------------------------------------------------------------


def server_args(arm: str, impl: str, tls: str, certs_dir: Path) -> list[str]:
    args = ["--impl", impl, "--port", "0", "--exit-with-parent"]
    if arm == "lab" and impl == "sync":
        args += ["--workers", str(WORKERS)]
    if tls == "on":
        args += ["--tls", str(certs_dir)]
    return args


def load_job(cell: Cell3, settings: Settings, target: str, certs_dir: Path, seed: int) -> LoadJob:
    """The harness's job for this load: a normalized bench.spec Cell's LoadJob, with this study's timings."""
    axes = {
        **DEFAULTS,
        "impl": cell.impl,
        "rpc": cell.rpc,
        "workers": WORKERS if cell.impl == "sync" else 0,
        "tls": cell.tls,
        "payload_size": settings.payload_size,
        "concurrency": settings.concurrency,
        "connections": settings.connections,
        "stream_messages": settings.stream_messages if cell.rpc != "unary" else 1,
        "loadgen": settings.loadgen,
    }
    timing = RunSettings(duration=settings.duration, warmup=settings.warmup)
    job = LoadJob.for_cell(Cell.from_dict(axes), target=target, tls_dir=certs_dir, settings=timing, repetition=0)
    return replace(job, rpc_timeout=RPC_TIMEOUT_S, seed=seed)


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def measure(window: Window, settings: Settings, certs_dir: Path, lab_env: dict[str, str] | None = None) -> Window:
    """Start the window's server, load it, read its CPU at the window's edges, stop it; fills ``window``.

    ``lab_env``: extra environment of the lab's server only (the tests inject a known cost through it).
    """
    window.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    cell = Cell3(window.impl, window.rpc, window.tls)
    entry = LAB_ENTRY if window.arm == "lab" else BARE_ENTRY
    try:
        server = server_process.start(
            server_args(window.arm, cell.impl, cell.tls, certs_dir),
            cpus=[settings.server_cpu],
            entry=entry,
            env=lab_env if window.arm == "lab" else None,
        )
    except server_process.ServerStartError as exc:
        window.error = str(exc)
        return window
    load = None
    try:
        job = load_job(cell, settings, server.target, certs_dir, settings.seed * 100_000 + window.order)
        host = LocalLoadgenHost((settings.loadgen_cpu,))
        load = GhzLoad(job, host) if settings.loadgen == "ghz" else PythonLoad(job, 1, host)
        lo, hi = load.start()
        _sleep_until(lo)
        cpu_lo, at_lo = sampling.server_cpu(server.pids)[0], time.monotonic()
        _sleep_until(hi)
        cpu_hi, at_hi = sampling.server_cpu(server.pids)[0], time.monotonic()
        result = load.result()
    except LoadError as exc:
        window.error = str(exc)
        return window
    finally:
        if load is not None:
            load.close()
        code = server.stop()
        if code != 0 and not window.error:
            window.error = f"server exited with code {code}"
    # The readings come a little after each edge: rescale their interval to the window, as the runner does.
    scale = settings.duration / (at_hi - at_lo) if at_hi > at_lo else 1.0
    window.server_cpu_s = (cpu_hi - cpu_lo) * scale
    window.window_s = result.window_s
    window.ok = result.ok
    window.errors = dict(result.errors)
    window.rps = result.ok / result.window_s
    window.cpu_us_per_rpc = window.server_cpu_s * 1e6 / result.ok if result.ok else math.nan
    window.loadgen_cpu_util = result.cpu_s / result.window_s if math.isfinite(result.cpu_s) else math.nan
    if window.errors and not window.error:
        window.error = f"RPCs failed: {window.errors}"
    return window


# --- the plan ---------------------------------------------------------------------------------------


def cells(settings: Settings) -> list[Cell3]:
    return [Cell3(i, r, t) for i in settings.impls for r in settings.rpcs for t in settings.tls]


def plan(settings: Settings) -> list[Window]:
    """Every window of the run in execution order: per round the cells shuffled, each cell's two arms by coin."""
    rng = random.Random(settings.seed)
    windows: list[Window] = []
    for round_ in range(settings.rounds):
        order = cells(settings)
        rng.shuffle(order)
        for cell in order:
            arms = list(ARMS) if rng.random() < 0.5 else list(reversed(ARMS))
            for arm in arms:
                windows.append(Window(cell.impl, cell.rpc, cell.tls, arm, round_, len(windows)))
    return windows


# --- the verdict ------------------------------------------------------------------------------------


@dataclass
class CellResult:
    impl: str
    rpc: str
    tls: str
    rounds: int  # windows usable on both sides (the smaller count)
    lab_cpu_us: float  # medians over the usable windows
    bare_cpu_us: float
    lab_rps: float
    bare_rps: float
    ratio: float  # Hodges-Lehmann bare/lab of CPU per RPC
    ci_low: float
    ci_high: float
    p_value: float
    met: bool | None  # ratio >= goal (None: no estimate)
    failed_windows: int
    note: str = ""


def _median(values: Sequence[float]) -> float:
    values = sorted(v for v in values if math.isfinite(v))
    if not values:
        return math.nan
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def summarize(windows: Sequence[Window], settings: Settings) -> list[CellResult]:
    out = []
    for cell in cells(settings):
        mine = [w for w in windows if (w.impl, w.rpc, w.tls) == (cell.impl, cell.rpc, cell.tls)]
        lab = [w for w in mine if w.arm == "lab" and w.usable]
        bare = [w for w in mine if w.arm == "bare" and w.usable]
        est = stats.estimate([w.cpu_us_per_rpc for w in lab], [w.cpu_us_per_rpc for w in bare], settings.alpha)
        out.append(
            CellResult(
                impl=cell.impl,
                rpc=cell.rpc,
                tls=cell.tls,
                rounds=min(len(lab), len(bare)),
                lab_cpu_us=est.base_median,
                bare_cpu_us=est.head_median,
                lab_rps=_median([w.rps for w in lab]),
                bare_rps=_median([w.rps for w in bare]),
                ratio=est.ratio,
                ci_low=est.ci_low,
                ci_high=est.ci_high,
                p_value=est.p_value,
                met=None if not math.isfinite(est.ratio) else bool(est.ratio >= settings.goal),
                failed_windows=sum(1 for w in mine if not w.usable),
                note=est.note,
            )
        )
    return out


RPC_LABEL = {"unary": "unary", "server_stream": "server stream", "client_stream": "client stream", "bidi": "bidi"}


def _num(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}" if math.isfinite(x) else "n/a"


def goal_text(result: CellResult, goal: float) -> str:
    if result.met is None:
        return "n/a"
    if not result.met:
        return "MISSED"
    if not math.isfinite(result.ci_low):
        return "met (no interval)"
    return "met" if result.ci_low >= goal else "met (CI reaches below)"


def render_table(results: Sequence[CellResult], goal: float = GOAL, alpha: float = stats.DEFAULT_ALPHA) -> str:
    """The result table and its one-line summary (what the README quotes)."""
    lines = [
        f"| server | RPC | TLS | lab CPU/RPC | bare CPU/RPC | bare/lab | {100 * (1 - alpha):g} % CI | "
        f"RPC/s lab / bare | rounds | goal >= {goal:g} |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        ci = f"{r.ci_low:.3f} - {r.ci_high:.3f}" if math.isfinite(r.ci_low) else "n/a"
        rounds = f"{r.rounds}" + (f" ({r.failed_windows} windows failed)" if r.failed_windows else "")
        lines.append(
            f"| {r.impl} | {RPC_LABEL[r.rpc]} | {r.tls} | {_num(r.lab_cpu_us)} us | {_num(r.bare_cpu_us)} us | "
            f"{_num(r.ratio, 3)} | {ci} | {_num(r.lab_rps, 0)} / {_num(r.bare_rps, 0)} | {rounds} | "
            f"{goal_text(r, goal)} |"
        )
    met = sum(1 for r in results if r.met)
    sure = sum(1 for r in results if r.met and math.isfinite(r.ci_low) and r.ci_low >= goal)
    lines += ["", f"{met} of {len(results)} cells meet the goal; in {sure} the whole interval is >= {goal:g}."]
    return "\n".join(lines)


def render_markdown(meta: dict, results: Sequence[CellResult]) -> str:
    s = meta["settings"]
    env = meta["environment"]
    goal = s["goal"]
    lines = [
        "# Server overhead: the lab's servers against bare tutorial servers",
        "",
        f"- measured {meta['started_at']} .. {meta['ended_at']} ({meta['elapsed_s'] / 60:.1f} min), "
        f"commit {str(env['git'].get('commit'))[:10]}{' (dirty)' if env['git'].get('dirty') else ''}",
        f"- machine: {env['cpu_model']}, {env['cores']} CPUs, Linux {env['kernel']}, Python "
        f"{env['versions']['python']}, grpcio {env['versions']['grpcio']}, protobuf {env['versions']['protobuf']}",
        f"- cpu_dma_latency hold: {meta['cpu_latency_hold']}; load before the run: {meta['load_average']}",
        f"- load: {s['loadgen']}{' ' + str(env.get('ghz')) if s['loadgen'] == 'ghz' else ''}, "
        f"{s['concurrency']} RPCs in flight on {s['connections']} connection(s), closed loop, "
        f"{s['payload_size']} B payloads, {s['stream_messages']} messages per stream; "
        f"server on CPU {s['server_cpu']}, load generator on CPU {s['loadgen_cpu']}",
        f"- {s['rounds']} rounds; per window {s['warmup']:g} s warm-up + {s['duration']:g} s measured on a freshly "
        "started server; the two servers of a cell back to back in a seeded random order, cells shuffled per round",
        "- lab: `grpclab serve --impl sync --workers 10` / `--impl aio`; bare: `python -m bench.studies.bare_server`"
        " (the tutorial's `grpc.server(ThreadPoolExecutor(max_workers=10))` / `grpc.aio.server()`)",
        f"- CPU/RPC: server process user+system (all threads, /proc) over the window / OK RPCs, median of rounds; "
        f"bare/lab: Hodges-Lehmann ratio with the Moses {100 * (1 - s['alpha']):g} % interval (bench.gate.stats); "
        f"goal: bare/lab >= {goal:g}",
        *([f"- lab server environment (test knobs): {meta['lab_env']}"] if meta.get("lab_env") else []),
        "",
        render_table(results, goal, s["alpha"]),
    ]
    return "\n".join(lines) + "\n"


# --- running ----------------------------------------------------------------------------------------


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def check(settings: Settings) -> None:
    if settings.rounds < 2:
        raise UsageError(f"--rounds: at least 2 (an interval needs 2 windows per side), got {settings.rounds}")
    for flag, value in (("--duration", settings.duration), ("--concurrency", settings.concurrency)):
        if value <= 0:
            raise UsageError(f"{flag}: must be > 0, got {value}")
    if settings.warmup < 0 or settings.payload_size < 0 or settings.stream_messages < 1 or settings.connections < 1:
        raise UsageError("--warmup, --payload-size must be >= 0; --stream-messages, --connections >= 1")
    if not 0 < settings.goal <= 2:
        raise UsageError(f"--goal: a ratio in (0, 2], got {settings.goal}")
    check_cpus(settings.server_cpu, settings.loadgen_cpu)
    if settings.server_cpu == settings.loadgen_cpu:
        raise UsageError("--server-cpu and --loadgen-cpu must differ")
    if settings.loadgen == "ghz" and find_ghz() is None:
        raise UsageError("--loadgen ghz: ghz not found (make ghz, needs Go)")


def run(
    settings: Settings,
    out_dir: Path,
    progress: Callable[[str], None] = print,
    lab_env: dict[str, str] | None = None,
) -> tuple[dict, list[CellResult]]:
    """Measure every window of the plan into ``out_dir``; returns (meta, results). Raises UsageError."""
    check(settings)
    new_out_dir(out_dir)
    windows = plan(settings)
    meta = {
        "study": "overhead",
        "settings": asdict(settings),
        "environment": environment.describe(),
        "load_average": _load_average(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lab_env": lab_env or {},
    }
    began = time.monotonic()
    with sigterm_interrupts(), certificates() as certs_dir:
        with ExitStack() as held, open(out_dir / "windows.jsonl", "w") as log:
            meta["cpu_latency_hold"] = _hold_cpu_latency(held) if settings.cpu_latency_hold else "off"
            for k, window in enumerate(windows):
                measure(window, settings, certs_dir, lab_env)
                log.write(json.dumps(asdict(window)) + "\n")
                log.flush()
                what = window.error or f"{_num(window.cpu_us_per_rpc)} us/RPC, {_num(window.rps, 0)} RPC/s"
                progress(
                    f"[{k + 1}/{len(windows)}] round {window.round + 1} "
                    f"{Cell3(window.impl, window.rpc, window.tls).name} {window.arm}: {what}"
                )
    meta["ended_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["elapsed_s"] = time.monotonic() - began
    results = summarize(windows, settings)
    write(out_dir, meta, results, windows)
    return meta, results


def _hold_cpu_latency(stack: ExitStack) -> str:
    """Hold /dev/cpu_dma_latency at 0 until ``stack`` closes; what the run records: "on" or "unavailable: why"."""
    state = stack.enter_context(cpu_latency.hold(0))
    return "on" if state.held else f"unavailable: {state.reason}"


def write(out_dir: Path, meta: dict, results: Sequence[CellResult], windows: Sequence[Window]) -> None:
    doc = {**meta, "cells": [asdict(r) for r in results], "windows": [asdict(w) for w in windows]}
    (out_dir / "overhead.json").write_text(json.dumps(_clean(doc), indent=1) + "\n")
    (out_dir / "overhead.md").write_text(render_markdown(meta, results))


def _clean(value: object) -> object:
    """JSON has no NaN: null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def load_run(out_dir: Path) -> tuple[dict, list[CellResult]]:
    """(meta, results) of a finished run directory, recomputed from its windows."""
    path = out_dir / "overhead.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--render {out_dir}: cannot read {path.name}: {exc}") from None
    settings = Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc["settings"].items()})
    nan = math.nan
    windows = [
        Window(**{k: (nan if v is None and k in _FLOAT_FIELDS else v) for k, v in w.items()}) for w in doc["windows"]
    ]
    meta = {k: v for k, v in doc.items() if k not in ("cells", "windows")}
    return meta, summarize(windows, settings)


_FLOAT_FIELDS = ("server_cpu_s", "cpu_us_per_rpc", "rps", "loadgen_cpu_util")


# --- command line -----------------------------------------------------------------------------------


def _choices(text: str, allowed: Sequence[str], flag: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise UsageError(f"{flag}: unknown value {bad[0] if bad else text!r}; allowed: {', '.join(allowed)}")
    return items


def parse_settings(argv: Sequence[str] | None) -> tuple[Settings, Path | None, Path | None]:
    d = Settings()
    p = argparse.ArgumentParser(prog="python -m bench.studies.overhead", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=d.rounds)
    p.add_argument("--duration", type=float, default=d.duration, help="seconds measured per window")
    p.add_argument("--warmup", type=float, default=d.warmup)
    p.add_argument("--impl", default=",".join(d.impls), help="sync,aio")
    p.add_argument("--rpc", default=",".join(d.rpcs), help="unary,server_stream,client_stream,bidi")
    p.add_argument("--tls", default=",".join(d.tls), help="off,on")
    p.add_argument("--loadgen", default="auto", help="auto (ghz when found), ghz or python")
    p.add_argument("--concurrency", type=int, default=d.concurrency)
    p.add_argument("--connections", type=int, default=d.connections)
    p.add_argument("--payload-size", type=int, default=d.payload_size)
    p.add_argument("--stream-messages", type=int, default=d.stream_messages)
    p.add_argument("--server-cpu", type=int, default=d.server_cpu)
    p.add_argument("--loadgen-cpu", type=int, default=d.loadgen_cpu)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--goal", type=float, default=d.goal)
    p.add_argument("--no-cpu-latency-hold", action="store_true", help="do not hold /dev/cpu_dma_latency at 0")
    p.add_argument("--out", type=Path, default=None, help="output directory (default results/overhead-<time>)")
    p.add_argument("--render", type=Path, default=None, help="print the table of an existing output directory")
    a = p.parse_args(argv)
    if a.loadgen not in ("auto", "ghz", "python"):
        raise UsageError(f"--loadgen: unknown value {a.loadgen!r}; allowed: auto, ghz, python")
    loadgen = ("ghz" if find_ghz() else "python") if a.loadgen == "auto" else a.loadgen
    settings = replace(
        d,
        rounds=a.rounds,
        duration=a.duration,
        warmup=a.warmup,
        impls=_choices(a.impl, IMPLS, "--impl"),
        rpcs=_choices(a.rpc, RPCS, "--rpc"),
        tls=_choices(a.tls, TLS, "--tls"),
        loadgen=loadgen,
        concurrency=a.concurrency,
        connections=a.connections,
        payload_size=a.payload_size,
        stream_messages=a.stream_messages,
        server_cpu=a.server_cpu,
        loadgen_cpu=a.loadgen_cpu,
        seed=a.seed,
        goal=a.goal,
        cpu_latency_hold=not a.no_cpu_latency_hold,
    )
    return settings, a.out, a.render


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings, out, render = parse_settings(argv)
        if render is not None:
            meta, results = load_run(render)
            sys.stdout.write(render_markdown(meta, results))
            return 0
        out = out or Path("results") / f"overhead-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
        meta, results = run(settings, out, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except UsageError as exc:
        print(f"overhead: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("overhead: interrupted; the windows measured so far are in windows.jsonl", file=sys.stderr)
        return 130
    sys.stdout.write(render_markdown(meta, results))
    print(f"written: {out}/overhead.md, overhead.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
