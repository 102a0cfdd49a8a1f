"""When does compression pay on a link? The measured break-even rate, and the one predicted from loopback.

Both compare one compression setting (``other``, e.g. app-gzip-1) with another (``base``, e.g. none) in
cells that differ in nothing else, by RPC/s at the same concurrency:

* **measured** (:func:`measured`): over the shaped links (``veth-<rate>``) of a run, the median RPC/s of
  each setting per rate. Where ``other`` beats ``base`` (by more than :data:`WIN`: smaller differences are
  within the run-to-run spread of these cells) at one rate and loses at a faster one, the break-even lies
  between them; it is placed where the log of the RPC/s ratio crosses zero, interpolated on a log rate axis.
* **predicted** (:func:`predicted`), from loopback cells only (no link in the way): a closed loop with the
  link and the CPUs working in parallel (several RPCs in flight) runs at the slower of two limits,
  the CPU limit (the busier side's CPU per RPC: 1 / max(server, generator) CPU-seconds per RPC per
  CPU) and the link limit (the link's TCP payload rate, :func:`bench.spec.link.payload_rate_bps`, over
  the wire bytes per RPC of the busier direction, since tbf shapes each direction on its own). ``other``
  saves bytes and costs CPU, so ``base`` becomes the faster once the link lets it past ``other``'s CPU
  limit: at rate = ``other``'s CPU limit x ``base``'s bytes per RPC x 8 / payload efficiency. Below that
  rate ``other`` wins by the ratio of the bytes, so a setting that saves less than :data:`WIN` of them is
  said never to pay.
  The notebook also shows the serial model (one RPC at a time: bytes saved x 8 / CPU spent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..spec.link import Link, payload_rate_bps

WIN = 1.05  # "beats": more than 5 % more RPC/s (the repetitions of one cell spread by up to a few %)


def link_rate(value: object) -> float | None:
    """A link value's shaped rate in bit/s (None: loopback or unshaped veth)."""
    rate = Link.parse(str(value)).rate_bps
    return float(rate) if rate is not None else None


@dataclass(frozen=True)
class Measured:
    rate_bps: float | None  # interpolated break-even (None: no crossing among the rates measured)
    bracket: tuple[float, float] | None  # the two measured rates it lies between
    ratios: dict[float, float]  # rate -> RPC/s of other / RPC/s of base (medians)
    verdict: str  # one line


def measured(rows: pd.DataFrame, base: str = "none", other: str = "app-gzip-1") -> Measured:
    """The break-even from shaped-link rows that differ only in link and compression (failed rows excluded)."""
    ok = rows[~rows["failed"].astype(bool)]
    ok = ok.assign(rate_bps=ok["link"].astype(str).map(link_rate)).dropna(subset=["rate_bps"])
    med = ok.groupby(["compression", "rate_bps"], observed=True)["rps"].median()
    ratios: dict[float, float] = {}
    for rate in sorted(ok["rate_bps"].unique()):
        if (base, rate) in med.index and (other, rate) in med.index and med[(base, rate)] > 0:
            ratios[float(rate)] = float(med[(other, rate)] / med[(base, rate)])
    rates = sorted(ratios)
    if not rates:
        return Measured(None, None, ratios, f"no shaped link with both {base} and {other}")
    first_win = next((rate for rate in rates if ratios[rate] > WIN), None)
    if first_win is None:
        return Measured(None, None, ratios, f"{other} never beats {base} by more than {WIN - 1:.0%} here")
    loss = next((rate for rate in rates if rate > first_win and ratios[rate] <= 1), None)
    if loss is None:
        return Measured(None, None, ratios, f"{other} beats {base} up to the fastest rate measured, {_mbit(rates[-1])}")
    slow = max(rate for rate in rates if rate < loss and ratios[rate] > WIN)
    a, b = math.log(ratios[slow]), math.log(ratios[loss])
    t = a / (a - b)
    rate = math.exp(math.log(slow) + t * (math.log(loss) - math.log(slow)))
    return Measured(rate, (slow, loss), ratios, f"{other} beats {base} below about {_mbit(rate)}")


@dataclass(frozen=True)
class Predicted:
    rate_bps: float | None  # None: other never loses (or never wins): see verdict
    cpu_limit_rps: dict[str, float]  # setting -> CPU-bound RPC/s from loopback CPU per RPC
    bytes_per_rpc: dict[str, float]  # setting -> wire bytes per RPC, busier direction
    verdict: str


def cpu_limit_rps(row: pd.Series) -> float:
    """RPC/s at which the busier side (server or generator) would use all of its CPUs."""
    server_cpus = len(str(row["server_cpus"]).split(",")) if str(row.get("server_cpus", "")) else 1
    loadgen_cpus = len(str(row["loadgen_cpus"]).split(",")) if str(row.get("loadgen_cpus", "")) else 1
    per_rpc_s = max(row["server_cpu_us_per_rpc"] / server_cpus, row["loadgen_cpu_us_per_rpc"] / loadgen_cpus) / 1e6
    return 1.0 / per_rpc_s


