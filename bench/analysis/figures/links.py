"""The link-rate figure: RPC/s and p50 against link rate, one line per compression, break-even marked."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from .. import breakeven
from .draw import BARS, COMPRESSION_COLORS, TITLES, Drawn, Skip, errorbar, finish, log_if_wide, new_figure
from .select import held_text, hold_fixed, ok_rows, order, stats

BASE, OTHER = "none", "app-gzip-1"  # the pair whose break-even is marked


def _positions(links: list[str]) -> tuple[dict[str, float], list[str]]:
    """x position per link: shaped rates in ascending order, then unshaped veth, then loopback."""
    shaped = sorted((v for v in links if breakeven.link_rate(v) is not None), key=breakeven.link_rate)
    rest = [v for v in ("veth", "loopback") if v in links]
    ordered = shaped + rest
    labels = [_label(v) for v in ordered]
    return {v: float(i) for i, v in enumerate(ordered)}, labels


def _label(value: str) -> str:
    rate = breakeven.link_rate(value)
    if rate is None:
        return "veth\n(unshaped)" if value == "veth" else "loopback"
    return f"{rate / 1e9:g} Gbit/s" if rate >= 1e9 else f"{rate / 1e6:g} Mbit/s"


def _x_of_rate(rate: float, pos: dict[str, float]) -> float:
    """A rate between two shaped links, placed between their positions on a log scale."""
    points = sorted((breakeven.link_rate(v), x) for v, x in pos.items() if breakeven.link_rate(v) is not None)
    for (r0, x0), (r1, x1) in zip(points, points[1:], strict=False):
        if r0 <= rate <= r1:
            return x0 + (x1 - x0) * (math.log(rate) - math.log(r0)) / (math.log(r1) - math.log(r0))
    return float("nan")


def _messages(rows: pd.DataFrame) -> str:
    return "/".join(str(m) for m in sorted(rows["stream_messages"].unique()))


def links(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["links"]
    ok = ok_rows(df)
    shaped = ok[ok["link"].astype(str).map(breakeven.link_rate).notna()]
    if shaped["link"].nunique() < 2:
        raise Skip("the run has fewer than two shaped links (veth-<rate>)")
    sub, held = hold_fixed(ok, ["link", "compression", "rpc"])
    kinds = order("rpc", sub["rpc"])
    comps = order("compression", sub["compression"])
    pos, labels = _positions(list(dict.fromkeys(sub["link"].astype(str))))
    colors = {c: COMPRESSION_COLORS[i % len(COMPRESSION_COLORS)] for i, c in enumerate(comps)}
    fig, axes = new_figure(manifest, 2, width=5.6, height=3.9, nrows=len(kinds))
    all_stats, marks = [], []
    for k, kind in enumerate(kinds):
        rows = sub[sub["rpc"] == kind]
        found = breakeven.measured(rows, BASE, OTHER)
        for ax, (metric, label) in zip(
            axes[2 * k : 2 * k + 2], (("rps", "throughput (RPC/s)"), ("lat_p50_ms", "p50 latency (ms)")), strict=True
        ):
            for comp in comps:
                st = stats(rows[rows["compression"] == comp], ["link"], metric)
                if st.empty:
                    continue
                st = st.assign(x=st["link"].astype(str).map(pos)).sort_values("x")
                width = 1.6 if comp in (BASE, OTHER) else 0.9
                errorbar(ax, st["x"], st, color=colors[comp], marker="o", label=comp, lw=width)
                all_stats.append(st)
            if found.rate_bps is not None:
                x = _x_of_rate(found.rate_bps, pos)
                ax.axvline(x, color="tab:green", ls=":", lw=1.5, label=f"break-even {OTHER} vs {BASE}")
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
            if k == len(kinds) - 1:
                ax.set_xlabel("link (tbf rate, both directions)")
            ax.set_ylabel(label)
            suffix = f" ({_messages(rows)} messages per call)" if kind != "unary" else ""
            ax.set_title(f"{kind}{suffix}", fontsize=10)
            log_if_wide(ax, pd.concat([s["med"] for s in all_stats[-len(comps) :]]), ratio=10)
        marks.append(f"{kind}: {found.verdict}")
    caption = (
        f"RPC/s and median latency of each compression setting against the link between server and load generator "
        f"(network namespaces joined by a veth pair, shaped with tbf; loopback: no namespaces). The dotted line is "
        f"the measured break-even of {OTHER} against {BASE} (RPC/s ratio crossing 1, interpolated on a log rate "
        f"axis): {'; '.join(marks)}. {BARS}. {held_text(held)}"
    )
    return finish(fig, axes[0], all_stats, title, caption, out_dir, "links")
