"""The README's generated parts still match their sources (figures and column docs are derived, not typed in)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.analysis import breakeven, crosscheck, findings, results, schema
from bench.gate import study
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


def test_gate_study_tables_are_what_the_committed_study_gives():
    run = REPO / "results" / "gate-study-2026-12-01"
    meta = json.loads((run / study.STUDY_JSON).read_text())
    trials = json.loads((run / study.TRIALS_JSON).read_text())
    shown = README.split("<!-- gate-study:begin -->\n", 1)[1].split("<!-- gate-study:end -->", 1)[0]
    assert shown.strip() == "\n".join(study.rate_table(meta, trials))
    # the noise table from the committed recording (each series' manifest + parquet)
    frames = {name: results.load(run / name) for name in (*study.SAME_CODE, *meta["series"])}
    shown = README.split("<!-- gate-study-noise:begin -->\n", 1)[1].split("<!-- gate-study-noise:end -->", 1)[0]
    assert shown.strip() == "\n".join(study.noise_table(frames, tuple(trials["gate"]["metrics"]), trials))
    shown = README.split("<!-- gate-study-cells:begin -->\n", 1)[1].split("<!-- gate-study-cells:end -->", 1)[0]
    assert shown.strip() == "\n".join(study.cell_table(frames, trials))
    # the command and settings the README states are the ones the trials were replayed with
    gate = trials["gate"]
    command = (
        f"python -m bench.gate.study --recorded {meta['settings']['repetitions']} "
        f"--max-repetitions {gate['max_repetitions']} --trials {gate['trials']} --out results/gate-study-2026-12-01"
    )
    assert command in README
    assert gate["budget_s"] == 8 * 60 and gate["first"] == 5 and gate["threshold"] == 0.05 and gate["alpha"] == 0.05


def test_the_a_a_regress_the_readme_quotes_is_the_committed_one():
    run = REPO / "results" / "regress-aa-2026-12-01"
    doc = json.loads((run / "comparison.json").read_text())
    assert not doc["regression"] and {r["verdict"] for r in doc["rows"]} == {"~"} and len(doc["rows"]) == 18
    assert doc["power"]["underpowered"] == 8
    blind = [r for r in doc["rows"] if r["underpowered"]]
    cpu = [r["detectable"] for r in blind if r["metric"] == "server_cpu_us_per_rpc"]
    p50 = [r["detectable"] for r in blind if r["metric"] == "lat_p50_ms"]
    quoted = f"server CPU per RPC {min(cpu) * 100:.1f}-{max(cpu) * 100:.1f} % detectable at 5 + 5, p50 up to"
    assert quoted in " ".join(README.split()) and f"up to {max(p50) * 100:.1f} %" in README
    manifest = results.read_manifest(run / "head")
    assert manifest.regress is not None and manifest.regress.budget_s == 180 and manifest.regress.rounds == 1
