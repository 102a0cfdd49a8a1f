"""One axis, one value against another: the finding most studies are (a client API against aio, uvloop against
asyncio, a preset against the default, ...), with the sentence every such finding shares.

A study names the axis, the reference value (the run's baseline value when the run has it, else the axis's default),
and the metric its comparison rests on; each other value of the axis that the run pairs with the reference makes one
finding: the leading pair (nearest the baseline) in words with RPC/s, server and client CPU per RPC and p50, the
comparison on the study's metric with what its label rests on, then the other pairs by the range of that metric's
ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...spec import ALLOWED, DEFAULTS
from .confidence import _floor_reasons, _inside, _label, _limit_reasons, _sentence, _spread_judgement
from .engine import CLIENT_CPU, CPU, P50, P99, RPS, CellStats, Finding, Instance, Run, _instance, pairs
from .words import _capital, _context, _difference, _number, _range_tail, _server_name, _times, _values_words

# How each metric's comparison is said: (what is compared, whether more is better).
_COMPARED = {
    RPS: ("the RPC/s", True),
    CPU: ("server CPU per RPC", False),
    CLIENT_CPU: ("client CPU per RPC", False),
    P50: ("p50 latency", False),
    P99: ("p99 latency", False),
}


def compare_phrase(metric: str, name_a: str, a: float, name_b: str, b: float) -> str:
    """'sync-threads spent 1.45x less client CPU per RPC than aio' / 'uvloop served 1.14x the RPC/s of asyncio'."""
    if not (math.isfinite(a) and math.isfinite(b)) or min(a, b) <= 0:
        return "no ratio (a median is zero or missing)"
    what, more_is_better = _COMPARED[metric]
    if more_is_better:
        better, worse, factor = (name_a, name_b, a / b) if a >= b else (name_b, name_a, b / a)
        return f"{better} served {_times(factor)} {what} of {worse}"
    better, worse, factor = (name_a, name_b, b / a) if a <= b else (name_b, name_a, a / b)
    return f"{better} had {_times(factor)} less {what} than {worse}"


def cell_words(cell: CellStats) -> str:
    """'5,721 RPC/s, 115 us of server and 93 us of client CPU per RPC, p50 0.16 ms'."""
    return (
        f"{_number(RPS, cell.median(RPS))} RPC/s, {_number(CPU, cell.median(CPU))} us of server and "
        f"{_number(CLIENT_CPU, cell.median(CLIENT_CPU))} us of client CPU per RPC, p50 "
        f"{_number(P50, cell.median(P50))} ms"
    )


@dataclass(frozen=True)
class AxisStudy:
    """What a one-axis study compares and how it says it."""

    study: str
    axis: str
    metric: Callable[[CellStats, CellStats], str]  # the metric a pair's comparison rests on
    name: Callable[[object], str] = str  # a value in words: 'sync-threads', '2 ms of blocking'
    # more words and derived numbers for a pair: (clause added to the sentence, {name: number})
    extra: Callable[[CellStats, CellStats], tuple[str, dict[str, float]]] | None = None
    rps_quoted: bool = True  # RPC/s is a comparison here (say when a server was not the limit)
    reference: object = None  # None: the run's baseline value of the axis, else its default
    where: Callable[[CellStats], bool] = lambda cell: True  # only cells this study is about


def _values(run: Run, spec: AxisStudy) -> tuple[object, list[object]]:
    present = {c.axes[spec.axis] for c in run.cells.values() if spec.where(c)}
    reference = spec.reference
    if reference is None:
        baseline = run.baseline.get(spec.axis, DEFAULTS[spec.axis])
        reference = baseline if baseline in present else DEFAULTS[spec.axis]
    others = [v for v in present if v != reference]
    if spec.axis in ALLOWED:
        others.sort(key=lambda v: ALLOWED[spec.axis].index(v) if v in ALLOWED[spec.axis] else len(ALLOWED[spec.axis]))
    else:
        others.sort(key=lambda v: (str(type(v)), v))
    return reference, others


def axis_findings(run: Run, spec: AxisStudy) -> list[Finding]:
    """One finding per value of the axis the run pairs with the reference value."""
    reference, others = _values(run, spec)
    out = []
    for value in others:
        found = [
            (a, b)
            for a, b in pairs(run, spec.axis, reference, value)
            if spec.where(a) and spec.where(b) and all(math.isfinite(c.median(CPU)) for c in (a, b))
        ]
        if found:
            out.append(_finding(run, spec, found))
    return out


def _finding(run: Run, spec: AxisStudy, found: Sequence[tuple[CellStats, CellStats]]) -> Finding:
    a, b = found[0]
    name_a, name_b = spec.name(a.axes[spec.axis]), spec.name(b.axes[spec.axis])
    metric = spec.metric(a, b)
    ctx = _context(run, a.axes, omit=[spec.axis])
    phrase = compare_phrase(metric, name_b, b.median(metric), name_a, a.median(metric))
    extra_words, derived = spec.extra(a, b) if spec.extra else ("", {})
    main = (
        f"At {ctx}, {_server_name(a.axes)} with {name_a}: {cell_words(a)}; with {name_b}: {cell_words(b)}"
        f"{extra_words}: {phrase}"
    )
    evidence, reasons = _spread_judgement(run, a, b, metric)
    named = [(name_a, a), (name_b, b)]
    instance = _instance(named, metric, derived)
    reasons += _floor_reasons(run, named)
    reasons += _limit_reasons(named, rps_quoted=spec.rps_quoted and metric == RPS)
    others: list[tuple[Instance, str, bool]] = []
    for x, y in found[1:]:
        more = spec.extra(x, y)[1] if spec.extra else {}
        inst = _instance([(name_a, x), (name_b, y)], metric, more)
        others.append((inst, _difference(a.axes, x.axes, omit=[spec.axis]), _inside(x, y, metric)))
    tail = _range_tail("pair", others, f"{name_b}'s {_COMPARED[metric][0]} over {name_a}'s")
    return Finding(
        study=spec.study,
        subject=f"{name_b} vs {name_a}",
        sentence=_sentence(main, evidence, reasons, tail),
        headline=f"{_capital(phrase)}: {_values_words(metric, [(name_a, a), (name_b, b)])}, {_server_name(a.axes)}, "
        f"{ctx}",
        metric=metric,
        ratio=instance.ratio,
        confidence=_label(reasons),
        reasons=tuple(reasons),
        instances=(instance, *(inst for inst, _, _ in others)),
    )
