"""Latency figures: the open-loop rate sweep and its knee, HDR percentile curves, per-message times of streams."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hdrh.histogram import HdrHistogram

from ...run.manifest import Manifest
from .. import results
from .draw import (
    BARS,
    IMPL_COLOR,
    IMPL_STYLE,
    TITLES,
    Drawn,
    Skip,
    bar_legend,
    errorbar,
    finish,
    log_if_wide,
    new_figure,
    save,
)
from .select import held_text, hold_fixed, ok_rows, order, stats


def knee(points: pd.DataFrame, slo_ms: float) -> float | None:
    """Highest offered rate whose median p99 and every lower rate's stay at or under the SLO (None: none does)."""
    best = None
    for rate, p99 in zip(points["rate"], points["med"], strict=True):
        if not p99 <= slo_ms:
            break
        best = rate
    return best


def open_loop(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["open_loop"]
    ok = ok_rows(df)
    opened = ok[ok["mode"] == "open"]
    if opened.empty:
        raise Skip("the run has no open-loop cells")
    sub, held = hold_fixed(opened, ["rate", "impl"], base=ok)
    impls = [i for i in order("impl", sub["impl"]) if sub.loc[sub["impl"] == i, "rate"].nunique() >= 2]
    if not impls:
        raise Skip("no server model was measured at two open-loop rates with the other axes equal")
    slo = manifest.settings.slo_p99_ms
    fig, (ax,) = new_figure(manifest, 1, width=7.5, height=4.8)
    knees, all_stats, ys = [], [], []
    for n, impl in enumerate(impls):
        rows = sub[sub["impl"] == impl].dropna(subset=["lat_p99_ms", "lat_p50_ms", "rps"])
        p99 = stats(rows, ["rate"], "lat_p99_ms").sort_values("rate")
        p50 = stats(rows, ["rate"], "lat_p50_ms").sort_values("rate")
        tput = stats(rows, ["rate"], "rps").sort_values("rate")
        color = IMPL_COLOR.get(impl)
        xerr = [tput["med"] - tput["lo"], tput["hi"] - tput["med"]]
        ax.errorbar(tput["med"], p50["med"], yerr=[p50["med"] - p50["lo"], p50["hi"] - p50["med"]], xerr=xerr,
                    color=color, ls=":", marker=".", capsize=2, alpha=0.7, label=f"{impl} p50")  # fmt: skip
        errorbar(ax, tput["med"], p99, color=color, label=f"{impl} p99", **IMPL_STYLE.get(impl, {}))
        offset = (5, 5) if n % 2 == 0 else (5, -11)  # keep two server models' labels apart
        for x, y, rate in zip(tput["med"], p99["med"], p99["rate"], strict=True):
            ax.annotate(f"{rate:g}/s", (x, y), xytext=offset, textcoords="offset points", fontsize=7, color=color)
        all_stats.append(p99)
        ys += [*p99["hi"], *p50["lo"]]
        if slo:
            k = knee(p99, slo)
            if k is None:
                knees.append(f"{impl}: no rate met it")
            else:
                i = p99.index[p99["rate"] == k][0]
                ax.plot(tput.loc[i, "med"], p99.loc[i, "med"], marker="*", ms=18, color=color, mec="black", ls="none",
                        label=f"{impl} knee: {k:g} RPC/s offered", zorder=6)  # fmt: skip
                knees.append(f"{impl}: {k:g} RPC/s offered")
    if slo:
        ax.axhline(slo, color="red", ls="--", lw=1, label=f"SLO p99 = {slo:g} ms")
        ys.append(slo)
    log_if_wide(ax, ys)
    ax.set_xlabel("achieved throughput (RPC/s)")
    ax.set_ylabel("latency from intended send time (ms)")
    ax.set_xlim(left=0)
    caption = (
        "Each point is one offered rate (labelled), placed at the throughput achieved; p99 solid, p50 dotted. "
        f"{BARS} (both axes). "
    )
    if slo:
        caption += (
            f"Knee (star): the highest offered rate whose median p99 and every lower rate's stay within the "
            f"spec's slo_p99_ms = {slo:g} ms ({'; '.join(knees)}). "
        )
    else:
        caption += "No knee: the manifest has no settings.slo_p99_ms. "
    caption += held_text(held)
    return finish(fig, ax, all_stats, title, caption, out_dir, "open_loop", ncol=4)


PERCENTILE_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99)


def merged_histogram(rows: pd.DataFrame, which: str = "call") -> HdrHistogram | None:
    """The repetitions' histograms of one cell added together (results.histogram decodes each)."""
    total = None
    for _, row in rows.iterrows():
        try:
            hist = results.histogram(row, which)
        except Exception as exc:  # noqa: BLE001 - hdrh raises several types for damaged base64/zlib
            raise results.ResultsError(f"{row['cell_key']} r{row['repetition']}: corrupt hdr_{which} ({exc})") from None
        if total is None:
            total = hist
        else:
            total.add(hist)
    return total


def percentile_curve(hist, top: float = 99.99, points: int = 200) -> tuple[list[float], list[float]]:
    """(x = 1/(1-p), latency ms) from p=0 to ``top`` percent, evenly spaced on the log scale of x."""
    xmax = 1 / (1 - top / 100)
    xs = [xmax ** (i / (points - 1)) for i in range(points)]
    ys = [hist.get_value_at_percentile(100 * (1 - 1 / x)) / 1000.0 for x in xs]
    return xs, ys


