"""The load studies: the open-loop knee under the spec's SLO, and the Python generator against ghz."""

from __future__ import annotations

import math

import pandas as pd

from .. import figures
from .confidence import _floor_reasons, _inside, _label, _limit_reasons, _sentence, _spread_judgement
from .engine import (
    _IN_EVIDENCE,
    CLIENT_UTIL,
    CPU,
    FAILED_REPETITIONS,
    FEW_REPETITIONS,
    GENERATOR_SATURATED,
    INSIDE_SPREAD,
    KEPT_UP,
    KNEE_NOT_REACHED,
    ONE_REPETITION,
    P99,
    RPS,
    SERVER_UTIL,
    TEST_REPETITIONS,
    CellStats,
    Finding,
    Reason,
    Run,
    _instance,
    families,
    pairs,
)
from .words import _context, _difference, _join, _number, _others_tail, _plural, _server_name, _times


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
    tail = _others_tail(others, "rate sweeps")
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
    tail = _others_tail(others, "pairs")
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
