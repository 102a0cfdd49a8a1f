"""Grouped bar panels, the client-side figures' shape: one group of bars per setting, one bar per series, medians
with min..max error bars, hatched where the load generator was saturated."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from .draw import Drawn, bar_legend, new_figure, save
from .select import stats


@dataclass(frozen=True)
class Series:
    """One bar per group: ``metric`` over the rows ``rows`` picks (None: the group's rows), in ``color``."""

    label: str
    color: str
    metric: str
    rows: Callable[[pd.DataFrame], pd.Series] | None = None


@dataclass(frozen=True)
class Panel:
    title: str  # what the y axis measures, with its unit
    series: tuple[Series, ...]


def grouped_bars(ax, sub: pd.DataFrame, group_axis: str, groups: Sequence[object], series: Sequence[Series]) -> bool:
    """Bars for one panel: a group per value of ``group_axis``, a bar per series; median with min..max error bars,
    hatched where the load generator was saturated. Returns whether any bar was."""
    width = 0.8 / len(series)
    any_sat = False
    for j, one in enumerate(series):
        picked = sub if one.rows is None else sub[one.rows(sub)]
        xs, med, lo, hi, hatches = [], [], [], [], []
        for i, group in enumerate(groups):
            st = stats(picked[picked[group_axis] == group].assign(one=1), ["one"], one.metric)
            if st.empty:
                continue
            xs.append(i + (j - (len(series) - 1) / 2) * width)
            med.append(st["med"].iloc[0])
            lo.append(st["med"].iloc[0] - st["lo"].iloc[0])
            hi.append(st["hi"].iloc[0] - st["med"].iloc[0])
            hatches.append("//" if st["saturated"].iloc[0] else "")
        bars = ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, color=one.color)
        for bar, hatch in zip(bars, hatches, strict=True):
            bar.set_hatch(hatch)
            bar.set_edgecolor("white" if hatch else bar.get_facecolor())
            any_sat |= bool(hatch)
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_ylim(bottom=0)
    return any_sat


def bar_figure(
    manifest: Manifest,
    sub: pd.DataFrame,
    group_axis: str,
    groups: Sequence[object],
    panels: Sequence[Panel],
    xlabel: str,
    title: str,
    caption: str,
    out_dir: Path,
    name: str,
    width: float = 4.2,
) -> Drawn:
    """Side-by-side panels of grouped bars, one legend for the series (and the hatch if used), the file, the
    caption (with the hatch explained when a bar has it)."""
    fig, axes = new_figure(manifest, len(panels), width=width)  # inches per panel
    any_sat = False
    for ax, panel in zip(axes, panels, strict=True):
        any_sat |= grouped_bars(ax, sub, group_axis, groups, panel.series)
        ax.set_xlabel(xlabel)
        ax.set_title(panel.title, fontsize=10)
    colors = {s.label: s.color for panel in panels for s in panel.series if s.label}
    handles, labels = bar_legend(colors, any_sat)
    if labels:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title)
    if any_sat:
        caption += " Hatched bars: the load generator was saturated, so their throughput is the client's limit."
    return Drawn(save(fig, out_dir, name), title, caption)
