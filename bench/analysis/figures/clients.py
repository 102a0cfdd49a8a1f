"""The client side: the same load through each gRPC Python client API, and a new channel per call against reuse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from .draw import TITLES, Drawn, Skip, bar_legend, new_figure, save
from .select import held_text, hold_fixed, ok_rows, order, stats

CLIENT_COLOR = {"aio": "tab:orange", "sync-threads": "tab:blue", "sync-future": "tab:green"}
CHANNEL_COLOR = {"reuse": "0.45", "per-call": "tab:red"}


def _bars(ax, sub: pd.DataFrame, groups: list, group_axis: str, series: list, series_axis: str, metric: str, colors):
    """Grouped bars: one group per value of ``group_axis``, one bar per value of ``series_axis``; median with
    min..max error bars, hatched where the load generator was saturated. Returns whether any bar was."""
    width = 0.8 / len(series)
    any_sat = False
    for j, value in enumerate(series):
        xs, med, lo, hi, hatches = [], [], [], [], []
        for i, group in enumerate(groups):
            st = stats(sub[(sub[group_axis] == group) & (sub[series_axis] == value)].assign(one=1), ["one"], metric)
            if st.empty:
                continue
            xs.append(i + (j - (len(series) - 1) / 2) * width)
            med.append(st["med"].iloc[0])
            lo.append(st["med"].iloc[0] - st["lo"].iloc[0])
            hi.append(st["hi"].iloc[0] - st["med"].iloc[0])
            hatches.append("//" if st["saturated"].iloc[0] else "")
        bars = ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, color=colors[value])
        for bar, hatch in zip(bars, hatches, strict=True):
            bar.set_hatch(hatch)
            bar.set_edgecolor("white" if hatch else bar.get_facecolor())
            any_sat |= bool(hatch)
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_ylim(bottom=0)
    return any_sat


def clients(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["clients"]
    ok = ok_rows(df)
    ok = ok[(ok["loadgen"].astype(str) == "python") & (ok["channel"].astype(str) == "reuse")]
    if ok["client"].astype(str).nunique() < 2:
        raise Skip("the run has cells of one client model only (axis client: aio, sync-threads, sync-future)")
    sub, held = hold_fixed(ok, ["client", "concurrency"])
    models = order("client", sub["client"])
    if len(models) < 2:
        raise Skip("no two client models were measured with the other axes equal")
    levels = sorted(sub["concurrency"].unique())
    metrics = (
        ("rps", "throughput (RPC/s)"),
        ("loadgen_cpu_us_per_rpc", "client CPU per RPC (us)"),
        ("lat_p50_ms", "p50 latency (ms)"),
    )
    fig, axes = new_figure(manifest, len(metrics), width=4.2)
    any_sat = False
    for ax, (metric, label) in zip(axes, metrics, strict=True):
        any_sat |= _bars(ax, sub, levels, "concurrency", models, "client", metric, CLIENT_COLOR)
        ax.set_xlabel("RPCs in flight")
        ax.set_title(label, fontsize=10)
    handles, labels = bar_legend({m: CLIENT_COLOR[m] for m in models}, any_sat)
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title)
    caption = (
        "The same RPCs through each gRPC Python client API, on reused channels: grpc.aio (one event loop), "
        "blocking stub calls from one thread per RPC in flight (sync-threads), and .future() calls made from one "
        "thread (sync-future). Client CPU is the load generator's, per OK RPC. Bars: median over repetitions; "
        f"error bars: min..max. {held_text(held)}"
    )
    if any_sat:
        caption += " Hatched bars: the load generator was saturated, so their throughput is the client's limit."
    return Drawn(save(fig, out_dir, "clients"), title, caption)


def channels(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["channels"]
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
    metrics = (
        ("lat_p50_ms", "p50 latency of an RPC (ms)"),
        ("time_to_first_rpc_ms", "time to first RPC on a new channel (ms)"),
        ("loadgen_cpu_us_per_rpc", "client CPU per RPC (us)"),
    )
    fig, axes = new_figure(manifest, len(metrics), width=4.2)
    any_sat = False
    for ax, (metric, label) in zip(axes, metrics, strict=True):
        any_sat |= _bars(ax, sub, models, "client", kinds, "channel", metric, CHANNEL_COLOR)
        ax.set_xlabel("client")
        ax.set_title(label, fontsize=10)
    handles, labels = bar_legend({f"channel={k}": CHANNEL_COLOR[k] for k in kinds}, any_sat)
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title)
    caption = (
        "A channel reused for the whole cell against a new channel per RPC (connect, HTTP/2 setup, the call, "
        "close: all inside the RPC's latency). Time to first RPC: before the warm-up, each cell times creating a "
        "fresh channel and making its first call on it, whatever its channel axis. Bars: median over "
        f"repetitions; error bars: min..max. {held_text(held)}"
    )
    if any_sat:
        caption += " Hatched bars: the load generator was saturated."
    return Drawn(save(fig, out_dir, "channels"), title, caption)
