"""The report's figures: each one picks like-for-like cells from a run's table and draws one PNG.

Every figure varies one or two axes and holds every other axis fixed (``hold_fixed``): for each other axis it
keeps the value under which the varied axes have the most distinct combinations, ties going to the most common
value. The caption says what was held. Points are the median over a cell's successful repetitions; error bars
span their min..max. A figure whose data the run lacks raises ``Skip`` with a one-line reason instead of being
drawn empty.

Reads only what bench.analysis.results returns; draws with matplotlib's object API (Agg canvas, no pyplot state).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure, SubFigure

from ..run.manifest import Manifest
from ..spec import AXES
from ..spec.compression import Compression
from . import results

DPI = 110
IMPL_STYLE = {"sync": dict(linestyle="-", marker="o"), "aio": dict(linestyle="--", marker="s")}
IMPL_COLOR = {"sync": "tab:blue", "aio": "tab:orange"}
# blue and orange mean sync and aio elsewhere, so compression settings take other colours
COMPRESSION_COLORS = ("0.25", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
KIND_COLOR = {"text": "tab:green", "random": "tab:red", "zeros": "tab:purple"}
SATURATED_LABEL = "load generator saturated (>= 90 % busy)"
TITLES = {
    "payload": "Throughput and p99 latency against payload size",
    "gzip": "What compression costs and saves, per payload kind",
    "workers": "Sync thread-pool size against aio",
    "processes": "Server processes sharing the port",
    "tls": "TLS and mTLS cost relative to plaintext",
    "open_loop": "Latency against throughput (open-loop rate sweep)",
    "latency_percentiles": "Latency percentiles of the baseline cells (HDR histograms)",
    "streaming": "Per-message latency of streaming RPCs",
}
BARS = "Points: median over repetitions; error bars: min..max across repetitions"

# An axis whose value only means something for some rows: (axis, deciding axis, value of it where it does not apply).
# aio rows always carry workers=0, unary rows stream_messages=1, closed-loop rows rate=0 and constant arrival.
_LINKED = {"workers": ("impl", "aio"), "stream_messages": ("rpc", "unary"), "rate": ("mode", "closed")}
_LINKED["arrival"] = ("mode", "closed")


class Skip(Exception):
    """The run lacks this figure's data; the message (one line) says what is missing."""


@dataclass(frozen=True)
class Drawn:
    file: str  # PNG file name, relative to the report directory
    title: str
    caption: str


@dataclass(frozen=True)
class Skipped:
    name: str
    title: str
    reason: str


# -- selecting like with like ------------------------------------------------


def fmt_size(size: float) -> str:
    size = int(size)
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def fmt_value(axis: str, value: object) -> str:
    if axis == "payload_size":
        return fmt_size(value)
    if axis == "rate":
        return f"{float(value):g} RPC/s"
    return str(value)


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["failed"].astype(bool)]


def _inapplicable(rows: pd.DataFrame, axis: str, vary: list[str]) -> pd.Series:
    """Rows where ``axis`` does not apply and whose deciding axis is varied (aio rows for workers, ...)."""
    if axis in _LINKED and _LINKED[axis][0] in vary:
        decider, value = _LINKED[axis]
        return rows[decider].astype(str) == value
    return pd.Series(False, index=rows.index)


