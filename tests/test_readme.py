"""The README's generated parts still match their sources (figures and column docs are derived, not typed in)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from bench.analysis import (
    breakeven,
    crosscheck,
    figures,
    findings,
    handlers,
    measured,
    reference,
    results,
    schema,
    stability,
    summary,
)
from bench.gate import study
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
    run = REPO / "results" / "quick-all-2026-12-01"
    document = findings.analyse(run)
    # the findings.json committed beside the run is what its cells give with this code
    assert findings.read(run / findings.FILE_NAME) == document
    assert [f.study for f in document.findings] == [
        "server_model", "thread_pool", "thread_pool", "thread_pool", "processes", "handler_work", "handler_work",
        "payload_size", "payload_kind", "payload_kind", "payload_kind", "compression", "tls", "tls", "rpc", "rpc",
        "rpc", "stream_messages", "concurrency", "concurrency", "connections", "open_loop_knee", "arrival", "client",
        "client", "channel", "event_loop", "service", "load_generator", "go_reference", "go_reference",
    ]  # fmt: skip
    # what it printed at its end on a 110-column terminal
    shown = README.split("<!-- findings:begin -->\n```\n", 1)[1].split("```\n<!-- findings:end -->", 1)[0]
    assert shown == findings.to_compact_text(document.findings, document.note, width=110)
    sentence = README.split("<!-- findings-sentence:begin -->\n", 1)[1].split("\n<!-- findings-sentence:end -->", 1)[0]
    gzip = next(f for f in document.findings if f.study == "compression")
    assert sentence == f"> **{findings.title(gzip)}** ({gzip.confidence}). {gzip.sentence}"
    # the words around it: the machine, the run it names and its calibration
    manifest = results.read_manifest(run)
    assert manifest.environment.cpu_model == "AMD EPYC" and manifest.environment.cores == 2
    assert manifest.started_at.startswith("2026-12-01T15:24") and manifest.settings.repetitions == 2
    assert manifest.cpu_latency_hold.held and manifest.calibration.floor["ghz"].p50_ms == 0.117
    assert f"commit `{manifest.environment.git.commit[:7]}`" in README
    labels = [f.confidence for f in document.findings]
    assert f"{labels.count('clear')} of the {len(labels)} findings are clear" in README


def test_go_reference_block_and_the_numbers_around_it_are_what_the_committed_run_gives():
    run = REPO / "results" / "go-reference-2026-12-01"
    df, manifest = results.load(run), results.read_manifest(run)
    found = reference.ratios(df, manifest)
    shown = README.split("<!-- go-reference:begin -->\n", 1)[1].split("<!-- go-reference:end -->", 1)[0]
    assert shown == reference.to_markdown(found)
    # issue 13's question: server CPU per RPC Python/Go for unary and streaming at 0 B and 64 KiB, both models
    assert {(r.impl, r.python.axes["rpc"], r.python.axes["payload_size"]) for r in found} == {
        (impl, rpc, size) for impl in ("sync", "aio") for rpc in ("unary", "server_stream") for size in (0, 65536)
    }
    # the findings.json `grpclab run` wrote beside it is what its cells give with this code
    assert findings.read(run / findings.FILE_NAME) == findings.analyse(run)

    text = README.split("### Measured: what Python costs per RPC, against grpc-go\n", 1)[1].split("\n## ", 1)[0]
    words = " ".join(text.split())  # the prose is wrapped: compare with single spaces
    # the machine, the date and the settings it names
    env, settings, system = manifest.environment, manifest.settings, manifest.system.render()
    assert env.cpu_model == "AMD EPYC" and env.cores == 2 and "2-vCPU AMD EPYC KVM guest" in words
    assert "virtual machine (kvm)" in system and "driver haltpoll" in system and "cpuidle haltpoll" in words
    assert manifest.cpu_latency_hold.held and manifest.cpu_latency_hold.effective_us == 0
    assert f"{env.memory_gib} GiB, Linux {env.kernel.split('-')[0]}" in words
    assert f"Python {env.versions['python']}, grpcio {env.versions['grpcio']}" in words
    assert f"ghz {env.ghz}, commit `{env.git.commit[:7]}`" in words and env.git.dirty
    start, end = (datetime.fromisoformat(t) for t in (manifest.started_at, manifest.ended_at))
    minutes = (end - start).total_seconds() / 60
    assert f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC ({minutes:.1f} min" in words
    assert f"its {manifest.calibration.seconds:.0f} s calibration included" in words
    load = next(line for line in system.splitlines() if line.split()[1:2] == ["load"])
    assert f"1-minute load of {load.split()[2]}" in words and float(load.split()[2]) < 0.5
    pressure = next(line for line in system.splitlines() if "cpu pressure" in line)
    avg = {name: float(value) for name, value in re.findall(r"(avg\d+) ([\d.]+) %", pressure)}
    assert pressure.startswith("WARN") and "warned of CPU pressure" in words
    assert f"(avg300 {avg['avg300']:.1f} %; avg10 {avg['avg10']:.2f} % at its start)" in words
    assert (settings.server_cpus, settings.loadgen_cpus) == ((0,), (1,))
    assert f"{settings.repetitions} repetitions of {settings.duration:.0f} s after {settings.warmup:.0f} s" in words
    assert {(r.python.axes["concurrency"], r.python.axes["connections"]) for r in found} == {(16, 1)}
    assert {r.python.axes["workers"] for r in found if r.impl == "sync"} == {16}
    cv = sorted(manifest.calibration.noise_cv.values())
    assert f"was {cv[0] * 100:.1f}-{cv[-1] * 100:.1f} %" in words

    # the numbers the bullets quote
    ok = df[~df["failed"]]
    busy = ok.groupby("cell_key", observed=True)[["server_cpu_util", "loadgen_cpu_util", "impl"]].agg(
        {"server_cpu_util": "median", "loadgen_cpu_util": "median", "impl": "first"}
    )
    python, go = busy[busy["impl"] != "go"], busy[busy["impl"] == "go"]

    def span(values: pd.Series) -> str:
        return f"{values.min():.0%}-{values.max():.0%}".replace("%", "")

    assert f"limit in every cell ({span(python['server_cpu_util'])} % of their CPU busy)" in words
    generator = f"{span(go['loadgen_cpu_util'])} % busy in the Go cells (against {span(python['loadgen_cpu_util'])} %"
    assert generator in words
    assert (go["server_cpu_util"] < 0.9).all() and all(r.go_not_the_limit for r in found)
    assert [r.go.axes["rpc"] for r in found if r.go.generator_limited] == ["server_stream"] * 2  # 0 B, both models
    assert {r.go.axes["payload_size"] for r in found if r.go.generator_limited} == {0}
    by = {(r.impl, r.python.axes["rpc"], r.python.axes["payload_size"]): r for r in found}

    def ratios(rpc: str, size: int) -> str:
        return f"{min(by[i, rpc, size].cpu_ratio for i in ('sync', 'aio')):.1f}-" + (
            f"{max(by[i, rpc, size].cpu_ratio for i in ('sync', 'aio')):.1f}x"
        )

    assert f"{ratios('unary', 0)} per unary RPC, {ratios('server_stream', 0)} per 10-message stream" in words
    at_64k = [r.cpu_ratio for r in found if r.python.axes["payload_size"] == 65536]
    assert f"the ratio falls to {min(at_64k):.1f}-{max(at_64k):.1f}x" in words

    def added(rpc: str, impl: str, side: str) -> str:
        cells = [getattr(by[impl, rpc, size], side) for size in (0, 65536)]
        return f"{cells[1].median(reference.CPU) - cells[0].median(reference.CPU):.0f} us"

    unary = f"added {added('unary', 'sync', 'go')} per unary RPC to Go against {added('unary', 'sync', 'python')} "
    unary += f"(sync) and {added('unary', 'aio', 'python')} (aio)"
    stream = f"and {added('server_stream', 'sync', 'go')} per 10-message stream against "
    stream += f"{added('server_stream', 'sync', 'python')} and {added('server_stream', 'aio', 'python')}."
    assert unary in words and stream in words
    assert all(by["sync", k[1], k[2]].python.median(reference.CPU) < by[k].python.median(reference.CPU) for k in by
               if k[0] == "aio")  # fmt: skip
    flagged = [(r, f.text) for r in found for f in reference.to_table([r]).rows[0].flags if f.kind == "unstable"]
    unstable = {r.go.key if "(Go cell" in text else r.python.key for r, text in flagged}
    assert sorted(unstable) == sorted(
        [by["sync", "unary", 0].go.key, by["sync", "server_stream", 65536].go.key,
         by["aio", "server_stream", 65536].python.key]
    )  # fmt: skip
    assert "Three cells varied beyond the unstable rule" in words


def test_grpc_bench_section_is_what_the_committed_run_gives():
    run = RESULTS / "grpc-bench-2026-12-01"
    assert _block("grpc-bench-run") == measured.describe(run)
    assert _block("grpc-bench") == measured.cells(run)
    assert findings.read(run / findings.FILE_NAME) == findings.analyse(run)
    manifest, df = results.read_manifest(run), results.load(run)
    assert manifest.spec_path == "bench/specs/grpc_bench.toml" and manifest.cpu_latency_hold.held
    assert (manifest.environment.cpu_model, manifest.environment.cores) == ("AMD EPYC", 2)
    text = README.split("### A peer's scenario: grpc_bench\n", 1)[1].split("\n## ", 1)[0]
    words = " ".join(text.split("<!-- grpc-bench:end -->", 1)[1].split())  # the prose after the blocks
    med = df.groupby([df["impl"].astype(str), df["workers"].astype(int)])[
        ["rps", "lat_p50_ms", "server_cpu_us_per_rpc", "server_cpu_util", "loadgen_cpu_util"]
    ].median()
    python = med.drop(index=("go", 0))
    go = med.loc[("go", 0)]
    for (impl, workers), row in python.iterrows():
        assert f"{row['rps']:,.0f}" in words, (impl, workers)
        assert row["server_cpu_util"] >= 0.99  # "each Python server's CPU was 100 % busy"
        # Little's law: 1,000 in flight at that rate, within the 2 % the prose says
        assert abs(row["lat_p50_ms"] / (1000 / row["rps"] * 1000) - 1) < 0.02
        assert f"{row['lat_p50_ms']:.0f} ms" in words
    gen = python["loadgen_cpu_util"]
    assert f"ghz's {gen.min() * 100:.0f}-{gen.max() * 100:.0f} %" in words
    cpu = python["server_cpu_us_per_rpc"]
    assert f"at {cpu.min():.0f}-{cpu.max():.0f} us of server CPU per RPC" in words
    threads = med.loc[("sync", 16), "rps"] / med.loc[("sync", 1), "rps"]
    assert f"16 threads: {threads:.2f}x one thread's" in words
    # Go: ghz was the limit (>= 90 % busy) and the Go server was not; its CPU per RPC and the Python/Go span
    assert go["loadgen_cpu_util"] >= 0.9 and go["server_cpu_util"] < 0.9
    assert f"{go['rps']:,.0f} RPC/s with ghz {go['loadgen_cpu_util'] * 100:.0f} % busy" in words
    assert f"Go server's CPU {go['server_cpu_util'] * 100:.0f} % busy" in words
    ratios = cpu / go["server_cpu_us_per_rpc"]
    assert f"{go['server_cpu_us_per_rpc']:.0f} us for Go" in words
    assert f"cost {ratios.min():.1f}-{ratios.max():.1f}x that" in words


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
