"""What a comparison's confidence label rests on: the repetitions' spread, the machine's noise and floor,
saturated generators, failed repetitions (the package docstring's 'Confidence')."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

from ...gate import stats
from .engine import (
    _DEMOTING,
    _IN_EVIDENCE,
    CLEAR,
    CLIENT_CPU,
    CPU,
    FAILED_REPETITIONS,
    FEW_REPETITIONS,
    FLOOR_FACTOR,
    GENERATOR_SATURATED,
    INCONCLUSIVE,
    INDICATIVE,
    INSIDE_SPREAD,
    NEAR_FLOOR,
    NOISE_FACTOR,
    ONE_REPETITION,
    P50,
    P99,
    RPS,
    SERVER_NOT_LIMIT,
    SERVER_UTIL,
    TEST_REPETITIONS,
    WITHIN_NOISE,
    CellStats,
    Reason,
    Run,
    _or_nan,
    _ratio,
)
from .words import _UNITS, _capital, _generator_name, _join, _number, _repetitions_text, _times

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


def _the_cells(names: Sequence[str]) -> str:
    """'the X cell', 'the X and Y cells': a name that has its own article (the tutorial services) keeps one."""
    listed = _join([name.removeprefix("the ") for name in names])
    return f"the {listed} cell{'s' if len(names) > 1 else ''}"


def _limit_reasons(named: Sequence[tuple[str, CellStats]], rps_quoted: bool = True) -> list[Reason]:
    """Saturated generators (named, with what to use instead) and, where RPC/s is quoted, servers that were not the
    limit; failed repetitions left out."""
    reasons = []
    by_generator: dict[str, list[str]] = {}
    for name, cell in named:
        if cell.generator_limited:
            by_generator.setdefault(cell.generator, []).append(name)
    for generator, names in by_generator.items():
        where = _the_cells(names)
        instead = 'use loadgen = "ghz"' if generator == "python" else "give it more load-generator CPUs"
        reasons.append(
            Reason(
                GENERATOR_SATURATED,
                f"{_generator_name(generator)} was saturated in {where}: "
                f"RPC/s there is the client's limit, not the server's ({instead})",
            )
        )
    idle = [(n, c) for n, c in named if not c.server_limited and not c.generator_limited]
    if rps_quoted and idle:
        where = _the_cells(
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
                f"the server was not saturated in {where}, so RPC/s there is not the server's capacity",
            )
        )
    failed = [(n, c) for n, c in named if c.failed]
    if failed:
        where = ", ".join(f"{c.failed} in {_the_cells([n])}" for n, c in failed)
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


def _inside(a: CellStats, b: CellStats, metric: str) -> bool:
    """The difference is inside the repetitions' spread (as _spread_judgement decides it; the noise plays no part)."""
    xa, xb = a.samples.get(metric, ()), b.samples.get(metric, ())
    if min(len(xa), len(xb)) < 2:
        return False
    if min(len(xa), len(xb)) >= TEST_REPETITIONS:
        return not stats.estimate(xa, xb).significant
    return not (max(xa) < min(xb) or max(xb) < min(xa))
