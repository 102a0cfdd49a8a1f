"""The client side: the same load through each gRPC Python client API, a new channel per call against reuse, and
what each server and channel options preset does."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from .bars import Panel, Series, bar_figure
from .draw import TITLES, Drawn, Skip
from .select import held_text, hold_fixed, ok_rows, order

CLIENT_COLOR = {"aio": "tab:orange", "sync-threads": "tab:blue", "sync-future": "tab:green"}
CHANNEL_COLOR = {"reuse": "0.45", "per-call": "tab:red"}
PRESET_COLOR = "0.45"
P50_COLOR, P99_COLOR = "tab:cyan", "tab:purple"
BARS = "Bars: median over repetitions; error bars: min..max."


def _by(axis: str, value: object):
    return lambda rows: rows[axis].astype(str) == str(value)


def clients(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    ok = ok_rows(df)
    ok = ok[(ok["loadgen"].astype(str) == "python") & (ok["channel"].astype(str) == "reuse")]
    if ok["client"].astype(str).nunique() < 2:
        raise Skip("the run has cells of one client model only (axis client: aio, sync-threads, sync-future)")
    sub, held = hold_fixed(ok, ["client", "concurrency"])
    models = order("client", sub["client"])
    if len(models) < 2:
        raise Skip("no two client models were measured with the other axes equal")
    panels = [
        Panel(label, tuple(Series(m, CLIENT_COLOR[m], metric, _by("client", m)) for m in models))
        for metric, label in (
            ("rps", "throughput (RPC/s)"),
            ("loadgen_cpu_us_per_rpc", "client CPU per RPC (us)"),
            ("lat_p50_ms", "p50 latency (ms)"),
        )
    ]
    caption = (
        "The same RPCs through each gRPC Python client API, on reused channels: grpc.aio (one event loop), "
        "blocking stub calls from one thread per RPC in flight (sync-threads), and .future() calls made from one "
        f"thread (sync-future). Client CPU is the load generator's, per OK RPC. {BARS} {held_text(held)}"
    )
    levels = sorted(sub["concurrency"].unique())
    axis_words = "RPCs in flight"
    return bar_figure(
        manifest, sub, "concurrency", levels, panels, axis_words, TITLES["clients"], caption, out_dir, "clients"
    )


def channels(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    ok = ok_rows(df)
    ok = ok[ok["loadgen"].astype(str) == "python"]
    if not (ok["channel"].astype(str) == "per-call").any():
        raise Skip("the run has no channel = per-call cells")
    sub, held = hold_fixed(ok, ["client", "channel"])
    models = [
        m for m in order("client", sub["client"]) if sub[sub["client"] == m]["channel"].astype(str).nunique() == 2
    ]
    if not models:
        raise Skip("no client model was measured with both reused and per-call channels, the other axes equal")
    sub = sub[sub["client"].isin(models)]
    kinds = [c for c in ("reuse", "per-call") if (sub["channel"] == c).any()]
    panels = [
        Panel(label, tuple(Series(f"channel={k}", CHANNEL_COLOR[k], metric, _by("channel", k)) for k in kinds))
        for metric, label in (
            ("lat_p50_ms", "p50 latency of an RPC (ms)"),
            ("time_to_first_rpc_ms", "time to first RPC on a new channel (ms)"),
            ("loadgen_cpu_us_per_rpc", "client CPU per RPC (us)"),
        )
    ]
    caption = (
        "A channel reused for the whole cell against a new channel per RPC (connect, HTTP/2 setup, the call, "
        "close: all inside the RPC's latency). Time to first RPC: before the warm-up, each cell times creating a "
        f"fresh channel and making its first call on it, whatever its channel axis. {BARS} {held_text(held)}"
    )
    title = TITLES["channels"]
    return bar_figure(manifest, sub, "client", models, panels, "client", title, caption, out_dir, "channels")


PRESET_AXES = ("channel_options", "server_options")


def preset_label(channel_options: object, server_options: object) -> str:
    """A group's name, a line per side that has a preset: 'default', 'server: max-streams-1',
    'client: keepalive\nserver: keepalive'."""
    sides = (("client", channel_options), ("server", server_options))
    return "\n".join(f"{side}: {value}" for side, value in sides if value != "default") or "default"


def options(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    """Each options preset (servers.config's, on the server_options and channel_options axes) against the default,
    the other axes held: RPC/s, p50 and p99, and server CPU per RPC."""
    ok = ok_rows(df)
    if all(ok[axis].astype(str).nunique() < 2 for axis in PRESET_AXES):
        raise Skip("the run has no options presets but the default (axes server_options, channel_options)")
    sub, held = hold_fixed(ok, list(PRESET_AXES))
    sub = sub.assign(
        preset=[preset_label(c, s) for c, s in zip(sub["channel_options"], sub["server_options"], strict=True)]
    )
    presets = sorted(sub["preset"].unique(), key=lambda p: (p != "default", p))
    if len(presets) < 2 or "default" not in presets:
        raise Skip("no options preset was measured beside the default with the other axes equal")
    panels = [
        Panel("throughput (RPC/s)", (Series("", PRESET_COLOR, "rps"),)),
        Panel("latency (ms)", (Series("p50", P50_COLOR, "lat_p50_ms"), Series("p99", P99_COLOR, "lat_p99_ms"))),
        Panel("server CPU per RPC (us)", (Series("", PRESET_COLOR, "server_cpu_us_per_rpc"),)),
    ]
    caption = (
        "Each options preset (servers/config.py: keepalive pings every second, grpc.max_concurrent_streams N) "
        "against gRPC's defaults, on the same cell; where a group names both a client and a server preset, the "
        f"cell set both. {BARS} {held_text(held)}"
    )
    title = TITLES["options"]
    return bar_figure(
        manifest, sub, "preset", presets, panels, "options preset", title, caption, out_dir, "options", width=5.0
    )
