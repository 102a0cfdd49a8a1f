"""How a Comparison is shown: a rich table on the terminal, markdown (CI job summaries), JSON (tools)."""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .stats import METHOD

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
        f"method: {METHOD}; a change counts when significant and beyond the threshold"
    )


def _verdict_text(row: pd.Series | dict) -> str:
    """The verdict, and which side's repetitions were unstable (bench.analysis.stability) when any was."""
    unstable = row.get("unstable") or ""
    return f"{row['verdict']} (unstable: {unstable})" if unstable else str(row["verdict"])


def _summary_line(cmp: Comparison) -> str:
    counts = cmp.counts()
    parts = [f"{counts['worse']} worse", f"{counts['better']} better", f"{counts['~']} ~"]
    if counts["changed"]:
        parts.append(f"{counts['changed']} changed (no direction)")
    if counts["n/a"]:
        parts.append(f"{counts['n/a']} n/a")
    verdict_text = "REGRESSION" if cmp.regression else "no significant regression"
    return f"{verdict_text}: {', '.join(parts)} of {len(cmp.rows)} cell x metric comparisons"


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
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify)
    previous = None
    for _, row in cmp.rows.iterrows():
        style = _STYLE.get(row["verdict"], "")
        shown = escape(_verdict_text(row))
        table.add_row(
            row["cell"] if row["cell_key"] != previous else "",
            row["metric"],
            _num(row["base_median"]),
            _num(row["head_median"]),
            pct_text(row["ratio"]),
            _ci(row),
            _p(row),
            f"[{style}]{shown}[/{style}]" if style else shown,
        )
        previous = row["cell_key"]
    console.print(table)
    console.print(f"base: {_describe(cmp.base, cmp.base_info)}; head: {_describe(cmp.head, cmp.head_info)}")
    console.print(_settings_line(cmp), highlight=False)
    style = "bold red" if cmp.regression else "green"
    console.print(f"[{style}]{_summary_line(cmp)}[/{style}]")


def to_markdown(cmp: Comparison) -> str:
    lines = [
        "## grpclab compare",
        "",
        f"- base: {_describe(cmp.base, cmp.base_info)}",
        f"- head: {_describe(cmp.head, cmp.head_info)}",
        f"- {_settings_line(cmp)}",
        "",
        f"**{_summary_line(cmp)}**",
        "",
        "| cell | metric | base | head | head/base | 95% CI | test | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for _, row in cmp.rows.iterrows():
        shown = _verdict_text(row)
        shown = f"**{shown}**" if row["verdict"] in ("worse", "better", "changed") else shown
        lines.append(
            f"| `{row['cell']}` | {row['metric']} | {_num(row['base_median'])} | {_num(row['head_median'])} | "
            f"{pct_text(row['ratio'])} | {_ci(row)} | {_p(row)} | {shown} |"
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
