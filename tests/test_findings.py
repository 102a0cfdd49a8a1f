"""Findings (bench/analysis/findings.py) over committed runs and synthetic tables; no process is started.

Every expected number is computed here from the table with plain pandas (medians over successful repetitions of
cells named by their keys), independently of the module's own path, and compared with what the finding carries and
says. The runs:
- tests/data/quick-run: `grpclab run bench/specs/quick.toml` (2 repetitions x 2 s, 2026-12-01, idle 2-vCPU AMD EPYC
  VM; manifest.json and cells.parquet only);
- results/crosscheck-2026-11-25: the README's cross-check run (5 repetitions x 5 s), for the Mann-Whitney path.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from math import comb
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from bench.analysis import findings, results, schema
from bench.run.calibration import Calibration, Floor, Noise
from bench.run.manifest import Manifest
from bench.spec import DEFAULTS, Cell, Settings

REPO = Path(__file__).resolve().parent.parent
QUICK = REPO / "tests" / "data" / "quick-run"
CROSSCHECK = REPO / "results" / "crosscheck-2026-11-25"

CPU = "server_cpu_us_per_rpc"
# The quick matrix's cells, by key (bench.spec.Cell.key).
SYNC = "sync/unary/w4/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python"
AIO = "aio/unary/w0/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python"
SYNC_W1 = "sync/unary/w1/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python"
SYNC_TLS = "sync/unary/w4/p1/1024B/text/none/tls-on/c8/n1/m1/closed/python"
SYNC_MTLS = "sync/unary/w4/p1/1024B/text/none/tls-mtls/c8/n1/m1/closed/python"
SYNC_GHZ = "sync/unary/w4/p1/1024B/text/none/tls-off/c8/n1/m1/closed/ghz"
TEXT_64K = "sync/unary/w4/p1/65536B/text/none/tls-off/c8/n1/m1/closed/python"
GZIP6_64K = "sync/unary/w4/p1/65536B/text/app-gzip-6/tls-off/c8/n1/m1/closed/python"


@pytest.fixture(scope="module")
def quick() -> tuple[pd.DataFrame, Manifest]:
    return results.load(QUICK), results.read_manifest(QUICK)


@pytest.fixture(scope="module")
def quick_findings(quick) -> tuple[findings.Finding, ...]:
    return findings.compute(*quick)


def only(found, study: str, subject: str | None = None) -> findings.Finding:
    chosen = [f for f in found if f.study == study and (subject is None or f.subject == subject)]
    assert len(chosen) == 1, [f"{f.study}: {f.subject}" for f in found]
    return chosen[0]


def cell(df: pd.DataFrame, key: str) -> pd.DataFrame:
    rows = df[(df["cell_key"] == key) & ~df["failed"]]
    assert len(rows), f"{key} is not in the table"
    return rows


def median(df: pd.DataFrame, key: str, metric: str) -> float:
    return float(cell(df, key)[metric].median())


def apart(df: pd.DataFrame, key_a: str, key_b: str, metric: str) -> bool:
    a, b = cell(df, key_a)[metric], cell(df, key_b)[metric]
    return a.max() < b.min() or b.max() < a.min()


# -- the quick matrix: a finding for each study it has, with the table's numbers ----------------------------------


def test_quick_run_gives_one_finding_per_study_it_has(quick_findings):
    studies = [f.study for f in quick_findings]
    assert set(studies) == set(findings.STUDIES) - {"go_reference"}  # the quick matrix has no Go cells
    one_each = set(findings.STUDIES) - {"compression", "tls", "go_reference"}
    assert all(studies.count(s) == 1 for s in one_each)
    compressions = [f.subject for f in quick_findings if f.study == "compression"]
    expected = ["grpc-gzip", "grpc-deflate", *(f"app-gzip-{n}" for n in range(1, 10))]
    assert compressions == [f"{c} vs none" for c in expected]
    assert [f.subject for f in quick_findings if f.study == "tls"] == ["TLS vs plaintext", "mTLS vs plaintext"]
    assert all(f.sentence and f.confidence in findings.CONFIDENCES for f in quick_findings)


def test_server_model_leads_with_the_baseline_pair_and_its_medians(quick, quick_findings):
    df, _ = quick
    found = only(quick_findings, "server_model")
    lead = found.instances[0]
    assert lead.cells == {"sync": SYNC, "aio": AIO}  # not the 1-thread sync cell: the baseline's 4 threads
    for side, key in lead.cells.items():
        for metric in ("rps", CPU, "wire_bytes_per_rpc", "lat_p99_ms"):
            assert lead.values[side][metric] == pytest.approx(median(df, key, metric), rel=1e-12)
        assert lead.spread[side][CPU] == pytest.approx([cell(df, key)[CPU].min(), cell(df, key)[CPU].max()])
    # The sync cell's generator was saturated, so the comparison is CPU per RPC, not RPC/s.
    assert cell(df, SYNC)["loadgen_saturated"].any()
    assert found.metric == CPU
    ratio = median(df, AIO, CPU) / median(df, SYNC, CPU)
    assert found.ratio == pytest.approx(ratio, rel=1e-12)
    for text in (
        f"{median(df, SYNC, 'rps'):,.0f} RPC/s at {median(df, SYNC, CPU):,.0f} us of CPU per RPC",
        f"aio {median(df, AIO, 'rps'):,.0f} RPC/s at {median(df, AIO, CPU):,.0f} us",
        f"sync is {ratio:.2f}x cheaper per RPC",
        "2 repetitions each",
    ):
        assert text in found.sentence
    # every other sync/aio pair of the matrix is summarised, each cell used once
    sync_cells = df.loc[df["impl"] == "sync", "cell_key"].unique()
    pairs = [i for i in found.instances if i.cells["sync"] in sync_cells]
    assert len(pairs) == len(found.instances) == 18
    assert len(set(found.cells)) == 2 * len(found.instances)
    assert SYNC_W1 not in found.cells
    assert "Over the other 17 sync/aio pairs" in found.sentence
    # the others are summarised on CPU per RPC, whoever set the pace; each instance says which metric its ratio is of
    for other in found.instances[1:]:
        sync_key, aio_key = other.cells["sync"], other.cells["aio"]
        assert other.metric == CPU
        assert other.ratio == pytest.approx(median(df, aio_key, CPU) / median(df, sync_key, CPU), rel=1e-12)


def test_a_saturated_generator_is_named_with_what_to_use_instead(quick_findings):
    found = only(quick_findings, "server_model")
    saturated = [r for r in found.reasons if r.code == findings.GENERATOR_SATURATED]
    assert len(saturated) == 1
    assert saturated[0].text.startswith("the Python generator was saturated in the sync cell")
    assert 'use loadgen = "ghz"' in found.sentence
    assert "client's limit" in found.sentence


def test_outside_and_inside_the_spread_are_worded_as_such(quick, quick_findings):
    df, _ = quick
    tls, mtls = only(quick_findings, "tls", "TLS vs plaintext"), only(quick_findings, "tls", "mTLS vs plaintext")
    # What the table says, computed here: TLS's CPU range is clear of plaintext's, mTLS's overlaps it.
    assert apart(df, SYNC, SYNC_TLS, CPU) and not apart(df, SYNC, SYNC_MTLS, CPU)
    assert tls.confidence == findings.CLEAR and "apart" in tls.sentence
    assert findings.INSIDE_SPREAD not in {r.code for r in tls.reasons}
    assert mtls.confidence == findings.INCONCLUSIVE
    assert "the difference is inside the spread" in mtls.sentence
    assert findings.INSIDE_SPREAD in {r.code for r in mtls.reasons}
    added = median(df, SYNC_MTLS, CPU) - median(df, SYNC, CPU)
    assert mtls.instances[0].derived["server_cpu_added_us"] == pytest.approx(added)
    assert f"+{added:,.0f} us of CPU per RPC" in mtls.sentence


def test_compression_costs_savings_and_break_even_link_speed(quick, quick_findings):
    df, _ = quick
    found = only(quick_findings, "compression", "app-gzip-6 vs none")
    assert found.instances[0].cells == {"none": TEXT_64K, "app-gzip-6": GZIP6_64K}
    server_added = median(df, GZIP6_64K, CPU) - median(df, TEXT_64K, CPU)
    client_added = median(df, GZIP6_64K, "loadgen_cpu_us_per_rpc") - median(df, TEXT_64K, "loadgen_cpu_us_per_rpc")
    saved = median(df, TEXT_64K, "wire_bytes_per_rpc") - median(df, GZIP6_64K, "wire_bytes_per_rpc")
    speed = saved * 8 / (max(server_added, client_added) / 1e6)  # bit/s where sending the saved bytes = CPU added
    derived = found.instances[0].derived
    assert derived["server_cpu_added_us"] == pytest.approx(server_added)
    assert derived["client_cpu_added_us"] == pytest.approx(client_added)
    assert derived["wire_bytes_saved"] == pytest.approx(saved)
    assert derived["break_even_bit_per_s"] == pytest.approx(speed)
    assert f"+{server_added:,.0f} us of server CPU per RPC" in found.sentence
    assert f"pays on links slower than {speed / 1e6:.3g} Mbit/s" in found.sentence
    # random bytes do not compress: that instance never pays
    random = next(i for i in found.instances if "random" in i.cells["none"])
    assert random.derived["wire_bytes_saved"] <= 0 and random.derived["break_even_bit_per_s"] == 0
    assert "Random: " in found.sentence and "never pays" in found.sentence


def test_every_compression_break_even_uses_the_busier_side(quick, quick_findings):
    df, _ = quick
    client_busier = 0
    for found in (f for f in quick_findings if f.study == "compression"):
        for inst in found.instances:
            plain, packed = inst.cells.values()
            server = median(df, packed, CPU) - median(df, plain, CPU)
            client = median(df, packed, "loadgen_cpu_us_per_rpc") - median(df, plain, "loadgen_cpu_us_per_rpc")
            saved = median(df, plain, "wire_bytes_per_rpc") - median(df, packed, "wire_bytes_per_rpc")
            client_busier += client > server
            expected = saved * 8 / (max(server, client) / 1e6) if saved > 0 else 0
            assert inst.derived["break_even_bit_per_s"] == pytest.approx(expected), found.subject
    assert client_busier  # the run has cells where the client's gzip, not the server's, sets the speed


def test_break_even_formula_edges():
    assert findings.break_even_bit_per_s(1000, 100) == pytest.approx(1000 * 8 / 100e-6)
    assert findings.break_even_bit_per_s(0, 100) == 0
    assert findings.break_even_bit_per_s(-5, 100) == 0
    assert math.isinf(findings.break_even_bit_per_s(1000, 0))


def test_thread_pool_and_load_generator(quick, quick_findings):
    df, _ = quick
    pool = only(quick_findings, "thread_pool")
    assert pool.instances[0].cells == {"1 thread": SYNC_W1, "4 threads": SYNC}
    cheaper = median(df, SYNC_W1, CPU) / median(df, SYNC, CPU)
    assert f"4 threads cost {cheaper:.2f}x less CPU per RPC than 1 thread" in pool.sentence
    gen = only(quick_findings, "load_generator")
    assert gen.metric == "rps"
    assert gen.instances[0].cells == {"Python generator": SYNC, "ghz": SYNC_GHZ}
    assert gen.ratio == pytest.approx(median(df, SYNC_GHZ, "rps") / median(df, SYNC, "rps"))
    # the table's flags, read here: Python saturated, ghz not, the server saturated under ghz
    assert cell(df, SYNC)["loadgen_saturated"].all() and not cell(df, SYNC_GHZ)["loadgen_saturated"].any()
    assert cell(df, SYNC_GHZ)["server_saturated"].all()
    assert "the Python generator was the limit, and with ghz the server was" in gen.sentence


def test_open_loop_knee_of_the_quick_run(quick, quick_findings):
    df, manifest = quick
    knee = only(quick_findings, "open_loop_knee")
    slo = manifest.settings.slo_p99_ms
    sync_poisson = df[(df["impl"] == "sync") & (df["mode"] == "open") & (df["arrival"] == "poisson")]
    p99 = sync_poisson.groupby("rate")["lat_p99_ms"].median()
    assert (p99 <= slo).all()  # every rate met the SLO: the knee is above the sweep
    assert knee.instances[0].derived["knee_rps"] == p99.index.max()
    assert f"up to {p99.index.max():,.0f} RPC/s" in knee.sentence
    assert findings.KNEE_NOT_REACHED in {r.code for r in knee.reasons}


# -- a run without a study says nothing about it -------------------------------------------------------------------

WITHOUT = {
    "server_model": lambda df: df[df["impl"] != "aio"],
    "thread_pool": lambda df: df[df["workers"] != 1],
    "processes": lambda df: df[df["processes"] == 1],
    "payload_size": lambda df: df[df["payload_size"] == 1024],
    "compression": lambda df: df[df["compression"] == "none"],
    "tls": lambda df: df[df["tls"] == "off"],
    "open_loop_knee": lambda df: df[df["mode"] == "closed"],
    "load_generator": lambda df: df[df["loadgen"] == "python"],
}


@pytest.mark.parametrize("study", sorted(WITHOUT))
def test_a_run_without_a_study_prints_nothing_for_it(quick, quick_findings, study):
    df, manifest = quick
    found = findings.compute(WITHOUT[study](df), manifest)
    assert study not in {f.study for f in found}
    title = findings._TITLES[study]
    for text in (findings.to_text(found), findings.to_markdown(found), findings.to_html(found)):
        assert f"{title}:" not in text
    # the filter removed that study only: the others that still have their cells are still there
    assert len({f.study for f in found}) >= len({f.study for f in quick_findings}) - 3


def test_no_slo_no_knee_and_an_empty_table_no_findings(quick):
    df, manifest = quick
    # A manifest always has an SLO (settings default it); one that is not a finite number > 0 cannot place a knee.
    without_slo = replace(manifest, settings=replace(manifest.settings, slo_p99_ms=math.nan))
    assert "open_loop_knee" not in {f.study for f in findings.compute(df, without_slo)}
    assert findings.compute(df.iloc[0:0], manifest) == ()
    every_row_failed = df.assign(failed=True)
    assert findings.compute(every_row_failed, manifest) == ()
    assert "none" in findings.to_text(())


# -- the cross-check run: 5 repetitions, the exact Mann-Whitney test ------------------------------------------------


def test_five_repetitions_use_the_exact_test(monkeypatch):
    df, manifest = results.load(CROSSCHECK), results.read_manifest(CROSSCHECK)
    found = findings.compute(df, manifest)
    assert {f.study for f in found} == {"server_model", "payload_size", "load_generator"}
    model = only(found, "server_model")
    sync = "sync/unary/w16/p1/0B/text/none/tls-off/c1/n1/m1/closed/python"
    aio = "aio/unary/w0/p1/0B/text/none/tls-off/c1/n1/m1/closed/python"
    assert model.instances[0].cells == {"sync": sync, "aio": aio}
    assert model.ratio == pytest.approx(median(df, aio, CPU) / median(df, sync, CPU))
    # 5 vs 5 with the samples fully separated: the exact two-sided p is 2 / C(10, 5)
    assert len(cell(df, sync)) == len(cell(df, aio)) == 5 and apart(df, sync, aio, CPU)
    assert f"Mann-Whitney p = {2 / comb(10, 5):.3f}" in model.sentence
    assert model.confidence == findings.CLEAR
    # one RPC in flight, neither server saturated: RPC/s is quoted with the warning that it is not capacity
    assert not cell(df, sync)["server_saturated"].any()
    assert findings.SERVER_NOT_LIMIT in {r.code for r in model.reasons}
    gen = only(found, "load_generator")
    python_key, ghz_key = gen.instances[0].cells["Python generator"], gen.instances[0].cells["ghz"]
    assert gen.ratio == pytest.approx(median(df, ghz_key, "rps") / median(df, python_key, "rps"))
    size = only(found, "payload_size")  # 0 B vs 1 KiB at 1 in flight: inside the spread
    assert size.confidence == findings.INCONCLUSIVE and "inside the repetitions' spread" in size.sentence


# -- calibration: noise and floor make a comparison weak ------------------------------------------------------------


def with_calibration(manifest: Manifest, calibration: object) -> Manifest:
    """The manifest with a calibration: its JSON form (partial ones too: findings reads what is there) or typed."""
    return replace(manifest, calibration=calibration)


def test_an_effect_within_the_machines_noise_is_weak(quick, quick_findings):
    df, manifest = quick
    effect = abs(only(quick_findings, "server_model").ratio - 1)
    noisy = with_calibration(manifest, {"noise": {"cv": {CPU: effect / findings.NOISE_FACTOR + 0.01}}})
    quiet = with_calibration(manifest, {"noise": {"cv": {CPU: effect / findings.NOISE_FACTOR - 0.01}}})
    weak = only(findings.compute(df, noisy), "server_model")
    assert weak.confidence == findings.WEAK and findings.WITHIN_NOISE in {r.code for r in weak.reasons}
    assert "within this machine's noise" in weak.sentence
    assert only(findings.compute(df, quiet), "server_model").confidence == findings.CLEAR


def test_latencies_near_the_machines_floor_are_weak(quick):
    df, manifest = quick
    p50 = min(median(df, SYNC, "lat_p50_ms"), median(df, AIO, "lat_p50_ms"))
    near = with_calibration(manifest, {"floor": {"python": {"p50_ms": p50 / findings.FLOOR_FACTOR * 1.01}}})
    far = with_calibration(manifest, {"floor": {"python": {"p50_ms": p50 / findings.FLOOR_FACTOR * 0.99}}})
    weak = only(findings.compute(df, near), "server_model")
    assert weak.confidence == findings.WEAK and findings.NEAR_FLOOR in {r.code for r in weak.reasons}
    assert "machine's floor" in weak.sentence
    assert findings.NEAR_FLOOR not in {r.code for r in only(findings.compute(df, far), "server_model").reasons}


def test_a_typed_calibration_is_read_through_its_json_form(quick):
    _, manifest = quick
    floor = Floor(
        "sync/unary/...", p50_ms=0.3, p99_ms=0.5, rps=3000.0, server_cpu_us_per_rpc=100.0, loadgen_cpu_us_per_rpc=90.0
    )
    noise = Noise("sync/unary/...", cv={CPU: 0.04}, windows={CPU: (100.0, 104.0)})
    typed = Calibration(floor={"python": floor}, noise=noise, window_s=2.0, warmup_s=0.5, seconds=20.0)
    expected = findings.Calibration({"python": 0.3}, {CPU: 0.04})
    assert findings.read_calibration(with_calibration(manifest, typed)) == expected
    assert findings.read_calibration(manifest) == findings.Calibration({}, {})  # a run without a calibration


@pytest.mark.parametrize(
    "calibration",
    [None, "fast", {"floor": "x", "noise": 3}, {"floor": {"python": {"p50_ms": "1"}}}, {"noise": {"cv": {CPU: None}}}],
)
def test_a_malformed_calibration_is_ignored(quick, quick_findings, calibration):
    df, manifest = quick
    assert findings.read_calibration(with_calibration(manifest, calibration)) == findings.Calibration({}, {})
    assert findings.compute(df, with_calibration(manifest, calibration)) == quick_findings


# -- synthetic tables: the Go reference, the RPC/s rule, failed rows, a knee inside the sweep ------------------------


def table(cells: list[tuple[dict, list[dict]]]) -> pd.DataFrame:
    """Rows with every schema column: each (axis overrides, one dict of metric values per repetition)."""
    rows, order = [], 0
    for overrides, repetitions in cells:
        axes = dict(DEFAULTS) | {"stream_messages": 1} | overrides
        if axes["impl"] != "sync":
            axes["workers"] = 0
        key = Cell(**axes).key()
        for rep, metrics in enumerate(repetitions):
            row = schema.empty_row() | axes | {"run_id": "synthetic", "cell_key": key, "repetition": rep}
            rows.append(row | {"order": order} | metrics)
            order += 1
    return pd.DataFrame(rows)


def reps(cpu: list[float], rps: list[float], **flags: bool) -> list[dict]:
    return [{"server_cpu_us_per_rpc": c, "rps": r, "lat_p50_ms": 1.0} | flags for c, r in zip(cpu, rps, strict=True)]


# A manifest without a spec (the baseline comes from the table), an SLO of 50 ms and one server CPU.
MANIFEST = replace(results.read_manifest(QUICK), spec_source={}, settings=Settings(slo_p99_ms=50.0, server_cpus=(0,)))


def test_go_reference_ratio_on_a_synthetic_table():
    ghz = {"loadgen": "ghz", "payload_size": 1024}
    df = table(
        [
            ({"impl": "sync"} | ghz, reps([100, 98, 103], [9000, 9100, 8900], server_saturated=True)),
            ({"impl": "aio"} | ghz, reps([160, 170, 165], [6000, 5900, 6100], server_saturated=True)),
            ({"impl": "go"} | ghz, reps([31, 30, 33], [20000, 21000, 20500])),
        ]
    )
    found = findings.compute(df, MANIFEST)
    sync, aio = only(found, "go_reference", "sync vs Go"), only(found, "go_reference", "aio vs Go")
    assert sync.ratio == pytest.approx(100 / 31) and aio.ratio == pytest.approx(165 / 31)
    assert sync.metric == CPU
    assert f"sync costs {100 / 31:.2f}x Go's CPU per RPC" in sync.sentence
    assert sync.instances[0].derived["rps_ratio"] == pytest.approx(9000 / 20500)
    assert f"({9000 / 20500:.2f}x)" in sync.sentence
    # a saturated generator on either side: no RPC/s ratio, and the sentence says why
    df.loc[df["impl"] == "go", "loadgen_saturated"] = True
    saturated = only(findings.compute(df, MANIFEST), "go_reference", "sync vs Go")
    assert "rps_ratio" not in saturated.instances[0].derived
    assert "RPC/s not compared" in saturated.sentence and "ghz was saturated in the Go cell" in saturated.sentence


def test_rps_is_the_comparison_only_when_the_server_was_the_limit():
    cells = [
        ({"impl": "sync"}, reps([100, 101, 99], [9000, 9050, 8950], server_saturated=True)),
        ({"impl": "aio"}, reps([150, 151, 149], [6000, 6050, 5950], server_saturated=True)),
    ]
    limited = only(findings.compute(table(cells), MANIFEST), "server_model")
    assert limited.metric == "rps" and limited.ratio == pytest.approx(6000 / 9000)
    assert f"sync served {9000 / 6000:.2f}x the RPC/s" in limited.sentence
    one_not_saturated = table(cells)
    one_not_saturated.loc[one_not_saturated["impl"] == "aio", "server_saturated"] = [True, False, True]
    assert only(findings.compute(one_not_saturated, MANIFEST), "server_model").metric == CPU


def test_failed_rows_are_left_out_and_one_repetition_is_weak():
    cells = [
        ({"impl": "sync"}, reps([100, 102], [9000, 9100])),
        ({"impl": "aio"}, reps([150], [6000])),
    ]
    df = table(cells)
    failed = df.iloc[[0]].assign(repetition=2, order=99, failed=True, server_cpu_us_per_rpc=1e6, rps=1.0)
    found = only(findings.compute(pd.concat([df, failed], ignore_index=True), MANIFEST), "server_model")
    assert found.values["sync"]["server_cpu_us_per_rpc"] == pytest.approx(101)
    assert found.instances[0].repetitions == {"sync": 2, "aio": 1}
    assert found.confidence == findings.WEAK
    assert {findings.ONE_REPETITION, findings.FAILED_REPETITIONS} <= {r.code for r in found.reasons}
    assert "2 and 1 repetitions: no spread to judge by" in found.sentence


def test_a_knee_inside_the_sweep_and_a_knee_the_repetitions_disagree_on():
    def open_cell(rate: float, p99: list[float]) -> tuple[dict, list[dict]]:
        axes = {"mode": "open", "rate": rate, "arrival": "poisson", "concurrency": 64}
        return axes, [{"lat_p99_ms": v, "rps": rate, "server_cpu_util": 0.3} for v in p99]

    df = table([open_cell(500, [3, 4]), open_cell(1000, [20, 22]), open_cell(2000, [80, 95])])
    knee = only(findings.compute(df, MANIFEST), "open_loop_knee")
    assert knee.instances[0].derived["knee_rps"] == 1000
    assert "the knee is 1,000 RPC/s offered (p99 21.0 ms" in knee.sentence
    assert "at 2,000 RPC/s p99 reached 87.5 ms" in knee.sentence
    assert knee.confidence == findings.CLEAR
    straddles = table([open_cell(500, [3, 4]), open_cell(1000, [20, 22]), open_cell(2000, [45, 60])])
    unsure = only(findings.compute(straddles, MANIFEST), "open_loop_knee")
    assert unsure.confidence == findings.INCONCLUSIVE
    assert "the repetitions disagree whether 2,000 RPC/s meets the SLO" in unsure.sentence


# -- as data: JSON round trip, renderers ------------------------------------------------------------------------------


def test_json_round_trip(quick_findings, tmp_path):
    text = findings.to_json(quick_findings, "quick-run")
    doc = json.loads(text)
    assert doc["format"] == findings.FORMAT and doc["run_id"] == "quick-run"
    assert len(doc["findings"]) == len(quick_findings)
    first = doc["findings"][0]
    assert {"study", "sentence", "cells", "metric", "ratio", "confidence", "reasons", "instances"} <= first.keys()
    assert findings.from_json(text) == findings.Document("quick-run", quick_findings)
    path = findings.write(tmp_path / findings.FILE_NAME, quick_findings, "quick-run")
    assert findings.read(path) == findings.Document("quick-run", quick_findings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"format": "grpclab.findings/0", "findings": []}', "not a findings document"),
        ('{"format": "grpclab.findings/1", "findings": [{"study": "x"}]}', "findings[0]: missing"),
    ],
)
def test_a_bad_findings_document_is_one_clear_error(text, message):
    with pytest.raises(findings.FindingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        findings.from_json(text)


def test_renderers_carry_every_sentence(quick_findings):
    text = findings.to_text(quick_findings)
    markdown = findings.to_markdown(quick_findings)
    page = findings.to_html(quick_findings)
    console = Console(record=True, width=10_000)
    console.print(findings.to_text(quick_findings, markup=True))
    shown = console.export_text()
    for finding in quick_findings:
        assert finding.sentence in text and finding.sentence in markdown and finding.sentence in shown
        assert f"[{finding.confidence}] {findings.title(finding)}" in shown  # markup escaped, not swallowed
    assert 'loadgen = "ghz"' not in page and "loadgen = &quot;ghz&quot;" in page
    assert page.startswith('<section class="findings">') and page.count('<li class="finding ') == len(quick_findings)


def test_the_legend_says_how_little_two_repetitions_prove(quick_findings):
    # 2 + 2 samples of one distribution: both of one side below both of the other in 2 of the C(4, 2) = 6 orders
    assert f"ranges apart {2 / comb(4, 2):.0%} of the time" in findings.legend(quick_findings)
    five = findings.compute(results.load(CROSSCHECK), results.read_manifest(CROSSCHECK))
    assert findings.legend(five) == findings._LEGEND
