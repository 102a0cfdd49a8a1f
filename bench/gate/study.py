"""How good is the regression gate? False alarms on A/A, detection of a known 10 % slowdown on A/B.

    python -m bench.gate.study --trials 20 --out results/gate-study

1. **Calibrate**: measure every cell of the gate's spec a few times (this
   checkout, no injection) and take its median server CPU per RPC. The B side
   gets ``GRPCLAB_INJECT_CPU_US`` = slowdown (10 %) x that median, per cell: the
   server burns that much extra thread CPU at the start of every RPC, so server
   CPU per RPC rises ~10 % in every cell (a single value for all cells would be
   +15 % on a unary cell and +2 % on a bidi cell).
2. **Record** three series of N repetitions each, interleaved exactly as
   ``grpclab regress`` interleaves base and head (bench.run.executor, over three sides:
   the plan's steps in order, the three sides of each step in a seeded random
   order): A and A' (the same code, no injection) and B (injected).
3. **Trials**: each trial draws k repetitions per cell from each series, without
   replacement, and runs the gate's comparison (bench.gate.compare.compare_frames, the
   same defaults as ``grpclab regress --fail-on-regression``) on A vs A' (an A/A
   trial: a firing is a false alarm) and on A vs B (an A/B trial: a firing is a
   detection). When N >= trials x k, each trial gets its own disjoint block of
   repetitions, so the trials are independent; otherwise trials overlap (drawn
   afresh from the N) and the rates are less certain than their count suggests.
   The output says which.

Wall time per trial is what one gate run of k repetitions per side costs on this
machine: the summed wall time (warm-up + window + harness overhead) of the
repetitions the trial drew, both sides.

``--reuse DIR`` redoes step 3 from an earlier study's recording (e.g. with
another threshold), without measuring again.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import results
from ..run import placement
from ..run.executor import Side, estimate_seconds, execute
from ..run.manifest import GateStudyInfo, Injection, Manifest
from ..run.plan import Plan
from ..run.progress import Reporter, console
from ..run.store import RunStore
from ..spec import Settings, filter_cells, load_spec, with_settings
from . import compare, render, stats

SERIES = ("A", "A2", "B")
STUDY_JSON = "study.json"
REPORT = "gate-study.md"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _rep_wall_s(df: pd.DataFrame, settings: dict) -> pd.Series:
    overhead = df["overhead_s"].fillna(0.0)
    return settings["warmup"] + settings["duration"] + overhead


# -- measuring -------------------------------------------------------------


def calibrate(spec, cells, settings: Settings, out: Path, reps: int, slowdown: float) -> dict[str, dict]:
    """Median server CPU per RPC of each cell (no injection) -> the per-cell injection for a `slowdown` rise."""
    cal_settings = replace(settings, repetitions=reps)
    plan = Plan.make(cells, cal_settings)
    where = placement.for_settings(cal_settings).describe()
    store = RunStore.create(out / "calibration", Manifest.new(spec, plan, None, where))
    execute([Side(store, "calibration")], plan, cal_settings, Reporter(console(), sides=True))
    df = results.load(store.dir)
    ok = df[compare.usable(df)]
    injection = {}
    for cell in cells:
        values = ok.loc[ok["cell_key"] == cell.key(), "server_cpu_us_per_rpc"].dropna()
        if values.empty:
            raise SystemExit(f"calibration: no usable repetition of {cell.key()} (all failed or saturated)")
        median = float(values.median())
        injection[cell.key()] = {"baseline_us_per_rpc": median, "inject_us": max(1, round(slowdown * median))}
    return injection


def record(spec, cells, settings: Settings, out: Path, injection: dict[str, dict]) -> None:
    plan = Plan.make(cells, settings)
    sides = []
    for name in SERIES:
        injected = {key: Injection(**value) for key, value in injection.items()} if name == "B" else None
        manifest = replace(
            Manifest.new(spec, plan, None, placement.for_settings(settings).describe()),
            gate_study=GateStudyInfo(series=name, injection=injected),
        )
        store = RunStore.create(out / name, manifest)
        cell_env = {key: {"GRPCLAB_INJECT_CPU_US": str(v["inject_us"])} for key, v in injection.items()}
        sides.append(Side(store, name, cell_env=cell_env if name == "B" else {}))
    execute(sides, plan, settings, Reporter(console(), sides=True))


# -- trials ----------------------------------------------------------------


def _draws(reps: list[int], k: int, trials: int, rng: random.Random) -> tuple[list[list[int]], bool]:
    """Per trial, k repetition numbers; disjoint blocks when there are enough, else fresh draws."""
    if len(reps) >= trials * k:
        shuffled = reps[:]
        rng.shuffle(shuffled)
        return [shuffled[t * k : (t + 1) * k] for t in range(trials)], True
    return [rng.sample(reps, k) for _ in range(trials)], False


def _sample(df: pd.DataFrame, picks: dict[str, list[int]]) -> pd.DataFrame:
    parts = [df[(df["cell_key"] == key) & df["repetition"].isin(reps)] for key, reps in picks.items()]
    return pd.concat(parts, ignore_index=True)


def run_trials(
    frames: dict[str, pd.DataFrame],
    settings: dict,
    trials: int,
    k: int,
    metrics: tuple[str, ...],
    threshold: float,
    alpha: float,
    seed: int,
) -> dict:
    rng = random.Random(seed)
    keys = list(dict.fromkeys(frames["A"].sort_values("order")["cell_key"]))
    # For every series and cell, the repetition numbers each trial uses.
    picks: dict[str, dict[str, list[list[int]]]] = {}
    independent = True
    for name, df in frames.items():
        picks[name] = {}
        for key in keys:
            reps = sorted(df.loc[df["cell_key"] == key, "repetition"].astype(int).unique())
            if len(reps) < k:
                raise SystemExit(f"series {name}, cell {key}: {len(reps)} repetitions recorded, trials need {k}")
            picks[name][key], disjoint = _draws(reps, k, trials, rng)
            independent &= disjoint
    outcome: dict[str, list[dict]] = {"A/A": [], "A/B": []}
    for t in range(trials):
        samples = {name: _sample(df, {key: picks[name][key][t] for key in keys}) for name, df in frames.items()}
        for kind, other in (("A/A", "A2"), ("A/B", "B")):
            base, head = samples["A"], samples[other]
            wall = float(_rep_wall_s(base, settings).sum() + _rep_wall_s(head, settings).sum())
            try:
                cmp = compare.compare_frames(base, head, metrics, threshold, alpha, base_name="A", head_name=other)
            except compare.CompareError as exc:
                outcome[kind].append({"trial": t, "fired": None, "error": str(exc), "wall_s": wall, "worse": []})
                continue
            worse = [f"{r.cell} {r.metric} {render.pct_text(r.ratio)}" for r in cmp.worse.itertuples()]
            worse += [f"{key} head failed" for key in cmp.head_failures]
            outcome[kind].append({"trial": t, "fired": cmp.regression, "wall_s": wall, "worse": worse})
    return {"independent": independent, "outcome": outcome}


# -- report ----------------------------------------------------------------


def _rate_row(label: str, goal: str, runs: list[dict]) -> str:
    decided = [r for r in runs if r["fired"] is not None]
    fired = sum(1 for r in decided if r["fired"])
    lo, hi = wilson(fired, len(decided))
    rate = fired / len(decided) if decided else float("nan")
    undecided = len(runs) - len(decided)
    extra = f" ({undecided} trials could not be compared)" if undecided else ""
    walls = [r["wall_s"] for r in runs]
    return (
        f"| {label} | {len(decided)}{extra} | {fired} | **{rate:.0%}** | {lo:.0%} - {hi:.0%} | {goal} | "
        f"{np.median(walls):.0f} s ({min(walls):.0f}-{max(walls):.0f}) |"
    )


def _top(runs: list[dict], limit: int = 8) -> list[str]:
    counts: dict[str, int] = {}
    for r in runs:
        for item in r["worse"]:
            name = " ".join(item.split(" ")[:2])
            counts[name] = counts.get(name, 0) + 1
    return [f"{name}: {n} trials" for name, n in sorted(counts.items(), key=lambda x: -x[1])[:limit]]


def effect_table(frames: dict[str, pd.DataFrame], metrics: tuple[str, ...], injection: dict) -> list[str]:
    """Per cell: the injection and the B/A and A'/A ratios of medians over all recorded repetitions."""
    a, a2, b = (frames[n][compare.usable(frames[n])] for n in SERIES)
    keys = list(dict.fromkeys(frames["A"].sort_values("order")["cell_key"]))
    labels = compare.short_labels(keys)
    header = "| cell | baseline us/RPC | injected us | " + " | ".join(f"B/A {m}" for m in metrics)
    header += " | " + " | ".join(f"A'/A {m}" for m in metrics) + " | CV of A " + "/".join(metrics) + " |"
    lines = [header, "|" + "---|" * (3 + 2 * len(metrics) + 1)]
    for key in keys:
        cells = [f"`{labels[key]}`", f"{injection[key]['baseline_us_per_rpc']:.0f}", str(injection[key]["inject_us"])]
        for other in (b, a2):
            for m in metrics:
                base = a.loc[a["cell_key"] == key, m].median()
                head = other.loc[other["cell_key"] == key, m].median()
                cells.append(render.pct_text(head / base) if base else "-")
        cvs = []
        for m in metrics:
            values = a.loc[a["cell_key"] == key, m].dropna()
            cvs.append(f"{values.std() / values.mean():.1%}" if len(values) > 1 and values.mean() else "-")
        cells.append(" / ".join(cvs))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(study: dict, frames: dict[str, pd.DataFrame], trials: dict, metrics, threshold, alpha, k) -> str:
    settings = study["settings"]
    n_recorded = {name: int(df.groupby("cell_key")["repetition"].nunique().min()) for name, df in frames.items()}
    excluded = {name: int((~compare.usable(df)).sum()) for name, df in frames.items()}
    rep_wall = float(pd.concat([_rep_wall_s(df, settings) for df in frames.values()]).mean())
    cells = frames["A"]["cell_key"].nunique()
    how = (
        "independent: every trial used its own disjoint block of repetitions (N >= trials x k)"
        if trials["independent"]
        else "resampled: each trial drew k of the N recorded repetitions per cell and series without replacement, "
        "afresh for every trial, so trials share repetitions and are not independent (the intervals below "
        "assume independence and are too narrow; record N >= trials x k for independent trials)"
    )
    aa, ab = trials["outcome"]["A/A"], trials["outcome"]["A/B"]
    lines = [
        "# Regression gate study",
        "",
        f"Spec `{study['spec']}`: {cells} cells; gate = `grpclab compare --fail-on-regression` defaults: "
        f"metrics {', '.join(metrics)}, threshold ±{threshold:.0%}, alpha {alpha:g} ({stats.METHOD}).",
        "",
        "| trials | n | gate fired | rate | 95 % CI (Wilson) | goal | wall time per trial, median (range) |",
        "|---|---:|---:|---:|---|---|---|",
        _rate_row("A/A (same code): false alarm", "<= 5 %", aa),
        _rate_row(f"A/B ({study['slowdown']:.0%} slower server): detection", ">= 90 %", ab),
        "",
        "## Settings",
        "",
        f"- each trial: k = {k} repetitions per side per cell, like a gate run with `--repetitions {k}`",
        f"- recorded: N = {n_recorded} repetitions per cell per series (A, A' = same code; B = injected), "
        f"interleaved as `grpclab regress` interleaves; repetitions left out by the comparison "
        f"(failed or generator saturated): {excluded}",
        f"- trials: {how}; a trial's A/A and A/B comparisons share its A sample; seed {study['seed']}",
        f"- repetition: warm-up {settings['warmup']:g} s + window {settings['duration']:g} s, "
        f"{rep_wall:.1f} s wall on average with the harness overhead; a full gate run "
        f"({cells} cells x {k} repetitions x 2 sides) measures for ~{rep_wall * cells * k * 2 / 60:.1f} min "
        "(plus ~10 s for the worktree, certificates and the comparison)",
        f"- slowdown: GRPCLAB_INJECT_CPU_US per cell = {study['slowdown']:.0%} of its calibrated median server "
        f"CPU per RPC ({study['calibration_repetitions']} calibration repetitions), so server CPU per RPC "
        "rises ~10 % in every cell",
        f"- machine: {study['environment'].get('cpu_model')}, {study['environment'].get('cores')} cores, "
        f"load average at start {study.get('loadavg_start')}, at end {study.get('loadavg_end')}",
        f"- recorded {study['recorded_at']}; recording took {study['recording_s'] / 60:.1f} min",
        "",
        "## Effects (medians over all recorded repetitions)",
        "",
        *effect_table(frames, metrics, study["injection"]),
        "",
        "## What fired",
        "",
        "A/A false alarms, by cell and metric: " + ("; ".join(_top(aa)) or "none"),
        "",
        "A/B detections, by cell and metric: " + ("; ".join(_top(ab)) or "none"),
        "",
    ]
    return "\n".join(lines)


