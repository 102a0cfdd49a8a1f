"""bench.analysis.table: one per-cell table of a run, rendered for the terminal, the report and markdown."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from bench.analysis import results, summary, table
from bench.spec import ALLOWED, AXES

RUN = Path(__file__).resolve().parent / "data" / "sample-run-v1"


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return results.load(RUN)


def test_one_row_per_cell_in_spec_order_with_the_varying_axes(df):
    cells = table.build(df)
    assert len(cells.rows) == df["cell_key"].nunique() == 16
    assert [r.reps for r in cells.rows] == [2] * 16
    varying = [a for a in AXES if df[a].astype(str).nunique() > 1]
    assert list(cells.axes) == varying and cells.compact  # more than a handful: one '/'-joined column
    assert dict(cells.fixed) == {
        "processes": "1",
        "payload_size": "4 KiB",
        "connections": "1",
        "arrival": "constant",
        "loadgen": "python",
    }  # later axes (link, handler work, client side) at their defaults are not named, as in cell keys
    # spec order: by impl (sync, aio), then rpc (unary, server_stream, ...), ...
    first = df.drop_duplicates("cell_key").set_index("cell_key")
    order = [
        (ALLOWED["impl"].index(first.loc[r.key, "impl"]), ALLOWED["rpc"].index(first.loc[r.key, "rpc"]))
        for r in cells.rows
    ]
    assert order == sorted(order) and order[0][0] < order[-1][0]


def test_an_axis_that_does_not_apply_to_a_cell_reads_as_a_dash():
    # the committed floor run: two Python generator cells (aio, sync-threads clients) and a ghz cell
    floor = results.load(Path(__file__).resolve().parents[1] / "results" / "floor-2026-12-01")
    cells = table.build(floor)
    assert list(cells.axes) == ["loadgen", "client"]
    assert sorted(row.labels for row in cells.rows) == [("ghz", "-"), ("python", "aio"), ("python", "sync-threads")]
    # every cell is closed-loop: rate and arrival mean nothing in any, so "same in every cell" leaves them out
    assert "rate" not in dict(cells.fixed) and "arrival" not in dict(cells.fixed)
    assert dict(cells.fixed)["mode"] == "closed" and dict(cells.fixed)["workers"] == "16"
    assert "| ghz | - | 3 |" in table.to_markdown(cells)
    # an aio server's workers, a unary cell's stream_messages: the quick matrix's server-model cells
    quick = results.load(Path(__file__).resolve().parents[1] / "results" / "quick-hold-2026-12-01")
    cells = table.build(quick)
    at = {axis: i for i, axis in enumerate(cells.axes)}
    first = quick.drop_duplicates("cell_key").set_index("cell_key")
    assert {first.loc[row.key, "impl"] for row in cells.rows} == {"sync", "aio"}
    for row in cells.rows:
        assert (row.labels[at["workers"]] == "-") == (first.loc[row.key, "impl"] != "sync")
        assert (row.labels[at["stream_messages"]] == "-") == (first.loc[row.key, "rpc"] == "unary")


def test_medians_are_over_successful_repetitions_and_flags_say_why(df):
    df = df.copy()
    key = df["cell_key"].iloc[0]
    rep0 = (df["cell_key"] == key) & (df["repetition"] == 0)
    df.loc[rep0, ["failed", "error"]] = [True, "server exited with code 1"]
    df.loc[rep0, "rps"] = 1e9  # a failed repetition's number must not reach the median
    df.loc[df["cell_key"] == key, "loadgen_saturated"] = True
    cells = table.build(df)
    row = next(r for r in cells.rows if r.key == key)
    kept = df.loc[(df["cell_key"] == key) & ~df["failed"], "rps"].median()
    assert row.values[0] == kept
    assert [f.kind for f in row.flags] == ["failed", "saturated"] and row.state == "failed"
    assert row.flags[0].text == "1 failed" and row.flags[0].detail == "server exited with code 1"
    assert cells.failed_cells == 1 and cells.saturated_cells == df.groupby("cell_key")["loadgen_saturated"].any().sum()


def test_the_three_renderers_show_the_same_cells_and_numbers(df):
    cells = table.build(df)
    html = table.to_html(cells)
    markdown = table.to_markdown(cells)
    rich_table = table.to_rich(cells, "t")
    assert html.count('<tr class="cell') == len(cells.rows) == rich_table.row_count
    md_rows = [line for line in markdown.splitlines() if line.startswith("| ") and "reps" not in line]
    assert len(md_rows) == len(cells.rows)
    for row, md in zip(cells.rows, md_rows, strict=True):
        shown = [fmt.format(v) if v == v else "-" for v, (_, _, fmt) in zip(row.values, table.SHOWN, strict=True)]
        assert md.split(" | ")[2 : 2 + len(shown)] == shown  # after the axes and reps columns
        html_row = re.search(rf'data-cell="{re.escape(row.key)}".*?</tr>', html).group(0)
        assert re.findall(r'<td class="num">([^<]*)</td>', html_row) == [str(row.reps), *shown]
    assert "Same in every cell: processes=1, payload_size=4 KiB" in html and "Same in every cell:" in markdown


def test_the_terminal_summary_prints_the_table_and_the_warnings(df):
    out = io.StringIO()
    summary.render(df, Console(file=out, width=250), title="sample")
    text = out.getvalue()
    assert "same in every cell: processes=1, payload_size=4 KiB" in text
    saturated = df.groupby("cell_key")["loadgen_saturated"].any().sum()
    assert summary.saturation_warning(saturated, 16) in " ".join(text.split())


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (100, "100 B"), (1024, "1 KiB"), (1536, "1536 B"), (4096, "4 KiB"), (2**20, "1 MiB")]
)
def test_one_size_formatter(size, text):
    assert table.fmt_size(size) == text
    assert table.value_text("payload_size", size) == text
