"""Figures that sweep one configuration axis: payload size, compression, sync workers, processes, TLS."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from ...spec.compression import Compression
from ..table import fmt_size
from .draw import (
    BARS,
    COMPRESSION_COLORS,
    IMPL_COLOR,
    IMPL_STYLE,
    KIND_COLOR,
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


def payload(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["payload"]
    ok = ok_rows(df)
    sizes = sorted(ok["payload_size"].unique())
    if len(sizes) < 2:
        raise Skip(f"the run measured only one payload size ({', '.join(fmt_size(s) for s in sizes) or 'none'})")
    sub, held = hold_fixed(ok, ["payload_size", "compression", "impl"])
    series, dropped = [], []
    for impl in order("impl", sub["impl"]):
        for comp in order("compression", sub["compression"]):
            rows = sub[(sub["impl"] == impl) & (sub["compression"] == comp)]
            if rows["payload_size"].nunique() >= 2:
                series.append((impl, comp, rows))
            elif not rows.empty:
                dropped.append(f"{impl}/{comp}")
    if not series:
        raise Skip("no compression setting was measured at two payload sizes with the other axes equal")
    sizes = sorted({s for _, _, rows in series for s in rows["payload_size"].unique()})
    pos = {s: i for i, s in enumerate(sizes)}
    comps = list(dict.fromkeys(c for _, c, _ in series))
    colors = {c: COMPRESSION_COLORS[i % len(COMPRESSION_COLORS)] for i, c in enumerate(comps)}
    fig, (ax_rps, ax_p99) = new_figure(manifest, 2)
    all_stats = []
    for impl, comp, rows in series:
        for ax, metric in ((ax_rps, "rps"), (ax_p99, "lat_p99_ms")):
            st = stats(rows, ["payload_size"], metric).sort_values("payload_size")
            style = IMPL_STYLE.get(impl, {})
            errorbar(ax, [pos[s] for s in st["payload_size"]], st, color=colors[comp], label=f"{impl}, {comp}", **style)
            all_stats.append(st)
    for ax in (ax_rps, ax_p99):
        ax.set_xticks(range(len(sizes)), [fmt_size(s) for s in sizes])
        ax.set_xlabel("payload size (request and reply, each)")
    ax_rps.set_ylabel("throughput (RPC/s)")
    ax_rps.set_ylim(bottom=0)
    ax_p99.set_ylabel("p99 latency (ms)")
    log_if_wide(ax_p99, pd.concat(all_stats)["med"])
    caption = f"Line style: server model (sync solid, aio dashed); colour: compression. {BARS}. {held_text(held)}"
    if dropped:
        caption += f" Not drawn (measured at one payload size only, see the compression figure): {', '.join(dropped)}."
    return finish(fig, ax_rps, all_stats, title, caption, out_dir, "payload", ncol=4)


def compression(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["gzip"]
    ok = ok_rows(df)
    if not (ok["compression"].astype(str) != "none").any():
        raise Skip("the run has no compressed cells")
    sub, held = hold_fixed(ok, ["compression", "payload_kind"])
    levels = order("compression", sub["compression"])
    if len(levels) < 2:
        raise Skip("no two compression settings were measured with the other axes equal")
    pos = {c: i for i, c in enumerate(levels)}
    metrics = (
        ("server_cpu_us_per_rpc", "server CPU per RPC (us)"),
        ("wire_bytes_per_rpc", "wire bytes per RPC (B, both directions)"),
        ("lat_p99_ms", "p99 latency (ms)"),
    )
    fig, axes = new_figure(manifest, 3, width=4.6, height=4.4)
    all_stats = []
    for kind in order("payload_kind", sub["payload_kind"]):
        rows = sub[sub["payload_kind"] == kind]
        for ax, (metric, _) in zip(axes, metrics, strict=True):
            st = stats(rows, ["compression"], metric)
            st = st.assign(x=st["compression"].astype(str).map(pos)).sort_values("x")
            color = KIND_COLOR.get(kind)
            errorbar(ax, st["x"], st, color=color, marker="o", ls="none", label=f"{kind} payload")
            # a line only joins app-gzip levels next to each other: none and grpc-* are separate settings
            app = st[st["compression"].astype(str).map(lambda value: Compression.parse(value).is_app_gzip)]
            for _, run in app.groupby((app["x"].diff() != 1).cumsum()):
                if len(run) > 1:
                    ax.plot(run["x"], run["med"], color=color)
            all_stats.append(st)
    for ax, (metric, label) in zip(axes, metrics, strict=True):
        ax.set_xticks(range(len(levels)), levels, rotation=50, ha="right", fontsize=8)
        ax.set_xlabel("compression (app-gzip-N: zlib level N)")
        ax.set_ylabel(label)
        if metric == "wire_bytes_per_rpc":
            log_if_wide(ax, sub[metric], ratio=20)
        if ax.get_yscale() == "linear":
            ax.set_ylim(bottom=0)
    caption = (
        "Server CPU per RPC, bytes on the wire per RPC (TCP, request + reply, framing and headers included) "
        "and p99 latency for each compression setting, one colour per payload kind; lines join adjacent "
        f"app-gzip levels only. {BARS}. {held_text(held)}"
    )
    return finish(fig, axes[0], all_stats, title, caption, out_dir, "gzip")


def workers(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["workers"]
    ok = ok_rows(df)
    counts = sorted(ok.loc[ok["impl"] == "sync", "workers"].unique())
    if len(counts) < 2:
        raise Skip(f"the run measured the sync server with {len(counts)} worker count(s); a sweep needs two")
    sub, held = hold_fixed(ok, ["workers", "impl"])
    sync = sub[sub["impl"] == "sync"]
    if sync["workers"].nunique() < 2:
        raise Skip("no two sync worker counts were measured with the other axes equal")
    aio = sub[sub["impl"] == "aio"]
    fig, axes = new_figure(manifest, 2)
    all_stats = []
    for ax, (metric, label) in zip(
        axes, (("rps", "throughput (RPC/s)"), ("lat_p99_ms", "p99 latency (ms)")), strict=True
    ):
        st = stats(sync, ["workers"], metric).sort_values("workers")
        errorbar(ax, st["workers"], st, color=IMPL_COLOR["sync"], label="sync", **IMPL_STYLE["sync"])
        all_stats.append(st)
        if not aio.empty:
            a = stats(aio.assign(one=1), ["one"], metric)
            if not a.empty:
                ax.axhline(a["med"].iloc[0], color=IMPL_COLOR["aio"], ls="--", label="aio (median; band min..max)")
                ax.axhspan(a["lo"].iloc[0], a["hi"].iloc[0], color=IMPL_COLOR["aio"], alpha=0.15)
                all_stats.append(a)
        ax.set_xscale("log", base=2)
        ax.set_xticks(st["workers"].tolist(), [str(w) for w in st["workers"]])
        ax.minorticks_off()
        ax.set_xlabel("sync server worker threads")
        ax.set_ylabel(label)
        if metric == "rps":
            ax.set_ylim(bottom=0)
    ref = "aio (which has no thread pool) is the horizontal line" if not aio.empty else "no aio cell matches"
    return finish(fig, axes[0], all_stats, title, f"{BARS}; {ref}. {held_text(held)}", out_dir, "workers")


def processes(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["processes"]
    ok = ok_rows(df)
    counts = sorted(ok["processes"].unique())
    if len(counts) < 2:
        raise Skip(f"the run measured only {len(counts)} server process count ({', '.join(map(str, counts))})")
    sub, held = hold_fixed(ok, ["processes", "impl"])
    if sub["processes"].nunique() < 2:
        raise Skip("no two process counts were measured with the other axes equal")
    fig, axes = new_figure(manifest, 2)
    all_stats = []
    for ax, (metric, label) in zip(
        axes, (("rps", "throughput (RPC/s)"), ("lat_p99_ms", "p99 latency (ms)")), strict=True
    ):
        for impl in order("impl", sub["impl"]):
            st = stats(sub[sub["impl"] == impl], ["processes"], metric).sort_values("processes")
            errorbar(ax, st["processes"], st, color=IMPL_COLOR.get(impl), label=impl, **IMPL_STYLE.get(impl, {}))
            all_stats.append(st)
        ticks = sorted(sub["processes"].unique())
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("server processes (SO_REUSEPORT)")
        ax.set_ylabel(label)
        if metric == "rps":
            ax.set_ylim(bottom=0)
    return finish(fig, axes[0], all_stats, title, f"{BARS}. {held_text(held)}", out_dir, "processes")


def tls(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["tls"]
    ok = ok_rows(df)
    if not (ok["tls"].astype(str) != "off").any():
        raise Skip("the run has no TLS or mTLS cells")
    sub, held = hold_fixed(ok, ["tls", "impl"])
    modes = [m for m in ("on", "mtls") if (sub["tls"] == m).any()]
    impls = [i for i in order("impl", sub["impl"]) if ((sub["impl"] == i) & (sub["tls"] == "off")).any()]
    impls = [i for i in impls if ((sub["impl"] == i) & (sub["tls"] != "off")).any()]
    if not impls:
        raise Skip("no TLS cell has a plaintext cell with the other axes equal")
    metrics = (
        ("rps", "throughput"),
        ("lat_p99_ms", "p99 latency"),
        ("server_cpu_us_per_rpc", "server CPU per RPC"),
    )
    colors = {"on": "tab:cyan", "mtls": "tab:purple"}
    fig, axes = new_figure(manifest, 3, width=4.2)
    width = 0.8 / len(modes)
    any_sat = False
    for ax, (metric, label) in zip(axes, metrics, strict=True):
        for j, mode in enumerate(modes):
            xs, ratios, lo, hi, hatches = [], [], [], [], []
            for i, impl in enumerate(impls):
                base = stats(sub[(sub["impl"] == impl) & (sub["tls"] == "off")].assign(one=1), ["one"], metric)
                st = stats(sub[(sub["impl"] == impl) & (sub["tls"] == mode)].assign(one=1), ["one"], metric)
                if base.empty or st.empty or not base["med"].iloc[0]:
                    continue
                b = base["med"].iloc[0]
                xs.append(i + (j - (len(modes) - 1) / 2) * width)
                ratios.append(st["med"].iloc[0] / b)
                lo.append(st["med"].iloc[0] / b - st["lo"].iloc[0] / b)
                hi.append(st["hi"].iloc[0] / b - st["med"].iloc[0] / b)
                hatches.append("//" if st["saturated"].iloc[0] or base["saturated"].iloc[0] else "")
            bars = ax.bar(xs, ratios, width, yerr=[lo, hi], capsize=3, color=colors[mode], label=f"tls={mode}")
            for bar, hatch, ratio, up in zip(bars, hatches, ratios, hi, strict=True):
                bar.set_hatch(hatch)
                bar.set_edgecolor("white" if hatch else bar.get_facecolor())
                any_sat |= bool(hatch)
                ax.annotate(f"{ratio:.2f}x", (bar.get_x() + bar.get_width() / 2, ratio + up), xytext=(0, 3),
                            textcoords="offset points", ha="center", fontsize=8)  # fmt: skip
        ax.axhline(1.0, color="0.2", lw=1, ls=":")
        ax.set_xticks(range(len(impls)), [f"{i} server" for i in impls])
        ax.set_xlim(-0.7, len(impls) - 0.3)
        ax.margins(y=0.12)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("TLS / plaintext (ratio, 1 = same)")
        ax.set_title(label, fontsize=10)
    handles, labels = bar_legend({f"tls={m}": colors[m] for m in modes}, any_sat)
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title)
    caption = (
        "Each bar is the median of the TLS cell divided by the median of the plaintext (tls=off) cell of the same "
        "server model; the dotted line at 1 is plaintext. Error bars: the TLS cell's min..max across repetitions, "
        f"over the same plaintext median. {held_text(held)}"
    )
    if any_sat:
        caption += " Hatched bars: the load generator was saturated in the TLS or the plaintext cell."
    return Drawn(save(fig, out_dir, "tls"), title, caption)