# -- command ---------------------------------------------------------------


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except results.ResultsError as exc:  # e.g. --reuse of a study whose recording is not there (not in git)
        print(f"python -m bench.gate.study: error: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate.study", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="bench/specs/ci.toml")
    parser.add_argument("--trials", type=int, default=20, help="A/A trials and A/B trials (default 20)")
    parser.add_argument("--out", type=Path, default=None, help="default results/gate-study-<time>")
    parser.add_argument("--repetitions", type=int, help="k per side per trial (default: the spec's)")
    parser.add_argument(
        "--recorded", type=int, help="N repetitions recorded per series (default 4 k; trials x k for independent)"
    )
    parser.add_argument("--slowdown", type=float, default=0.10, help="server CPU rise of B (default 0.10)")
    parser.add_argument("--calibration-repetitions", type=int, default=3)
    parser.add_argument("--metric", default=",".join(compare.GATE_METRICS))
    parser.add_argument("--threshold", type=float, default=compare.DEFAULT_THRESHOLD)
    parser.add_argument("--alpha", type=float, default=compare.DEFAULT_ALPHA)
    parser.add_argument("--filter", metavar="EXPR", help="only cells matching, e.g. impl=sync")
    parser.add_argument("--duration", type=float, help="override settings.duration (seconds)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trial draws")
    parser.add_argument("--reuse", action="store_true", help="redo the trials from the recording in --out")
    args = parser.parse_args(argv)
    try:
        metrics = compare.parse_metrics(args.metric)
    except compare.CompareError as exc:
        parser.error(str(exc))
    out = args.out or Path("results") / f"gate-study-{datetime.now().strftime('%Y%m%d-%H%M%S')}"

    if args.reuse:
        if not (out / STUDY_JSON).is_file():
            parser.error(f"--reuse: {out / STUDY_JSON} not found (pass the --out of an earlier study)")
        study = json.loads((out / STUDY_JSON).read_text())
    else:
        spec = with_settings(load_spec(args.spec), duration=args.duration)
        cells = filter_cells(spec.cells, args.filter) if args.filter else spec.cells
        if not cells:
            parser.error(f"--filter {args.filter!r} selects no cell")
        k = args.repetitions or spec.settings.repetitions
        n = args.recorded or 4 * k
        if n < k:
            parser.error(f"--recorded {n} < --repetitions {k}")
        settings = replace(spec.settings, repetitions=n)
        placement.for_settings(settings).check()
        if out.exists() and any(out.iterdir()):
            parser.error(f"{out} exists and is not empty (use --reuse to redo the trials from it)")
        total = len(cells) * (args.calibration_repetitions + 3 * n)
        print(
            f"gate study: {len(cells)} cells; calibration {args.calibration_repetitions} + 3 series x {n} "
            f"repetitions = {total} repetitions, ~{estimate_seconds(total, 1, settings) / 60:.0f} min; "
            f"then {args.trials} A/A and {args.trials} A/B trials of k = {k}",
            flush=True,
        )
        out.mkdir(parents=True, exist_ok=True)
        loadavg_start = _loadavg()
        began = time.monotonic()
        injection = calibrate(spec, cells, settings, out, args.calibration_repetitions, args.slowdown)
        for key, v in injection.items():
            print(f"calibrated {key}: {v['baseline_us_per_rpc']:.0f} us/RPC -> inject {v['inject_us']} us", flush=True)
        record(spec, cells, settings, out, injection)
        study = {
            "spec": args.spec,
            "k": k,
            "slowdown": args.slowdown,
            "calibration_repetitions": args.calibration_repetitions,
            "injection": injection,
            "settings": asdict(settings),
            "seed": args.seed,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "recording_s": time.monotonic() - began,
            "loadavg_start": loadavg_start,
            "loadavg_end": _loadavg(),
            "environment": asdict(results.read_manifest(out / "A").environment),
        }
        (out / STUDY_JSON).write_text(json.dumps(study, indent=2) + "\n")
    k = args.repetitions or study["k"]
    study["seed"] = args.seed
    frames = {name: results.load(out / name) for name in SERIES}
    trials = run_trials(frames, study["settings"], args.trials, k, metrics, args.threshold, args.alpha, args.seed)
    text = report(study, frames, trials, metrics, args.threshold, args.alpha, k)
    (out / REPORT).write_text(text)
    (out / "trials.json").write_text(json.dumps(trials, indent=2) + "\n")
    sys.stdout.write(text)
    print(f"\nwritten: {out / REPORT}, {out / 'trials.json'}; recording in {out}/A, A2, B, calibration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
