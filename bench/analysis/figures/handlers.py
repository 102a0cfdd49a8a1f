"""The worker-count knee under handler work: RPC/s against sync threads, one panel per kind of handler work."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from .. import handlers as work
from .draw import BARS, IMPL_COLOR, IMPL_STYLE, TITLES, Drawn, Skip, errorbar, finish, new_figure
from .select import held_text


def handlers(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    title = TITLES["handlers"]
    points = work.knee_points(df)
    if not points.works:
        raise Skip("the run has no sync thread-count sweep under handler work (handler_wait_ms, _block_ms, _cpu_us)")
    fig, axes = new_figure(manifest, len(points.works), width=4.2, height=4.0)
    all_stats = []
    for ax, w in zip(axes, points.works, strict=True):
        st = points.sync[w]
        if not st.empty:
            errorbar(ax, st["workers"], st, color=IMPL_COLOR["sync"], label="sync (threads)", **IMPL_STYLE["sync"])
            all_stats.append(st)
        for impl, flat in points.flat[w].items():
            if flat.empty:
                continue
            style = IMPL_STYLE.get(impl, {}).get("linestyle", "--")
            ax.axhline(flat["med"].iloc[0], color=IMPL_COLOR.get(impl), ls=style, label=f"{impl} (no pool)")
            ax.axhspan(flat["lo"].iloc[0], flat["hi"].iloc[0], color=IMPL_COLOR.get(impl), alpha=0.15)
            all_stats.append(flat)
        ax.set_xscale("log", base=2)
        ax.set_xticks(points.workers, [str(n) for n in points.workers])
        ax.minorticks_off()
        ax.set_xlabel("sync server worker threads")
        ax.set_ylabel("throughput (RPC/s)")
        ax.set_ylim(bottom=0)
        ax.set_title(w.text, fontsize=10)
    caption = (
        "RPC/s of the sync server against its thread count, one panel per kind of work its handlers do per message: "
        "none, a wait they yield during (a database call), a blocking call that does not yield (time.sleep: it holds "
        "aio's event loop) or Python CPU work holding the GIL. aio and go have no thread pool to size: their RPC/s "
        f"is a horizontal line (median; band: min..max). {BARS}. {held_text(points.held)}"
    )
    fullest = max(axes, key=lambda ax: len(ax.get_legend_handles_labels()[1]))  # a panel may lack the sync line
    return finish(fig, fullest, all_stats, title, caption, out_dir, "handlers")
