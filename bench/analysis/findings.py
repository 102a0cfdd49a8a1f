"""Findings: the answers a run's cells support, one sentence each, with its numbers and its doubt.

    from bench import results
    from bench.analysis import findings
    found = findings.compute(results.load(run_dir), results.read_manifest(run_dir))
    print(findings.to_text(found))            # also to_markdown(found), to_html(found) (an HTML fragment)
    text = findings.to_json(found, run_id)    # {"format": "grpclab.findings/2", "run_id", "note", "findings": [...]}
    document = findings.from_json(text)       # Document(run_id, findings, note); read(path) / write(path, ...)
    document = findings.analyse(run_dir)      # all of it from a run directory, with machine_note()

``python -m bench.analysis.findings RUN_DIR [--format text|markdown|html|json]`` prints them. Where they appear:
at the top of `grpclab report` (index.html, summary.md, report/findings.json), at the end of `grpclab run` (the
compact form, to_rich: label, study and ``headline`` per finding) and in RUN_DIR/findings.json, and at the top of
the notebooks.

Which studies a run supports
----------------------------
A study compares cells that differ in exactly one axis, with every other axis of bench.spec.AXES equal. Axes that a
cell ignores follow the spec's normalisation: ``workers`` applies to the sync server only (aio cells carry 0, and so
will the Go reference), ``stream_messages`` to streaming RPCs only (unary cells carry 1), ``rate`` and ``arrival`` to
open loop only (closed-loop cells carry 0 and constant). So a sync cell with 4 threads and an aio cell differ in
``impl`` alone. A cell that could pair with several others (an aio cell with sync cells of 1 and of 4 threads) is
paired with the one nearest the run's **baseline** (the first cell of the spec's product: each [axes] list's first
value; the most common value of each axis when the manifest has no usable spec), and every cell is used once per
study. When a run has several instances of a study (sync vs aio at four RPC kinds, ...), they make ONE finding: the
instance nearest the baseline leads the sentence, the others are summarised (their range, with the cells at its ends
named, or each in a few words when there are at most three). A study the run has no cells for gives no finding.

Every number is a median over a cell's successful repetitions (failed rows are left out); spreads are min..max.

Studies and their rules:

- ``server_model``: sync vs aio. The headline metric (below) decides the comparison, "sync is 1.55x cheaper per RPC".
- ``thread_pool``: sync cells that differ in ``workers``; ``processes``: cells that differ in ``processes`` (per
  server model; the processes share the spec's server CPUs, which the sentence names). A sweep names the best value by
  the headline metric and compares it with the runner-up.
- ``payload_size``: cells that differ in ``payload_size``: how server CPU per RPC and RPC/s change from the smallest
  to the largest payload, and the server CPU per extra KiB between the two largest sizes (left out when those two
  differ by less than their repetitions' spread).
- ``compression``: ONE finding for every setting against ``none`` with the same payload (size and kind); every pair
  is an instance, with server and client CPU added per RPC, wire bytes saved per RPC and the link speed below which
  it pays (see ``break_even_bit_per_s``), and that speed's range over the repetitions' min..max. The payload with the
  most settings leads: its app-gzip levels as a sweep (the level that pays on the most links, i.e. the highest
  break-even speed, the range of break-even speeds over the levels, the level that saves the most bytes), and gRPC's
  own grpc-gzip and grpc-deflate against app-gzip-6 (gRPC core compresses at zlib's default level, 6). Then, in a
  few words each, the same for the other payload kinds, then the other payloads. The label rests on the leading
  level against none, and is held back to indicative when that level's lead over the runner-up is inside the
  repetitions' spread (their break-even ranges overlap).
- ``tls``: one finding each for TLS and mTLS against plaintext: server and client CPU and wire bytes added per RPC.
- ``open_loop_knee``: open-loop cells that differ in ``rate``: the knee is the highest offered rate whose median p99,
  and every lower rate's, stays within the spec's ``settings.slo_p99_ms`` (bench.analysis.figures.knee, as in the
  report's figure), and whether the server kept up there (served >= 95 % of the offered rate, not saturated). No
  usable SLO in the manifest (a finite number > 0): no finding.
- ``load_generator``: the Python generator vs ghz on the same cell: in each cell, what limited (the generator when
  flagged saturated in any repetition, else the server when saturated in every one, else neither), and ghz's RPC/s
  over Python's.
- ``go_reference``: one finding per Python server model against ``impl = "go"`` with the same other axes: server CPU
  per RPC, Python over Go; RPC/s Python over Go only when neither generator was saturated.

Headline metric
---------------
RPC/s is the server's capacity only when the server was the limit (``server_saturated`` in every repetition of both
cells) and no load generator was saturated in either cell (``loadgen_saturated`` in no repetition). Then RPC/s is the
comparison; otherwise it is server CPU per RPC, which does not depend on who set the pace. Both are quoted either way.

Confidence
----------
A finding has a ``confidence`` label and the ``reasons`` for it; its sentence says what the label rests on (in the
parenthesis after the leading comparison). For the comparison of two cells on a metric:

- 4 or more repetitions a side: bench.gate.stats's exact Mann-Whitney test. ``clear`` when p < 0.05, else
  ``inconclusive`` (inside the repetitions' spread).
- 2-3 repetitions a side: no exact test can reach p < 0.05 there, and the min..max ranges of two IDENTICAL cells are
  apart with probability 2 / C(n + m, n) (1 in 3 at 2 + 2, 1 in 10 at 3 + 3), so "apart" alone is not enough.
  Overlapping ranges: ``inconclusive``. Apart, and the effect |ratio - 1| over NOISE_FACTOR (3) x the calibration's
  coefficient of variation of that metric: ``clear`` (see NOISE_FACTOR for why 3). Apart otherwise: ``indicative``,
  saying which: within that noise, or no calibration in the run to weigh the effect against.
- 1 repetition: no spread to judge by, ``indicative``.

Whatever the repetitions, ``clear`` is held back to ``indicative`` by latencies near the machine's floor (a cell's p50
<= 2 x the no-op floor of its generator: the RPCs are about as short as the machine's fastest round trip), for the
compression sweep by a best level whose lead is inside the spread, and for the open-loop knee by a saturated
generator (its delay is in the p99). The knee is judged at its edge rates: repetitions on both sides of the SLO make
it ``inconclusive``; all on one side make it ``clear`` from 4 repetitions on and ``indicative`` below (a p99 has no
calibrated noise to weigh its distance from the SLO against).

Said in words without changing the label: a saturated load generator in either cell (named, with what to use
instead: ``loadgen = "ghz"`` for the Python generator, more load-generator CPUs for ghz), a server that was not
saturated where RPC/s is quoted (then RPC/s is not the server's capacity), failed repetitions left out, and a knee
above the highest rate measured. ``machine_note`` adds one line under the findings when the machine weakens them:
no noise calibration where a leading comparison rests on 2-3 repetitions, a CPU-latency request that was not held,
warnings of the system facts (read through getattr: the manifest gets those fields with issue 11 part B).

The machine's calibration (issue 11) is read from the manifest's ``calibration`` field when it has one (the typed
Manifest gets it with issue 11 part B; a typed calibration is read through its JSON form, which is this):
``{"floor": {"python": {"p50_ms": 0.34}, "ghz": {"p50_ms": 0.23}}, "noise": {"cv": {"rps": 0.05,
"server_cpu_us_per_rpc": 0.04, "lat_p50_ms": 0.06}}}``. Only ``floor.<generator>.p50_ms`` (no-op unary p50 with one
RPC in flight, per generator) and ``noise.cv.<metric>`` (coefficient of variation of short windows of one cell, as a
fraction) are read; anything else there is ignored, and a missing or malformed part only means that check is skipped.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..gate import stats
from ..run.manifest import Manifest
from ..spec import ALLOWED, AXES, SpecError, parse_spec
from . import figures, results, schema
from .table import fmt_size

if TYPE_CHECKING:
    from rich.console import RenderableType

FORMAT = "grpclab.findings/2"  # /1 (part A): "weak" for indicative, a finding per compression setting, no headline
FILE_NAME = "findings.json"

RPS = "rps"
CPU = "server_cpu_us_per_rpc"
CLIENT_CPU = "loadgen_cpu_us_per_rpc"
WIRE = "wire_bytes_per_rpc"
P50 = "lat_p50_ms"
P99 = "lat_p99_ms"
SERVER_UTIL = "server_cpu_util"
CLIENT_UTIL = "loadgen_cpu_util"
METRICS = (RPS, CPU, CLIENT_CPU, WIRE, P50, P99, SERVER_UTIL, CLIENT_UTIL)

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

STUDIES = (
    "server_model",
    "thread_pool",
    "processes",
    "payload_size",
    "compression",
    "tls",
    "open_loop_knee",
    "load_generator",
    "go_reference",
)


class FindingsError(Exception):
    """A findings document that is not one (the message names what is wrong): exit 2 at the command line."""


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

    study: str  # one of STUDIES
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

_DECIDED_BY = {"workers": "impl", "stream_messages": "rpc", "rate": "mode", "arrival": "mode"}


def _applies(axis: str, axes: dict[str, object]) -> bool:
    """Whether a cell's value of ``axis`` means anything (the spec normalises the others to a fixed value)."""
    if axis == "workers":
        return axes["impl"] == "sync"
    if axis == "stream_messages":
        return axes["rpc"] != "unary"
    if axis in ("rate", "arrival"):
        return axes["mode"] == "open"
    return True


def _linked(axis: str) -> set[str]:
    """The axes whose meaning ``axis`` decides (impl decides workers, ...)."""
    return {other for other, decider in _DECIDED_BY.items() if decider == axis}


def pairs(run: Run, axis: str, first: object, second: object) -> list[tuple[CellStats, CellStats]]:
    """(cell with ``axis`` = first, cell with ``axis`` = second) pairs equal in every other axis that applies to
    both; each cell used once, pairs nearest the baseline first (so they win a cell wanted by two pairs)."""
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


# -- words and numbers ------------------------------------------------------------------------------------------

_UNITS = {RPS: "RPC/s", CPU: "us", CLIENT_CPU: "us", WIRE: "B", P50: "ms", P99: "ms"}
_GENERATOR_NAMES = {"python": "the Python generator", "ghz": "ghz"}
_SERVER_NAMES = {"sync": "sync", "aio": "aio", "go": "Go"}
_RPC_NAMES = {"server_stream": "server streaming", "client_stream": "client streaming", "bidi": "bidi"}


def _number(metric: str, value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if metric in (SERVER_UTIL, CLIENT_UTIL):
        return f"{value:.0%}"
    size = abs(value)
    if metric in (P50, P99):
        return f"{value:.2f}" if size < 10 else f"{value:.1f}" if size < 100 else f"{value:,.0f}"
    return f"{value:,.0f}" if size >= 10 else f"{value:.1f}"


def _signed(metric: str, value: float) -> str:
    text = _number(metric, abs(value))
    return ("-" if value < 0 else "+") + text


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x" if ratio < 100 else f"{ratio:,.0f}x"


def _bits_per_second(value: float) -> str:
    if math.isinf(value):
        return "any speed"
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} bit/s"


