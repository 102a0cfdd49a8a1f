"""When does compression pay on a link? The measured break-even rate, and the one predicted from loopback.

Both compare one compression setting (``other``, e.g. app-gzip-1) with another (``base``, e.g. none) in
cells that differ in nothing else, by RPC/s at the same concurrency:

* **measured** (:func:`measured`): over the shaped links (``veth-<rate>``) of a run, the median RPC/s of
  each setting per rate. Where ``other`` beats ``base`` at one rate and loses at the next faster one, the
  break-even lies between them; it is placed where the log of the RPC/s ratio crosses zero, interpolated
  on a log rate axis.
* **predicted** (:func:`predicted`), from loopback cells only (no link in the way): a closed loop with the
  link and the CPUs working in parallel (several RPCs in flight) runs at the slower of two limits,
  the CPU limit (the busier side's CPU per RPC: 1 / max(server, generator) CPU-seconds per RPC per
  CPU) and the link limit (the link's TCP payload rate, :func:`bench.spec.link.payload_rate_bps`, over
  the wire bytes per RPC of the busier direction, since tbf shapes each direction on its own). ``other``
  saves bytes and costs CPU, so ``base`` becomes the faster once the link lets it past ``other``'s CPU
  limit: at rate = ``other``'s CPU limit x ``base``'s bytes per RPC x 8 / payload efficiency.
  The notebook also shows the serial model (one RPC at a time: bytes saved x 8 / CPU spent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..spec.link import Link, payload_rate_bps


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
    for slow, fast in zip(rates, rates[1:], strict=False):
        if ratios[slow] > 1 >= ratios[fast]:
            a, b = math.log(ratios[slow]), math.log(ratios[fast])
            t = a / (a - b) if a != b else 0.5
            rate = math.exp(math.log(slow) + t * (math.log(fast) - math.log(slow)))
            return Measured(rate, (slow, fast), ratios, f"{other} beats {base} below about {_mbit(rate)}")
    if not rates:
        return Measured(None, None, ratios, f"no shaped link with both {base} and {other}")
    if all(r > 1 for r in ratios.values()):
        return Measured(None, None, ratios, f"{other} beats {base} at every rate measured (up to {_mbit(rates[-1])})")
    if all(r <= 1 for r in ratios.values()):
        return Measured(None, None, ratios, f"{other} loses to {base} at every rate measured (from {_mbit(rates[0])})")
    return Measured(None, None, ratios, "no single crossing: the RPC/s ratio changes sides more than once")


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
    if wire[other] >= wire[base]:
        return Predicted(None, cpu, wire, f"{other} saves no bytes: it never pays")
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
