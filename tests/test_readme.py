"""The README's generated parts still match their sources (figures and column docs are derived, not typed in)."""

from __future__ import annotations

from pathlib import Path

from bench.analysis import breakeven, crosscheck, findings, measured, results, schema
from bench.studies import overhead, soak

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
RESULTS = REPO / "results"


def _block(name: str) -> str:
    return README.split(f"<!-- {name}:begin -->\n", 1)[1].split(f"<!-- {name}:end -->", 1)[0]


def test_column_table_is_the_schema_s():
    assert schema.markdown_table().strip() in README


def test_crosscheck_table_is_what_the_committed_run_gives():
    run = RESULTS / "crosscheck-2026-12-01"
    assert _block("crosscheck") == crosscheck.to_markdown(crosscheck.pairs(results.load(run)))
    assert _block("crosscheck-run") == measured.describe(run)


def test_machine_figures_are_what_the_committed_runs_give():
    quick, floor = RESULTS / "quick-hold-2026-12-01", RESULTS / "floor-2026-12-01"
    assert _block("measured-quick-run") == measured.describe(quick, system=True)
    assert _block("measured-quick") == measured.tables(quick)
    assert _block("floor-run") == measured.describe(floor)
    assert _block("floor") == measured.cells(floor) + "\n" + measured.floor_check(floor)
    # what the words around them say of every run there: this machine, this day, the hold on
    for run in (quick, floor, RESULTS / "crosscheck-2026-12-01"):
        manifest = results.read_manifest(run)
        assert (manifest.environment.cpu_model, manifest.environment.cores) == ("AMD EPYC", 2)
        assert manifest.system.cpuidle.driver == "haltpoll" and manifest.started_at.startswith("2026-12-01")
        assert manifest.cpu_latency_hold.held and manifest.cpu_latency_hold.effective_us == 0


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


def test_findings_example_is_what_the_committed_run_gives():
    run = REPO / "results" / "quick-2026-12-01"
    document = findings.analyse(run)
    # the findings.json `make bench` wrote beside the run is what its cells give with this code
    assert findings.read(run / findings.FILE_NAME) == document
    assert [f.study for f in document.findings] == [
        "server_model", "thread_pool", "processes", "payload_size", "compression", "tls", "tls", "open_loop_knee",
        "load_generator",
    ]  # fmt: skip
    # what it printed at its end on a 110-column terminal
    shown = README.split("<!-- findings:begin -->\n```\n", 1)[1].split("```\n<!-- findings:end -->", 1)[0]
    assert shown == findings.to_compact_text(document.findings, document.note, width=110)
    sentence = README.split("<!-- findings-sentence:begin -->\n", 1)[1].split("\n<!-- findings-sentence:end -->", 1)[0]
    gzip = next(f for f in document.findings if f.study == "compression")
    assert sentence == f"> **{findings.title(gzip)}** ({gzip.confidence}). {gzip.sentence}"
    # the words around it: the machine and the run it names
    manifest = results.read_manifest(run)
    assert manifest.environment.cpu_model == "AMD EPYC" and manifest.environment.cores == 2
    assert manifest.started_at.startswith("2026-12-01T11:19") and manifest.settings.repetitions == 2
    assert f"commit `{manifest.environment.git.commit[:7]}`" in README
