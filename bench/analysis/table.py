"""A run's per-cell table: one model, rendered for the terminal (rich), the HTML report and markdown.

One row per cell: the axes that vary between the run's cells (the others are said once, under the
table), the number of repetitions, the median over successful repetitions of each shown metric, and
flags (failed repetitions, RPC errors, a saturated load generator, repetitions too spread to trust:
``unstable``, bench.analysis.stability). Cells are in spec order (sorted
by axis values). ``build`` makes the model from a run's tidy table; ``to_rich``, ``to_html`` and
``to_markdown`` only format it. ``value_text`` is the one way an axis value is written for people
(tables, figure captions and labels, the cross-check table). An axis that does not apply to a cell
(bench.spec.cell.INAPPLICABLE: a ghz cell's client, an aio server's workers) is written ``-`` in its row, and
left out of "same in every cell" when it applies to none: its stored value is only normalize()'s placeholder.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd
from rich.table import Table

from ..spec import AXES, DEFAULTS
from ..spec.cell import LATER_AXES, applies
from . import stability

# (column, header, format): the metrics a table shows, in order
Shown = tuple[tuple[str, str, str], ...]
SHOWN: Shown = (
    ("rps", "RPC/s", "{:,.0f}"),
    ("lat_p50_ms", "p50 ms", "{:.2f}"),
    ("lat_p99_ms", "p99 ms", "{:.2f}"),
    ("server_cpu_us_per_rpc", "srv CPU us/RPC", "{:,.0f}"),
    ("wire_bytes_per_rpc", "wire B/RPC", "{:,.0f}"),
    ("payload_ratio", "gzip x", "{:.1f}"),
    ("server_cpu_util", "srv busy", "{:.0%}"),
    ("loadgen_cpu_util", "gen busy", "{:.0%}"),
)
# Up to a handful of varying axes read best as columns; beyond that one compact column (values joined
# by '/', in the order its header names) keeps the table on screen.
MAX_AXIS_COLUMNS = 6
NOT_APPLICABLE = "-"  # an axis's value in a row where the axis means nothing (bench.spec.cell.applies)


def fmt_size(size: float) -> str:
    """Bytes as people write them: '0 B', '100 B', '4 KiB', '1 MiB'."""
    size = int(size)
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def value_text(axis: str, value: object) -> str:
    if axis == "payload_size":
        return fmt_size(value)
    if axis == "rate":  # 0: a closed-loop cell, which has no rate
        return f"{float(value):g} RPC/s" if float(value) else "0"
    if axis in ("handler_wait_ms", "handler_block_ms"):  # 0: the handler does no such work
        return f"{float(value):g} ms" if float(value) else "0"
    if axis == "handler_cpu_us":
        return f"{int(value)} us" if int(value) else "0"
    return str(value)


@dataclass(frozen=True)
class Flag:
    kind: str  # "failed" | "errors" | "saturated" | "unstable"
    text: str
    detail: str = ""  # why (the failed repetitions' errors)


@dataclass(frozen=True)
class CellRow:
    key: str
    labels: tuple[str, ...]  # the varying axes' values, as text
    reps: int
    values: tuple[float, ...]  # medians, in the table's ``shown`` order (NaN: none)
    flags: tuple[Flag, ...]

    @property
    def state(self) -> str:
        """The strongest flag: 'failed', 'saturated', 'unstable' or ''."""
        kinds = {f.kind for f in self.flags}
        return next((kind for kind in ("failed", "saturated", "unstable") if kind in kinds), "")


@dataclass(frozen=True)
class CellTable:
    axes: tuple[str, ...]  # the axes that vary between cells
    rows: tuple[CellRow, ...]
    fixed: tuple[tuple[str, str], ...]  # (axis, value) of the axes every cell shares
    shown: Shown = SHOWN  # the value columns (another table of cells, e.g. bench.analysis.reference's, has its own)

    @property
    def compact(self) -> bool:
        return len(self.axes) > MAX_AXIS_COLUMNS

    @property
    def saturated_cells(self) -> int:
        return sum(any(f.kind == "saturated" for f in r.flags) for r in self.rows)

    @property
    def failed_cells(self) -> int:
        return sum(any(f.kind == "failed" for f in r.flags) for r in self.rows)

    @property
    def unstable_cells(self) -> int:
        return sum(any(f.kind == "unstable" for f in r.flags) for r in self.rows)

    def axis_headers(self) -> list[str]:
        return ["/".join(self.axes)] if self.compact else list(self.axes)

    def axis_cells(self, row: CellRow) -> list[str]:
        return ["/".join(row.labels)] if self.compact else list(row.labels)

    def fixed_text(self) -> str:
        return ", ".join(f"{axis}={value}" for axis, value in self.fixed)


def per_cell(df: pd.DataFrame) -> pd.DataFrame:
    """Median of each shown metric over the cell's successful repetitions, with counts and flags."""
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
    return flags.join(med)


def varying_axes(df: pd.DataFrame) -> list[str]:
    """The axes whose value differs between cells of this run: the only ones worth a column."""
    return [a for a in AXES if df[a].astype(str).nunique() > 1]


