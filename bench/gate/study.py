"""How good is the regression gate? False alarms on A/A, detection of known 5 % and 10 % slowdowns on A/B,
with the adaptive gate (bench.gate.adaptive) as `grpclab regress` runs it, and what each gate run costs.

    python -m bench.gate.study --recorded 60 --trials 100 --out results/gate-study

1. **Calibrate**: measure every cell of the gate's spec a few times (this checkout, no injection) and
   take its median server CPU per RPC. Each B series gets ``GRPCLAB_INJECT_CPU_US`` = its slowdown
   (5 %, 10 %) x that median, per cell: the server burns that much extra thread CPU at the start of
   every RPC, so server CPU per RPC rises by the slowdown in every cell (a single value for all cells
   would be +15 % on a unary cell and +2 % on a bidi cell).
2. **Record** N repetitions per cell of every series, interleaved exactly as ``grpclab regress``
   interleaves base and head (bench.run.executor over all series: the plan's steps in order, the
   series of each step in a seeded random order): A and A' (the same code, no injection) and one B
   per slowdown. N must be at least ``--max-repetitions``, so that a replayed gate run never runs out.
3. **Replay gate runs**: each trial replays one adaptive gate run. For every series and cell it draws
   a random order of that series' N recorded repetitions (seeded, afresh for every trial); the gate's
   rule (adaptive.run, the same code as regress) then "measures" by taking the next repetitions in
   that order: the first round's k per cell, then the rounds the rule asks for, its time budget
   charged with the recorded wall time of every repetition it takes (warm-up + window + harness
   overhead, both sides). When the rule stops, the gate's comparison (compare.compare_frames, as
   ``grpclab regress --fail-on-regression``) decides once. A vs A' is an A/A trial (a firing is a
   false alarm), A vs B an A/B trial (a firing is a detection); a trial's A/A and A/B runs share its
   order of A. **Trials overlap**: they draw from the same N repetitions, so they are not
   independent, and the Wilson intervals (which assume they are) are too narrow; the report says so.
   The first round is also charged ``--setup`` seconds (the executor's machine facts, CPU-latency hold
   and machine calibration, which regress counts in its budget too).
   A gate run's wall time is its measuring time plus ``--fixed-overhead`` (the worktree, the servers'
   start check, certificates and the comparison, measured on a fresh clone).

The study also records whether a CPU-latency request was active (/dev/cpu_dma_latency, which
`bench.machine.cpu_latency.hold()` sets during runs): it halves CPU per RPC on haltpoll VMs.

``--reuse`` redoes step 3 from an earlier study's recording (e.g. with another threshold or budget),
without measuring again.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import struct
import sys
import time
from collections.abc import Mapping
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
from . import adaptive, compare, render, stats

SAME_CODE = ("A", "A2")
STUDY_JSON = "study.json"
REPORT = "gate-study.md"
TRIALS_JSON = "trials.json"
DEFAULT_SLOWDOWNS = (0.05, 0.10)
# A gate run's time beyond measuring: git worktree, both servers' start check, certificates, the
# comparison and its output. Measured: `grpclab regress --base HEAD~1` on a fresh clone of this
# machine took 14 s more than its measuring (README, *The gate on this machine*).
DEFAULT_FIXED_OVERHEAD_S = 14.0
# What `grpclab regress` spends in its first round beyond the repetitions' own wall time, charged to its
# budget: the executor's machine facts, the /dev/cpu_dma_latency hold and the machine calibration
# (settings.calibrate: a floor and 5 noise windows). Measured: an A/A regress on this machine spent 191 s
# in its first round, of which 173 s were its 60 repetitions (results/regress-aa-2026-12-01).
DEFAULT_SETUP_S = 18.0
CPU_LATENCY_DEVICE = Path("/dev/cpu_dma_latency")
NO_LATENCY_REQUEST = 2_000_000_000  # the device's value when nobody holds a request (PM_QOS_DEFAULT_VALUE)


def series_name(slowdown: float) -> str:
    """The B series of a slowdown: 0.10 -> 'B10'."""
    return f"B{round(slowdown * 100):d}"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def rep_wall_s(df: pd.DataFrame, settings: Mapping) -> pd.Series:
    """Wall time of each recorded repetition: warm-up + window + the harness's overhead."""
    return settings["warmup"] + settings["duration"] + df["overhead_s"].fillna(0.0)


