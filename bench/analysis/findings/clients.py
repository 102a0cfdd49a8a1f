"""The client-side studies: each gRPC Python client API against aio, a channel per RPC against a reused one, uvloop
against asyncio, and the server and channel options presets against the default."""

from __future__ import annotations

import math

from .engine import CLIENT_CPU, FIRST_RPC, P50, CellStats, Finding, Run, headline_metric
from .pairwise import AxisStudy, axis_findings
from .words import _number, _signed


def _channel_extra(reused: CellStats, per_call: CellStats) -> tuple[str, dict[str, float]]:
    """What a fresh channel adds to each RPC's latency, and what the first RPC on a new channel took."""
    added = per_call.median(P50) - reused.median(P50)
    first = per_call.median(FIRST_RPC)
    words = f" ({_signed(P50, added)} ms per RPC"
    words += f"; the first RPC on a new channel took {_number(P50, first)} ms)" if math.isfinite(first) else ")"
    return words, {"p50_added_ms": added, "time_to_first_rpc_ms": first}


CLIENT = AxisStudy("client", "client", metric=lambda a, b: CLIENT_CPU, name=lambda v: f"{v} client")
CHANNEL = AxisStudy(
    "channel",
    "channel",
    metric=lambda a, b: P50,
    name=lambda v: "channel per RPC" if v == "per-call" else "reused channel",
    extra=_channel_extra,
)
EVENT_LOOP = AxisStudy("event_loop", "event_loop", metric=lambda a, b: headline_metric([a, b]))
SERVER_OPTIONS = AxisStudy(
    "options",
    "server_options",
    metric=lambda a, b: headline_metric([a, b]),
    name=lambda v: f"server options {v}",
)
CHANNEL_OPTIONS = AxisStudy(
    "options",
    "channel_options",
    metric=lambda a, b: headline_metric([a, b]),
    name=lambda v: f"channel options {v}",
)


def client(run: Run) -> list[Finding]:
    """Each client API (sync-threads, sync-future) against aio: the client's CPU per RPC decides."""
    return axis_findings(run, CLIENT)


def channel(run: Run) -> list[Finding]:
    """A new channel per RPC against a reused one: p50 decides; the time to the first RPC is quoted."""
    return axis_findings(run, CHANNEL)


def event_loop(run: Run) -> list[Finding]:
    """uvloop against asyncio under the aio server and client: the headline metric decides."""
    return axis_findings(run, EVENT_LOOP)


def options(run: Run) -> list[Finding]:
    """Each server and channel options preset against the default: the headline metric decides."""
    return axis_findings(run, SERVER_OPTIONS) + axis_findings(run, CHANNEL_OPTIONS)
