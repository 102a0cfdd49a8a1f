"""The TLS study: TLS and mTLS against plaintext, CPU and wire bytes added per RPC."""

from __future__ import annotations

import math

from .confidence import _floor_reasons, _inside, _label, _limit_reasons, _sentence, _spread_judgement
from .engine import CLIENT_CPU, CPU, WIRE, CellStats, Finding, Run, _instance, pairs
from .words import _context, _difference, _number, _others_tail, _server_name, _signed, _times


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
        tail = _others_tail(others, "pairs")
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
