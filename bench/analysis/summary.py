"""The terminal summary of a run: one line per cell, medians over repetitions, flags spelled out."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from ..spec import AXES

# (column, header, format)
SHOWN = (
    ("rps", "RPC/s", "{:,.0f}"),
    ("lat_p50_ms", "p50 ms", "{:.2f}"),
    ("lat_p99_ms", "p99 ms", "{:.2f}"),
    ("server_cpu_us_per_rpc", "srv CPU us/RPC", "{:,.0f}"),
    ("wire_bytes_per_rpc", "wire B/RPC", "{:,.0f}"),
    ("payload_ratio", "gzip x", "{:.1f}"),
    ("server_cpu_util", "srv busy", "{:.0%}"),
    ("loadgen_cpu_util", "gen busy", "{:.0%}"),
)


MAX_AXIS_COLUMNS = 6


def saturation_warning(saturated: int, cells: int) -> str:
    """The one wording of 'some cells measured the client', for the terminal summary and the report."""
    return (
        f"in {saturated} of {cells} cells the load generator was >= 90 % busy: "
        "their RPC/s and latency may be the client's limit, not the server's"
    )


def _short(axis: str, value: object) -> str:
    if axis == "payload_size":
        size = int(value)
        return (
            f"{size // 2**20}MiB"
            if size >= 2**20 and size % 2**20 == 0
            else (f"{size // 1024}KiB" if size >= 1024 and size % 1024 == 0 else f"{size}B")
        )
    if axis == "rate":
        return f"{float(value):g}/s"
    return str(value)


def per_cell(df: pd.DataFrame) -> pd.DataFrame:
    """Median of each metric over the cell's successful repetitions, with counts and flags."""
    ok = df[~df["failed"]]
    metrics = [c for c, _, _ in SHOWN]
    med = ok.groupby("cell_key", observed=True)[metrics].median()
    flags = df.groupby("cell_key", observed=True).agg(
        reps=("repetition", "count"),
        failed=("failed", "sum"),
        errors=("errors", "sum"),
        loadgen_saturated=("loadgen_saturated", "any"),
        order=("order", "min"),
    )
    return flags.join(med).sort_values("order")


def varying_axes(df: pd.DataFrame) -> list[str]:
    """The axes whose value differs between cells of this run: the only ones worth a column."""
    return [a for a in AXES if df[a].astype(str).nunique() > 1]


def render(df: pd.DataFrame, console: Console | None = None, title: str = "") -> None:
    console = console or Console()
    cells = per_cell(df)
    axes = varying_axes(df) or ["impl"]
    first = df.sort_values("order").drop_duplicates("cell_key").set_index("cell_key")
    table = Table(title=title or None, show_lines=False)
    # Up to a handful of varying axes read best as columns; beyond that one compact column
    # (values joined by '/', in the order named in its header) keeps the table on screen.
    compact = len(axes) > MAX_AXIS_COLUMNS
    if compact:
        table.add_column("/".join(axes))
    else:
        for axis in axes:
            table.add_column(axis)
    for _, header, _ in SHOWN:
        table.add_column(header, justify="right")
    table.add_column("flags")
    for key, r in cells.iterrows():
        flags = []
        if r["failed"]:
            flags.append(f"[red]{int(r['failed'])} failed[/red]")
        if r["errors"]:
            flags.append(f"[red]{int(r['errors'])} errors[/red]")
        if r["loadgen_saturated"]:
            flags.append("[yellow]gen-saturated[/yellow]")
        values = ["-" if pd.isna(r[c]) else fmt.format(r[c]) for c, _, fmt in SHOWN]
        labels = [_short(a, first.loc[key, a]) for a in axes]
        table.add_row(*(["/".join(labels)] if compact else labels), *values, " ".join(flags))
    fixed = {a: first.iloc[0][a] for a in AXES if a not in axes}
    console.print(table)
    if fixed:
        console.print("same in every cell: " + ", ".join(f"{a}={v}" for a, v in fixed.items()), highlight=False)
    saturated = int(cells["loadgen_saturated"].sum())
    if saturated:
        console.print(
            f"[yellow]warning: {saturation_warning(saturated, len(cells))} "
            '(try loadgen = "ghz", or give the generator more CPUs).[/yellow]'
        )
    failed = int((cells["failed"] > 0).sum())
    if failed:
        console.print(f"[red]{failed} cells had failed repetitions: see the `error` column of cells.csv.[/red]")
