"""The `link` axis, interpreted in one place: what lies between the server and its load generators.

Axis values:

* ``loopback`` (the default): server and generators in the harness's own network namespace, the server on
  127.0.0.1; what every run measured before the axis existed;
* ``veth``: the server in one network namespace, the generators in another, joined by a veth pair, no
  shaping (bench.run.netns builds it). The kernel still moves bytes between two network stacks;
* ``veth-<rate>``: the same veth pair rate-limited in both directions with tbf, ``<rate>`` a whole number
  followed by ``kbit``, ``mbit`` or ``gbit`` (SI, as tc reads them: ``veth-100mbit`` is 100,000,000 bit/s).
  The rate is the link's Ethernet frame rate, as on a real link: TCP payload gets
  :func:`payload_rate_bps` of it (headers take the rest).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOOPBACK = "loopback"
VETH = "veth"
UNITS = {"kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
# tbf carries its rate as a 32-bit count of bytes per second (TCA_TBF_RATE64 above that, which the
# netlink library does not send): 34.3 Gbit/s is the most it can shape, far above this machine's veth.
MAX_RATE_BPS = 32 * 10**9
ALLOWED_TEXT = "loopback, veth, veth-<rate> (rate: a whole number + kbit|mbit|gbit, e.g. veth-100mbit)"
_RATE = re.compile(r"veth-([1-9][0-9]*)(kbit|mbit|gbit)")

# Per full-size TCP segment on a 1500-byte MTU link: IPv4 20 + TCP 20 + timestamps 12 bytes of headers
# inside the MTU, and the 14-byte Ethernet header that tbf counts too (it shapes whole frames).
MTU = 1500
TCP_IP_HEADERS = 52
ETHERNET_HEADER = 14


@dataclass(frozen=True)
class Link:
    """One value of the link axis."""

    value: str  # the axis value, e.g. "veth-100mbit"
    rate_bps: int | None  # the shaped rate in bit/s; None: not shaped (loopback, veth)

    @staticmethod
    def parse(value: object) -> Link:
        """The value's meaning; ValueError naming the allowed values for anything else."""
        if value == LOOPBACK or value == VETH:
            return Link(value, None)
        match = _RATE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"unknown value {value!r}; allowed: {ALLOWED_TEXT}")
        rate = int(match[1]) * UNITS[match[2]]
        if rate > MAX_RATE_BPS:
            raise ValueError(f"{value!r}: rate above the 32gbit tbf can shape here; allowed: {ALLOWED_TEXT}")
        return Link(value, rate)

    @property
    def namespaced(self) -> bool:
        """Server and generators in network namespaces of their own (needs CAP_NET_ADMIN + CAP_SYS_ADMIN)."""
        return self.value != LOOPBACK

    @property
    def shaped(self) -> bool:
        return self.rate_bps is not None


def payload_rate_bps(rate_bps: float, mtu: int = MTU) -> float:
    """TCP payload bit/s a link shaped to ``rate_bps`` (frames) carries in full-size segments, one way."""
    return rate_bps * (mtu - TCP_IP_HEADERS) / (mtu + ETHERNET_HEADER)


def rate_text(rate_bps: float) -> str:
    """10_000_000 -> '10 Mbit/s' (for figures and messages)."""
    for unit, scale in (("Gbit/s", 10**9), ("Mbit/s", 10**6), ("kbit/s", 10**3)):
        if rate_bps >= scale:
            return f"{rate_bps / scale:g} {unit}"
    return f"{rate_bps:g} bit/s"
