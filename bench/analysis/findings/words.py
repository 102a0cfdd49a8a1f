"""Numbers and settings in words, as the findings' sentences say them: '1 KiB unary, 8 in flight', '1.55x'."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ...spec import ALLOWED, AXES, DEFAULTS
from ...spec.compression import APP_GZIP_PREFIX as APP_GZIP
from ..table import fmt_size
from .engine import (
    CLIENT_CPU,
    CLIENT_UTIL,
    CPU,
    MAX_LISTED,
    P50,
    P99,
    RPS,
    SERVER_UTIL,
    WIRE,
    CellStats,
    Instance,
    Run,
    _applies,
    _linked,
)

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
    if value is None or not math.isfinite(value):
        return "-"  # not measured (wire bytes of a channel per call)
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


# Names that keep their spelling at the start of a sentence: the servers', client APIs' and event loops' (and ghz,
# the gzip settings by their prefixes)
_NAMES = frozenset(ALLOWED["impl"]) | frozenset(ALLOWED["client"]) | frozenset(ALLOWED["event_loop"])


def _capital(text: str) -> str:
    if text.startswith(("ghz", APP_GZIP, "grpc-")) or text.split(" ", 1)[0].rstrip(":,") in _NAMES:
        return text
    return text[:1].upper() + text[1:]


def _others_tail(others: Sequence[tuple[object, str]], what: str) -> str:
    """The sentence's last part: the first MAX_LISTED other instances in words, then how many more ``what``."""
    if not others:
        return ""
    listed = [words for _, words in others[:MAX_LISTED]]
    more = f"; and {len(others) - MAX_LISTED} more {what}" if len(others) > MAX_LISTED else ""
    return _capital("; ".join(listed)) + more + "."


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
    asked = set(omit)
    omit = asked | {"impl", "workers"}  # the server is named with its side
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
        if "rate" in omit:
            parts.append(f"open loop, {axes['arrival']} arrivals")
        elif "arrival" in omit:
            parts.append(f"open loop at {float(axes['rate']):,.6g} RPC/s")
        else:
            parts.append(_mode_phrase(axes))
    if "processes" not in omit and int(axes["processes"]) > 1:
        parts.append(f"{axes['processes']} server processes")
    if "loadgen" not in omit and axes["loadgen"] != "python":
        parts.append(f"driven by {_generator_name(str(axes['loadgen']))}")
    work = _work_phrase(axes, omit)
    if work:
        parts.append(work)
    # the client side, where it is not the default; by the axes asked to be left out only, since impl (always
    # left out: the server is named with its side) decides whether event_loop applies
    parts += [_client_side_words(axis, axes) for axis in _CLIENT_SIDE if _says(axis, axes, asked)]
    return ", ".join(parts)


_CLIENT_SIDE = ("client", "channel", "event_loop", "channel_options", "server_options", "service")


def _says(axis: str, axes: dict[str, object], omit: Iterable[str]) -> bool:
    return axis not in omit and axes[axis] != DEFAULTS[axis] and _applies(axis, axes)


def _client_side_words(axis: str, axes: dict[str, object]) -> str:
    """'through the sync-threads client', 'a new channel per RPC', 'on uvloop', 'server options max-streams-1'."""
    value = axes[axis]
    if axis == "client":
        return f"through the {value} client"
    if axis == "channel":
        return "a new channel per RPC" if value == "per-call" else f"channel {value}"
    if axis == "event_loop":
        return f"on {value}"
    if axis == "service":
        return "on gRPC's BenchmarkService" if value == "benchmark" else f"service {value}"
    return f"{axis.split('_')[0]} options {value}"


_WORK_VERBS = {
    "handler_wait_ms": "wait {:g} ms",
    "handler_block_ms": "block {:g} ms",
    "handler_cpu_us": "burn {:g} us of CPU",
}


def _work_phrase(axes: dict[str, object], omit: Iterable[str] = ()) -> str:
    """The handler work per message in words, 'handlers wait 2 ms' ('' for none: the lab's plain handlers)."""
    done = [verb.format(float(axes[axis])) for axis, verb in _WORK_VERBS.items() if axis not in omit and axes[axis]]
    return f"handlers {' and '.join(done)}" if done else ""


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
        elif axis in _WORK_VERBS:
            only = {a: 0 for a in _WORK_VERBS} | {axis: value}
            words.append(_work_phrase(only) or f"no handler {axis.removeprefix('handler_').split('_')[0]}")
        elif axis in _CLIENT_SIDE:
            words.append(_client_side_words(axis, axes))
        elif axis not in ("stream_messages", "workers"):
            words.append(str(value))
    return ", ".join(dict.fromkeys(words)) or "the same cell"


def _repetitions_text(counts: Sequence[int]) -> str:
    if len(set(counts)) == 1:
        return f"{_plural(counts[0], 'repetition')} each" if len(counts) > 1 else _plural(counts[0], "repetition")
    return " and ".join(str(n) for n in counts) + " repetitions"


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
