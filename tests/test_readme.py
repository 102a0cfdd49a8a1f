"""The README's generated parts still match their sources (figures and column docs are derived, not typed in)."""

from __future__ import annotations

from pathlib import Path

from bench.analysis import breakeven, crosscheck, results, schema

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_column_table_is_the_schema_s():
    assert schema.markdown_table().strip() in README


def test_crosscheck_table_is_what_the_committed_run_gives():
    shown = README.split("<!-- crosscheck:begin -->\n", 1)[1].split("<!-- crosscheck:end -->", 1)[0]
    run = REPO / "results" / "crosscheck-2026-11-25"
    assert shown == crosscheck.to_markdown(crosscheck.pairs(results.load(run)))


def test_links_table_is_what_the_committed_run_gives():
    shown = README.split("<!-- links:begin -->\n", 1)[1].split("<!-- links:end -->", 1)[0]
    assert shown == breakeven.to_markdown(results.load(REPO / "results" / "links-2026-12-01"))
