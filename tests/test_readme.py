"""The README's generated parts still match their sources (figures and column docs are derived, not typed in)."""

from __future__ import annotations

from pathlib import Path

from bench.analysis import breakeven, crosscheck, results, schema
from bench.studies import overhead, soak

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_column_table_is_the_schema_s():
    assert schema.markdown_table().strip() in README


def test_crosscheck_table_is_what_the_committed_run_gives():
    shown = README.split("<!-- crosscheck:begin -->\n", 1)[1].split("<!-- crosscheck:end -->", 1)[0]
    run = REPO / "results" / "crosscheck-2026-11-25"
    assert shown == crosscheck.to_markdown(crosscheck.pairs(results.load(run)))


def test_overhead_table_is_what_the_committed_run_gives():
    shown = README.split("<!-- overhead:begin -->\n", 1)[1].split("<!-- overhead:end -->", 1)[0]
    meta, cells = overhead.load_run(REPO / "results" / "overhead-2026-12-01")
    assert shown.strip() == overhead.render_table(cells, meta["settings"]["goal"], meta["settings"]["alpha"])


def test_soak_tables_are_what_the_committed_run_gives():
    shown = README.split("<!-- soak:begin -->\n", 1)[1].split("<!-- soak:end -->", 1)[0]
    assert shown.strip() == soak.render_tables(soak.load_run(REPO / "results" / "soak-2026-12-01"))


def test_overhead_unary_table_is_what_the_committed_run_gives():
    shown = README.split("<!-- overhead-unary:begin -->\n", 1)[1].split("<!-- overhead-unary:end -->", 1)[0]
    meta, cells = overhead.load_run(REPO / "results" / "overhead-unary-2026-12-01")
    assert shown.strip() == overhead.render_table(cells, meta["settings"]["goal"], meta["settings"]["alpha"])


def test_links_table_is_what_the_committed_run_gives():
    shown = README.split("<!-- links:begin -->\n", 1)[1].split("<!-- links:end -->", 1)[0]
    assert shown == breakeven.to_markdown(results.load(REPO / "results" / "links-2026-12-01"))
