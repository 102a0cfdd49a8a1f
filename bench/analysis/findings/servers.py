"""The server studies: sync vs aio, thread-pool size, server processes, and each Python server against Go."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace

from .. import handlers
from .confidence import _floor_reasons, _inside, _label, _limit_reasons, _sentence, _spread_judgement
from .engine import CPU, MAX_LISTED, RPS, CellStats, Finding, Run, _instance, _ratio, families, headline_metric, pairs
from .words import (
    _SERVER_NAMES,
    _capital,
    _cheaper_phrase,
    _context,
    _difference,
    _number,
    _plural,
    _range_tail,
    _server_name,
    _times,
    _values_words,
    _work_phrase,
)

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
    pool_paced: bool = False,
) -> Finding:
    """A family of cells along one axis: each value's RPC/s and CPU per RPC, the best by the headline metric against
    the runner-up; other families in a few words each (or their count, beyond MAX_LISTED). ``pool_paced``: the thread
    pool, not the server's CPU, sets the pace (handlers that wait or block), so RPC/s is the headline whenever no
    generator was saturated, the server's CPU or not."""
    headline = _pool_headline if pool_paced else headline_metric

    def best_two(members: list[CellStats], metric: str) -> tuple[CellStats, CellStats]:
        ranked = sorted(members, key=lambda c: -c.median(metric) if metric == RPS else c.median(metric))
        return ranked[0], ranked[1]

    family = found[0]
    metric = headline(family)
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
        main += (
            " (the handlers wait or block, so the thread pool set the pace; no generator was saturated)"
            if pool_paced
            else " (the server was the limit in every cell, no generator was)"
        )
    evidence, reasons = _spread_judgement(run, runner, best, metric)
    instance = _instance(named, metric)
    reasons += _floor_reasons(run, [(names[best.key], best), (names[runner.key], runner)])
    reasons += _limit_reasons(named, rps_quoted=not pool_paced)
    others = []
    for members in found[1:]:
        m = headline(members)
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


def _pool_headline(cells: Iterable[CellStats]) -> str:
    """Handlers that wait or block: the pool sets the pace, so RPC/s compares whenever no generator was saturated."""
    return CPU if any(c.generator_limited for c in cells) else RPS


def thread_pool(run: Run) -> list[Finding]:
    """One finding per kind of handler work (none, wait, block, CPU: bench.analysis.handlers): what more threads buy
    depends on what the handlers do, so families under different work are not summarised together."""
    found = families(run, "workers", where=lambda c: c.axes["impl"] == "sync")
    if not found:
        return []
    words = lambda v: _plural(int(v), "thread")  # noqa: E731 - a one-line label

    def server(cell: CellStats) -> str:
        return _server_name(cell.axes, threads=False)

    by_work: dict[str, list[list[CellStats]]] = {}
    for family in found:  # nearest the baseline first, in each kind too
        by_work.setdefault(handlers.work_kind(family[0].axes), []).append(family)
    out = []
    for kind, kind_families in by_work.items():
        paced = kind in ("wait", "block")
        finding = _sweep_finding(run, "thread_pool", "workers", kind_families, words, server, pool_paced=paced)
        if len(by_work) > 1:
            label = "no handler work" if kind == "none" else _work_phrase(kind_families[0][0].axes)
            finding = replace(finding, subject=f"{finding.subject} ({label})")
        out.append(finding)
    return out


def processes(run: Run) -> list[Finding]:
    found = families(run, "processes")
    if not found:
        return []
    cpus = f"on {_plural(run.server_cpus, 'server CPU')}" if run.server_cpus else "on the server CPUs"
    words = lambda v: _plural(int(v), "process", "processes")  # noqa: E731 - a one-line label

    def server(cell: CellStats) -> str:
        return f"{_server_name(cell.axes)} {cpus}"

    return [_sweep_finding(run, "processes", "processes", found, words, server)]
