"""The payload studies: payload size, payload kind, and every compression setting against none (where it pays)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...spec import ALLOWED, AXES
from ...spec.compression import APP_GZIP_PREFIX as APP_GZIP
from ..table import fmt_size
from .confidence import _floor_reasons, _inside, _label, _limit_reasons, _sentence, _spread_judgement
from .engine import (
    CLIENT_CPU,
    CPU,
    GENERATOR_SATURATED,
    MAX_LISTED,
    RANKING_INSIDE_SPREAD,
    RPS,
    WIRE,
    CellStats,
    Finding,
    Instance,
    Reason,
    Run,
    _instance,
    _ratio,
    families,
    headline_metric,
    pairs,
)
from .pairwise import AxisStudy, axis_findings
from .words import (
    _bits_per_second,
    _capital,
    _context,
    _difference,
    _join,
    _number,
    _others_tail,
    _server_name,
    _signed,
    _speed_range,
    _times,
)


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
    tail = _others_tail(others, "families")
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


PAYLOAD_KIND = AxisStudy(
    "payload_kind",
    "payload_kind",
    metric=lambda a, b: headline_metric([a, b]),
    where=lambda c: c.axes["service"] == "tutorial",  # BenchmarkService payloads are zeros whatever the spec says
)


def payload_kind(run: Run) -> list[Finding]:
    """Each payload kind (random bytes, zeros, lab.Records of typed fields) against the baseline's at the same size
    and compression: what the server pays per RPC to encode and decode it."""
    return axis_findings(run, PAYLOAD_KIND)
