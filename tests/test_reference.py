"""What Python costs against the grpc-go reference (bench/analysis/reference.py, its figure and report section), on
synthetic tables whose expected numbers are computed here with plain pandas; no process is started."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bench.analysis import figures, findings, reference, report, results, schema, table
from bench.spec import DEFAULTS, Cell, Settings
from bench.spec.cell import normalize

REPO = Path(__file__).resolve().parent.parent
QUICK = REPO / "tests" / "data" / "quick-run"
SAMPLE = REPO / "tests" / "data" / "sample-run"
CPU, RPS = "server_cpu_us_per_rpc", "rps"
# A manifest without a spec (the baseline comes from the table) and one server CPU.
MANIFEST = replace(results.read_manifest(QUICK), spec_source={}, settings=Settings(server_cpus=(0,)))


def synthetic(cells: list[tuple[dict, list[dict]]]) -> pd.DataFrame:
    """Rows with every schema column: each (axis overrides, one dict of metric values per repetition), normalized
    as the spec normalizes (aio and go cells carry workers 0)."""
    rows, order = [], 0
    for overrides, repetitions in cells:
        cell = normalize(dict(DEFAULTS) | overrides)
        for rep, metrics in enumerate(repetitions):
            row = schema.empty_row() | cell.to_dict() | {"run_id": "synthetic", "cell_key": cell.key()}
            rows.append(row | {"repetition": rep, "order": order, "failed": False} | metrics)
            order += 1
    return pd.DataFrame(rows)


def reps(cpu: list[float], rps: list[float], busy: float = 0.95, **flags: bool) -> list[dict]:
    return [
        {CPU: c, RPS: r, "server_cpu_util": busy, "lat_p50_ms": 1.0, "loadgen_saturated": False}
        | {"server_saturated": busy >= 0.9}  # as bench.run.measure flags it
        | flags
        for c, r in zip(cpu, rps, strict=True)
    ]


GHZ = {"loadgen": "ghz"}
CELLS = [
    ({"impl": "sync", "workers": 1} | GHZ, reps([90, 92, 95], [3600, 3700, 3650])),
    ({"impl": "sync", "workers": 16} | GHZ, reps([100, 98, 103], [4100, 4000, 4200])),
    ({"impl": "aio"} | GHZ, reps([160, 170, 165], [2900, 2700, 2800])),
    ({"impl": "go"} | GHZ, reps([31, 30, 33], [20000, 21000, 20500], busy=0.30)),
    # 64 KiB: a setting of its own; its aio cell has no Go cell, so it gets no ratio
    ({"impl": "sync", "workers": 16, "payload_size": 65536} | GHZ, reps([200, 210, 205], [3000, 3100, 3050])),
    ({"impl": "go", "payload_size": 65536} | GHZ, reps([100, 104, 102], [6000, 6100, 6050], busy=0.95)),
    ({"impl": "aio", "payload_size": 4096} | GHZ, reps([170, 171, 172], [2000, 2100, 2050])),
]


@pytest.fixture
def df() -> pd.DataFrame:
    return synthetic(CELLS)


def key(**overrides: object) -> str:
    return normalize(dict(DEFAULTS) | GHZ | overrides).key()


def med(df: pd.DataFrame, cell_key: str, metric: str) -> float:
    return float(df.loc[df["cell_key"] == cell_key, metric].median())


def test_every_python_cell_gets_the_go_cell_with_the_same_other_axes(df):
    found = reference.ratios(df, MANIFEST)
    pairs = [(r.python.key, r.go.key) for r in found]
    go0, go64 = key(impl="go"), key(impl="go", payload_size=65536)
    # both sync thread counts meet the one Go cell (findings.pairs without its one-use rule); spec order, sync first
    assert pairs == [
        (key(impl="sync", workers=1), go0),
        (key(impl="sync", workers=16), go0),
        (key(impl="aio"), go0),
        (key(impl="sync", workers=16, payload_size=65536), go64),
    ]
    for r in found:
        expected = med(df, r.python.key, CPU) / med(df, r.go.key, CPU)
        assert r.cpu_ratio == pytest.approx(expected)
        assert r.rps_ratio == pytest.approx(med(df, r.python.key, RPS) / med(df, r.go.key, RPS))
    low, high = found[2].cpu_ratio_range  # aio: 160..170 over Go's 30..33
    assert (low, high) == (pytest.approx(160 / 33), pytest.approx(170 / 30))


def test_findings_pairs_keep_their_one_use_rule(df):
    run = findings.run_of(df, MANIFEST)
    once = findings.pairs(run, "impl", "go", "sync")
    every = findings.pairs(run, "impl", "go", "sync", one_to_one=False)
    assert len(once) == 2 and len(every) == 3  # the 0 B Go cell goes to one sync cell only, by default
    keys = lambda found: {(a.key, b.key) for a, b in found}  # noqa: E731
    assert keys(once) <= keys(every)


def test_a_saturated_generator_in_either_cell_leaves_the_rps_ratio_out(df):
    df.loc[df["cell_key"] == key(impl="go"), "loadgen_saturated"] = [False, True, False]
    found = reference.ratios(df, MANIFEST)
    at_zero = [r for r in found if r.go.key == key(impl="go")]
    assert all(math.isnan(r.rps_ratio) and math.isfinite(r.cpu_ratio) for r in at_zero)
    rows = {row.key: row for row in reference.to_table(found).rows}
    flag = rows[key(impl="aio")].flags[0]
    assert flag.kind == "saturated" and flag.text == "gen-saturated (Go cell): RPC/s not compared"
    assert not rows[key(impl="sync", workers=16, payload_size=65536)].flags
    said = reference.answer(found)
    assert "RPC/s is not compared in 3 of 4 pairs" in " ".join(said.notes)


def test_an_unstable_cell_is_flagged_by_the_summary_table_s_rule(df):
    df.loc[df["cell_key"] == key(impl="aio"), CPU] = [100, 165, 230]  # CV 39 %: beyond the 10 % floor
    rows = {row.key: row for row in reference.to_table(reference.ratios(df, MANIFEST)).rows}
    (flag,) = rows[key(impl="aio")].flags
    summary_flag = next(f for r in table.build(df).rows if r.key == key(impl="aio") for f in r.flags)
    assert flag.kind == "unstable" and flag.detail == summary_flag.detail == "server_cpu_us_per_rpc CV 39% > 10%"
    assert flag.text == "unstable (Python cell: server_cpu_us_per_rpc CV 39% > 10%)"
    assert not rows[key(impl="sync", workers=16)].flags  # the same Go cell, a steady Python cell: no flag


def test_the_table_is_the_cell_table_model_with_its_own_columns(df):
    found = reference.ratios(df, MANIFEST)
    cells = reference.to_table(found)
    assert cells.axes == ("impl", "workers", "payload_size")
    assert [row.labels for row in cells.rows] == [
        ("sync", "1", "0 B"),
        ("sync", "16", "0 B"),
        ("aio", "-", "0 B"),
        ("sync", "16", "64 KiB"),
    ]
    aio = cells.rows[2]
    assert aio.values[:3] == (165.0, 31.0, pytest.approx(165 / 31))
    assert aio.values[6:] == (pytest.approx(0.95), pytest.approx(0.30))
    text = table.to_markdown(cells)
    assert "| CPU Python/Go |" in text and f"| {165 / 31:.2f}x |" in text
    assert "Same in every cell:" in text and "loadgen=ghz" in text
    assert "<table" in table.to_html(cells)


def test_the_answer_says_it_in_words_with_the_numbers(df):
    said = reference.answer(reference.ratios(df, MANIFEST))
    assert said.items == (
        f"unary, 0 B: sync (1 thread) {92 / 31:.2f}x (92 vs 31 us), sync (16 threads) {100 / 31:.2f}x (100 vs 31 us), "
        f"aio {165 / 31:.2f}x (165 vs 31 us)",
        f"unary, 64 KiB: sync (16 threads) {205 / 102:.2f}x (205 vs 102 us)",
    )
    notes = " ".join(said.notes)
    assert f"From {205 / 102:.2f}x (sync (16 threads), unary, 64 KiB) to {165 / 31:.2f}x (aio, unary, 0 B)" in notes
    # Go at 30 % busy in the 0 B cell: not the limit, said with its number; the saturated 64 KiB cell is
    assert "The Go server was not the limit in 1 of its 2 cells (30% of its CPU busy, median)" in notes
    assert "RPC/s Python/Go is an upper bound" in notes


def test_a_go_server_busy_but_not_saturated_is_not_the_limit_either(df):
    # 80 % busy is far from idle, yet under the rows' own saturation flag (90 % in every repetition): Go could
    # still serve more, so its RPC/s is not its capacity
    go64 = df["cell_key"] == key(impl="go", payload_size=65536)
    df.loc[go64, "server_cpu_util"] = 0.8
    df.loc[go64, "server_saturated"] = [False, True, False]  # saturated in one repetition only: still not the limit
    found = reference.ratios(df, MANIFEST)
    assert all(r.go_not_the_limit for r in found)
    notes = " ".join(reference.answer(found).notes)
    assert "The Go server was not the limit in all 2 of its cells (30%-80% of its CPU busy, median)" in notes


def test_no_go_cell_means_no_ratio_no_section_and_a_skipped_figure(tmp_path):
    for run in (QUICK, SAMPLE):
        df, manifest = results.load(run), results.read_manifest(run)
        assert reference.ratios(df, manifest) == []
        assert reference.answer([]) is None
        with pytest.raises(figures.Skip, match="no go cell"):
            dict(figures.FIGURES)["python_cost"](df, manifest, tmp_path)
        assert report.reference_section([]) == ""


def test_the_figure_and_the_report_section_draw_from_the_same_pairs(df, tmp_path):
    drawn = dict(figures.FIGURES)["python_cost"](df, MANIFEST, tmp_path)
    assert (tmp_path / drawn.file).stat().st_size > 10_000
    assert "Held fixed" in drawn.caption and "workers=16" in drawn.caption  # one sync thread count per bar
    assert "not the limit" in drawn.caption
    cells = table.build(df)
    page = report.render(df, MANIFEST, tmp_path, "synthetic", cells, costs=reference.ratios(df, MANIFEST))
    assert '<h2 id="python-cost">' in page and "sync (16 threads)" in page
    assert page.count('<tr class="cell') == len(cells.rows) + 4  # the summary's rows and the 4 pairs


def test_an_old_cell_key_reads_with_go_allowed():
    # impl is an existing axis; only its allowed values grew, so every row written before still reads the same
    for run in (QUICK, SAMPLE, REPO / "tests" / "data" / "sample-run-v1"):
        df = results.load(run)
        for row in df.drop_duplicates("cell_key").to_dict("records"):
            assert Cell.from_dict({a: row[a] for a in Cell.__dataclass_fields__}).key() == row["cell_key"]
