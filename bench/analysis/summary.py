"""The terminal summary of a run: the per-cell table (bench.analysis.table), then what needs saying, and last the
run's findings (bench.analysis.findings) in their compact form."""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from . import findings, table


def saturation_warning(saturated: int, cells: int) -> str:
    """The one wording of 'some cells measured the client', for the terminal summary and the report."""
    return (
        f"in {saturated} of {cells} cells the load generator was >= 90 % busy: "
        "their RPC/s and latency may be the client's limit, not the server's"
    )


def render(df: pd.DataFrame, console: Console | None = None, title: str = "") -> None:
    console = console or Console()
    cells = table.build(df)
    console.print(table.to_rich(cells, title))
    if cells.fixed:
        console.print(f"same in every cell: {cells.fixed_text()}", highlight=False)
    if cells.saturated_cells:
        console.print(
            f"[yellow]warning: {saturation_warning(cells.saturated_cells, len(cells.rows))} "
            '(try loadgen = "ghz", or give the generator more CPUs).[/yellow]'
        )
    if cells.failed_cells:
        console.print(
            f"[red]{cells.failed_cells} cells had failed repetitions: see the `error` column of cells.csv.[/red]"
        )


def render_findings(document: findings.Document, console: Console | None = None) -> None:
    """The findings, compact: label, study and headline per finding, the legend, the machine's line."""
    console = console or Console()
    console.print()
    console.print(findings.to_rich(document.findings, document.note))
