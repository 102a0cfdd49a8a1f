"""How noisy is server CPU per RPC, and what do the process CPU clock and longer windows buy?

    python -m bench.studies.cpu_noise --repetitions 10 --window 8 --out results/cpu-noise

For every cell of a spec (default the gate's, bench/specs/ci.toml), each repetition starts a server,
puts the cell's load on it for warm-up + ``--window`` seconds, and reads the server's CPU every second
of the window two ways at once: the process CPU clock the runner uses (bench.run.sampling, ns) and
/proc's utime + stime (psutil, what the runner read before, 10 ms units). Server CPU per RPC of a
sub-window is its CPU over the RPCs the open-loop schedule sends in it (rate x seconds; the report
checks the RPCs the generator counted against that).

The report, per cell: the coefficient of variation over repetitions (each a fresh server, as in a
gate run) of server CPU per RPC for a 2 s window read both ways (what the clock buys), for 1, 2, 4
and 8 s windows (what longer windows buy), and the mean CV of 1 s windows within one server's run
(the part of the noise that is not per server start).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil

from ..gate.study import latency_state, loadavg
from ..load.job import LoadJob
from ..machine import environment
from ..run import placement, sampling
from ..run.executor import certificates
from ..run.measure import make_load, server_args
from ..run.placement import ServerLaunch
from ..spec import Cell, filter_cells, load_spec, with_settings

NOISE_JSON = "noise.json"
REPORT = "noise.md"


def _ticks_cpu_s(pids: list[int]) -> float:
    """/proc's utime + stime of the processes (psutil): the runner's reading before the process clock."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def measure_repetition(cell: Cell, repetition: int, window_s: int, settings, where, certs_dir: Path) -> dict:
    """One server start: per second of the window, (clock CPU s, when, ticks CPU s, when)."""
    tls = certs_dir if cell.tls != "off" else None
    launch = ServerLaunch(tuple(server_args(cell, certs_dir)), tls)
    with where.cell(cell) as site:
        server = site.server.start(launch)
        try:
            job = LoadJob.for_cell(cell, target=server.target, tls_dir=tls, settings=settings, repetition=repetition)
            load = make_load(cell, job, settings, site.loadgen)
            try:
                start, _ = load.start()
                readings = []
                for second in range(window_s + 1):
                    delay = start + second - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pids = server.process.pids
                    clock = sum(sampling.process_cpu_seconds(pid) for pid in pids)
                    clock_at = time.monotonic()
                    ticks = _ticks_cpu_s(pids)
                    readings.append((clock, clock_at, ticks, time.monotonic()))
                result = load.result()
            finally:
                load.close()
        finally:
            server.stop()
    return {"cell": cell.key(), "repetition": repetition, "rate": cell.rate, "ok": result.ok, "readings": readings}


def cpu_per_rpc_us(rep: dict, first: int, last: int, reading: str = "clock") -> float:
    """Server CPU per RPC over seconds first..last of the window (the schedule's RPCs in that time)."""
    column = 0 if reading == "clock" else 2
    a, b = rep["readings"][first], rep["readings"][last]
    seconds = b[column + 1] - a[column + 1]
    return (b[column] - a[column]) / (rep["rate"] * seconds) * 1e6


def _cv(values: list[float]) -> float:
    array = np.asarray(values, float)
    return float(array.std(ddof=1) / array.mean()) if len(array) > 1 and array.mean() else float("nan")


def summarize(reps: list[dict], window_s: int) -> list[dict]:
    """Per cell: CVs over repetitions by reading and window length, and the within-run CV of 1 s windows."""
    cells = list(dict.fromkeys(rep["cell"] for rep in reps))
    rows = []
    for key in cells:
        mine = [rep for rep in reps if rep["cell"] == key]
        row = {"cell": key, "repetitions": len(mine)}
        row["median_us_2s"] = float(np.median([cpu_per_rpc_us(r, 0, 2) for r in mine]))
        row["cv_2s_ticks"] = _cv([cpu_per_rpc_us(r, 0, 2, "ticks") for r in mine])
        for length in (1, 2, 4, 8):
            if length <= window_s:
                row[f"cv_{length}s_clock"] = _cv([cpu_per_rpc_us(r, 0, length) for r in mine])
        row["cv_within_1s"] = float(
            np.mean([_cv([cpu_per_rpc_us(r, s, s + 1) for s in range(window_s)]) for r in mine])
        )
        expected = [r["rate"] * window_s for r in mine]
        row["rpcs_vs_schedule"] = float(np.mean([r["ok"] / e for r, e in zip(mine, expected, strict=True)]))
        rows.append(row)
    return rows