def cpu_latency_request_us() -> int | None:
    """The CPU-latency limit in force (us), None when nobody requests one or the device cannot be read.

    /dev/cpu_dma_latency reads as a native 4-byte int: the strictest active request, or
    2,000,000,000 when there is none. Opening it read-only adds no request of its own.
    """
    try:
        with CPU_LATENCY_DEVICE.open("rb") as device:
            (value,) = struct.unpack("i", device.read(4))
    except (OSError, struct.error):
        return None
    return None if value >= NO_LATENCY_REQUEST else value


def latency_state() -> str:
    """The CPU-latency request in force, in words (for reports)."""
    if not CPU_LATENCY_DEVICE.exists():
        return "no /dev/cpu_dma_latency"
    try:
        CPU_LATENCY_DEVICE.open("rb").close()
    except OSError:
        return "unknown (/dev/cpu_dma_latency not readable)"
    request = cpu_latency_request_us()
    return "no request (2000000000)" if request is None else f"held at {request} us"


# -- measuring -------------------------------------------------------------


def calibrate(spec, cells, settings: Settings, out: Path, reps: int) -> dict[str, float]:
    """Median server CPU per RPC of each cell (no injection), from ``reps`` repetitions."""
    cal_settings = replace(settings, repetitions=reps)
    plan = Plan.make(cells, cal_settings)
    where = placement.for_settings(cal_settings).describe()
    store = RunStore.create(out / "calibration", Manifest.new(spec, plan, None, where))
    execute([Side(store, "calibration")], plan, cal_settings, Reporter(console(), sides=True))
    df = results.load(store.dir)
    ok = df[compare.usable(df)]
    medians = {}
    for cell in cells:
        values = ok.loc[ok["cell_key"] == cell.key(), "server_cpu_us_per_rpc"].dropna()
        if values.empty:
            raise SystemExit(f"calibration: no usable repetition of {cell.key()} (all failed or saturated)")
        medians[cell.key()] = float(values.median())
    return medians


def injections(medians: Mapping[str, float], slowdowns: tuple[float, ...]) -> dict[str, dict[str, dict]]:
    """Per B series and cell: the calibrated median and the GRPCLAB_INJECT_CPU_US for its slowdown."""
    return {
        series_name(s): {
            key: {"baseline_us_per_rpc": median, "inject_us": max(1, round(s * median))}
            for key, median in medians.items()
        }
        for s in slowdowns
    }


def record(spec, cells, settings: Settings, out: Path, injection: Mapping[str, Mapping[str, dict]]) -> None:
    """N repetitions of every series, interleaved over all of them (settings.repetitions = N)."""
    plan = Plan.make(cells, settings)
    sides = []
    for name in (*SAME_CODE, *injection):
        injected = {key: Injection(**value) for key, value in injection[name].items()} if name in injection else None
        manifest = replace(
            Manifest.new(spec, plan, None, placement.for_settings(settings).describe()),
            gate_study=GateStudyInfo(series=name, injection=injected),
        )
        store = RunStore.create(out / name, manifest)
        cell_env = (
            {key: {"GRPCLAB_INJECT_CPU_US": str(v["inject_us"])} for key, v in injection[name].items()}
            if name in injection
            else {}
        )
        sides.append(Side(store, name, cell_env=cell_env))
    execute(sides, plan, settings, Reporter(console(), sides=True))


# -- replaying gate runs ------------------------------------------------------