def predicted(loopback: pd.DataFrame, base: str = "none", other: str = "app-gzip-1") -> Predicted:
    """The break-even predicted from loopback rows that differ only in compression (medians over repetitions)."""
    ok = loopback[~loopback["failed"].astype(bool)]
    cols = ["server_cpu_us_per_rpc", "loadgen_cpu_us_per_rpc", "wire_tx_bytes_per_rpc", "wire_rx_bytes_per_rpc"]
    med = ok.groupby("compression", observed=True)[cols].median()
    first = ok.drop_duplicates("compression").set_index("compression")
    if base not in med.index or other not in med.index:
        return Predicted(None, {}, {}, f"no loopback cells of both {base} and {other}")
    cpu, wire = {}, {}
    for setting in (base, other):
        row = pd.concat([med.loc[setting], first.loc[setting, ["server_cpus", "loadgen_cpus"]]])
        cpu[setting] = cpu_limit_rps(row)
        wire[setting] = float(max(med.loc[setting, "wire_tx_bytes_per_rpc"], med.loc[setting, "wire_rx_bytes_per_rpc"]))
    efficiency = payload_rate_bps(1.0)
    if wire[base] / wire[other] <= WIN:
        saved = 1 - wire[other] / wire[base]
        return Predicted(None, cpu, wire, f"{other} saves {saved:.1%} of the bytes: it never pays")
    if cpu[other] >= cpu[base]:
        return Predicted(None, cpu, wire, f"{other} costs no CPU: it always pays")
    rate = cpu[other] * wire[base] * 8 / efficiency
    return Predicted(rate, cpu, wire, f"{other} should beat {base} below about {_mbit(rate)}")


def serial_mbit(saved_bytes: float, cpu_us: float) -> float:
    """The serial model: link speed (Mbit/s) at which sending ``saved_bytes`` takes as long as ``cpu_us`` of CPU."""
    if saved_bytes <= 0:
        return 0.0  # saves nothing: never pays
    if cpu_us <= 0:
        return float("inf")  # costs nothing: always pays
    return saved_bytes * 8 / (cpu_us * 1e-6) / 1e6


def _mbit(rate_bps: float) -> str:
    return f"{rate_bps / 1e6:,.0f} Mbit/s"


def to_markdown(df: pd.DataFrame, payload_kind: str = "text", rpc: str = "unary", base: str = "none",
                other: str = "app-gzip-1") -> str:  # fmt: skip
    """The README's links table: RPC/s and p50 of ``base`` and ``other`` per link, and both break-evens."""
    ok = df[~df["failed"].astype(bool) & (df["payload_kind"] == payload_kind) & (df["rpc"] == rpc)]
    med = ok.groupby(["link", "compression"], observed=True)[["rps", "lat_p50_ms"]].median()
    links = sorted({str(v) for v in ok["link"]}, key=lambda v: (link_rate(v) is None, link_rate(v) or 0, v != "veth"))
    lines = [
        f"| link | {base} RPC/s | {other} RPC/s | {other} / {base} | p50 ms {base} / {other} |",
        "|---|---:|---:|---:|---:|",
    ]
    for link in links:
        if (link, base) not in med.index or (link, other) not in med.index:
            continue
        b, o = med.loc[(link, base)], med.loc[(link, other)]
        name = {"veth": "veth (unshaped)"}.get(link, link)
        lines.append(
            f"| {name} | {b['rps']:,.0f} | {o['rps']:,.0f} | {o['rps'] / b['rps']:.2f}x | "
            f"{b['lat_p50_ms']:.2f} / {o['lat_p50_ms']:.2f} |"
        )
    found = measured(ok, base, other)
    guess = predicted(ok[ok["link"] == "loopback"], base, other)
    lines += [
        "",
        f"Measured: {found.verdict}"
        + (f" (between {_mbit(found.bracket[0])} and {_mbit(found.bracket[1])})." if found.bracket else "."),
        f"Predicted from the loopback cells: {guess.verdict}"
        + (
            f" ({other}'s CPU limit {guess.cpu_limit_rps[other]:,.0f} RPC/s x {base}'s "
            f"{guess.bytes_per_rpc[base]:,.0f} B per RPC in the busier direction x 8 / {payload_rate_bps(1.0):.3f})."
            if guess.rate_bps
            else "."
        ),
    ]
    if found.rate_bps and guess.rate_bps:
        lines.append(f"Measured / predicted: {found.rate_bps / guess.rate_bps:.2f}.")
    return "\n".join(lines) + "\n"
