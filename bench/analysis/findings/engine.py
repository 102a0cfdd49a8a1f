"""The findings' engine: the findings as data, a run's per-cell statistics, baseline and calibration, matching
like with like (pairs, families), and the labels' and reasons' constants (the package docstring has the rules)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, is_dataclass

import numpy as np
import pandas as pd

from ...run.manifest import Manifest
from ...spec import AXES, SpecError, parse_spec
from ...spec.cell import applies, deciders
from .. import schema

RPS = "rps"
CPU = "server_cpu_us_per_rpc"
CLIENT_CPU = "loadgen_cpu_us_per_rpc"
WIRE = "wire_bytes_per_rpc"
P50 = "lat_p50_ms"
P99 = "lat_p99_ms"
SERVER_UTIL = "server_cpu_util"
CLIENT_UTIL = "loadgen_cpu_util"
FIRST_RPC = "time_to_first_rpc_ms"  # a fresh channel's connect and first call (format 2 rows)
METRICS = (RPS, CPU, CLIENT_CPU, WIRE, P50, P99, SERVER_UTIL, CLIENT_UTIL, FIRST_RPC)

CLEAR, INDICATIVE, INCONCLUSIVE = "clear", "indicative", "inconclusive"
CONFIDENCES = (CLEAR, INDICATIVE, INCONCLUSIVE)
# Reason codes. inside_spread makes a finding inconclusive; the _DEMOTING ones make it indicative at best.
INSIDE_SPREAD = "inside_spread"
ONE_REPETITION = "one_repetition"
FEW_REPETITIONS = "few_repetitions"
WITHIN_NOISE = "within_noise"
NEAR_FLOOR = "near_floor"
RANKING_INSIDE_SPREAD = "ranking_inside_spread"
GENERATOR_SATURATED = "generator_saturated"
SERVER_NOT_LIMIT = "server_not_limit"
FAILED_REPETITIONS = "failed_repetitions"
KNEE_NOT_REACHED = "knee_not_reached"
_DEMOTING = {ONE_REPETITION, FEW_REPETITIONS, WITHIN_NOISE, NEAR_FLOOR, RANKING_INSIDE_SPREAD}
# Said in the sentence's parenthesis (the evidence) rather than as sentences of their own.
_IN_EVIDENCE = {INSIDE_SPREAD, ONE_REPETITION, FEW_REPETITIONS, WITHIN_NOISE}

# With 2-3 repetitions a side, "apart" is clear only for an effect over NOISE_FACTOR x the calibrated coefficient of
# variation (CV) of the metric. Why 3: with n repetitions a side, the relative difference of two medians of one cell
# has a standard deviation of about CV x sqrt(2 / n), which is CV at n = 2 (and 0.82 CV at n = 3). An effect over
# 3 CV is a 3-sigma event for two identical cells (p = 0.003, two-sided, normal noise); and should a repetition (a
# fresh server and generator) vary 1.5x more than the calibration's short windows of one cell, it is still a
# 2-sigma event (p = 0.046): no looser than the p < 0.05 the exact test is held to from 4 repetitions on. Ranges
# that must also be apart only lower that rate further.
NOISE_FACTOR = 3.0
FLOOR_FACTOR = 2.0  # a p50 up to this many times the machine's floor is "near the floor"
TEST_REPETITIONS = 4  # per side: below it no Mann-Whitney test can reach p < 0.05 (bench.compare)
KEPT_UP = 0.95  # open loop: served / offered RPC/s at or above this, with the server not saturated
MAX_LISTED = 3  # other instances listed one by one; more are summarised by their range

# -- the findings, as data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """One reason behind a finding's confidence: a stable code, and the words the sentence uses."""

    code: str
    text: str