def _speed_range(low: float, high: float) -> str:
    """'2.14-2.33 Gbit/s' (one unit when both ends share it), '980 Mbit/s-1.2 Gbit/s' otherwise."""
    a, b = _bits_per_second(low), _bits_per_second(high)
    if a.split(" ")[-1] == b.split(" ")[-1] and " " in a:
        return f"{a.split(' ')[0]}-{b}"
    return f"{a}-{b}"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _join(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _capital(text: str) -> str:
    if text.startswith(("ghz", APP_GZIP, "grpc-")):  # names keep their spelling at the start of a sentence
        return text
    return text[:1].upper() + text[1:]


def _generator_name(generator: str) -> str:
    return _GENERATOR_NAMES.get(generator, f"the {generator} generator")


def _server_name(axes: dict[str, object], threads: bool = True) -> str:
    """'the sync server (4 threads)', 'the aio server', 'the Go server'."""
    name = f"the {_SERVER_NAMES.get(str(axes['impl']), str(axes['impl']))} server"
    if threads and axes["impl"] == "sync":
        name += f" ({_plural(int(axes['workers']), 'thread')})"
    return name


def _rpc_phrase(axes: dict[str, object], with_messages: bool = True) -> str:
    rpc = str(axes["rpc"])
    if rpc == "unary":
        return "unary"
    name = _RPC_NAMES.get(rpc, rpc)
    return f"{axes['stream_messages']}-message {name}" if with_messages else name


def _mode_phrase(axes: dict[str, object]) -> str:
    if axes["mode"] != "open":
        return "closed loop"
    return f"open loop at {float(axes['rate']):,.6g} RPC/s ({axes['arrival']} arrivals)"


def _context(run: Run, axes: dict[str, object], omit: Iterable[str] = ()) -> str:
    """The cell's setting in words, leaving out the compared axes: '1 KiB unary, 8 in flight'."""
    omit = set(omit) | {"impl", "workers"}  # the server is named with its side
    for axis in list(omit):
        omit |= _linked(axis)
    parts = []
    head = []
    if "payload_size" not in omit:
        head.append(fmt_size(int(axes["payload_size"])))
    if "payload_kind" not in omit and ("payload_kind" in run.varying or axes["payload_kind"] != "text"):
        head.append(f"of {axes['payload_kind']}," if head else f"{axes['payload_kind']},")
    if "rpc" not in omit:
        head.append(_rpc_phrase(axes, with_messages="stream_messages" not in omit))
    if head:
        parts.append(" ".join(head).rstrip(","))
    if "concurrency" not in omit:
        cap = "at most " if axes["mode"] == "open" else ""
        in_flight = f"{cap}{axes['concurrency']} in flight"
        if "connections" not in omit and int(axes["connections"]) > 1:
            in_flight += f" on {axes['connections']} connections"
        parts.append(in_flight)
    if "compression" not in omit and axes["compression"] != "none":
        parts.append(str(axes["compression"]))
    if "tls" not in omit and axes["tls"] != "off":
        parts.append("TLS" if axes["tls"] == "on" else "mTLS")
    if "mode" not in omit and axes["mode"] == "open":
        parts.append(f"open loop, {axes['arrival']} arrivals" if "rate" in omit else _mode_phrase(axes))
    if "processes" not in omit and int(axes["processes"]) > 1:
        parts.append(f"{axes['processes']} server processes")
    if "loadgen" not in omit and axes["loadgen"] != "python":
        parts.append(f"driven by {_generator_name(str(axes['loadgen']))}")
    return ", ".join(parts)


def _difference(reference: dict[str, object], axes: dict[str, object], omit: Iterable[str] = ()) -> str:
    """How a cell differs from a reference cell, in a few words: 'bidi (100 messages)', '64 KiB, TLS'."""
    omit = set(omit)
    for axis in list(omit):
        omit |= _linked(axis)
    differs = [
        a for a in AXES if a not in omit and axes[a] != reference[a] and _applies(a, axes) | _applies(a, reference)
    ]
    words = []
    for axis in differs:
        value = axes[axis]
        if axis == "rpc":
            words.append(_rpc_phrase(axes))
        elif axis == "stream_messages" and "rpc" not in differs:
            words.append(f"{value} messages")
        elif axis in ("mode", "rate", "arrival"):
            rate_omitted = "rate" in omit and axes["mode"] == reference["mode"] == "open"
            words.append(f"{axes['arrival']} arrivals" if rate_omitted else _mode_phrase(axes))
        elif axis == "payload_size":
            words.append(fmt_size(int(value)))
        elif axis == "concurrency":
            words.append(f"{value} in flight")
        elif axis == "connections":
            words.append(_plural(int(value), "connection"))
        elif axis == "processes":
            words.append(_plural(int(value), "process", "processes"))
        elif axis == "workers" and _applies("workers", axes):
            words.append(_plural(int(value), "thread"))
        elif axis == "tls":
            words.append({"on": "TLS", "mtls": "mTLS", "off": "plaintext"}.get(str(value), str(value)))
        elif axis == "loadgen":
            words.append(f"driven by {_generator_name(str(value))}")
        elif axis == "impl":
            words.append(f"{_SERVER_NAMES.get(str(value), value)} server")
        elif axis not in ("stream_messages", "workers"):
            words.append(str(value))
    return ", ".join(dict.fromkeys(words)) or "the same cell"


def _repetitions_text(counts: Sequence[int]) -> str:
    if len(set(counts)) == 1:
        return f"{_plural(counts[0], 'repetition')} each" if len(counts) > 1 else _plural(counts[0], "repetition")
    return " and ".join(str(n) for n in counts) + " repetitions"


# -- confidence ---------------------------------------------------------------------------------------------------


def _range_text(metric: str, values: Sequence[float]) -> str:
    low, high = _number(metric, min(values)), _number(metric, max(values))
    return low if low == high else f"{low}-{high}"


def chance_apart(n: int, m: int) -> Fraction:
    """How often the min..max ranges of n and m repetitions of ONE cell do not overlap: all n below all m, or above,
    is 2 of the C(n + m, n) equally likely orders of continuous values from one distribution."""
    return Fraction(2, math.comb(n + m, n))


def _odds(chance: Fraction) -> str:
    """'1 time in 3', '2 times in 35'."""
    return f"{chance.numerator} time{'s' if chance.numerator > 1 else ''} in {chance.denominator}"


_METRIC_WORDS = {RPS: "RPC/s", CPU: "server CPU per RPC", P50: "p50", P99: "p99", CLIENT_CPU: "client CPU per RPC"}


def _spread_judgement(run: Run, a: CellStats, b: CellStats, metric: str) -> tuple[str, list[Reason]]:
    """Words for the parenthesis, saying what the label rests on, and the reasons that set it:

    - 4+ repetitions a side: the exact Mann-Whitney test, p < 0.05 or inside the spread;
    - 2-3: ranges overlapping (inside the spread); apart and the effect over NOISE_FACTOR x the calibrated CV
      (nothing against it); apart otherwise (few repetitions, or within the noise: indicative);
    - 1: no spread to judge by (indicative).
    """
    xa, xb = a.samples.get(metric, ()), b.samples.get(metric, ())
    counts = _repetitions_text([len(xa), len(xb)])
    unit = _UNITS.get(metric, "")
    if min(len(xa), len(xb)) < 2:
        text = "one repetition only: there is no spread to judge the difference by"
        return f"{counts}: no spread to judge by", [Reason(ONE_REPETITION, text)]
    if min(len(xa), len(xb)) >= TEST_REPETITIONS:
        est = stats.estimate(xa, xb)
        if est.significant:
            return f"{counts}; Mann-Whitney p = {est.p_value:.3f}", []
        text = f"the difference is inside the repetitions' spread (Mann-Whitney p = {est.p_value:.2f})"
        return f"{counts}; p = {est.p_value:.2f}: inside the repetitions' spread", [Reason(INSIDE_SPREAD, text)]
    ranges = f"spread {_range_text(metric, xa)} vs {_range_text(metric, xb)} {unit}".rstrip()
    if not (max(xa) < min(xb) or max(xb) < min(xa)):
        text = "the difference is inside the repetitions' spread (their min..max ranges overlap)"
        return f"{counts}; {ranges}: overlapping, so the difference is inside the spread", [Reason(INSIDE_SPREAD, text)]
    chance = _odds(chance_apart(len(xa), len(xb)))
    ratio = _or_nan(_ratio(a.median(metric), b.median(metric)))
    effect = abs(ratio - 1)
    # a factor reads better than a percentage once one side is twice the other: '11.5x', not '1054%'
    size = _times(max(ratio, 1 / ratio)) if ratio > 0 and max(ratio, 1 / ratio) >= 2 else f"{effect:.0%}"
    cv = run.calibration.noise_cv.get(metric)
    noise = f"this machine's noise ({cv:.1%} CV of {_METRIC_WORDS.get(metric, metric)})" if cv is not None else ""
    if cv is not None and math.isfinite(effect) and effect > NOISE_FACTOR * cv:
        return f"{counts}; {ranges}: apart, and the {size} difference is over {NOISE_FACTOR:g}x {noise}", []
    by_chance = f"as two identical cells' ranges are {chance}"
    if cv is not None:
        text = f"the {size} difference is within {NOISE_FACTOR:g}x {noise}"
        return f"{counts}; {ranges}: apart, {by_chance}, but {text}", [Reason(WITHIN_NOISE, text)]
    text = f"apart {by_chance}, with no calibrated noise to weigh the {size} difference against"
    return f"{counts}; {ranges}: {text}", [Reason(FEW_REPETITIONS, text)]


def _floor_reasons(run: Run, named: Sequence[tuple[str, CellStats]]) -> list[Reason]:
    """Cells whose p50 is within FLOOR_FACTOR of the machine's no-op round trip with their generator."""
    reasons = []
    for name, cell in named:
        floor = run.calibration.floor_p50_ms.get(cell.generator)
        p50 = cell.median(P50)
        if floor and math.isfinite(p50) and p50 <= FLOOR_FACTOR * floor:
            reasons.append(
                Reason(
                    NEAR_FLOOR,
                    f"the {name} cell's p50 ({p50:.2f} ms) is within {FLOOR_FACTOR:g}x of this machine's floor "
                    f"({floor:.2f} ms, no-op unary with {_generator_name(cell.generator)}): mostly the round trip",
                )
            )
    return reasons


def _limit_reasons(named: Sequence[tuple[str, CellStats]], rps_quoted: bool = True) -> list[Reason]:
    """Saturated generators (named, with what to use instead) and, where RPC/s is quoted, servers that were not the
    limit; failed repetitions left out."""
    reasons = []
    by_generator: dict[str, list[str]] = {}
    for name, cell in named:
        if cell.generator_limited:
            by_generator.setdefault(cell.generator, []).append(name)
    for generator, names in by_generator.items():
        where = _join(names)
        instead = 'use loadgen = "ghz"' if generator == "python" else "give it more load-generator CPUs"
        reasons.append(
            Reason(
                GENERATOR_SATURATED,
                f"{_generator_name(generator)} was saturated in the {where} cell{'s' if len(names) > 1 else ''}: "
                f"RPC/s there is the client's limit, not the server's ({instead})",
            )
        )
    idle = [(n, c) for n, c in named if not c.server_limited and not c.generator_limited]
    if rps_quoted and idle:
        where = _join(
            [
                f"{n} ({_number(SERVER_UTIL, c.median(SERVER_UTIL))} busy)"
                if math.isfinite(c.median(SERVER_UTIL))
                else n
                for n, c in idle
            ]
        )
        reasons.append(
            Reason(
                SERVER_NOT_LIMIT,
                f"the server was not saturated in the {where} cell{'s' if len(idle) > 1 else ''}, "
                "so RPC/s there is not the server's capacity",
            )
        )
    failed = [(n, c) for n, c in named if c.failed]
    if failed:
        where = ", ".join(f"{c.failed} in the {n} cell" for n, c in failed)
        reasons.append(Reason(FAILED_REPETITIONS, f"failed repetitions were left out ({where})"))
    return reasons


def _label(reasons: Iterable[Reason], demoting: Iterable[str] = ()) -> str:
    codes = {r.code for r in reasons}
    if INSIDE_SPREAD in codes:
        return INCONCLUSIVE
    if codes & (_DEMOTING | set(demoting)):
        return INDICATIVE
    return CLEAR


def _sentence(main: str, evidence: str, reasons: Iterable[Reason], tail: str = "") -> str:
    """'Main (evidence). Reason. Reason. Tail.' The spread, test and noise reasons are already in the evidence."""
    said = [_capital(r.text) + "." for r in reasons if r.code not in _IN_EVIDENCE]
    text = f"{main} ({evidence})." if evidence else f"{main}."
    return " ".join([text, *said, *([tail] if tail else [])])


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


_PER_UNIT = {RPS: "RPC/s", CPU: "us of CPU per RPC"}


def _values_words(metric: str, named: Sequence[tuple[str, CellStats]]) -> str:
    """'sync 102, aio 158 us of CPU per RPC'."""
    values = ", ".join(f"{name} {_number(metric, cell.median(metric))}" for name, cell in named)
    return f"{values} {_PER_UNIT.get(metric, _UNITS.get(metric, ''))}".rstrip()


def _cheaper_phrase(metric: str, name_a: str, a: float, name_b: str, b: float) -> str:
    """'sync is 1.55x cheaper per RPC' / 'aio served 1.20x the RPC/s'."""
    if not (math.isfinite(a) and math.isfinite(b)) or min(a, b) <= 0:
        return "no ratio (a median is zero or missing)"
    if metric == RPS:
        better, factor = (name_a, a / b) if a >= b else (name_b, b / a)
        return f"{better} served {_times(factor)} the RPC/s"
    better, factor = (name_a, b / a) if a <= b else (name_b, a / b)
    return f"{better} is {_times(factor)} cheaper per RPC"


def _range_tail(label: str, others: Sequence[tuple[Instance, str, bool]], what: str) -> str:
    """'Over the other 17 pairs, <what> ranged 0.95x (bidi (100 messages)) to 1.64x (64 KiB); 3 of them inside their
    spread.' ``others``: (instance, how it differs from the leading one, inside its spread)."""
    usable = [(inst, where, inside) for inst, where, inside in others if inst.ratio is not None]
    if not usable:
        return ""
    inside = sum(1 for _, _, flag in usable if flag)
    if len(usable) == 1:
        inst, where, flag = usable[0]
        return (
            f"In the other {label} ({where}), {what} was {_times(inst.ratio)}{' (inside its spread)' if flag else ''}."
        )
    low = min(usable, key=lambda item: item[0].ratio)
    high = max(usable, key=lambda item: item[0].ratio)
    spread_note = f"; {inside} of them inside their spread" if inside else ""
    return (
        f"Over the other {len(usable)} {label}s, {what} ranged from {_times(low[0].ratio)} ({low[1]}) "
        f"to {_times(high[0].ratio)} ({high[1]}){spread_note}."
    )


def _inside(a: CellStats, b: CellStats, metric: str) -> bool:
    """The difference is inside the repetitions' spread (as _spread_judgement decides it; the noise plays no part)."""
    xa, xb = a.samples.get(metric, ()), b.samples.get(metric, ())
    if min(len(xa), len(xb)) < 2:
        return False
    if min(len(xa), len(xb)) >= TEST_REPETITIONS:
        return not stats.estimate(xa, xb).significant
    return not (max(xa) < min(xb) or max(xb) < min(xa))


# -- the studies ----------------------------------------------------------------------------------------------------


def _model_pair_finding(run: Run, study: str, pairs_found: list[tuple[CellStats, CellStats]]) -> Finding:
    """sync vs aio: the leading pair in words, the others by the range of their CPU-per-RPC ratio."""
    a, b = pairs_found[0]
    name_a, name_b = _SERVER_NAMES[str(a.axes["impl"])], _SERVER_NAMES[str(b.axes["impl"])]
    metric = headline_metric([a, b])
    ctx = _context(run, a.axes, omit=["impl"])
    main = (
        f"At {ctx}, {_server_name(a.axes)} served {_number(RPS, a.median(RPS))} RPC/s at "
        f"{_number(CPU, a.median(CPU))} us of CPU per RPC; {name_b} {_number(RPS, b.median(RPS))} RPC/s at "
        f"{_number(CPU, b.median(CPU))} us: "
        f"{_cheaper_phrase(metric, name_a, a.median(metric), name_b, b.median(metric))}"
    )
    if metric == RPS:
        main += " (the server was the limit in both cells, no generator was)"
    evidence, reasons = _spread_judgement(run, a, b, metric)
    named = [(name_a, a), (name_b, b)]
    instance = _instance(named, metric)
    reasons += _floor_reasons(run, named)
    reasons += _limit_reasons(named)
    others = [
        (_instance([(name_a, x), (name_b, y)], CPU), _difference(a.axes, x.axes, omit=["impl"]), _inside(x, y, CPU))
        for x, y in pairs_found[1:]
    ]
    tail = _range_tail(f"{name_a}/{name_b} pair", others, f"{name_b}'s CPU per RPC over {name_a}'s")
    phrase = _cheaper_phrase(metric, name_a, a.median(metric), name_b, b.median(metric))
    return Finding(
        study=study,
        subject=f"{name_a} vs {name_b}",
        sentence=_sentence(main, evidence, reasons, tail),
        headline=f"{phrase}: {_values_words(metric, named)}, at {ctx}",
        metric=metric,
        ratio=instance.ratio,
        confidence=_label(reasons),
        reasons=tuple(reasons),
        instances=(instance, *(inst for inst, _, _ in others)),
    )


def server_model(run: Run) -> list[Finding]:
    found = pairs(run, "impl", "sync", "aio")
    return [_model_pair_finding(run, "server_model", found)] if found else []


def go_reference(run: Run) -> list[Finding]:
    """Each Python server model against the Go reference: server CPU per RPC, and RPC/s only when neither generator
    was saturated."""
    out = []
    for impl in ("sync", "aio"):
        found = pairs(run, "impl", "go", impl)
        if not found:
            continue
        go, py = found[0]
        name = _SERVER_NAMES[impl]
        named = [("Go", go), (name, py)]
        instance = _instance(named, CPU, {"rps_ratio": _rps_ratio_if_fair(go, py)})
        main = (
            f"At {_context(run, go.axes, omit=['impl'])}, {_server_name(py.axes)} spent "
            f"{_number(CPU, py.median(CPU))} us of CPU per RPC and the Go server {_number(CPU, go.median(CPU))} us: "
            f"{name} costs {_times(instance.ratio) if instance.ratio else '-'} Go's CPU per RPC"
        )
        rps_ratio = _rps_ratio_if_fair(go, py)
        if rps_ratio is not None:
            main += (
                f"; it served {_number(RPS, py.median(RPS))} RPC/s against Go's {_number(RPS, go.median(RPS))} "
                f"({_times(rps_ratio)})"
            )
        else:
            main += "; RPC/s not compared: a load generator was saturated"
        evidence, reasons = _spread_judgement(run, go, py, CPU)
        reasons += _floor_reasons(run, named)
        reasons += _limit_reasons(named, rps_quoted=rps_ratio is not None)
        others = [
            (_instance([("Go", x), (name, y)], CPU), _difference(go.axes, x.axes, omit=["impl"]), _inside(x, y, CPU))
            for x, y in found[1:]
        ]
        tail = _range_tail("pair", others, f"{name}'s CPU per RPC over Go's")
        out.append(
            Finding(
                study="go_reference",
                subject=f"{name} vs Go",
                sentence=_sentence(main, evidence, reasons, tail),
                headline=(
                    f"{name} costs {_times(instance.ratio) if instance.ratio else '-'} Go's CPU per RPC: "
                    f"{_values_words(CPU, [(name, py), ('Go', go)])}, at {_context(run, go.axes, omit=['impl'])}"
                ),
                metric=CPU,
                ratio=instance.ratio,
                confidence=_label(reasons),
                reasons=tuple(reasons),
                instances=(instance, *(inst for inst, _, _ in others)),
            )
        )
    return out


def _rps_ratio_if_fair(reference: CellStats, other: CellStats) -> float | None:
    if reference.generator_limited or other.generator_limited:
        return None
    return _ratio(reference.median(RPS), other.median(RPS))


def _sweep_phrase(metric: str, best: str, best_value: float, runner: str, runner_value: float) -> str:
    """'4 threads cost 1.16x less CPU per RPC than 1 thread' / '1 process served 1.07x the RPC/s of 2 processes'."""
    if not (math.isfinite(best_value) and math.isfinite(runner_value)) or min(best_value, runner_value) <= 0:
        return "no ratio (a median is zero or missing)"
    if metric == RPS:
        return f"{best} served {_times(best_value / runner_value)} the RPC/s of {runner}"
    return f"{best} cost {_times(runner_value / best_value)} less CPU per RPC than {runner}"


def _sweep_finding(
    run: Run,
    study: str,
    axis: str,
    found: list[list[CellStats]],
    value_words: Callable[[object], str],
    server: Callable[[CellStats], str],
) -> Finding:
    """A family of cells along one axis: each value's RPC/s and CPU per RPC, the best by the headline metric against
    the runner-up; other families in a few words each (or their count, beyond MAX_LISTED)."""

    def best_two(members: list[CellStats], metric: str) -> tuple[CellStats, CellStats]:
        ranked = sorted(members, key=lambda c: -c.median(metric) if metric == RPS else c.median(metric))
        return ranked[0], ranked[1]

    family = found[0]
    metric = headline_metric(family)
    named = [(value_words(c.axes[axis]), c) for c in family]
    best, runner = best_two(family, metric)
    names = {c.key: n for n, c in named}
    listing = [f"{_number(RPS, c.median(RPS))} RPC/s at {_number(CPU, c.median(CPU))} us with {n}" for n, c in named]
    listing[0] = listing[0].replace(" us with", " us of CPU per RPC with", 1)
    main = (
        f"At {_context(run, family[0].axes, omit=[axis])}, {server(family[0])} served "
        f"{', '.join(listing[:-1])} and {listing[-1]}: "
        f"{_sweep_phrase(metric, names[best.key], best.median(metric), names[runner.key], runner.median(metric))}"
    )
    if metric == RPS:
        main += " (the server was the limit in every cell, no generator was)"
    evidence, reasons = _spread_judgement(run, runner, best, metric)
    instance = _instance(named, metric)
    reasons += _floor_reasons(run, [(names[best.key], best), (names[runner.key], runner)])
    reasons += _limit_reasons(named)
    others = []
    for members in found[1:]:
        m = headline_metric(members)
        top, second = best_two(members, m)
        words = _sweep_phrase(
            m, value_words(top.axes[axis]), top.median(m), value_words(second.axes[axis]), second.median(m)
        )
        inside = " (inside the spread)" if _inside(second, top, m) else ""
        where = _difference(family[0].axes, members[0].axes, omit=[axis])
        others.append((_instance([(value_words(c.axes[axis]), c) for c in members], m), f"{where}: {words}{inside}"))
    tail = ""
    if others:
        listed = [words for _, words in others[:MAX_LISTED]]
        more = f"; and {len(others) - MAX_LISTED} more families" if len(others) > MAX_LISTED else ""
        tail = _capital("; ".join(listed)) + more + "."
    phrase = _sweep_phrase(metric, names[best.key], best.median(metric), names[runner.key], runner.median(metric))
    pair = [(names[best.key], best), (names[runner.key], runner)]
    return Finding(
        study=study,
        subject=" vs ".join(n for n, _ in named),
        sentence=_sentence(main, evidence, reasons, tail),
        headline=f"{phrase}: {_values_words(metric, pair)}, at {_context(run, family[0].axes, omit=[axis])}",
        metric=metric,
        ratio=instance.ratio,
        confidence=_label(reasons),
        reasons=tuple(reasons),
        instances=(instance, *(inst for inst, _ in others)),
    )


def thread_pool(run: Run) -> list[Finding]:
    found = families(run, "workers", where=lambda c: c.axes["impl"] == "sync")
    if not found:
        return []
    words = lambda v: _plural(int(v), "thread")  # noqa: E731 - a one-line label

    def server(cell: CellStats) -> str:
        return _server_name(cell.axes, threads=False)

    return [_sweep_finding(run, "thread_pool", "workers", found, words, server)]


def processes(run: Run) -> list[Finding]:
    found = families(run, "processes")
    if not found:
        return []
    cpus = f"on {_plural(run.server_cpus, 'server CPU')}" if run.server_cpus else "on the server CPUs"
    words = lambda v: _plural(int(v), "process", "processes")  # noqa: E731 - a one-line label

    def server(cell: CellStats) -> str:
        return f"{_server_name(cell.axes)} {cpus}"

    return [_sweep_finding(run, "processes", "processes", found, words, server)]


def payload_size(run: Run) -> list[Finding]:
    """From the smallest to the largest payload: server CPU per RPC and RPC/s, and the CPU per extra KiB."""
    found = [f for f in families(run, "payload_size") if all(math.isfinite(c.median(CPU)) for c in f)]
    if not found:
        return []

    def scaling(members: list[CellStats]) -> tuple[float, float | None]:
        """(largest / smallest CPU per RPC, server CPU per extra KiB between the two largest sizes); the slope is
        None when those two differ by less than their repetitions' spread (it would be noise per KiB)."""
        small, large = members[0], members[-1]
        prev = members[-2]
        kib = (int(large.axes["payload_size"]) - int(prev.axes["payload_size"])) / 1024
        per_kib = (large.median(CPU) - prev.median(CPU)) / kib if kib > 0 and not _inside(prev, large, CPU) else None
        return large.median(CPU) / small.median(CPU), per_kib

    family = found[0]
    small, large, prev = family[0], family[-1], family[-2]
    growth, per_kib = scaling(family)
    size = lambda c: fmt_size(int(c.axes["payload_size"]))  # noqa: E731
    named = [(size(c), c) for c in family]
    main = (
        f"{_capital(_server_name(small.axes))}, {_context(run, small.axes, omit=['payload_size'])}: "
        f"from {size(small)} to {size(large)}, CPU per RPC went from {_number(CPU, small.median(CPU))} to "
        f"{_number(CPU, large.median(CPU))} us ({_times(growth)}) and RPC/s from {_number(RPS, small.median(RPS))} "
        f"to {_number(RPS, large.median(RPS))}"
    )
    if per_kib is not None:
        main += f"; between {size(prev)} and {size(large)} each extra KiB cost {per_kib:.2f} us of server CPU"
    evidence, reasons = _spread_judgement(run, small, large, CPU)
    reasons += _floor_reasons(run, [(size(small), small), (size(large), large)])
    saturated = [n for n, c in named if c.generator_limited]
    if saturated:
        generators = {c.generator for _, c in named if c.generator_limited}
        instead = 'use loadgen = "ghz"' if generators == {"python"} else "give the generator more CPUs"
        reasons.append(
            Reason(
                GENERATOR_SATURATED,
                f"the load generator was saturated at {_join(saturated)}: RPC/s there is the client's limit, "
                f"not the server's ({instead})",
            )
        )
    reasons += _limit_reasons([(n, c) for n, c in named if c.failed], rps_quoted=False)
    others = []
    for members in found[1:]:
        g, k = scaling(members)
        where = _difference(small.axes, members[0].axes, omit=["payload_size"])
        others.append(
            (
                _instance([(size(c), c) for c in members], CPU, {"cpu_us_per_extra_kib": k}),
                f"{where}: {_number(CPU, members[0].median(CPU))} to {_number(CPU, members[-1].median(CPU))} us "
                f"from {size(members[0])} to {size(members[-1])} ({_times(g)})",
            )
        )
    tail = ""
    if others:
        listed = [words for _, words in others[:MAX_LISTED]]
        more = f"; and {len(others) - MAX_LISTED} more families" if len(others) > MAX_LISTED else ""
        tail = _capital("; ".join(listed)) + more + "."
    instance = _instance(named, CPU, {"cpu_us_per_extra_kib": per_kib})
    return [
        Finding(
            study="payload_size",
            subject=f"{size(small)} to {size(large)}",
            sentence=_sentence(main, evidence, reasons, tail),
            headline=(
                f"CPU per RPC {_times(growth)} from {size(small)} to {size(large)} "
                f"({_number(CPU, small.median(CPU))} to {_number(CPU, large.median(CPU))} us)"
                + (f", {per_kib:.2f} us per extra KiB above {size(prev)}" if per_kib is not None else "")
                + f", {_server_name(small.axes)}, {_context(run, small.axes, omit=['payload_size'])}"
            ),
            metric=CPU,
            ratio=instance.ratio,
            confidence=_label(reasons),
            reasons=tuple(reasons),
            instances=(instance, *(inst for inst, _ in others)),
        )
    ]


def break_even_bit_per_s(bytes_saved: float, cpu_added_us: float) -> float:
    """The link speed below which compression pays: bytes_saved * 8 / cpu_added (bit/s).

    Compression pays on a link of R bit/s when the time it saves sending, bytes_saved * 8 / R, is more than the CPU
    time it adds on the busier side (the larger of the server's and the client's CPU added per RPC). Solving for R
    gives the break-even speed R* = bytes_saved * 8 / cpu_added; on slower links compression wins. Assumptions:
    the link is the bottleneck and otherwise idle, so its time per RPC is bytes / rate (no propagation delay, no
    TCP window effects); CPU time added is time on the RPC's path, spent on a CPU that is free for it and not
    overlapped with sending; the wire bytes measured here (loopback TCP, both directions, HTTP/2 and TLS framing
    included) are what the real link carries; and the production payload compresses as this one did. It says
    nothing about capacity: a CPU-bound server serves fewer RPC/s with compression at any link speed.
    Returns inf when no CPU is added and 0 when no byte is saved.
    """
    if bytes_saved <= 0:
        return 0.0
    if cpu_added_us <= 0:
        return math.inf
    return bytes_saved * 8 / (cpu_added_us * 1e-6)


def _compression_numbers(plain: CellStats, packed: CellStats) -> dict[str, float]:
    server_added = packed.median(CPU) - plain.median(CPU)
    client_added = packed.median(CLIENT_CPU) - plain.median(CLIENT_CPU)
    # ghz sends an app-gzip payload compressed once up front and never decompresses replies (README, ghz limits):
    # its CPU per RPC has no gzip in it, so there is no client figure to weigh.
    if packed.generator != "python" and str(packed.axes["compression"]).startswith("app-gzip-"):
        client_added = math.nan
    saved = plain.median(WIRE) - packed.median(WIRE)
    busier = max(server_added, client_added) if math.isfinite(client_added) else server_added
    return {
        "server_cpu_added_us": server_added,
        "client_cpu_added_us": client_added,
        "wire_bytes_saved": saved,
        "wire_bytes_saved_fraction": saved / plain.median(WIRE) if plain.median(WIRE) else math.nan,
        "break_even_bit_per_s": break_even_bit_per_s(saved, busier),
        "busier_side_is_client": float(math.isfinite(client_added) and client_added > server_added),
    }


def _pays_words(numbers: dict[str, float], short: bool = False) -> str:
    """'it pays on links slower than 852 Mbit/s (...)'; with ``short``: '84% of the bytes saved, pays below ...'."""
    saved = numbers["wire_bytes_saved"]
    if saved <= 0:
        more = f"{_number(WIRE, -saved)} B more"
        return f"no bytes saved ({more}): never pays" if short else f"it never pays: it saves no bytes ({more})"
    speed = numbers["break_even_bit_per_s"]
    if math.isinf(speed):
        return "pays at any link speed" if short else "it pays at any link speed: it adds no CPU"
    if short:
        return f"{numbers['wire_bytes_saved_fraction']:.0%} of the bytes saved, pays below {_bits_per_second(speed)}"
    side = "client's" if numbers["busier_side_is_client"] else "server's"
    return f"it pays on links slower than {_bits_per_second(speed)} (the {side} added CPU sets it)"


APP_GZIP = "app-gzip-"
SAME_ZLIB_LEVEL = "app-gzip-6"  # gRPC core's gzip and deflate use zlib's default level, 6


def _break_even_range(plain: CellStats, packed: CellStats) -> tuple[float, float]:
    """The break-even speed over the repetitions' min..max: the fewest bytes saved against the most CPU added (the
    busier side at that end), and the other way round."""
    saved_low = plain.low(WIRE) - packed.high(WIRE)
    saved_high = plain.high(WIRE) - packed.low(WIRE)
    added = [(packed.low(CPU) - plain.high(CPU), packed.high(CPU) - plain.low(CPU))]
    if math.isfinite(_compression_numbers(plain, packed)["client_cpu_added_us"]):
        added.append((packed.low(CLIENT_CPU) - plain.high(CLIENT_CPU), packed.high(CLIENT_CPU) - plain.low(CLIENT_CPU)))
    least = max(low for low, _ in added)
    most = max(high for _, high in added)
    return break_even_bit_per_s(saved_low, most), break_even_bit_per_s(saved_high, least)


def _pays_below(numbers: dict[str, float]) -> str:
    speed = numbers["break_even_bit_per_s"]
    if numbers["wire_bytes_saved"] <= 0:
        return "never pays"
    return "pays at any link speed" if math.isinf(speed) else f"pays below {_bits_per_second(speed)}"


def _busier_added(numbers: dict[str, float]) -> float:
    client = numbers["client_cpu_added_us"]
    return max(numbers["server_cpu_added_us"], client) if math.isfinite(client) else numbers["server_cpu_added_us"]


def _ranked_levels(numbers: dict[str, dict[str, float]]) -> list[str]:
    """The app-gzip levels that save bytes, the one that pays on the most links (highest break-even speed) first."""
    paying = [s for s, n in numbers.items() if s.startswith(APP_GZIP) and n["wire_bytes_saved"] > 0]
    return sorted(paying, key=lambda s: -numbers[s]["break_even_bit_per_s"])


def _levels_words(numbers: dict[str, dict[str, float]], long: bool) -> str:
    """The app-gzip sweep of one payload: the level that pays on the most links, the range of break-even speeds, the
    level that saves the most bytes; '' when no app-gzip level was measured."""
    levels = [s for s in numbers if s.startswith(APP_GZIP)]
    if not levels:
        return ""
    ranked = _ranked_levels(numbers)
    if not ranked:
        n = numbers[levels[0]]
        more = f"{_number(WIRE, -n['wire_bytes_saved'])} B more"
        what = levels[0] if len(levels) == 1 else f"no app-gzip level ({_level_list(levels)})"
        cost = f"{_signed(CPU, n['server_cpu_added_us'])} us" + (" of server CPU per RPC" if long else "")
        return f"{what} never pays: no bytes saved ({more}, {cost})"
    best = numbers[ranked[0]]
    saved = f"{best['wire_bytes_saved_fraction']:.0%} of the bytes saved"
    if long:
        client = best["client_cpu_added_us"]
        cost = f"{_signed(CPU, best['server_cpu_added_us'])} us of server CPU" + (
            f" and {_signed(CLIENT_CPU, client)} us on the client per RPC" if math.isfinite(client) else " per RPC"
        )
        lead = "pays on the most links" if len(levels) > 1 else "pays"
        words = f"{ranked[0]} {lead}: below {_bits_per_second(best['break_even_bit_per_s'])} ({cost}, {saved})"
    else:
        words = (
            f"{ranked[0]} {_pays_below(best)} ({saved}, {_signed(CPU, best['server_cpu_added_us'])} us of server CPU)"
        )
    if len(ranked) > 1:
        low = ranked[-1]
        words += (
            f"; the {len(levels)} levels measured break even between "
            f"{_bits_per_second(numbers[low]['break_even_bit_per_s'])} ({low}) and "
            f"{_bits_per_second(best['break_even_bit_per_s'])}"
        )
    never = [s for s in levels if s not in ranked]
    if never and len(levels) > 1:
        words += f"; {_join(never)} never {'pays' if len(never) == 1 else 'pay'} (no bytes saved)"
    most = max(ranked, key=lambda s: numbers[s]["wire_bytes_saved"])
    if most != ranked[0]:
        n = numbers[most]
        words += (
            f"; {most} saves the most, {n['wire_bytes_saved_fraction']:.0%}, for "
            f"{_signed(CPU, n['server_cpu_added_us'])} us of server CPU ({_pays_below(n)})"
        )
    return words


def _grpc_words(numbers: dict[str, dict[str, float]], cells: dict[str, CellStats], long: bool) -> str:
    """gRPC's own gzip and deflate, against app-gzip-6 (the same zlib level) where the run has it."""
    same = cells.get(SAME_ZLIB_LEVEL)
    parts = []
    for setting in (s for s in numbers if not s.startswith(APP_GZIP)):
        cell, first = cells[setting], not parts
        cpu = _signed(CPU, numbers[setting]["server_cpu_added_us"])
        words = f"gRPC's own {setting} cost {cpu} us of server CPU per RPC" if first and long else f"{setting} {cpu} us"
        if same is not None:
            ratio = _ratio(numbers[SAME_ZLIB_LEVEL]["server_cpu_added_us"], numbers[setting]["server_cpu_added_us"])
            times = _times(ratio) if ratio and ratio > 0 else "-"
            inside = ", inside the spread" if _inside(same, cell, CPU) else ""
            level = ", the same zlib level" if long else ""
            added = _signed(CPU, numbers[SAME_ZLIB_LEVEL]["server_cpu_added_us"])
            of = f" {SAME_ZLIB_LEVEL}'s {added} us{level}" if first else ""
            words += f" ({times}{of}{inside})"
        words += f" for {_number(WIRE, cell.median(WIRE))} B: {_pays_below(numbers[setting])}"
        parts.append(words)
    return "; ".join(parts)


def _level_list(settings: Sequence[str]) -> str:
    """'grpc-gzip, grpc-deflate, app-gzip-1..9': consecutive app-gzip levels as a range."""
    levels = sorted(int(s[len(APP_GZIP) :]) for s in settings if s.startswith(APP_GZIP))
    runs: list[list[int]] = []
    for level in levels:
        if runs and level == runs[-1][-1] + 1:
            runs[-1].append(level)
        else:
            runs.append([level])
    words = [s for s in settings if not s.startswith(APP_GZIP)]
    words += [
        f"{APP_GZIP}{r[0]}" + (f"..{r[-1]}" if len(r) > 2 else f", {APP_GZIP}{r[-1]}" if len(r) == 2 else "")
        for r in runs
    ]
    return ", ".join(words)


def compression(run: Run) -> list[Finding]:
    """Every compression setting against none with the same payload, as ONE finding: the app-gzip levels as a sweep
    (the level that pays on the most links, the range of break-even speeds, the level that saves the most), gRPC's
    own gzip and deflate against app-gzip-6 (the same zlib level), and in a few words each the other payloads (kinds,
    sizes). Every pair's numbers are an instance; the label rests on the leading level against none, and on whether
    its lead over the runner-up is outside the repetitions' spread."""
    needed = (CPU, WIRE)
    groups: dict[str, dict[str, CellStats]] = {}  # the none cell's key -> setting -> its compressed cell
    plains: dict[str, CellStats] = {}
    present = {str(c.axes["compression"]) for c in run.cells.values()}
    for setting in [v for v in ALLOWED["compression"] if v in present and v != "none"]:
        for a, b in pairs(run, "compression", "none", setting):
            if all(math.isfinite(c.median(m)) for c in (a, b) for m in needed):
                plains[a.key] = a
                groups.setdefault(a.key, {})[setting] = b
    if not groups:
        return []
    # the payload with the most settings leads (the sweep), the one nearest the baseline among equals
    order = sorted(groups, key=lambda key: (-len(groups[key]), run.distance(plains[key])))
    plain, cells = plains[order[0]], groups[order[0]]
    # then the other payload kinds of the same size and setting (the best level per kind), then the rest
    other_kind = lambda key: any(  # noqa: E731
        plains[key].axes[a] != plain.axes[a] for a in AXES if a not in ("payload_kind", "compression")
    )
    order = [order[0], *sorted(order[1:], key=other_kind)]
    numbers = {setting: _compression_numbers(plain, cell) for setting, cell in cells.items()}
    ranked = _ranked_levels(numbers)
    leading = ranked[0] if ranked else next(iter(cells))
    size, kind = fmt_size(int(plain.axes["payload_size"])), str(plain.axes["payload_kind"])
    ctx = _context(run, plain.axes, omit=["compression", "payload_size", "payload_kind"])
    parts = [w for w in (_levels_words(numbers, long=True), _grpc_words(numbers, cells, long=True)) if w]
    main = (
        f"On {size} of {kind}, {ctx}, with {_server_name(plain.axes)}, against no compression "
        f"({_number(CPU, plain.median(CPU))} us of server CPU and {_number(WIRE, plain.median(WIRE))} B on the wire "
        f"per RPC): {'; '.join(parts)}"
    )
    packed = cells[leading]
    named = [("none", plain), (leading, packed)]
    evidence, reasons = _spread_judgement(run, plain, packed, CPU)
    evidence = f"{leading} against none: {evidence}"
    reasons += _floor_reasons(run, named)
    if len(ranked) > 1:
        runner = ranked[1]
        best_low, best_high = _break_even_range(plain, packed)
        runner_low, runner_high = _break_even_range(plain, cells[runner])
        if best_low <= runner_high:
            reasons.append(
                Reason(
                    RANKING_INSIDE_SPREAD,
                    f"{leading}'s lead over {runner} is inside the repetitions' spread (break-even "
                    f"{_speed_range(best_low, best_high)} against {_speed_range(runner_low, runner_high)}): "
                    "either may pay on more links",
                )
            )
    reasons += _limit_reasons([(n, c) for n, c in named if c.failed], rps_quoted=False)

    def instance(none: CellStats, setting: str, cell: CellStats) -> Instance:
        low, high = _break_even_range(none, cell)
        derived = _compression_numbers(none, cell) | {
            "break_even_low_bit_per_s": low,
            "break_even_high_bit_per_s": high,
        }
        return _instance([("none", none), (setting, cell)], CPU, derived)

    instances = [instance(plain, leading, packed)]
    instances += [instance(plain, s, c) for s, c in cells.items() if s != leading]
    others = []
    for key in order[1:]:
        other, other_cells = plains[key], groups[key]
        nums = {s: _compression_numbers(other, c) for s, c in other_cells.items()}
        instances += [instance(other, s, c) for s, c in other_cells.items()]
        words = "; ".join(w for w in (_levels_words(nums, long=False), _grpc_words(nums, other_cells, long=False)) if w)
        others.append(f"{_difference(plain.axes, other.axes, omit=['compression'])}: {words}")
    tail = ""
    if others:
        more = f"; and {len(others) - MAX_LISTED} more payloads" if len(others) > MAX_LISTED else ""
        tail = _capital("; ".join(others[:MAX_LISTED])) + more + "."
    lead_numbers = numbers[leading]
    if ranked:
        headline = (
            f"{leading} {_pays_below(lead_numbers)} on {size} of {kind} "
            f"({lead_numbers['wire_bytes_saved_fraction']:.0%} of the bytes saved for "
            f"{_signed(CPU, _busier_added(lead_numbers))} us of CPU per RPC)"
        )
        if len(ranked) > 1:
            low, high = (numbers[ranked[i]]["break_even_bit_per_s"] for i in (-1, 0))
            headline += f"; app-gzip levels break even at {_speed_range(low, high)}"
    else:
        headline = f"{leading} {_pays_below(lead_numbers)} on {size} of {kind}"
    same = cells.get(SAME_ZLIB_LEVEL)
    grpc = [s for s in cells if not s.startswith(APP_GZIP)]
    if grpc and same is not None:
        same_added = numbers[SAME_ZLIB_LEVEL]["server_cpu_added_us"]
        ratios = [_ratio(same_added, numbers[s]["server_cpu_added_us"]) for s in grpc]
        times = [_times(r) if r and r > 0 else "-" for r in ratios]
        verb = "adds" if len(grpc) == 1 else "add"
        headline += f"; {_join(grpc)} {verb} {_join(times)} the server CPU {SAME_ZLIB_LEVEL} adds"
    settings = [s for s in ALLOWED["compression"] if any(s in g for g in groups.values())]
    return [
        Finding(
            study="compression",
            subject=f"{_level_list(settings)} vs none",
            sentence=_sentence(main, evidence, reasons, tail),
            headline=headline,
            metric=CPU,
            ratio=instances[0].ratio,
            confidence=_label(reasons),
            reasons=tuple(reasons),
            instances=tuple(instances),
        )
    ]


def tls(run: Run) -> list[Finding]:
    """TLS and mTLS against plaintext: server CPU, client CPU and wire bytes added per RPC."""
    out = []
    for mode, name in (("on", "TLS"), ("mtls", "mTLS")):
        found = [(a, b) for a, b in pairs(run, "tls", "off", mode) if all(math.isfinite(c.median(CPU)) for c in (a, b))]
        if not found:
            continue

        def added(a: CellStats, b: CellStats) -> dict[str, float]:
            return {
                "server_cpu_added_us": b.median(CPU) - a.median(CPU),
                "client_cpu_added_us": b.median(CLIENT_CPU) - a.median(CLIENT_CPU),
                "wire_bytes_added": b.median(WIRE) - a.median(WIRE),
            }

        plain, secure = found[0]
        numbers = added(plain, secure)
        named = [("plaintext", plain), (name, secure)]
        instance = _instance(named, CPU, numbers)
        main = (
            f"At {_context(run, plain.axes, omit=['tls'])}, {name} cost {_server_name(plain.axes)} "
            f"{_signed(CPU, numbers['server_cpu_added_us'])} us of CPU per RPC ({_number(CPU, plain.median(CPU))} to "
            f"{_number(CPU, secure.median(CPU))} us, {_times(instance.ratio) if instance.ratio else '-'}), the client "
            f"{_signed(CLIENT_CPU, numbers['client_cpu_added_us'])} us, and the wire "
            f"{_signed(WIRE, numbers['wire_bytes_added'])} B per RPC ({_number(WIRE, plain.median(WIRE))} to "
            f"{_number(WIRE, secure.median(WIRE))} B)"
        )
        evidence, reasons = _spread_judgement(run, plain, secure, CPU)
        reasons += _floor_reasons(run, named)
        reasons += _limit_reasons([(n, c) for n, c in named if c.failed], rps_quoted=False)
        others = []
        for a, b in found[1:]:
            nums = added(a, b)
            inst = _instance([("plaintext", a), (name, b)], CPU, nums)
            inside = ", inside the spread" if _inside(a, b, CPU) else ""
            words = (
                f"{_difference(plain.axes, a.axes, omit=['tls'])}: {_signed(CPU, nums['server_cpu_added_us'])} us "
                f"({_times(inst.ratio) if inst.ratio else '-'}{inside}), {_signed(WIRE, nums['wire_bytes_added'])} B"
            )
            others.append((inst, words))
        tail = ""
        if others:
            listed = [w for _, w in others[:MAX_LISTED]]
            more = f"; and {len(others) - MAX_LISTED} more pairs" if len(others) > MAX_LISTED else ""
            tail = _capital("; ".join(listed)) + more + "."
        out.append(
            Finding(
                study="tls",
                subject=f"{name} vs plaintext",
                sentence=_sentence(main, evidence, reasons, tail),
                headline=(
                    f"{name} cost {_signed(CPU, numbers['server_cpu_added_us'])} us of server CPU per RPC "
                    f"({_times(instance.ratio) if instance.ratio else '-'}) and "
                    f"{_signed(WIRE, numbers['wire_bytes_added'])} B on the wire, {_server_name(plain.axes)}, "
                    f"{_context(run, plain.axes, omit=['tls'])}"
                ),
                metric=CPU,
                ratio=instance.ratio,
                confidence=_label(reasons),
                reasons=tuple(reasons),
                instances=(instance, *(inst for inst, _ in others)),
            )
        )
    return out


def _kept_up(cell: CellStats) -> bool:
    offered = float(cell.axes["rate"])
    return cell.median(RPS) >= KEPT_UP * offered and cell.server_saturated == 0


def _knee(family: list[CellStats], slo: float) -> CellStats | None:
    points = pd.DataFrame({"rate": [float(c.axes["rate"]) for c in family], "med": [c.median(P99) for c in family]})
    rate = figures.knee(points, slo)
    return None if rate is None else next(c for c in family if float(c.axes["rate"]) == rate)


def open_loop_knee(run: Run) -> list[Finding]:
    """The highest offered rate whose p99 (and every lower rate's) stays within the SLO, and whether the server
    kept up there."""
    slo = run.slo_p99_ms
    if slo is None:
        return []
    found = [
        f
        for f in families(run, "rate", where=lambda c: c.axes["mode"] == "open")
        if all(math.isfinite(c.median(P99)) for c in f)
    ]
    if not found:
        return []

    def rate(cell: CellStats) -> str:
        return f"{float(cell.axes['rate']):,.6g} RPC/s"

    def service(cell: CellStats) -> str:
        state = "it kept up" if _kept_up(cell) else "it fell behind"
        return (
            f"{state}: {_number(RPS, cell.median(RPS))} RPC/s served, server "
            f"{_number(SERVER_UTIL, cell.median(SERVER_UTIL))} busy"
        )

    def short(members: list[CellStats], knee: CellStats | None) -> str:
        if knee is None:
            return f"p99 over the {slo:g} ms SLO already at {rate(members[0])}"
        if knee is members[-1]:
            return f"p99 within the {slo:g} ms SLO at every rate measured, up to {rate(knee)} (the knee is above)"
        after = members[members.index(knee) + 1]
        return (
            f"the knee is {rate(knee)}: p99 {_number(P99, knee.median(P99))} ms there, "
            f"{_number(P99, after.median(P99))} ms at {rate(after)} ({slo:g} ms SLO)"
        )

    def describe(members: list[CellStats]) -> tuple[str, CellStats | None, list[Reason]]:
        knee = _knee(members, slo)
        reasons: list[Reason] = []
        top = members[-1]
        if knee is None:
            first = members[0]
            words = (
                f"p99 was over the {slo:g} ms SLO already at the lowest offered rate, {rate(first)} "
                f"({_number(P99, first.median(P99))} ms; {service(first)})"
            )
            edge = [first]
        elif knee is top:
            words = (
                f"p99 stayed within the {slo:g} ms SLO at every offered rate measured, up to {rate(top)} "
                f"({_number(P99, top.median(P99))} ms there; {service(top)})"
            )
            reasons.append(
                Reason(KNEE_NOT_REACHED, "the knee lies above the highest rate measured: add higher rates to find it")
            )
            edge = [top]
        else:
            after = members[members.index(knee) + 1]
            words = (
                f"the knee is {rate(knee)} offered (p99 {_number(P99, knee.median(P99))} ms; {service(knee)}); "
                f"at {rate(after)} p99 reached {_number(P99, after.median(P99))} ms ({service(after)})"
            )
            edge = [knee, after]
        few = []
        for cell in edge:
            low, high = cell.low(P99), cell.high(P99)
            if cell.repetitions < 2:
                reasons.append(Reason(ONE_REPETITION, f"one repetition only at {rate(cell)}: no spread to judge by"))
            elif low <= slo < high:
                reasons.append(
                    Reason(
                        INSIDE_SPREAD,
                        f"the repetitions disagree whether {rate(cell)} meets the SLO "
                        f"(p99 {_number(P99, low)}-{_number(P99, high)} ms)",
                    )
                )
            elif cell.repetitions < TEST_REPETITIONS:
                few.append(cell)
        if few:
            n = min(c.repetitions for c in few)
            reasons.append(
                Reason(
                    FEW_REPETITIONS,
                    f"every repetition at {_join([rate(c) for c in few])} is on the same side of the SLO, but that "
                    f"rests on {n} readings of a tail latency; {TEST_REPETITIONS} or more make a clear knee",
                )
            )
        return words, knee, reasons

    family = found[0]
    words, knee, reasons = describe(family)
    server = _server_name(family[0].axes)
    main = f"At {_context(run, family[0].axes, omit=['rate'])}, {server}: {words}"
    named = [(rate(c), c) for c in family]
    reasons += _limit_reasons(named, rps_quoted=False)
    counts = sorted({c.repetitions for c in family})
    reps = _plural(counts[0], "repetition") if len(counts) == 1 else f"{counts[0]}-{counts[-1]} repetitions"
    evidence = f"{reps} per rate; p99: their median"
    judged = [r.text for r in reasons if r.code in _IN_EVIDENCE]
    evidence += "; " + "; ".join(judged) if judged else "; every repetition on the same side of the SLO"
    others = []
    for members in found[1:]:
        other_words, other_knee, _ = describe(members)
        where = _difference(family[0].axes, members[0].axes, omit=["rate"])
        inst = _instance(
            [(rate(c), c) for c in members], P99, {"knee_rps": float(other_knee.axes["rate"]) if other_knee else None}
        )
        others.append((inst, f"{where}: {other_words}"))
    tail = ""
    if others:
        listed = [w for _, w in others[:MAX_LISTED]]
        more = f"; and {len(others) - MAX_LISTED} more rate sweeps" if len(others) > MAX_LISTED else ""
        tail = _capital("; ".join(listed)) + more + "."
    instance = _instance(named, P99, {"knee_rps": float(knee.axes["rate"]) if knee else None, "slo_p99_ms": slo})
    return [
        Finding(
            study="open_loop_knee",
            subject=f"SLO p99 {slo:g} ms",
            sentence=_sentence(main, evidence, reasons, tail),
            headline=f"{short(family, knee)}, {server}, {_context(run, family[0].axes, omit=['rate'])}",
            metric=P99,
            ratio=None,
            confidence=_label(reasons, demoting=[GENERATOR_SATURATED]),
            reasons=tuple(reasons),
            instances=(instance, *(inst for inst, _ in others)),
        )
    ]


def _limited_by(cell: CellStats) -> str:
    if cell.generator_limited:
        return "generator"
    return "server" if cell.server_limited else "neither"


def _which_limited(python: CellStats, ghz: CellStats) -> str:
    """'the Python generator was the limit' / 'the server was the limit with both' / a mixed case spelled out."""
    py, go = _limited_by(python), _limited_by(ghz)
    if py == go:
        return {
            "generator": "both generators were saturated",
            "server": "the server was the limit with both",
            "neither": "neither side was saturated with either",
        }[py]
    for mine, theirs, name, other in ((py, go, "the Python generator", "ghz"), (go, py, "ghz", "the Python generator")):
        if mine == "generator":
            return f"{name} was the limit" + (f", and with {other} the server was" if theirs == "server" else "")
    served = "ghz" if go == "server" else "the Python generator"
    idle = "the Python generator" if go == "server" else "ghz"
    return f"with {served} the server was the limit, with {idle} neither side was saturated"


def load_generator(run: Run) -> list[Finding]:
    """The Python generator against ghz on the same cell: which one limited, and ghz's RPC/s over Python's."""
    found = pairs(run, "loadgen", "python", "ghz")
    if not found:
        return []
    python, ghz = found[0]
    named = [("Python generator", python), ("ghz", ghz)]
    instance = _instance(named, RPS)
    busy = lambda c: _number(CLIENT_UTIL, c.median(CLIENT_UTIL))  # noqa: E731
    flag = lambda c: ", saturated" if c.generator_limited else ""  # noqa: E731
    main = (
        f"At {_context(run, python.axes, omit=['loadgen'])}, against {_server_name(python.axes)}, the "
        f"Python generator ({busy(python)} busy{flag(python)}) drove {_number(RPS, python.median(RPS))} RPC/s and "
        f"ghz ({busy(ghz)} busy{flag(ghz)}) {_number(RPS, ghz.median(RPS))} RPC/s, "
        f"{_times(instance.ratio) if instance.ratio else '-'} as many: {_which_limited(python, ghz)}; the server "
        f"spent {_number(CPU, python.median(CPU))} and {_number(CPU, ghz.median(CPU))} us of CPU per RPC"
    )
    evidence, reasons = _spread_judgement(run, python, ghz, RPS)
    reasons += _floor_reasons(run, named)
    # which generator was saturated is the sentence itself; only failed repetitions are worth adding
    reasons += [r for r in _limit_reasons(named, rps_quoted=False) if r.code == FAILED_REPETITIONS]
    others = []
    for a, b in found[1:]:
        inst = _instance([("Python generator", a), ("ghz", b)], RPS)
        inside = ", inside the spread" if _inside(a, b, RPS) else ""
        words = (
            f"{_difference(python.axes, a.axes, omit=['loadgen'])}: {_which_limited(a, b)} "
            f"(ghz {_times(inst.ratio) if inst.ratio else '-'} the RPC/s{inside})"
        )
        others.append((inst, words))
    tail = ""
    if others:
        listed = [w for _, w in others[:MAX_LISTED]]
        more = f"; and {len(others) - MAX_LISTED} more pairs" if len(others) > MAX_LISTED else ""
        tail = _capital("; ".join(listed)) + more + "."
    return [
        Finding(
            study="load_generator",
            subject="Python generator vs ghz",
            sentence=_sentence(main, evidence, reasons, tail),
            headline=(
                f"ghz drove {_times(instance.ratio) if instance.ratio else '-'} the Python generator's RPC/s "
                f"({_number(RPS, ghz.median(RPS))} vs {_number(RPS, python.median(RPS))}): "
                f"{_which_limited(python, ghz)}, against {_server_name(python.axes)}, "
                f"{_context(run, python.axes, omit=['loadgen'])}"
            ),
            metric=RPS,
            ratio=instance.ratio,
            confidence=_label(reasons),
            reasons=tuple(reasons),
            instances=(instance, *(inst for inst, _ in others)),
        )
    ]


STUDY_FUNCTIONS: tuple[Callable[[Run], list[Finding]], ...] = (
    server_model,
    thread_pool,
    processes,
    payload_size,
    compression,
    tls,
    open_loop_knee,
    load_generator,
    go_reference,
)


def compute(df: pd.DataFrame, manifest: Manifest) -> tuple[Finding, ...]:
    """Every finding the run's cells support, in STUDIES order. ``df`` is results.load's table (or any table with its
    columns); ``manifest`` the run's manifest (settings.slo_p99_ms, spec_source, calibration are read)."""
    run = _run(df, manifest)
    if not run.cells:
        return ()
    return tuple(finding for study in STUDY_FUNCTIONS for finding in study(run))


# -- JSON ----------------------------------------------------------------------------------------------------------


def _clean(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _finding_dict(finding: Finding) -> dict:
    return {
        "study": finding.study,
        "subject": finding.subject,
        "sentence": finding.sentence,
        "headline": finding.headline,
        "metric": finding.metric,
        "ratio": _clean(finding.ratio),
        "confidence": finding.confidence,
        "reasons": [{"code": r.code, "text": r.text} for r in finding.reasons],
        "cells": list(finding.cells),
        "instances": [
            {
                "cells": inst.cells,
                "values": _clean(inst.values),
                "spread": _clean(inst.spread),
                "repetitions": inst.repetitions,
                "metric": inst.metric,
                "ratio": _clean(inst.ratio),
                "derived": _clean(inst.derived),
            }
            for inst in finding.instances
        ],
    }


def to_json(findings: Sequence[Finding], run_id: str, note: str | None = None) -> str:
    """The versioned findings document (FORMAT), as indented JSON text."""
    doc = {"format": FORMAT, "run_id": run_id, "note": note, "findings": [_finding_dict(f) for f in findings]}
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _float_or_none(value: object, where: str) -> float | None:
    if value is None:
        return None
    number = _finite(value)
    if number is None:
        raise FindingsError(f"{where}: expected a number or null, got {value!r}")
    return number


def _instance_from(raw: object, where: str) -> Instance:
    if not isinstance(raw, dict):
        raise FindingsError(f"{where}: expected an object")
    try:
        return Instance(
            cells={str(k): str(v) for k, v in raw["cells"].items()},
            values={str(s): {str(m): float(v) for m, v in ms.items()} for s, ms in raw["values"].items()},
            spread={
                str(s): {str(m): [float(x) for x in lh] for m, lh in ms.items()} for s, ms in raw["spread"].items()
            },
            repetitions={str(k): int(v) for k, v in raw["repetitions"].items()},
            metric=str(raw["metric"]),
            ratio=_float_or_none(raw.get("ratio"), f"{where}.ratio"),
            derived={str(k): float(v) for k, v in raw["derived"].items()},
        )
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise FindingsError(f"{where}: malformed instance ({type(exc).__name__}: {exc})") from None


def from_json(text: str) -> Document:
    """Read a findings document written by to_json; FindingsError names what is wrong."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise FindingsError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise FindingsError(f"not a findings document (format {found!r}, expected {FORMAT!r})")
    raw_findings = doc.get("findings")
    if not isinstance(raw_findings, list):
        raise FindingsError("findings: expected a list")
    out = []
    for i, raw in enumerate(raw_findings):
        where = f"findings[{i}]"
        if not isinstance(raw, dict):
            raise FindingsError(f"{where}: expected an object")
        missing = [
            k
            for k in ("study", "subject", "sentence", "headline", "metric", "confidence", "reasons", "instances")
            if k not in raw
        ]
        if missing:
            raise FindingsError(f"{where}: missing {', '.join(missing)}")
        if raw["confidence"] not in CONFIDENCES:
            raise FindingsError(f"{where}.confidence: {raw['confidence']!r}; expected one of {', '.join(CONFIDENCES)}")
        reasons = raw["reasons"]
        if not isinstance(reasons, list) or not all(
            isinstance(r, dict) and {"code", "text"} <= r.keys() for r in reasons
        ):
            raise FindingsError(f"{where}.reasons: expected a list of {{code, text}} objects")
        instances = raw["instances"]
        if not isinstance(instances, list) or not instances:
            raise FindingsError(f"{where}.instances: expected a non-empty list")
        out.append(
            Finding(
                study=str(raw["study"]),
                subject=str(raw["subject"]),
                sentence=str(raw["sentence"]),
                headline=str(raw["headline"]),
                metric=str(raw["metric"]),
                ratio=_float_or_none(raw.get("ratio"), f"{where}.ratio"),
                confidence=raw["confidence"],
                reasons=tuple(Reason(str(r["code"]), str(r["text"])) for r in reasons),
                instances=tuple(_instance_from(inst, f"{where}.instances[{j}]") for j, inst in enumerate(instances)),
            )
        )
    note = doc.get("note")
    if note is not None and not isinstance(note, str):
        raise FindingsError(f"note: expected a string or null, got {note!r}")
    return Document(run_id=str(doc.get("run_id", "")), findings=tuple(out), note=note)


def write(path: str | Path, findings: Sequence[Finding], run_id: str, note: str | None = None) -> Path:
    path = Path(path)
    path.write_text(to_json(findings, run_id, note), encoding="utf-8")
    return path


def read(path: str | Path) -> Document:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FindingsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return from_json(text)
    except FindingsError as exc:
        raise FindingsError(f"{path}: {exc}") from None


# -- the machine, in one line ----------------------------------------------------------------------------------


def _plain(value: object) -> object:
    """A typed manifest field as its JSON form (dataclasses as dicts); anything else as it is."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def machine_note(manifest: Manifest, findings: Sequence[Finding] = ()) -> str | None:
    """One line under the findings about what of the machine weakens them, or None: a run without a noise
    calibration where a leading comparison rests on 2-3 repetitions a side, a CPU-latency request that was not
    held, and the system facts' warnings.

    The manifest's ``calibration``, ``cpu_latency_hold`` and ``system`` are read typed or in their JSON forms
    (older or hand-made manifests): a hold as a bool or as {"held": bool, "reason": ...}; the system facts as
    an object with ``warnings()`` or as {"checks": [{"name", "status"}, ...]}. Missing means "not recorded": nothing
    is said about it.
    """
    parts = []
    few = any(
        2 <= min(inst.repetitions.values()) < TEST_REPETITIONS
        for finding in findings
        for inst in finding.instances[:1]
        if inst.repetitions
    )
    if few and not read_calibration(manifest).noise_cv:
        parts.append(
            f"the run has no noise calibration, so below {TEST_REPETITIONS} repetitions a side no finding is clear"
        )
    hold = _plain(getattr(manifest, "cpu_latency_hold", None))
    if (hold.get("held") if isinstance(hold, dict) else hold) is False:
        reason = hold.get("reason") if isinstance(hold, dict) else None
        parts.append(
            "the CPU-latency request (/dev/cpu_dma_latency) was not held"
            + (f" ({reason})" if reason else "")
            + ": idle CPUs could sleep between RPCs, so low-load latencies include wake-ups"
        )
    system = getattr(manifest, "system", None)
    if callable(getattr(system, "warnings", None)):  # bench.machine.system.SystemFacts
        warned = [str(getattr(check, "name", check)) for check in system.warnings()]
    else:
        checks = _plain(system).get("checks") if isinstance(_plain(system), dict) else None
        warned = [
            str(check.get("name", "?"))
            for check in (checks if isinstance(checks, list) else [])
            if isinstance(check, dict) and check.get("status") == "warning"
        ]
    if warned:
        parts.append(f"grpclab system warned about {_join(warned)} (see the manifest)")
    return f"Machine: {'; '.join(parts)}." if parts else None


# -- renderers --------------------------------------------------------------------------------------------------------

_TITLES = {
    "server_model": "Server model",
    "thread_pool": "Thread pool",
    "processes": "Server processes",
    "payload_size": "Payload size",
    "compression": "Compression",
    "tls": "TLS",
    "open_loop_knee": "Open-loop knee",
    "load_generator": "Load generator",
    "go_reference": "Go reference",
}
_STYLES = {CLEAR: "green", INDICATIVE: "yellow", INCONCLUSIVE: "dim"}
_LEGEND = (
    "Medians over successful repetitions; each finding says what its label rests on. clear: with 4 or more "
    "repetitions a side, the exact Mann-Whitney test gives p < 0.05; with 2-3, the repetitions' min..max ranges are "
    f"apart and the difference is over {NOISE_FACTOR:g}x the machine's calibrated noise (its coefficient of "
    "variation). indicative: apart, but on too few repetitions to be sure, or within that noise, or on one "
    "repetition, or with latencies near the machine's floor. inconclusive: inside the repetitions' spread."
)
# The terminal's compact form: a few words per reason instead of its sentence.
_SHORT = {
    INSIDE_SPREAD: "inside the spread",
    ONE_REPETITION: "1 repetition",
    FEW_REPETITIONS: "few repetitions",
    WITHIN_NOISE: "within the machine's noise",
    NEAR_FLOOR: "near the machine's floor",
    RANKING_INSIDE_SPREAD: "ranking inside the spread",
    SERVER_NOT_LIMIT: "server not saturated",
    FAILED_REPETITIONS: "failed repetitions left out",
}


def legend(findings: Sequence[Finding]) -> str:
    """The labels explained, and, when a leading comparison rests on 2-3 repetitions a side, how little 'apart'
    proves there: two cells that do not differ give ranges apart with probability 2 / C(n + m, n)."""
    few = [
        (min(inst.repetitions.values()), max(inst.repetitions.values()))
        for f in findings
        for inst in f.instances[:1]
        if inst.repetitions and 2 <= min(inst.repetitions.values()) < TEST_REPETITIONS
    ]
    if not few:
        return _LEGEND
    n, m = min(few)
    chance = chance_apart(n, m)
    sides = f"{n} repetitions a side" if n == m else f"{n} and {m} repetitions"
    return (
        f"{_LEGEND} With {sides}, two cells that do not differ give ranges apart {_odds(chance)} ({float(chance):.0%}):"
        f" 'apart' alone is not enough (run {TEST_REPETITIONS} or more for the test)."
    )


def title(finding: Finding) -> str:
    return f"{_TITLES.get(finding.study, finding.study)}: {finding.subject}"


def tags(finding: Finding) -> list[str]:
    """What qualifies the finding, a few words per reason (the compact form)."""
    out = []
    for reason in finding.reasons:
        if reason.code == GENERATOR_SATURATED:
            out.append(reason.text.split(":")[0].replace(" was saturated", " saturated"))
        elif reason.code in _SHORT:  # the others (a knee above the sweep) are in the headline itself
            out.append(_SHORT[reason.code])
    return list(dict.fromkeys(out))


def to_text(findings: Sequence[Finding], markup: bool = False, note: str | None = None) -> str:
    """One paragraph per finding. With ``markup``, rich console markup (labels coloured, text escaped)."""
    if not findings:
        return "Findings: none (the run has no pair of cells that differ in one studied axis).\n" + (
            f"{note}\n" if note else ""
        )
    if markup:
        from rich.markup import escape
    else:
        escape = str  # noqa: N806 - the same name as rich's, so both branches read alike
    lines = [f"Findings ({len(findings)})", escape(legend(findings)), ""]
    for finding in findings:
        label = f"[{finding.confidence}]"
        if markup:
            style = _STYLES[finding.confidence]
            label = f"[{style}]{escape(label)}[/{style}]"
        lines.append(f"- {label} {escape(title(finding))}. {escape(finding.sentence)}")
    if note:
        lines += ["", escape(note)]
    return "\n".join(lines) + "\n"


def to_rich(findings: Sequence[Finding], note: str | None = None) -> RenderableType:
    """The compact form for the end of `grpclab run`: per finding its label, study and headline, and what
    qualifies it in a few words; the legend and the machine's line under them."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    if not findings:
        lines = ["Findings: none (the run has no pair of cells that differ in one studied axis)."]
        return Group(*(Text(line) for line in [*lines, *([note] if note else [])]))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    for finding in findings:
        style = _STYLES[finding.confidence]
        qualified = tags(finding)
        claim = escape(finding.headline) + (f" [dim]({escape('; '.join(qualified))})[/dim]" if qualified else "")
        grid.add_row(f"[{style}]{finding.confidence}[/{style}]", _TITLES.get(finding.study, finding.study), claim)
    head = Text(f"Findings ({len(findings)})", style="bold")
    head.append(": each in full, with its evidence, in findings.json and the report", style="default")
    parts: list[RenderableType] = [head, grid, Text(legend(findings))]
    if note:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)


def to_compact_text(findings: Sequence[Finding], note: str | None = None, width: int = 110) -> str:
    """The compact form as plain text at ``width`` columns: what `grpclab run` prints on a terminal that wide
    (without its colours and trailing blanks)."""
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), record=True, color_system=None, force_terminal=False)
    console.print(to_rich(findings, note))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def to_markdown(findings: Sequence[Finding], note: str | None = None) -> str:
    lines = ["## Findings", ""]
    if not findings:
        none = "None: the run has no pair of cells that differ in one studied axis."
        return "\n".join([*lines, none, *(["", note] if note else []), ""])
    lines += [legend(findings), ""]
    for finding in findings:
        lines.append(f"- **{title(finding)}** ({finding.confidence}). {finding.sentence}")
    if note:
        lines += ["", f"_{note}_"]
    return "\n".join(lines) + "\n"


def _detail_value(key: str, value: float) -> str:
    """A derived number by its name's unit: '+351 us', '2.23 Gbit/s', '77%', '105,729 B'."""
    if key.endswith("_bit_per_s"):
        return _bits_per_second(value)
    if key.endswith("_fraction"):
        return f"{value:.0%}"
    if key.endswith("_us"):
        return f"{_signed(CPU, value)} us"
    if key.startswith("wire_bytes"):
        return f"{_number(WIRE, value)} B"
    if key.endswith("_rps"):
        return f"{_number(RPS, value)} RPC/s"
    if key.endswith("_ms"):
        return f"{_number(P99, value)} ms"
    return f"{value:.3g}"


def _median_and_spread(inst: Instance, side: str) -> str:
    """'sync: 102 (99-105)': the compared metric's median on one side, and its repetitions' min-max."""
    spread = inst.spread.get(side, {}).get(inst.metric)
    median = _number(inst.metric, inst.values.get(side, {}).get(inst.metric, math.nan))
    return f"{side}: {median} ({_range_text(inst.metric, spread) if spread else '-'})"


def _details(finding: Finding) -> str:
    """Every instance of a finding as a table row: the compared sides and their cells, the compared metric's median
    (min-max) per side, the ratio and the study's derived numbers (for compression: every setting's cost, savings
    and break-even)."""
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    rows = []
    for inst in finding.instances:
        unit = _UNITS.get(inst.metric, "")
        sides = "".join(
            f"<li>{e(side)}: <code>{e(key)}</code> ({inst.repetitions.get(side, 0)} reps)</li>"
            for side, key in inst.cells.items()
        )

        values = "<br>".join(e(_median_and_spread(inst, side)) for side in inst.cells)
        derived = "<br>".join(
            f"{e(k.replace('_', ' '))}: {e(_detail_value(k, v))}"
            for k, v in inst.derived.items()
            if k != "busier_side_is_client"
        )
        ratio = _times(inst.ratio) if inst.ratio else "-"
        rows.append(
            f'<tr><td><ul class="cells">{sides}</ul></td><td>{e(_METRIC_WORDS.get(inst.metric, inst.metric))} '
            f'{e(unit)}<br>{values}</td><td class="num">{e(ratio)}</td><td>{derived}</td></tr>'
        )
    return (
        "<table><tr><th>cells compared</th><th>median (min-max)</th><th>last / first</th><th>derived</th></tr>"
        f"{''.join(rows)}</table>"
    )


def to_html(findings: Sequence[Finding], note: str | None = None) -> str:
    """A <section> for a report page: one item per finding with its confidence as a class, and a <details> with
    every compared instance (cells, medians and spreads, ratio, derived numbers)."""
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    machine = f'<p class="warn machine-note">{e(note)}</p>' if note else ""
    if not findings:
        return (
            '<section class="findings" id="findings"><h2>Findings</h2><p class="note">None: the run has no pair of '
            f"cells that differ in one studied axis.</p>{machine}</section>"
        )
    items = []
    for finding in findings:
        count = len(finding.instances)
        summary = f"{count} comparison{'s' if count != 1 else ''}, {len(finding.cells)} cells"
        items.append(
            f'<li class="finding finding-{e(finding.confidence)}" data-study="{e(finding.study)}">'
            f'<span class="confidence">{e(finding.confidence)}</span> <strong>{e(title(finding))}.</strong> '
            f'{e(finding.sentence)}<details><summary>{e(summary)}</summary><div class="scroll">{_details(finding)}'
            "</div></details></li>"
        )
    return (
        f'<section class="findings" id="findings"><h2>Findings</h2><p class="note">{e(legend(findings))}</p>'
        f'<ul class="findings">{"".join(items)}</ul>{machine}</section>'
    )


def analyse(run_dir: str | Path) -> Document:
    """The findings of a run directory, with its machine's line (results.ResultsError for a bad directory)."""
    run_dir = Path(run_dir)
    manifest = results.read_manifest(run_dir)
    df = results.load(run_dir)
    found = compute(df, manifest)
    run_id = str(df["run_id"].iloc[0]) if len(df) else run_dir.name
    return Document(run_id, found, machine_note(manifest, found))


# -- command line ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis.findings", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--format", choices=("text", "markdown", "html", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        doc = analyse(args.run_dir)
    except results.ResultsError as exc:
        print(f"findings: {exc}", file=sys.stderr)
        return 2
    found, note = doc.findings, doc.note
    if args.format == "json":
        sys.stdout.write(to_json(found, doc.run_id, note))
    else:
        sys.stdout.write({"text": to_text, "markdown": to_markdown, "html": to_html}[args.format](found, note=note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
