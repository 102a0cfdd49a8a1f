"""Drawing helpers every figure shares: the figure with its footer, error bars, legends, the file."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure, SubFigure

from ...run.manifest import Manifest

DPI = 110
IMPL_STYLE = {
    "sync": dict(linestyle="-", marker="o"),
    "aio": dict(linestyle="--", marker="s"),
    "go": dict(linestyle=":", marker="^"),
}
IMPL_COLOR = {"sync": "tab:blue", "aio": "tab:orange", "go": "0.45"}  # go: the grey reference
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
    "links": "Throughput and latency against link rate, per compression",
    "python_cost": "What Python costs per RPC, against the grpc-go reference",
    "handlers": "The worker-count knee under waiting, blocking and CPU-bound handlers",
    "clients": "Client models: the same load through grpc.aio, blocking stubs in threads and futures",
    "channels": "A new channel per RPC against a reused channel, and the time to first RPC",
    "options": "Options presets: keepalive and max concurrent streams against gRPC's defaults",
}
BARS = "Points: median over repetitions; error bars: min..max across repetitions"

# An axis whose value only means something for some rows: (axis, deciding axis, value of it where it does not apply).
# aio rows always carry workers=0, unary rows stream_messages=1, closed-loop rows rate=0 and constant arrival.


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


# -- drawing helpers -----------------------------------------------------------


def footer_text(manifest: Manifest) -> str:
    env = manifest.environment
    commit = (env.git.commit or "unknown")[:12]
    if env.git.dirty:
        commit += " (dirty)"
    cpu = env.cpu_model or "unknown CPU"
    return f"{cpu} | grpcio {env.versions.get('grpcio') or '?'} | commit {commit}"


def new_figure(
    manifest: Manifest, ncols: int, width: float = 5.0, height: float = 4.2, nrows: int = 1
) -> tuple[SubFigure, list]:
    """``nrows`` rows of ``ncols`` axes (returned row by row) above a bottom strip that holds the footer.

    The axes, legend and title live in a subfigure so the layout engine keeps them clear of the footer.
    """
    footer = 0.22  # inches
    root = Figure(figsize=(width * ncols, height * nrows + footer), layout="constrained")
    fig, foot = root.subfigures(2, 1, height_ratios=[height * nrows, footer])
    foot.text(0.005, 0.5, footer_text(manifest), fontsize=7, color="0.35", ha="left", va="center")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
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


def log_if_wide(ax, values: Iterable[float], ratio: float = 30.0) -> None:
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
