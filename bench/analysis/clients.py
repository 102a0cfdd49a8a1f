"""The client side of a run as tables: client models, reused against per-call channels (with the time to first
RPC), and the settings a client-side study compares against its baseline (uvloop, options presets, records).

Every number is the median over a cell's successful repetitions. The README's tables are what this prints for its
committed run (a test checks that they still are):

    python -c "from bench import results; from bench.analysis import clients; \\
        print(clients.to_markdown(results.load('results/clients-2026-12-01')))"
"""

from __future__ import annotations

import pandas as pd

from .figures.select import ok_rows
from .table import fmt_size

METRICS = (
    "rps",
    "lat_p50_ms",
    "lat_p99_ms",
    "time_to_first_rpc_ms",
    "loadgen_cpu_us_per_rpc",
    "server_cpu_us_per_rpc",
)
AXES = (
    "impl",
    "client",
    "channel",
    "tls",
    "concurrency",
    "event_loop",
    "channel_options",
    "server_options",
    "payload_kind",
    "payload_size",
    "mode",
)


def medians(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (Python generator, unary): its axes, the medians of METRICS, repetitions, saturation."""
    ok = ok_rows(df)
    ok = ok[(ok["loadgen"].astype(str) == "python") & (ok["rpc"].astype(str) == "unary")]
    if ok.empty:
        return pd.DataFrame(columns=[*AXES, *METRICS, "n", "saturated"])
    grouped = ok.groupby("cell_key", observed=True)
    out = grouped[list(METRICS)].median()
    out["n"] = grouped.size()
    out["saturated"] = grouped["loadgen_saturated"].any()
    first = grouped[list(AXES)].first()
    for axis in AXES:
        out[axis] = first[axis].astype(str) if axis != "payload_size" else first[axis].astype(int)
    return out.reset_index()


def _num(value: float, digits: int = 0) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{value:,.{digits}f}"


def _pick(cells: pd.DataFrame, **axes: object) -> pd.DataFrame:
    chosen = cells
    for axis, value in axes.items():
        chosen = chosen[chosen[axis] == value]
    return chosen


BASE = {
    "impl": "sync",
    "tls": "off",
    "event_loop": "asyncio",
    "channel_options": "default",
    "server_options": "default",
    "payload_kind": "text",
    "payload_size": 1024,
    "mode": "closed",
}


def _flag(row: pd.Series) -> str:
    return " *" if row["saturated"] else ""


def models_table(cells: pd.DataFrame) -> list[str]:
    """Client models on reused channels: RPC/s, client and server CPU per RPC, p50, at each concurrency."""
    rows = _pick(cells, channel="reuse", **BASE)
    lines = [
        "| client | in flight | RPC/s | client CPU/RPC | server CPU/RPC | p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency in sorted(rows["concurrency"].astype(int).unique()):
        for client in ("aio", "sync-threads", "sync-future"):
            sel = rows[(rows["client"] == client) & (rows["concurrency"].astype(int) == concurrency)]
            for _, r in sel.iterrows():
                lines.append(
                    f"| {client} | {concurrency} | {_num(r['rps'])}{_flag(r)} | {_num(r['loadgen_cpu_us_per_rpc'])} us "
                    f"| {_num(r['server_cpu_us_per_rpc'])} us | {_num(r['lat_p50_ms'], 3)} ms "
                    f"| {_num(r['lat_p99_ms'], 3)} ms |"
                )
    return lines


def channels_table(cells: pd.DataFrame) -> list[str]:
    """Reused against per-call channels, one RPC in flight: p50, time to first RPC, client CPU per RPC."""
    base = {k: v for k, v in BASE.items() if k != "tls"}
    rows = _pick(cells, **base)
    rows = rows[rows["concurrency"].astype(int) == 1]
    lines = [
        "| client | TLS | channel | p50 | p99 | time to first RPC | client CPU/RPC | RPC/s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for tls in ("off", "on", "mtls"):
        for client in ("aio", "sync-threads", "sync-future"):
            for channel in ("reuse", "per-call"):
                sel = rows[(rows["client"] == client) & (rows["tls"] == tls) & (rows["channel"] == channel)]
                for _, r in sel.iterrows():
                    lines.append(
                        f"| {client} | {tls} | {channel} | {_num(r['lat_p50_ms'], 3)} ms "
                        f"| {_num(r['lat_p99_ms'], 3)} ms "
                        f"| {_num(r['time_to_first_rpc_ms'], 2)} ms | {_num(r['loadgen_cpu_us_per_rpc'])} us "
                        f"| {_num(r['rps'])}{_flag(r)} |"
                    )
    return lines


def _setting(r: pd.Series) -> str:
    parts = [f"{r['impl']} server"]
    if r["event_loop"] != "asyncio":
        parts.append(r["event_loop"])
    if r["channel_options"] != "default" or r["server_options"] != "default":
        parts.append(f"options {r['channel_options']} / {r['server_options']} (client / server)")
    parts.append(f"{fmt_size(int(r['payload_size']))} {r['payload_kind']}")
    return ", ".join(parts)


def settings_table(cells: pd.DataFrame) -> list[str]:
    """The aio client on reused channels, 16 in flight: event loop, options presets and payload kind side by side."""
    rows = _pick(cells, client="aio", channel="reuse", tls="off", mode="closed")
    rows = rows[rows["concurrency"].astype(int) == 16]
    lines = [
        "| setting | RPC/s | server CPU/RPC | client CPU/RPC | p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    key = rows.assign(
        _impl=rows["impl"] != "sync",
        _opts=(rows["channel_options"] != "default") | (rows["server_options"] != "default"),
    ).sort_values(["_impl", "event_loop", "_opts", "server_options", "payload_size", "payload_kind"])
    for _, r in key.iterrows():
        lines.append(
            f"| {_setting(r)} | {_num(r['rps'])}{_flag(r)} | {_num(r['server_cpu_us_per_rpc'])} us "
            f"| {_num(r['loadgen_cpu_us_per_rpc'])} us | {_num(r['lat_p50_ms'], 3)} ms "
            f"| {_num(r['lat_p99_ms'], 3)} ms |"
        )
    return lines


def to_markdown(df: pd.DataFrame) -> str:
    cells = medians(df)
    reps = sorted(cells["n"].unique()) if not cells.empty else []
    note = (
        f"Medians of {', '.join(map(str, reps))} repetitions; * the load generator was >= 90 % busy "
        "(the RPC/s is the client's limit)."
    )
    parts = [*models_table(cells), "", *channels_table(cells), "", *settings_table(cells), "", note]
    return "\n".join(parts)