@dataclass(frozen=True)
class Instance:
    """One set of compared cells: a pair, or a family in a sweep, side by side."""

    cells: dict[str, str]  # side label -> cell key, in the order compared (the reference side first)
    values: dict[str, dict[str, float]]  # side -> metric -> median over successful repetitions
    spread: dict[str, dict[str, list[float]]]  # side -> metric -> [min, max] over successful repetitions
    repetitions: dict[str, int]  # side -> successful repetitions
    metric: str  # the column ``ratio`` is of (a study may summarise other instances on server CPU per RPC)
    ratio: float | None  # ``metric``, last side / first side
    derived: dict[str, float]  # study-specific numbers (CPU added, bytes saved, break-even link speed, knee, ...)


@dataclass(frozen=True)
class Finding:
    """One answer: a sentence with its numbers, the cells behind it and how far to trust it."""

    study: str  # one of STUDIES (bench.analysis.findings.studies)
    subject: str  # what is compared, e.g. "sync vs aio", "app-gzip-1..9 vs none"
    sentence: str  # the whole answer: numbers, what the label rests on, the doubts, the other instances
    headline: str  # the leading comparison's claim in a line (the terminal summary shows it)
    metric: str  # the column the comparison (and ``ratio``) is about
    ratio: float | None  # of the leading instance: last side / first side of ``metric``
    confidence: str  # one of CONFIDENCES
    reasons: tuple[Reason, ...]
    instances: tuple[Instance, ...]  # the first one leads the sentence

    @property
    def cells(self) -> tuple[str, ...]:
        """Every cell compared, leading instance first."""
        return tuple(dict.fromkeys(key for inst in self.instances for key in inst.cells.values()))

    @property
    def values(self) -> dict[str, dict[str, float]]:
        """The leading instance's medians: side -> metric -> value."""
        return self.instances[0].values


@dataclass(frozen=True)
class Document:
    """A findings JSON document: the run it is about, its findings and the line about its machine."""

    run_id: str
    findings: tuple[Finding, ...]
    note: str | None = None  # machine_note(): what about the machine weakens the findings; None: nothing


# -- what a run has: per-cell statistics, its baseline, its calibration ----------------------------------------


@dataclass(frozen=True)
class CellStats:
    """One cell's successful repetitions: its axis values and, per metric, the samples (NaN left out)."""

    key: str
    axes: dict[str, object]
    repetitions: int  # successful
    failed: int
    generator_saturated: int  # successful repetitions flagged loadgen_saturated
    server_saturated: int
    samples: dict[str, tuple[float, ...]]

    def median(self, metric: str) -> float:
        values = self.samples.get(metric, ())
        return float(np.median(values)) if values else math.nan

    def low(self, metric: str) -> float:
        values = self.samples.get(metric, ())
        return min(values) if values else math.nan

    def high(self, metric: str) -> float:
        values = self.samples.get(metric, ())
        return max(values) if values else math.nan

    @property
    def generator(self) -> str:
        return str(self.axes["loadgen"])

    @property
    def generator_limited(self) -> bool:
        return self.generator_saturated > 0

    @property
    def server_limited(self) -> bool:
        """Saturated in every successful repetition: only then is its RPC/s the server's capacity."""
        return self.repetitions > 0 and self.server_saturated == self.repetitions


@dataclass(frozen=True)
class Calibration:
    """What this module reads of the manifest's calibration (see the module docstring)."""

    floor_p50_ms: dict[str, float]  # generator -> no-op unary p50 with one RPC in flight
    noise_cv: dict[str, float]  # metric -> coefficient of variation of short windows of one cell


@dataclass(frozen=True)
class Run:
    cells: dict[str, CellStats]  # in the run's execution order
    baseline: dict[str, object]
    varying: frozenset[str]  # axes with more than one value among the cells
    calibration: Calibration
    slo_p99_ms: float | None
    server_cpus: int | None

    def distance(self, cell: CellStats) -> int:
        """How many axes (that apply to the cell) differ from the run's baseline."""
        return sum(
            1 for axis in AXES if _applies(axis, cell.axes) and cell.axes[axis] != self.baseline.get(axis, object())
        )