def build(df: pd.DataFrame, noise_cv: dict[str, float] | None = None) -> CellTable:
    """The table of a run; ``noise_cv``: its calibration's noise, for the unstable rule (None: 10 % alone)."""
    cells = per_cell(df)
    spread = stability.unstable_cells(df, noise_cv)
    axes = varying_axes(df) or ["impl"]
    first = df.sort_values("order").drop_duplicates("cell_key").set_index("cell_key")
    keys = first.sort_values(list(AXES)).index.intersection(cells.index, sort=False)  # spec order
    rows = []
    for key in keys:
        r = cells.loc[key]
        flags = []
        if r["failed"]:
            errs = df.loc[(df["cell_key"] == key) & df["failed"], "error"].astype(str)
            flags.append(Flag("failed", f"{int(r['failed'])} failed", "; ".join(dict.fromkeys(e for e in errs if e))))
        if r["errors"]:
            flags.append(Flag("errors", f"{int(r['errors'])} RPC errors"))
        if r["loadgen_saturated"]:
            flags.append(Flag("saturated", "gen-saturated"))
        if key in spread:
            why = "; ".join(s.text() for s in spread[key])
            flags.append(Flag("unstable", f"unstable ({why})", why))
        axes_of_cell = first.loc[key]
        labels = tuple(value_text(a, axes_of_cell[a]) if applies(a, axes_of_cell) else NOT_APPLICABLE for a in axes)
        values = tuple(float(r[c]) for c, _, _ in SHOWN)
        rows.append(CellRow(str(key), labels, int(r["reps"]), values, tuple(flags)))
    # an axis every cell shares but none of them uses (all aio servers' workers) says nothing about the run
    shared = [a for a in AXES if a not in axes and any(applies(a, first.loc[key]) for key in keys)]
    return CellTable(tuple(axes), tuple(rows), fixed_axes(first.iloc[0], shared))


def fixed_axes(values: Mapping[str, object], shared: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(axis, value text) of the axes every cell shares, for 'same in every cell'. An axis added later and left at
    its default is not named, as in cell keys: it is what every run before it did."""
    return tuple((a, value_text(a, values[a])) for a in shared if not (a in LATER_AXES and values[a] == DEFAULTS[a]))


def _number(value: float, fmt: str) -> str:
    return "-" if pd.isna(value) else fmt.format(value)


# -- renderers ---------------------------------------------------------------------------------------

_RICH_STYLE = {"failed": "red", "errors": "red", "saturated": "yellow", "unstable": "magenta"}
_HTML_CLASS = {
    "failed": "flag-failed",
    "errors": "flag-failed",
    "saturated": "flag-saturated",
    "unstable": "flag-unstable",
}


def to_rich(table: CellTable, title: str = "") -> Table:
    """A rich Table for the terminal."""
    out = Table(title=title or None, show_lines=False)
    for header in table.axis_headers():
        out.add_column(header)
    out.add_column("reps", justify="right")
    for _, header, _ in table.shown:
        out.add_column(header, justify="right")
    out.add_column("flags")
    for row in table.rows:
        values = [_number(v, fmt) for v, (_, _, fmt) in zip(row.values, table.shown, strict=True)]
        flags = " ".join(f"[{_RICH_STYLE[f.kind]}]{f.text}[/{_RICH_STYLE[f.kind]}]" for f in row.flags)
        out.add_row(*table.axis_cells(row), str(row.reps), *values, flags)
    return out


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def to_html(table: CellTable) -> str:
    """A <table> (rows carry data-cell and a failed/saturated class) and the fixed axes, for the report."""
    head = "".join(f"<th>{_e(h)}</th>" for h in table.axis_headers())
    head += "<th>reps</th>" + "".join(f"<th>{_e(h)}</th>" for _, h, _ in table.shown) + "<th>flags</th>"
    rows = []
    for row in table.rows:
        tds = "".join(f"<td>{_e(v)}</td>" for v in table.axis_cells(row))
        tds += f'<td class="num">{row.reps}</td>'
        tds += "".join(
            f'<td class="num">{_number(v, fmt)}</td>' for v, (_, _, fmt) in zip(row.values, table.shown, strict=True)
        )
        flags = []
        for f in row.flags:
            css = _HTML_CLASS[f.kind]
            title = f' title="{_e(f.detail)}"' if f.detail else ""
            flags.append(f'<span class="flag {css}"{title}>{_e(f.text)}</span>')
        tds += f"<td>{' '.join(flags)}</td>"
        cls = f"cell {row.state}" if row.state else "cell"
        rows.append(f'<tr class="{cls}" data-cell="{_e(row.key)}" title="{_e(row.key)}">{tds}</tr>')
    out = f'<div class="scroll"><table class="summary"><thead><tr>{head}</tr></thead>'
    out += f"<tbody>{''.join(rows)}</tbody></table></div>"
    if table.fixed:
        out += f'<p class="note">Same in every cell: {_e(table.fixed_text())}.</p>'
    return out


def to_markdown(table: CellTable) -> str:
    """A GitHub markdown table, then the fixed axes."""
    headers = [*table.axis_headers(), "reps", *(h for _, h, _ in table.shown), "flags"]
    align = ["---"] * len(table.axis_headers()) + ["---:"] * (1 + len(table.shown)) + ["---"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    for row in table.rows:
        values = [_number(v, fmt) for v, (_, _, fmt) in zip(row.values, table.shown, strict=True)]
        flags = ", ".join(f.text for f in row.flags)
        lines.append("| " + " | ".join([*table.axis_cells(row), str(row.reps), *values, flags]) + " |")
    if table.fixed:
        lines += ["", f"Same in every cell: {table.fixed_text()}."]
    return "\n".join(lines) + "\n"