def hold_fixed(
    df: pd.DataFrame, vary: Iterable[str], base: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Rows of ``df`` where every axis outside ``vary`` has one value; returns them and {axis: value held}.

    For each other axis (in spec order) it keeps the value under which the ``vary`` axes have the most distinct
    combinations; ties go to the value with the most cells, then to the first seen. An axis that does not apply
    to some rows (workers for aio, ...) keeps those rows whenever the deciding axis (impl, ...) is varied.
    Reported as held: the axes that take more than one value in ``base`` (default ``df``).
    """
    vary = list(vary)
    sub = df
    for axis in AXES:
        if axis in vary or sub.empty:
            continue
        exempt = _inapplicable(sub, axis, vary)
        values = list(dict.fromkeys(sub.loc[~exempt, axis].tolist()))
        if len(values) <= 1:
            continue

        def score(value: object, sub=sub, exempt=exempt, axis=axis, values=values) -> tuple:
            chosen = sub[exempt | (sub[axis] == value)]
            combos = len(chosen[vary].astype(str).drop_duplicates()) if vary else 0
            return (combos, chosen["cell_key"].nunique(), -values.index(value))

        best = max(values, key=score)
        sub = sub[exempt | (sub[axis] == best)]
    base = df if base is None else base
    held: dict[str, object] = {}
    for axis in AXES:
        if axis in vary or base[axis].astype(str).nunique() < 2:
            continue
        if axis in _LINKED and (sub[_LINKED[axis][0]].astype(str) == _LINKED[axis][1]).all():
            continue  # e.g. rate in closed loop: nothing to say
        values = sub.loc[~_inapplicable(sub, axis, vary), axis].unique()
        if len(values) == 1:
            held[axis] = values[0]
    return sub, held


def held_text(held: dict[str, object]) -> str:
    if not held:
        return "No other axis varies in these cells."
    parts = [f"{axis}={fmt_value(axis, value)}" for axis, value in held.items()]
    return "Held fixed (the value with the most comparable cells): " + ", ".join(parts) + "."


def stats(sub: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """Per group of ``by``: med, lo, hi, n of ``metric`` over repetitions, and whether any was gen-saturated."""
    rows = sub.dropna(subset=[metric])
    if rows.empty:
        return pd.DataFrame(columns=[*by, "med", "lo", "hi", "n", "saturated"])
    grouped = rows.groupby(by, observed=True)
    out = grouped[metric].agg(med="median", lo="min", hi="max", n="count")
    out["saturated"] = grouped["loadgen_saturated"].any()
    return out.reset_index()


def _order(axis: str, values: Iterable[object]) -> list[object]:
    values = list(dict.fromkeys(values))
    if axis in ("impl", "rpc", "payload_kind", "compression", "tls", "mode", "arrival", "loadgen"):
        from ..spec import ALLOWED

        return [v for v in ALLOWED[axis] if v in values]
    return sorted(values)


# -- drawing helpers -----------------------------------------------------------


def footer_text(manifest: Manifest) -> str:
    env = manifest.environment
    commit = (env.git.commit or "unknown")[:12]
    if env.git.dirty:
        commit += " (dirty)"
    cpu = env.cpu_model or "unknown CPU"
    return f"{cpu} | grpcio {env.versions.get('grpcio') or '?'} | commit {commit}"


def new_figure(manifest: Manifest, ncols: int, width: float = 5.0, height: float = 4.2) -> tuple[SubFigure, list]:
    """A row of ``ncols`` axes in the upper part of a figure whose bottom strip holds the footer.

    The axes, legend and title live in a subfigure so the layout engine keeps them clear of the footer.
    """
    footer = 0.22  # inches
    root = Figure(figsize=(width * ncols, height + footer), layout="constrained")
    fig, foot = root.subfigures(2, 1, height_ratios=[height, footer])
    foot.text(0.005, 0.5, footer_text(manifest), fontsize=7, color="0.35", ha="left", va="center")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, list(axes)


def save(fig: SubFigure, out_dir: Path, name: str) -> str:
    file = f"{name}.png"
    fig.figure.savefig(out_dir / file, dpi=DPI)
    return file


def errorbar(ax, x, st: pd.DataFrame, **style) -> None:
    """One series with min..max error bars; saturated points get a red ring."""
    yerr = [st["med"] - st["lo"], st["hi"] - st["med"]]
    ax.errorbar(x, st["med"], yerr=yerr, capsize=3, **style)
    sat = st["saturated"].to_numpy(dtype=bool)
    if sat.any():
        xs = pd.Series(list(x))[sat]
        ax.scatter(xs, st["med"][sat], s=150, facecolors="none", edgecolors="red", linewidths=1.2, zorder=5)


def saturation_legend(fig: SubFigure, handles: list, labels: list, any_saturated: bool, ncol: int = 6) -> None:
    if any_saturated:
        from matplotlib.lines import Line2D

        ring = Line2D([], [], marker="o", markersize=11, markerfacecolor="none", markeredgecolor="red", ls="none")
        handles, labels = [*handles, ring], [*labels, SATURATED_LABEL]
    fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(labels)), fontsize=8, frameon=False)


def bar_legend(colors: dict[str, str], any_saturated: bool) -> tuple[list, list]:
    """Plain swatches per label (a bar's own handle would copy its hatching), plus the hatch key if used."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=color) for color in colors.values()]
    labels = list(colors)
    if any_saturated:
        handles.append(Patch(facecolor="0.6", edgecolor="white", hatch="//"))
        labels.append(SATURATED_LABEL)
    return handles, labels


def _log_if_wide(ax, values: Iterable[float], ratio: float = 30.0) -> None:
    """Log y axis (ticks 1, 2, 5, 10, ... written plainly) when the values span more than ``ratio``."""
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    if values and max(values) / min(values) > ratio:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())


def saturated_note(*frames: pd.DataFrame) -> str:
    points = sum(len(f) for f in frames)
    sat = sum(int(f["saturated"].sum()) for f in frames)
    if not sat:
        return ""
    return (
        f" {sat} of {points} points (ringed in red) had a saturated load generator: "
        "their throughput and latency may be the client's limit."
    )


# -- the figures ---------------------------------------------------------------


def finish(
    fig: SubFigure,
    legend_ax,
    all_stats: list[pd.DataFrame],
    title: str,
    caption: str,
    out_dir: Path,
    name: str,
    ncol: int = 6,
) -> Drawn:
    """The common end of a line figure: legend (with the saturation marker if any point was), title, file, caption."""
    handles, labels = legend_ax.get_legend_handles_labels()
    saturation_legend(fig, handles, labels, any(st["saturated"].any() for st in all_stats), ncol=ncol)
    fig.suptitle(title)
    return Drawn(save(fig, out_dir, name), title, caption + saturated_note(*all_stats))


def payload(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["payload"]
    ok = ok_rows(df)
    sizes = sorted(ok["payload_size"].unique())
    if len(sizes) < 2:
        raise Skip(f"the run measured only one payload size ({', '.join(fmt_size(s) for s in sizes) or 'none'})")
    sub, held = hold_fixed(ok, ["payload_size", "compression", "impl"])
    series, dropped = [], []
    for impl in _order("impl", sub["impl"]):
        for comp in _order("compression", sub["compression"]):
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
    _log_if_wide(ax_p99, pd.concat(all_stats)["med"])
    caption = f"Line style: server model (sync solid, aio dashed); colour: compression. {BARS}. {held_text(held)}"
    if dropped:
        caption += f" Not drawn (measured at one payload size only, see the compression figure): {', '.join(dropped)}."
    return finish(fig, ax_rps, all_stats, title, caption, out_dir, "payload", ncol=4)


def gzip(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["gzip"]
    ok = ok_rows(df)
    if not (ok["compression"].astype(str) != "none").any():
        raise Skip("the run has no compressed cells")
    sub, held = hold_fixed(ok, ["compression", "payload_kind"])
    levels = _order("compression", sub["compression"])
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
    for kind in _order("payload_kind", sub["payload_kind"]):
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
            _log_if_wide(ax, sub[metric], ratio=20)
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
        for impl in _order("impl", sub["impl"]):
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
    impls = [i for i in _order("impl", sub["impl"]) if ((sub["impl"] == i) & (sub["tls"] == "off")).any()]
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
    impls = [i for i in _order("impl", sub["impl"]) if sub.loc[sub["impl"] == i, "rate"].nunique() >= 2]
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
    _log_if_wide(ax, ys)
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


def merged_histogram(rows: pd.DataFrame, which: str = "call"):
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


def hdr(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["latency_percentiles"]
    ok = ok_rows(df)
    closed = ok[ok["mode"] == "closed"]
    if closed.empty:
        closed = ok
    sub, held = hold_fixed(closed, ["impl"], base=ok)
    fig, (ax,) = new_figure(manifest, 1, width=7.5, height=4.8)
    drawn, counts = [], []
    for impl in _order("impl", sub["impl"]):
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
        for rpc in _order("rpc", sub["rpc"])
        for impl in _order("impl", sub["impl"])
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


FIGURES: tuple[tuple[str, Callable[[pd.DataFrame, Manifest, Path], Drawn]], ...] = (
    ("payload", payload),
    ("gzip", gzip),
    ("workers", workers),
    ("processes", processes),
    ("tls", tls),
    ("open_loop", open_loop),
    ("latency_percentiles", hdr),
    ("streaming", streaming),
)


def draw_all(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> list[Drawn | Skipped]:
    """Every figure the run has data for, written into ``out_dir``; the others as Skipped with the reason."""
    out: list[Drawn | Skipped] = []
    for name, draw in FIGURES:
        (out_dir / f"{name}.png").unlink(missing_ok=True)  # a figure left out now must not linger from before
        try:
            out.append(draw(df, manifest, out_dir))
        except Skip as why:
            out.append(Skipped(name, TITLES[name], str(why)))
    return out