def latency_percentiles(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["latency_percentiles"]
    ok = ok_rows(df)
    closed = ok[ok["mode"] == "closed"]
    if closed.empty:
        closed = ok
    sub, held = hold_fixed(closed, ["impl"], base=ok)
    fig, (ax,) = new_figure(manifest, 1, width=7.5, height=4.8)
    drawn, counts = [], []
    for impl in order("impl", sub["impl"]):
        rows = sub[sub["impl"] == impl]
        hist = merged_histogram(rows)
        if hist is None or hist.get_total_count() == 0:
            continue
        xs, ys = percentile_curve(hist)
        ax.plot(xs, ys, color=IMPL_COLOR.get(impl), ls=IMPL_STYLE.get(impl, {}).get("linestyle", "-"),
                label=f"{impl} ({len(rows)} repetitions, {hist.get_total_count():,} RPCs)")  # fmt: skip
        drawn.append(impl)
        counts.append(hist.get_total_count())
    if not drawn:
        raise Skip("no successful cell has a recorded latency histogram")
    ax.set_xscale("log")
    ticks = [1 / (1 - p / 100) for p in PERCENTILE_TICKS]
    ax.set_xticks(ticks, [f"{p:g}%" for p in PERCENTILE_TICKS])
    ax.minorticks_off()
    ax.set_xlim(1, ticks[-1])
    ax.set_xlabel("percentile (log scale of 1/(1-p))")
    ax.set_ylabel("per-call latency (ms)")
    ax.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title)
    caption = (
        "Per-call latency at each percentile, from the cell's HDR histograms of all successful repetitions added "
        f"together (1 us resolution, 3 significant digits). {held_text(held)}"
    )
    if min(counts) < 10_000:
        caption += (
            f" With {min(counts):,} RPCs in the smallest curve, percentiles above {100 * (1 - 1 / min(counts)):.2f}% "
            "are the maximum."
        )
    return Drawn(save(fig, out_dir, "latency_percentiles"), title, caption)


def streaming(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["streaming"]
    ok = ok_rows(df)
    streams = ok[ok["msg_p50_ms"].notna() | ok["first_msg_p50_ms"].notna()]
    if streams.empty:
        raise Skip("the run has no streaming cells with per-message times")
    sub, held = hold_fixed(streams, ["rpc", "impl"], base=ok)
    groups = [
        (rpc, impl)
        for rpc in order("rpc", sub["rpc"])
        for impl in order("impl", sub["impl"])
        if ((sub["rpc"] == rpc) & (sub["impl"] == impl)).any()
    ]
    panels = (
        ("time per message", (("msg_p50_ms", "p50"), ("msg_p99_ms", "p99"))),
        ("time to first message", (("first_msg_p50_ms", "p50"), ("first_msg_p99_ms", "p99"))),
    )
    panels = tuple(p for p in panels if any(sub[m].notna().any() for m, _ in p[1]))
    fig, axes = new_figure(manifest, len(panels), width=5.5)
    any_sat = False
    for ax, (label, metrics) in zip(axes, panels, strict=True):
        shown = [g for g in groups if any(sub.loc[(sub["rpc"] == g[0]) & (sub["impl"] == g[1]), m].notna().any()
                                           for m, _ in metrics)]  # fmt: skip
        for j, (metric, name) in enumerate(metrics):
            xs, meds, lo, hi, hatches = [], [], [], [], []
            for i, (rpc, impl) in enumerate(shown):
                st = stats(sub[(sub["rpc"] == rpc) & (sub["impl"] == impl)].assign(one=1), ["one"], metric)
                if st.empty:
                    continue
                xs.append(i + (j - 0.5) * 0.38)
                meds.append(st["med"].iloc[0])
                lo.append(st["med"].iloc[0] - st["lo"].iloc[0])
                hi.append(st["hi"].iloc[0] - st["med"].iloc[0])
                hatches.append("//" if st["saturated"].iloc[0] else "")
            bars = ax.bar(xs, meds, 0.38, yerr=[lo, hi], capsize=3, color=("tab:blue", "tab:red")[j], label=name)
            for bar, hatch in zip(bars, hatches, strict=True):
                bar.set_hatch(hatch)
                bar.set_edgecolor("white" if hatch else bar.get_facecolor())
                any_sat |= bool(hatch)
        ax.set_xticks(range(len(shown)), [f"{rpc}\n{impl}" for rpc, impl in shown])
        ax.set_xlim(-0.7, len(shown) - 0.3)
        ax.set_ylabel(f"{label} (ms)")
        ax.set_title(label, fontsize=10)
    handles, labels = bar_legend({"p50": "tab:blue", "p99": "tab:red"}, any_sat)
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title)
    caption = (
        "Time per message: server stream, the gap between consecutive messages; bidi, one message's round trip "
        "(ping-pong). Time to first message: server stream only, from the call's start. Bars: median over "
        f"repetitions of each repetition's p50/p99; error bars: min..max across repetitions. {held_text(held)}"
    )
    if any_sat:
        caption += (
            " Hatched bars: the load generator was saturated in that cell, so the times may include client delay."
        )
    return Drawn(save(fig, out_dir, "streaming"), title, caption)
