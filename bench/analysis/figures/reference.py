"""The Python-cost figure: each Python server's server CPU per RPC over the grpc-go reference's, per RPC kind and
payload, beside the CPU per RPC itself. The pairs are bench.analysis.reference's (bench.analysis.findings.pairs)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from ..table import fmt_size
from .draw import IMPL_COLOR, TITLES, Drawn, Skip, bar_legend, log_if_wide, new_figure, save
from .select import held_text, hold_fixed, order

VARY = ["impl", "rpc", "payload_size"]
_RPC_WORDS = {"server_stream": "server stream", "client_stream": "client stream", "bidi": "bidi"}


def _tick(rpc: str, size: int, messages: int) -> str:
    kind = rpc if rpc == "unary" else f"{_RPC_WORDS.get(rpc, rpc)} ({messages})"
    return f"{kind}\n{fmt_size(size)}"


def python_cost(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> Drawn:
    from .. import reference  # here, not at import: reference reads findings, which imports this package

    title = TITLES["python_cost"]
    found = [r for r in reference.ratios(df, manifest) if math.isfinite(r.cpu_ratio)]
    if not found:
        raise Skip("the run has no go cell with a sync or aio cell of the same other axes")
    cells = pd.DataFrame([{**r.python.axes, "cell_key": r.python.key} for r in found])
    chosen, held = hold_fixed(cells, VARY)
    drawn = [r for r in found if r.python.key in set(chosen["cell_key"])]
    settings = sorted({_key(r) for r in drawn})
    rpcs = order("rpc", [s[0] for s in settings])
    settings.sort(key=lambda s: (rpcs.index(s[0]), s[1], s[2]))
    pos = {s: i for i, s in enumerate(settings)}
    impls = [i for i in reference.PYTHON_IMPLS if any(r.impl == i for r in drawn)]
    fig, (ax_ratio, ax_cpu) = new_figure(manifest, 2, width=max(4.8, 1.3 * len(settings) + 2.2), height=4.4)
    width = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        mine = [r for r in drawn if r.impl == impl]
        xs = [pos[_key(r)] + (j - (len(impls) - 1) / 2) * width for r in mine]
        ratios = [r.cpu_ratio for r in mine]
        lows = [max(0.0, r.cpu_ratio - r.cpu_ratio_range[0]) for r in mine]
        highs = [max(0.0, r.cpu_ratio_range[1] - r.cpu_ratio) for r in mine]
        bars = ax_ratio.bar(xs, ratios, width, yerr=[lows, highs], capsize=3, color=IMPL_COLOR[impl], label=impl)
        for bar, ratio, up in zip(bars, ratios, highs, strict=True):
            ax_ratio.annotate(f"{ratio:.1f}x", (bar.get_x() + bar.get_width() / 2, ratio + up), xytext=(0, 2),
                              textcoords="offset points", ha="center", fontsize=7)  # fmt: skip
    ax_ratio.axhline(1.0, color="0.2", lw=1, ls=":")
    ax_ratio.set_ylabel("server CPU per RPC, Python / Go (1 = Go's cost)")
    log_if_wide(ax_ratio, [r.cpu_ratio for r in drawn], ratio=8)
    if ax_ratio.get_yscale() == "linear":
        ax_ratio.set_ylim(bottom=0)
    ax_ratio.set_title("Python's cost in Go's units", fontsize=10)
    servers = [*impls, reference.REFERENCE]
    width = 0.8 / len(servers)
    for j, impl in enumerate(servers):
        points = {}
        for r in drawn:
            if impl == reference.REFERENCE or r.impl == impl:
                cell = r.go if impl == reference.REFERENCE else r.python
                points[_key(r)] = (cell.median("server_cpu_us_per_rpc"), cell.low("server_cpu_us_per_rpc"),
                                   cell.high("server_cpu_us_per_rpc"))  # fmt: skip
        keys = [k for k in settings if k in points]
        xs = [pos[k] + (j - (len(servers) - 1) / 2) * width for k in keys]
        med = [points[k][0] for k in keys]
        yerr = [[points[k][0] - points[k][1] for k in keys], [points[k][2] - points[k][0] for k in keys]]
        ax_cpu.bar(xs, med, width, yerr=yerr, capsize=3, color=IMPL_COLOR.get(impl, "0.5"), label=impl)
    ax_cpu.set_ylabel("server CPU per RPC (us)")
    log_if_wide(ax_cpu, [v for r in drawn for v in (r.python.median("server_cpu_us_per_rpc"),
                                                    r.go.median("server_cpu_us_per_rpc"))], ratio=20)  # fmt: skip
    if ax_cpu.get_yscale() == "linear":
        ax_cpu.set_ylim(bottom=0)
    ax_cpu.set_title("Server CPU per RPC", fontsize=10)
    labels = [_tick(*s) for s in settings]
    for ax in (ax_ratio, ax_cpu):
        ax.set_xticks(range(len(settings)), labels, fontsize=8)
        ax.set_xlim(-0.6, len(settings) - 0.4)
    handles, names = bar_legend({s: IMPL_COLOR.get(s, "0.5") for s in servers}, False)
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), fontsize=8, frameon=False)
    fig.suptitle(title)
    idle = sorted({r.go.key for r in drawn if r.go_not_the_limit})
    caption = (
        "Left: each Python server's server CPU per RPC divided by the grpc-go server's in the cell with the same "
        "other axes (medians; error bars: Python's min..max over Go's max..min). Right: the server CPU per RPC "
        "itself. CPU per RPC compares whoever set the pace; the report's table has RPC/s where no load generator "
        f"was saturated. {held_text(held)}"
    )
    if idle:
        caption += (
            f" The Go server was not the limit (not saturated in every repetition) in {len(idle)} of these cells: "
            "there only CPU per RPC compares fairly."
        )
    return Drawn(save(fig, out_dir, "python_cost"), title, caption)


def _key(ratio) -> tuple[str, int, int]:
    axes = ratio.python.axes
    return str(axes["rpc"]), int(axes["payload_size"]), int(axes["stream_messages"])