def report(meta: dict, rows: list[dict]) -> str:
    labels = {row["cell"]: "/".join(row["cell"].split("/")[:2] + [row["cell"].split("/")[6]]) for row in rows}
    lengths = [n for n in (1, 2, 4, 8) if n <= meta["window_s"]]
    lines = [
        "# Server CPU per RPC: noise by reading and window length",
        "",
        f"Spec `{meta['spec']}`, {meta['repetitions']} repetitions per cell (each a fresh server), window "
        f"{meta['window_s']} s after {meta['warmup_s']} s of warm-up; machine {meta['cpu_model']}, "
        f"{meta['cores']} cores; {meta['recorded_at']}; load average at start {meta['loadavg_start']}, "
        f"at end {meta['loadavg_end']}; CPU-latency request: {meta['cpu_latency']}.",
        "",
        "| cell | median us/RPC | CV 2 s, /proc ticks | CV 2 s, process clock | "
        + " | ".join(f"CV {n} s window (clock)" for n in lengths)
        + " | CV of 1 s windows within a run | RPCs / schedule |",
        "|---|---:|---:|---:|" + "---:|" * len(lengths) + "---:|---:|",
    ]
    for row in rows:
        cells = [f"`{labels[row['cell']]}`", f"{row['median_us_2s']:.0f}", f"{row['cv_2s_ticks']:.1%}"]
        cells.append(f"{row['cv_2s_clock']:.1%}")
        cells += [f"{row[f'cv_{n}s_clock']:.1%}" for n in lengths]
        cells += [f"{row['cv_within_1s']:.1%}", f"{row['rpcs_vs_schedule']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.studies.cpu_noise", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="bench/specs/ci.toml")
    parser.add_argument("--filter", metavar="EXPR")
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--window", type=int, default=8, help="seconds measured per repetition (default 8)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.window < 2 or args.repetitions < 2:
        parser.error("--window and --repetitions: at least 2")
    spec = with_settings(load_spec(args.spec), duration=float(args.window))
    cells = filter_cells(spec.cells, args.filter) if args.filter else spec.cells
    if not cells:
        parser.error(f"--filter {args.filter!r} selects no cell")
    if any(cell.mode != "open" for cell in cells):
        parser.error("open-loop cells only: the RPCs of a sub-window come from the schedule's rate")
    out = args.out or Path("results") / f"cpu-noise-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()):
        parser.error(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    where = placement.for_settings(spec.settings)
    where.check()
    steps = [(cell, rep) for rep in range(args.repetitions) for cell in cells]
    random.Random(spec.settings.seed).shuffle(steps)  # drift spreads over the cells
    env = environment.describe()
    meta = {
        "spec": args.spec,
        "repetitions": args.repetitions,
        "window_s": args.window,
        "warmup_s": spec.settings.warmup,
        "cpu_model": env.get("cpu_model"),
        "cores": env.get("cores"),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": loadavg(),
        "cpu_latency": latency_state(),
    }
    reps = []
    with certificates() as certs_dir:
        for done, (cell, rep) in enumerate(steps, 1):
            reps.append(measure_repetition(cell, rep, args.window, spec.settings, where, certs_dir))
            print(f"[{done}/{len(steps)}] {cell.key()} r{rep}", flush=True)
    meta["loadavg_end"] = loadavg()
    rows = summarize(reps, args.window)
    (out / NOISE_JSON).write_text(json.dumps({"meta": meta, "summary": rows, "repetitions": reps}, indent=1) + "\n")
    text = report(meta, rows)
    (out / REPORT).write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
