"""How a Comparison is shown: a rich table on the terminal, markdown (CI job summaries), JSON (tools)."""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .stats import METHOD, POWER

if TYPE_CHECKING:
    from .compare import Comparison

FORMATS = ("table", "markdown", "json")


def _num(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def pct_text(ratio: float) -> str:
    return "-" if ratio is None or not math.isfinite(ratio) else f"{(ratio - 1) * 100:+.1f}%"


def _ci(row: pd.Series | dict) -> str:
    if not math.isfinite(row["ci_low"]) or not math.isfinite(row["ci_high"]):
        return "-"
    return f"[{pct_text(row['ci_low'])}, {pct_text(row['ci_high'])}]"


def _p(row: pd.Series | dict) -> str:
    return "-" if not math.isfinite(row["p_value"]) else f"p={row['p_value']:.3f} n={row['n_base']}+{row['n_head']}"


def detectable_text(value: float) -> str:
    """A detectable change as text: '18.0%', 'none' when no change could have been significant."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "none" if math.isinf(value) else f"{value * 100:.1f}%"


def verdict_text(row: pd.Series | dict) -> str:
    """The verdict, with an underpowered ``~`` marked as such (it means 'cannot tell', not 'no change'),
    and which side's repetitions were unstable (bench.analysis.stability) when any was."""
    verdict = "~ underpowered" if row["verdict"] == "~" and row["underpowered"] else str(row["verdict"])
    unstable = row.get("unstable") or ""
    return f"{verdict} (unstable: {unstable})" if unstable else verdict


# How the summary names the gate's metrics; others by their column name.
METRIC_LABELS = {
    "rps": "RPC/s",
    "lat_p50_ms": "p50 latency",
    "lat_p99_ms": "p99 latency",
    "server_cpu_us_per_rpc": "server CPU per RPC",
}


def _describe(name: str, info: dict) -> str:
    commit = (info.get("commit") or "")[:12]
    bits = [name]
    if info.get("ref"):
        bits.append(f"ref {info['ref']}")
    if commit:
        bits.append(f"commit {commit}{' (dirty)' if info.get('dirty') else ''}")
    return ", ".join(bits)


def _settings_line(cmp: Comparison) -> str:
    return (
        f"threshold ±{cmp.threshold * 100:g} %, alpha {cmp.alpha:g}, 95 % CI; "
        f"method: {METHOD}; a change counts when significant and beyond the threshold; "
        f"detectable = the change the test catches with {POWER:.0%} power given the repetitions and their spread"
    )


def _summary_line(cmp: Comparison) -> str:
    counts = cmp.counts()
    parts = [f"{counts['worse']} worse", f"{counts['better']} better", f"{counts['~']} ~"]
    if counts["changed"]:
        parts.append(f"{counts['changed']} changed (no direction)")
    if counts["n/a"]:
        parts.append(f"{counts['n/a']} n/a")
    blind = cmp.blind
    if cmp.regression:
        headline = "REGRESSION"
    elif len(blind):
        headline = "no significant regression shown, but the run was underpowered"
    else:
        headline = "no significant regression"
    text = f"{headline}: {', '.join(parts)} of {len(cmp.rows)} cell x metric comparisons"
    if len(blind):
        text += (
            f"; {len(blind)} of the ~ (in {_cells(blind['cell_key'].nunique())}) are underpowered: "
            f"they could not have detected a {cmp.threshold * 100:g} % change"
        )
    return text


def _cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def power_lines(cmp: Comparison, limit: int = 4) -> list[str]:
    """Per metric, the underpowered ``~`` rows: 'this run could not have detected a 5 % change in ...'."""
    lines = []
    blind = cmp.blind
    for metric in cmp.metrics:
        rows = blind[blind["metric"] == metric].sort_values("detectable", ascending=False)
        if rows.empty:
            continue
        label = METRIC_LABELS.get(metric, metric)
        start = f"this run could not have detected a {cmp.threshold * 100:g} % change in {label} of "
        hopeless = rows[np.isinf(rows["detectable"].astype(float))]
        measured = rows[~np.isinf(rows["detectable"].astype(float))]
        if len(measured) == 1:
            row = measured.iloc[0]
            lines.append(f"{start}{row['cell']}: the smallest detectable was {detectable_text(row['detectable'])}")
        elif len(measured):
            shown = [f"{r.cell} ({detectable_text(r.detectable)})" for r in measured.head(limit).itertuples()]
            more = f" and {len(measured) - limit} more cells" if len(measured) > limit else ""
            lines.append(f"{start}{', '.join(shown)}{more} (the smallest detectable change in brackets)")
        if len(hopeless):
            cells = ", ".join(hopeless["cell"].head(limit))
            more = f" and {len(hopeless) - limit} more cells" if len(hopeless) > limit else ""
            lines.append(f"{start}{cells}{more}: too few usable repetitions for any change to be significant")
    return lines


def adaptive_line(cmp: Comparison) -> str | None:
    """How many repetitions grpclab regress measured and why it stopped (None for plain compare)."""
    info = cmp.adaptive
    if not info:
        return None
    counts = sorted(set(info["repetitions"].values())) or [0]
    reps = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    why = {
        "powered": "every gated cell x metric could detect a change of the threshold",
        "budget": f"the time budget ({info['budget_s'] / 60:g} min of measuring) was spent",
        "max-repetitions": f"the underpowered cells reached --max-repetitions {info['max_repetitions']}",
        "no-usable-data": "the underpowered cells had no usable repetitions",
    }.get(info["stop"], info["stop"])
    stayed = info.get("underpowered_cells") or []
    return (
        f"adaptive repetitions: {info['rounds']} round{'s' if info['rounds'] != 1 else ''}, {reps} per side and cell, "
        f"{info['measured_s'] / 60:.1f} min measured; stopped because {why}"
        + (f"; {_cells(len(stayed))} stayed underpowered" if stayed else "")
    )


_STYLE = {"worse": "bold red", "better": "green", "changed": "yellow", "~": "dim", "n/a": "dim"}


def render_table(cmp: Comparison, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{cmp.base} -> {cmp.head}", title_justify="left")
    for name, justify in (
        ("cell", "left"),
        ("metric", "left"),
        ("base", "right"),
        ("head", "right"),
        ("head/base", "right"),
        ("95% CI", "right"),
        ("test", "right"),
        (f"detectable ({POWER:.0%})", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify)
    previous = None
    for _, row in cmp.rows.iterrows():
        blind = row["verdict"] == "~" and row["underpowered"]
        style = "yellow" if blind else _STYLE.get(row["verdict"], "")
        shown = escape(verdict_text(row))
        detectable = detectable_text(row["detectable"])
        table.add_row(
            row["cell"] if row["cell_key"] != previous else "",
            row["metric"],
            _num(row["base_median"]),
            _num(row["head_median"]),
            pct_text(row["ratio"]),
            _ci(row),
            _p(row),
            f"[yellow]{detectable}[/yellow]" if row["underpowered"] else detectable,
            f"[{style}]{shown}[/{style}]" if style else shown,
        )
        previous = row["cell_key"]
    console.print(table)
    console.print(f"base: {_describe(cmp.base, cmp.base_info)}; head: {_describe(cmp.head, cmp.head_info)}")
    console.print(_settings_line(cmp), highlight=False)
    line = adaptive_line(cmp)
    if line:
        console.print(line, highlight=False)
    style = "bold red" if cmp.regression else "yellow" if len(cmp.blind) else "green"
    console.print(f"[{style}]{_summary_line(cmp)}[/{style}]")
    for text in power_lines(cmp):
        console.print(f"[yellow]{text}[/yellow]", highlight=False)


def to_markdown(cmp: Comparison) -> str:
    lines = [
        "## grpclab compare",
        "",
        f"- base: {_describe(cmp.base, cmp.base_info)}",
        f"- head: {_describe(cmp.head, cmp.head_info)}",
        f"- {_settings_line(cmp)}",
        *([f"- {adaptive_line(cmp)}"] if cmp.adaptive else []),
        "",
        f"**{_summary_line(cmp)}**",
        "",
        *[f"- {text}" for text in power_lines(cmp)],
        *([""] if power_lines(cmp) else []),
        f"| cell | metric | base | head | head/base | 95% CI | test | detectable ({POWER:.0%}) | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for _, row in cmp.rows.iterrows():
        shown = verdict_text(row)
        if row["verdict"] in ("worse", "better", "changed") or (row["verdict"] == "~" and row["underpowered"]):
            shown = f"**{shown}**"
        lines.append(
            f"| `{row['cell']}` | {row['metric']} | {_num(row['base_median'])} | {_num(row['head_median'])} | "
            f"{pct_text(row['ratio'])} | {_ci(row)} | {_p(row)} | {detectable_text(row['detectable'])} | {shown} |"
        )
    if cmp.warnings:
        lines += ["", "Warnings:", ""] + [f"- {text}" for text in cmp.warnings]
    return "\n".join(lines) + "\n"


def _clean(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def to_json(cmp: Comparison) -> str:
    rows = [{k: _clean(v) for k, v in row.items()} for row in cmp.rows.to_dict(orient="records")]
    doc = {
        "base": {"run": cmp.base, **cmp.base_info},
        "head": {"run": cmp.head, **cmp.head_info},
        "metrics": list(cmp.metrics),
        "threshold": cmp.threshold,
        "alpha": cmp.alpha,
        "method": METHOD,
        "summary": cmp.counts(),
        "regression": cmp.regression,
        "power": {
            "level": POWER,
            "underpowered": int(len(cmp.blind)),  # ~ rows that could not have detected a threshold-sized change
            "underpowered_cells": sorted(set(cmp.blind["cell_key"])),
            "sentences": power_lines(cmp, limit=1000),
        },
        "adaptive": cmp.adaptive,
        "head_failures": cmp.head_failures,
        "warnings": cmp.warnings,
        "rows": rows,
    }
    return json.dumps(doc, indent=2) + "\n"


def print_warnings(cmp: Comparison, stream=None) -> None:
    stream = stream or sys.stderr
    for text in cmp.warnings:
        print(f"warning: {text}", file=stream)


def emit(cmp: Comparison, fmt: str) -> None:
    """Warnings to stderr, the comparison to stdout in ``fmt``."""
    print_warnings(cmp)
    if fmt == "table":
        from rich.console import Console

        console = Console()
        if not console.is_terminal:
            console = Console(width=200)  # CI logs: wide enough for the table
        render_table(cmp, console)
    elif fmt == "markdown":
        sys.stdout.write(to_markdown(cmp))
    else:
        sys.stdout.write(to_json(cmp))