def _native(axis: str, value: object) -> object:
    kind = schema.BY_NAME[axis].kind
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def cell_stats(df: pd.DataFrame) -> dict[str, CellStats]:
    """Per cell (in execution order): axis values, repetition counts, saturation counts and metric samples."""
    out: dict[str, CellStats] = {}
    if df.empty:
        return out
    ordered = df.sort_values(["order", "repetition"]) if "order" in df else df
    for key, rows in ordered.groupby("cell_key", sort=False, observed=True):
        failed = rows["failed"].astype(bool)
        ok = rows[~failed]
        if ok.empty:
            continue
        first = ok.iloc[0]
        samples = {
            metric: tuple(float(v) for v in ok[metric].to_numpy(dtype=float) if math.isfinite(v))
            for metric in METRICS
            if metric in ok
        }
        out[str(key)] = CellStats(
            key=str(key),
            axes={axis: _native(axis, first[axis]) for axis in AXES},
            repetitions=len(ok),
            failed=int(failed.sum()),
            generator_saturated=int(ok["loadgen_saturated"].astype(bool).sum()),
            server_saturated=int(ok["server_saturated"].astype(bool).sum()),
            samples=samples,
        )
    return out


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def read_calibration(manifest: Manifest) -> Calibration:
    """The floor and noise of the manifest's calibration; missing or malformed parts are left out.

    Manifests get a ``calibration`` field with issue 11 part B: until then (and in runs made before) there is none.
    """
    calibration = getattr(manifest, "calibration", None)
    if is_dataclass(calibration) and not isinstance(calibration, type):
        calibration = asdict(calibration)
    if not isinstance(calibration, dict):
        return Calibration({}, {})
    floor: dict[str, float] = {}
    floors = calibration.get("floor")
    for generator, entry in floors.items() if isinstance(floors, dict) else ():
        p50 = _finite(entry.get("p50_ms")) if isinstance(entry, dict) else None
        if p50 is not None and p50 > 0:
            floor[str(generator)] = p50
    noise = calibration.get("noise")
    cvs = noise.get("cv") if isinstance(noise, dict) else None
    cv = {str(m): v for m, raw in (cvs.items() if isinstance(cvs, dict) else ()) if (v := _finite(raw)) is not None}
    return Calibration(floor, {m: v for m, v in cv.items() if v >= 0})


def _baseline(manifest: Manifest, cells: Iterable[CellStats]) -> dict[str, object]:
    source = manifest.spec_source
    if isinstance(source, dict):
        try:
            return parse_spec(source).cells[0].to_dict()
        except SpecError:
            pass  # a spec this version cannot read (an axis value added later): fall back to the table
    counts: dict[str, dict[object, int]] = {axis: {} for axis in AXES}
    for cell in cells:
        for axis in AXES:
            counts[axis][cell.axes[axis]] = counts[axis].get(cell.axes[axis], 0) + 1
    return {axis: max(seen, key=seen.get) for axis, seen in counts.items() if seen}


def run_of(df: pd.DataFrame, manifest: Manifest) -> Run:
    """A run's cells, baseline and calibration, as the studies (and ``pairs``) read them."""
    return _run(df, manifest)


def _run(df: pd.DataFrame, manifest: Manifest) -> Run:
    cells = cell_stats(df)
    slo = _finite(manifest.settings.slo_p99_ms)
    server_cpus = manifest.settings.server_cpus
    return Run(
        cells=cells,
        baseline=_baseline(manifest, cells.values()),
        varying=frozenset(a for a in AXES if len({c.axes[a] for c in cells.values()}) > 1),
        calibration=read_calibration(manifest),
        slo_p99_ms=slo if slo and slo > 0 else None,
        server_cpus=len(server_cpus) or None,
    )


# -- matching like with like ------------------------------------------------------------------------------------

