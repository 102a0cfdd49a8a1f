"""The README's generated parts still match their sources (figures and column docs are derived, not typed in)."""

from __future__ import annotations

from pathlib import Path

from bench.analysis import breakeven, crosscheck, figures, findings, handlers, results, schema, stability, summary
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


def test_handlers_table_and_numbers_are_what_the_committed_run_gives(tmp_path: Path):
    run = REPO / "results" / "handlers-2026-12-01"
    section = README.split("## Handler work: how many workers, and does aio help?\n", 1)[1].split("\n## ", 1)[0]
    shown = section.split("<!-- handlers:begin -->\n", 1)[1].split("<!-- handlers:end -->", 1)[0]
    df = results.load(run)
    assert shown == handlers.to_markdown(df)
    assert not df["failed"].any() and not df["loadgen_saturated"].any()  # "none failed", "no cell ... saturated"
    # findings.json, written by the run, is what its cells give with this code
    assert findings.read(run / findings.FILE_NAME) == findings.analyse(run)
    # the machine, time and settings the words around it name
    manifest = results.read_manifest(run)
    env = manifest.environment
    assert (env.cpu_model, env.cores, env.memory_gib) == ("AMD EPYC", 2, 23.5)
    assert (env.versions["python"], env.versions["grpcio"]) == ("3.11.7", "1.85.3")
    assert f"commit `{env.git.commit[:7]}`" in section and not env.git.dirty
    assert manifest.started_at.startswith("2026-12-01T13:03") and manifest.ended_at.startswith("2026-12-01T13:12")
    assert manifest.cpu_latency_hold.held and manifest.cpu_latency_hold.effective_us == 0
    assert "haltpoll" in str(manifest.system.cpuidle)
    settings = manifest.settings
    assert (settings.duration, settings.warmup, settings.repetitions) == (2.5, 1.0, 4)
    assert (settings.server_cpus, settings.loadgen_cpus) == ((0,), (1,))
    assert df["cell_key"].nunique() == 32 and (df["concurrency"] == 64).all() and (df["loadgen"] == "ghz").all()
    assert f"{manifest.calibration.noise.cv['rps']:.1%}".replace("%", " %") in section

    # every other number the prose quotes, from the run's medians
    worked = handlers.with_work(df)

    def med(kind: str, impl: str, metric: str = "rps", workers: int = 0) -> float:
        rows = worked[(worked["work_kind"] == kind) & (worked["impl"] == impl) & (worked["workers"] == workers)]
        assert len(rows) == 4
        return float(rows[metric].median())

    quoted = {
        "go without work: generator busy": f"{med('none', 'go', 'loadgen_cpu_util'):.0%}".replace("%", " %"),
        "go without work: server busy": f"the Go server {med('none', 'go', 'server_cpu_util'):.0%}".replace("%", " %"),
        "one thread, waiting: time per RPC": f"one per {1000 / med('wait', 'sync', workers=1):.1f} ms",
        "32 threads, waiting: server busy": f"({med('wait', 'sync', 'server_cpu_util', 32):.0%}".replace("%", " %"),
        "32 threads, waiting: CPU per RPC": f"sync server's {med('wait', 'sync', 'server_cpu_us_per_rpc', 32):.0f} us",
        "aio, waiting: CPU per RPC": f"aio spent {med('wait', 'aio', 'server_cpu_us_per_rpc'):.0f} us of CPU",
        "go, waiting: CPU per RPC": f"{med('wait', 'go', 'server_cpu_us_per_rpc'):.0f} us per RPC, did",
        "aio, blocking: p50": f"p50 {med('block', 'aio', 'lat_p50_ms'):.0f} ms",
        "go, blocking against waiting": f"{1 - med('block', 'go') / med('wait', 'go'):.0%} fewer".replace("%", " %"),
        "sync without work, 4 threads: CPU per RPC": f"from {med('none', 'sync', 'server_cpu_us_per_rpc', 4):.0f} us",
        "sync without work, 32 threads: CPU per RPC": f"to {med('none', 'sync', 'server_cpu_us_per_rpc', 32):.0f} us",
        "aio without work: CPU per RPC": f"aio spent {med('none', 'aio', 'server_cpu_us_per_rpc'):.0f} us",
    }
    cpu = [med("cpu", "sync", "server_cpu_us_per_rpc", w) for w in (1, 2, 4, 8, 16, 32)]
    cpu.append(med("cpu", "aio", "server_cpu_us_per_rpc"))
    quoted["CPU per RPC under CPU work"] = f"{min(cpu):,.0f}-{max(cpu):,.0f} us of server CPU"
    rps = [med("cpu", "sync", workers=w) for w in (2, 4, 8, 16, 32)]
    quoted["CPU work, 2-32 threads"] = f"{min(rps):,.0f}-{max(rps):,.0f} with 2 to 32"
    wait16 = worked[(worked["work_kind"] == "wait") & (worked["workers"] == 16)]["rps"]
    quoted["the unstable cell's range"] = f"({wait16.min():,.0f}-{wait16.max():,.0f} RPC/s, CV 14 %;"
    for what, text in quoted.items():
        assert text in section, (what, text)
    unstable = stability.unstable_cells(df, summary.noise_cv(manifest))
    key = "{}/unary/w{}/p1/0B/text/none/tls-off/c64/n1/m1/closed/ghz/handler_{}=2".format
    pool16 = key("sync", 16, "wait_ms")
    light = {key("sync", 1, "wait_ms"), key("sync", 2, "wait_ms"), key("aio", 0, "block_ms")}
    assert set(unstable) == {pool16} | light
    assert unstable[pool16][0].text() == "rps CV 14% > 10%"
    assert all(s.metric == "server_cpu_us_per_rpc" for k in light for s in unstable[k])
    # and `grpclab report` draws the knee figure the section describes, a panel per kind of work
    drawn = figures.handlers(df, manifest, tmp_path)
    assert (tmp_path / drawn.file).read_bytes()[:4] == b"\x89PNG"
    assert [w.text for w in handlers.knee_points(df).works] == [
        "no handler work", "handlers wait 2 ms", "handlers block 2 ms", "handlers burn 1000 us of CPU",
    ]  # fmt: skip