class Replay:
    """adaptive.Measurer over a recording: 'measuring' a cell takes its next repetitions in a drawn order."""

    def __init__(
        self,
        base: pd.DataFrame,
        head: pd.DataFrame,
        orders: Mapping[str, tuple[list[int], list[int]]],  # cell key -> (base repetitions, head repetitions)
        settings: Mapping,
        metrics: tuple[str, ...],
        setup_s: float = 0.0,
    ):
        self.sides = (base.assign(wall_s=rep_wall_s(base, settings)), head.assign(wall_s=rep_wall_s(head, settings)))
        self.by_cell = [{key: df[df["cell_key"] == key].set_index("repetition") for key in orders} for df in self.sides]
        self.orders = orders
        self.metrics = metrics
        self.taken = dict.fromkeys(orders, 0)
        self.spent_s = 0.0
        self.pairs = 0
        self.setup_s = setup_s  # charged with the first round, as regress's executor spends it there

    def measure(self, targets: Mapping[str, int]) -> None:
        if self.pairs == 0:
            self.spent_s += self.setup_s
        for key, target in targets.items():
            for index in range(self.taken[key], target):
                for side, order in zip(self.by_cell, self.orders[key], strict=True):
                    self.spent_s += float(side[key].loc[order[index], "wall_s"])
                self.pairs += 1
            self.taken[key] = max(self.taken[key], target)

    def revealed(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The repetitions taken so far, as the two sides' tables (their order of measurement as `order`)."""
        frames = []
        for side_index, side in enumerate(self.by_cell):
            parts = []
            for key, (base_order, head_order) in self.orders.items():
                order = (base_order, head_order)[side_index][: self.taken[key]]
                parts.append(side[key].loc[order].reset_index())
            frames.append(pd.concat(parts, ignore_index=True))
        return frames[0], frames[1]

    def noise(self) -> list[adaptive.CellNoise]:
        base, head = (df[compare.usable(df)] for df in self.revealed())
        cells = []
        for key in self.orders:
            b, h = base[base["cell_key"] == key], head[head["cell_key"] == key]
            noise = {m: adaptive.metric_noise(b[m].to_numpy(float), h[m].to_numpy(float)) for m in self.metrics}
            cells.append(adaptive.CellNoise(key, self.taken[key], noise))
        return cells

    def elapsed_s(self) -> float:
        return self.spent_s

    def seconds_per_pair(self) -> float:
        # as regress estimates it: the time spent so far (the setup included) over the pairs measured
        return self.spent_s / self.pairs if self.pairs else 0.0


def run_trials(
    frames: Mapping[str, pd.DataFrame],
    settings: Mapping,
    trials: int,
    first: int,
    rule: adaptive.Rule,
    fixed_overhead_s: float,
    seed: int,
    setup_s: float = 0.0,
) -> dict:
    """Replay ``trials`` adaptive gate runs per kind (A/A and one A/B per B series) from the recording."""
    rng = random.Random(seed)
    keys = list(dict.fromkeys(frames["A"].sort_values("order")["cell_key"]))
    recorded: dict[str, dict[str, list[int]]] = {}
    for name, df in frames.items():
        recorded[name] = {}
        for key in keys:
            reps = sorted(df.loc[df["cell_key"] == key, "repetition"].astype(int).unique())
            if len(reps) < rule.max_repetitions:
                raise SystemExit(
                    f"series {name}, cell {key}: {len(reps)} repetitions recorded, a replayed gate run may take "
                    f"{rule.max_repetitions} (--max-repetitions); record more or lower it"
                )
            recorded[name][key] = reps
    kinds = {"A/A": "A2", **{f"A/{name}": name for name in frames if name not in SAME_CODE}}
    outcome: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for t in range(trials):
        orders = {
            name: {key: rng.sample(reps, len(reps)) for key, reps in cells.items()} for name, cells in recorded.items()
        }
        for kind, other in kinds.items():
            replay = Replay(
                frames["A"],
                frames[other],
                {key: (orders["A"][key], orders[other][key]) for key in keys},
                settings,
                rule.metrics,
                setup_s,
            )
            run = adaptive.run(replay, rule, dict.fromkeys(keys, first))
            base, head = replay.revealed()
            entry = {
                "trial": t,
                "wall_s": run.measured_s + fixed_overhead_s,
                "measured_s": run.measured_s,
                "rounds": run.rounds,
                "stop": run.stop,
                "repetitions": run.repetitions,
                "underpowered_cells": run.underpowered,
            }
            try:
                cmp = compare.compare_frames(
                    base, head, rule.metrics, rule.threshold, rule.alpha, base_name="A", head_name=other
                )
            except compare.CompareError as exc:
                outcome[kind].append({**entry, "fired": None, "error": str(exc), "worse": [], "underpowered": 0})
                continue
            worse = [f"{r.cell} {r.metric} {render.pct_text(r.ratio)}" for r in cmp.worse.itertuples()]
            worse += [f"{key} head failed" for key in cmp.head_failures]
            outcome[kind].append({**entry, "fired": cmp.regression, "worse": worse, "underpowered": len(cmp.blind)})
    return {"independent": False, "outcome": outcome}


# -- report ----------------------------------------------------------------


def _rate_row(label: str, goal: str, runs: list[dict]) -> str:
    decided = [r for r in runs if r["fired"] is not None]
    fired = sum(1 for r in decided if r["fired"])
    lo, hi = wilson(fired, len(decided))
    rate = fired / len(decided) if decided else float("nan")
    undecided = len(runs) - len(decided)
    extra = f" ({undecided} trials could not be compared)" if undecided else ""
    walls = [r["wall_s"] / 60 for r in runs]
    reps = [n for r in runs for n in r["repetitions"].values()]
    stopped = sum(1 for r in runs if r["stop"] == adaptive.STOP_POWERED)
    return (
        f"| {label} | {len(decided)}{extra} | {fired} | **{rate:.0%}** | {lo:.0%} - {hi:.0%} | {goal} | "
        f"{np.median(walls):.1f} min ({min(walls):.1f}-{max(walls):.1f}) | {np.median(reps):.0f} "
        f"({min(reps)}-{max(reps)}) | {stopped} of {len(runs)} |"
    )


def _top(runs: list[dict], limit: int = 8) -> list[str]:
    counts: dict[str, int] = {}
    for r in runs:
        for item in r["worse"]:
            name = " ".join(item.split(" ")[:2])
            counts[name] = counts.get(name, 0) + 1
    return [f"{name}: {n} trials" for name, n in sorted(counts.items(), key=lambda x: -x[1])[:limit]]


def effect_table(frames: Mapping[str, pd.DataFrame], metrics: tuple[str, ...], injection: Mapping) -> list[str]:
    """Per cell: the injections, and each series' ratio of medians to A over all recorded repetitions."""
    usable = {name: df[compare.usable(df)] for name, df in frames.items()}
    others = [name for name in frames if name != "A"]
    keys = list(dict.fromkeys(frames["A"].sort_values("order")["cell_key"]))
    labels = compare.short_labels(keys)
    injected = [name for name in others if name in injection]
    header = ["cell", "baseline us/RPC", *[f"{name} injected us" for name in injected]]
    header += [f"{name}/A {m}" for name in others for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in keys:
        baseline = next(iter(injection.values()))[key]["baseline_us_per_rpc"] if injection else float("nan")
        cells = [f"`{labels[key]}`", f"{baseline:.0f}", *[str(injection[n][key]["inject_us"]) for n in injected]]
        for name in others:
            for m in metrics:
                base = usable["A"].loc[usable["A"]["cell_key"] == key, m].median()
                head = usable[name].loc[usable[name]["cell_key"] == key, m].median()
                cells.append(render.pct_text(head / base) if base else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cell_table(frames: Mapping[str, pd.DataFrame], trials: dict) -> list[str]:
    """Per cell and kind of trial: the measured effect on server CPU per RPC (medians over all recorded
    repetitions) and in how many trials that cell fired (any gated metric): which cells catch what."""
    usable = {name: df[compare.usable(df)] for name, df in frames.items()}
    keys = list(dict.fromkeys(frames["A"].sort_values("order")["cell_key"]))
    labels = compare.short_labels(keys)
    outcome = trials["outcome"]
    kinds = list(outcome)
    header = ["cell"]
    for kind in kinds:
        header += [f"{kind} server CPU/RPC", f"{kind} trials the cell fired in"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for key in keys:
        cells = [f"`{labels[key]}`"]
        base = usable["A"].loc[usable["A"]["cell_key"] == key, "server_cpu_us_per_rpc"].median()
        for kind in kinds:
            other = "A2" if kind == "A/A" else kind.split("/")[1]
            head = usable[other].loc[usable[other]["cell_key"] == key, "server_cpu_us_per_rpc"].median()
            fired = sum(1 for r in outcome[kind] if any(item.startswith(f"{labels[key]} ") for item in r["worse"]))
            cells += [render.pct_text(head / base) if base else "-", f"{fired} of {len(outcome[kind])}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def noise_table(frames: Mapping[str, pd.DataFrame], metrics: tuple[str, ...], trials: dict) -> list[str]:
    """Per cell, the same-code series' noise: CV and robust spread per metric, and what the gate used."""
    same = pd.concat([frames[name][compare.usable(frames[name])] for name in SAME_CODE])
    keys = list(dict.fromkeys(frames["A"].sort_values("order")["cell_key"]))
    labels = compare.short_labels(keys)
    aa = trials["outcome"]["A/A"]
    header = ["cell", *[f"CV {m}" for m in metrics], *[f"spread {m}" for m in metrics]]
    header += ["A/A repetitions per side, median (range)", "A/A runs underpowered at the stop"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in keys:
        cell = same[same["cell_key"] == key]
        half = len(cell) // 2
        cvs, spreads = [], []
        for m in metrics:
            values = cell[m].dropna().to_numpy(float)
            cvs.append(f"{values.std(ddof=1) / values.mean():.1%}" if len(values) > 1 and values.mean() else "-")
            spread, log_scale = stats.spread(values[:half], values[half:])
            spreads.append(f"{spread:.1%}" if math.isfinite(spread) else "-")
        used = [r["repetitions"][key] for r in aa]
        short = sum(1 for r in aa if key in r["underpowered_cells"])
        lines.append(
            "| "
            + " | ".join(
                [f"`{labels[key]}`", *cvs, *spreads, f"{np.median(used):.0f} ({min(used)}-{max(used)})", str(short)]
            )
            + " |"
        )
    return lines


def rate_table(study: dict, trials: dict) -> list[str]:
    """The study's answer as a markdown table: per kind of trial, how often the gate fired, and what a run cost.

    From study.json and trials.json alone (the README quotes it; tests/test_readme.py recomputes it).
    """
    outcome = trials["outcome"]
    rows = [_rate_row("A/A (same code): false alarm", "<= 5 %", outcome["A/A"])]
    for kind in outcome:
        if kind != "A/A":
            slowdown = study["series"][kind.split("/")[1]]
            goal = ">= 90 %" if slowdown >= 0.10 else "(reported)"
            rows.append(_rate_row(f"A/B (server {slowdown:.0%} slower): detection", goal, outcome[kind]))
    return [
        "| trials | n | gate fired | rate | 95 % CI (Wilson; trials overlap, too narrow) | goal | "
        "wall time per gate run, median (range) | repetitions per side and cell, median (range) | "
        "runs that stopped powered |",
        "|---|---:|---:|---:|---|---|---|---|---|",
        *rows,
    ]


def recording_machine(out: Path, names: list[str]) -> str:
    """The cpuidle driver and the CPU-latency hold the recorded series ran under, from their manifests.

    The executor holds /dev/cpu_dma_latency only while a run measures, so the device read before and
    after the study (cpu_latency_start/end) shows no request even when every repetition ran under one.
    """
    holds, drivers = set(), set()
    for name in names:
        manifest = results.read_manifest(out / name)
        hold = manifest.cpu_latency_hold
        holds.add(hold.regime() if hold is not None else "not recorded")
        system = manifest.system
        drivers.add(system.cpuidle.driver if system is not None and system.cpuidle is not None else "not recorded")
    return f"cpuidle driver {', '.join(sorted(map(str, drivers)))}; CPU-latency hold {', '.join(sorted(holds))}"


def report(study: dict, frames: Mapping[str, pd.DataFrame], trials: dict, rule: adaptive.Rule, first: int) -> str:
    settings = study["settings"]
    metrics = rule.metrics
    n_recorded = {name: int(df.groupby("cell_key")["repetition"].nunique().min()) for name, df in frames.items()}
    excluded = {name: int((~compare.usable(df)).sum()) for name, df in frames.items()}
    rep_wall = float(pd.concat([rep_wall_s(df, settings) for df in frames.values()]).mean())
    cells = frames["A"]["cell_key"].nunique()
    outcome = trials["outcome"]
    injection = study["injection"]
    lines = [
        "# Regression gate study (adaptive gate)",
        "",
        f"Spec `{study['spec']}`: {cells} cells; gate = `grpclab regress --fail-on-regression` with metrics "
        f"{', '.join(metrics)}, threshold ±{rule.threshold:.0%}, alpha {rule.alpha:g} ({stats.METHOD}); "
        f"adaptive: first round {first} repetitions per side and cell, then rounds for underpowered cells "
        f"until none is, {rule.budget_s / 60:g} min of measuring are spent, or {rule.max_repetitions} "
        f"repetitions (defaults: {adaptive.DEFAULT_BUDGET_S / 60:g} min, {adaptive.DEFAULT_MAX_REPETITIONS}).",
        "",
        *rate_table(study, trials),
        "",
        "## Settings",
        "",
        f"- recorded: N = {n_recorded} repetitions per cell and series (A, A' = same code; "
        f"{', '.join(n for n in frames if n not in SAME_CODE)} = injected), interleaved as `grpclab regress` "
        f"interleaves; repetitions left out by the comparison (failed or generator saturated): {excluded}",
        "- trials: each replays one adaptive gate run on a fresh random order of the recorded repetitions of "
        "each series and cell (the rule takes them in that order, round by round, its budget charged with their "
        "recorded wall times); trials draw from the same N, so they **overlap** and are not independent; a "
        f"trial's A/A and A/B runs share its order of A; seed {study['seed']}",
        f"- wall time of a gate run: the recorded wall time of every repetition it took (both sides) + "
        f"{study.get('setup_s', 0.0):g} s of first-round setup (machine facts, CPU-latency hold, machine "
        "calibration; charged to the budget as regress charges it) + "
        f"{study['fixed_overhead_s']:g} s fixed (worktree, start checks, certificates, comparison); "
        f"a repetition is warm-up {settings['warmup']:g} s + window {settings['duration']:g} s + harness, "
        f"{rep_wall:.2f} s on average",
        "- slowdowns: GRPCLAB_INJECT_CPU_US per cell = "
        f"{' / '.join(f'{v:.0%} ({k})' for k, v in study['series'].items())} of its calibrated median server "
        "CPU per RPC "
        f"({study['calibration_repetitions']} calibration repetitions)",
        f"- machine: {study['environment'].get('cpu_model')}, {study['environment'].get('cores')} cores, "
        f"kernel {study['environment'].get('kernel')}; load average at start {study.get('loadavg_start')}, "
        f"at end {study.get('loadavg_end')}; while the series were recorded (their manifests): "
        f"{study.get('recording_machine', 'not known (no manifests read)')}; outside the runs, before and after: "
        f"/dev/cpu_dma_latency {study.get('cpu_latency_start')}, {study.get('cpu_latency_end')}",
        f"- recorded {study['recorded_at']}; recording took {study['recording_s'] / 60:.1f} min",
        "",
        "## Noise of the same code (A and A' pooled)",
        "",
        "CV = standard deviation / mean over the repetitions; spread = stats.spread, the robust noise figure the "
        "gate plans with (within-series differences, read as a standard deviation of the log).",
        "",
        *noise_table(frames, metrics, trials),
        "",
        "## Which cells caught it",
        "",
        *cell_table(frames, trials),
        "",
        "## Effects (medians over all recorded repetitions)",
        "",
        *effect_table(frames, metrics, injection),
        "",
        "## What fired",
        "",
        *[f"{kind}: " + ("; ".join(_top(runs)) or "none") + "\n" for kind, runs in outcome.items()],
    ]
    return "\n".join(lines)


# -- command ---------------------------------------------------------------


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _slowdowns(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.05,0.10, got {text!r}") from None
    if not values or any(not 0 < v < 1 for v in values) or len({series_name(v) for v in values}) < len(values):
        raise argparse.ArgumentTypeError(f"expected distinct fractions between 0 and 1, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except results.ResultsError as exc:  # e.g. --reuse of a study whose recording is not there (not in git)
        print(f"python -m bench.gate.study: error: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate.study", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="bench/specs/ci.toml")
    parser.add_argument("--trials", type=int, default=100, help="replayed gate runs of each kind (default 100)")
    parser.add_argument("--out", type=Path, default=None, help="default results/gate-study-<time>")
    parser.add_argument("--repetitions", type=int, help="first round per side and cell (default: the spec's)")
    parser.add_argument("--recorded", type=int, help="N repetitions recorded per series (default --max-repetitions)")
    parser.add_argument(
        "--slowdown", type=_slowdowns, default=DEFAULT_SLOWDOWNS, help="server CPU rises of the B series (0.05,0.10)"
    )
    parser.add_argument("--calibration-repetitions", type=int, default=3)
    parser.add_argument("--metric", default=",".join(compare.GATE_METRICS))
    parser.add_argument("--threshold", type=float, default=compare.DEFAULT_THRESHOLD)
    parser.add_argument("--alpha", type=float, default=compare.DEFAULT_ALPHA)
    parser.add_argument("--budget", type=float, default=adaptive.DEFAULT_BUDGET_S / 60, help="minutes (default 8)")
    parser.add_argument("--max-repetitions", type=int, default=adaptive.DEFAULT_MAX_REPETITIONS)
    parser.add_argument(
        "--fixed-overhead", type=float, default=DEFAULT_FIXED_OVERHEAD_S, help="seconds per gate run beyond measuring"
    )
    parser.add_argument(
        "--setup",
        type=float,
        default=DEFAULT_SETUP_S,
        help="seconds a gate run's first round spends before its repetitions, charged to the budget (default 18)",
    )
    parser.add_argument("--filter", metavar="EXPR", help="only cells matching, e.g. impl=sync")
    parser.add_argument("--duration", type=float, help="override settings.duration (seconds)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trial draws")
    parser.add_argument("--reuse", action="store_true", help="redo the trials from the recording in --out")
    args = parser.parse_args(argv)
    try:
        metrics = compare.parse_metrics(args.metric)
        compare.check_alpha_threshold(args.alpha, args.threshold)
    except compare.CompareError as exc:
        parser.error(str(exc))
    if not args.budget > 0:
        parser.error("--budget: expected minutes > 0")
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
        first = args.repetitions or spec.settings.repetitions
        n = args.recorded or args.max_repetitions
        if n < args.max_repetitions or args.max_repetitions < first:
            parser.error(f"need --repetitions {first} <= --max-repetitions {args.max_repetitions} <= --recorded {n}")
        settings = replace(spec.settings, repetitions=n)
        placement.for_settings(settings).check()
        if out.exists() and any(out.iterdir()):
            parser.error(f"{out} exists and is not empty (use --reuse to redo the trials from it)")
        series = len(SAME_CODE) + len(args.slowdown)
        total = len(cells) * (args.calibration_repetitions + series * n)
        print(
            f"gate study: {len(cells)} cells; calibration {args.calibration_repetitions} + {series} series x {n} "
            f"repetitions = {total} repetitions, ~{estimate_seconds(total, 1, settings) / 60:.0f} min; "
            f"then {args.trials} replayed gate runs of each kind",
            flush=True,
        )
        out.mkdir(parents=True, exist_ok=True)
        loadavg_start, latency_start = loadavg(), latency_state()
        began = time.monotonic()
        medians = calibrate(spec, cells, settings, out, args.calibration_repetitions)
        injection = injections(medians, args.slowdown)
        for key, median in medians.items():
            shown = ", ".join(f"{name} {injection[name][key]['inject_us']} us" for name in injection)
            print(f"calibrated {key}: {median:.0f} us/RPC -> inject {shown}", flush=True)
        record(spec, cells, settings, out, injection)
        study = {
            "spec": args.spec,
            "k": first,
            "series": {series_name(v): v for v in args.slowdown},  # B series -> its slowdown
            "calibration_repetitions": args.calibration_repetitions,
            "injection": injection,
            "settings": asdict(settings),
            "seed": args.seed,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "recording_s": time.monotonic() - began,
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg(),
            "cpu_latency_start": latency_start,
            "cpu_latency_end": latency_state(),
            "environment": asdict(results.read_manifest(out / "A").environment),
        }
        (out / STUDY_JSON).write_text(json.dumps(study, indent=2) + "\n")
    if "series" not in study:  # a study from before the adaptive gate: one B series, one injection table
        study["series"], study["injection"] = {"B": study["slowdown"]}, {"B": study["injection"]}
    first = args.repetitions or study["k"]
    names = [*SAME_CODE, *study["series"]]
    frames = {name: results.load(out / name) for name in names}
    study["recording_machine"] = recording_machine(out, names)
    rule = adaptive.Rule(
        threshold=args.threshold,
        alpha=args.alpha,
        metrics=metrics,
        directions=compare.DIRECTION,
        budget_s=args.budget * 60,
        max_repetitions=args.max_repetitions,
    )
    study["seed"] = args.seed
    study["fixed_overhead_s"] = args.fixed_overhead
    study["setup_s"] = args.setup
    trials = run_trials(
        frames, study["settings"], args.trials, first, rule, args.fixed_overhead, args.seed, setup_s=args.setup
    )
    trials["gate"] = {  # what was replayed, so trials.json says it without the command line
        "first": first,
        "metrics": list(rule.metrics),
        "threshold": rule.threshold,
        "alpha": rule.alpha,
        "budget_s": rule.budget_s,
        "max_repetitions": rule.max_repetitions,
        "setup_s": args.setup,
        "fixed_overhead_s": args.fixed_overhead,
        "seed": args.seed,
        "trials": args.trials,
    }
    text = report(study, frames, trials, rule, first)
    (out / REPORT).write_text(text)
    (out / TRIALS_JSON).write_text(json.dumps(trials, indent=2) + "\n")
    sys.stdout.write(text)
    print(f"\nwritten: {out / REPORT}, {out / TRIALS_JSON}; recording in {out}/{', '.join(names)}, calibration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