_DECIDED_BY = deciders()  # workers -> impl, stream_messages -> rpc, client -> loadgen, event_loop -> impl, ...


def _applies(axis: str, axes: dict[str, object]) -> bool:
    """Whether a cell's value of ``axis`` means anything (bench.spec.cell.applies: the spec's one rule)."""
    return applies(axis, axes)


def _linked(axis: str) -> set[str]:
    """The axes whose meaning ``axis`` decides (impl decides workers, ...)."""
    return {other for other, axes in _DECIDED_BY.items() if axis in axes}


def pairs(
    run: Run, axis: str, first: object, second: object, one_to_one: bool = True
) -> list[tuple[CellStats, CellStats]]:
    """(cell with ``axis`` = first, cell with ``axis`` = second) pairs equal in every other axis that applies to
    both, pairs nearest the baseline first. ``one_to_one``: each cell used once (the nearer pairs win a cell wanted
    by two); otherwise every matching pair (a Go cell with each sync cell whose thread count differs, ...)."""
    loose = _linked(axis)
    groups: dict[tuple, list[CellStats]] = {}
    for cell in run.cells.values():
        key = tuple(cell.axes[a] for a in AXES if a != axis and a not in loose)
        groups.setdefault(key, []).append(cell)
    candidates = [
        (a, b)
        for members in groups.values()
        for a in members
        if a.axes[axis] == first
        for b in members
        if b.axes[axis] == second
        and all(
            a.axes[other] == b.axes[other] or not _applies(other, a.axes) or not _applies(other, b.axes)
            for other in loose
        )
    ]
    candidates.sort(key=lambda pair: run.distance(pair[0]) + run.distance(pair[1]))
    if not one_to_one:
        return candidates
    used: set[str] = set()
    out = []
    for a, b in candidates:
        if a.key not in used and b.key not in used:
            used |= {a.key, b.key}
            out.append((a, b))
    return out


def families(run: Run, axis: str, where: Callable[[CellStats], bool] = lambda cell: True) -> list[list[CellStats]]:
    """Groups of cells equal in every axis but ``axis`` (at least two values of it), each sorted by that value;
    the group nearest the baseline first."""
    groups: dict[tuple, list[CellStats]] = {}
    for cell in run.cells.values():
        if where(cell) and _applies(axis, cell.axes):
            groups.setdefault(tuple(cell.axes[a] for a in AXES if a != axis), []).append(cell)
    found = [sorted(m, key=lambda c: c.axes[axis]) for m in groups.values() if len(m) >= 2]
    found.sort(key=lambda members: min(run.distance(c) for c in members))
    return found


# -- building instances -------------------------------------------------------------------------------------------


def headline_metric(cells: Iterable[CellStats]) -> str:
    """RPC/s when the server was the limit in every cell and no generator was saturated; else server CPU per RPC."""
    cells = list(cells)
    if all(c.server_limited and not c.generator_limited for c in cells):
        return RPS
    return CPU


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _ratio(a: float, b: float) -> float | None:
    if not (math.isfinite(a) and math.isfinite(b)) or a == 0:
        return None
    return b / a


def _instance(sides: Sequence[tuple[str, CellStats]], metric: str, derived: dict[str, float] | None = None) -> Instance:
    first, last = sides[0][1], sides[-1][1]
    return Instance(
        cells={name: cell.key for name, cell in sides},
        values={name: {m: cell.median(m) for m in METRICS if math.isfinite(cell.median(m))} for name, cell in sides},
        spread={
            name: {m: [cell.low(m), cell.high(m)] for m in METRICS if math.isfinite(cell.median(m))}
            for name, cell in sides
        },
        repetitions={name: cell.repetitions for name, cell in sides},
        metric=metric,
        ratio=_ratio(first.median(metric), last.median(metric)),
        derived={k: v for k, v in (derived or {}).items() if v is not None and math.isfinite(v)},
    )
