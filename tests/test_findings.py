"""Findings (bench/analysis/findings/) over committed runs and synthetic tables; no process is started.

Every expected number is computed here from the table with plain pandas (medians over successful repetitions of
cells named by their keys), independently of the module's own path, and compared with what the finding carries and
says. The runs:
- tests/data/quick-run: `grpclab run bench/specs/quick.toml` (2 repetitions x 2 s, 2026-12-01, idle 2-vCPU AMD EPYC
  VM; manifest.json and cells.parquet only);
- results/crosscheck-2026-11-25: the README's cross-check run (5 repetitions x 5 s), for the Mann-Whitney path.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import statistics
from dataclasses import dataclass, replace
from fractions import Fraction
from math import comb
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from bench.analysis import findings, results, schema
from bench.run import command
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


def test_quick_run_gives_one_finding_per_study_it_has_in_the_order_a_user_decides(quick_findings):
    studies = [f.study for f in quick_findings]
    # this quick run predates handler work, the client side and BenchmarkService, and has no Go cells; a study with
    # several values against its reference gives one finding per value (TLS and mTLS, three RPC kinds, ...)
    per_study = {"payload_kind": 2, "tls": 2, "rpc": 3, "concurrency": 2}
    absent = {"handler_work", "client", "channel", "event_loop", "options", "service", "go_reference"}
    assert studies == [s for s in findings.STUDIES if s not in absent for _ in range(per_study.get(s, 1))]
    assert only(quick_findings, "compression").subject == "grpc-gzip, grpc-deflate, app-gzip-1..9 vs none"
    assert [f.subject for f in quick_findings if f.study == "tls"] == ["TLS vs plaintext", "mTLS vs plaintext"]
    assert all(f.sentence and f.headline and f.confidence in findings.CONFIDENCES for f in quick_findings)


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
    # 2 repetitions a side, apart, and the run has no noise calibration: indicative, and the sentence says why
    assert tls.confidence == findings.INDICATIVE
    assert {r.code for r in tls.reasons} == {findings.FEW_REPETITIONS}
    effect = median(df, SYNC_TLS, CPU) / median(df, SYNC, CPU) - 1
    assert (
        f"apart as two identical cells' ranges are 1 time in 3, with no calibrated noise to weigh the {effect:.0%} "
        "difference against" in tls.sentence
    )
    assert mtls.confidence == findings.INCONCLUSIVE
    assert "the difference is inside the spread" in mtls.sentence
    assert findings.INSIDE_SPREAD in {r.code for r in mtls.reasons}
    added = median(df, SYNC_MTLS, CPU) - median(df, SYNC, CPU)
    assert mtls.instances[0].derived["server_cpu_added_us"] == pytest.approx(added)
    assert f"+{added:,.0f} us of CPU per RPC" in mtls.sentence


def compression_numbers(df: pd.DataFrame, plain: str, packed: str) -> dict[str, float]:
    """The pair's costs, savings and break-even speed, by hand (the busier side's CPU sets the speed)."""
    server = median(df, packed, CPU) - median(df, plain, CPU)
    client = median(df, packed, "loadgen_cpu_us_per_rpc") - median(df, plain, "loadgen_cpu_us_per_rpc")
    saved = median(df, plain, "wire_bytes_per_rpc") - median(df, packed, "wire_bytes_per_rpc")
    speed = saved * 8 / (max(server, client) / 1e6) if saved > 0 else 0.0
    return {"server": server, "client": client, "saved": saved, "speed": speed}


def break_even_range(df: pd.DataFrame, plain: str, packed: str) -> tuple[float, float]:
    """The break-even speed over the repetitions' min..max, by hand: fewest bytes saved for the most CPU added."""
    p, c = cell(df, plain), cell(df, packed)
    saved_low = p["wire_bytes_per_rpc"].min() - c["wire_bytes_per_rpc"].max()
    saved_high = p["wire_bytes_per_rpc"].max() - c["wire_bytes_per_rpc"].min()
    most = max(c[m].max() - p[m].min() for m in (CPU, "loadgen_cpu_us_per_rpc"))
    least = max(c[m].min() - p[m].max() for m in (CPU, "loadgen_cpu_us_per_rpc"))
    return saved_low * 8 / (most / 1e6), saved_high * 8 / (least / 1e6)


def test_the_compression_sweep_is_one_finding_with_the_hand_computed_numbers(quick, quick_findings):
    df, _ = quick
    found = only(quick_findings, "compression")
    key = lambda setting, kind="text", size=65536: (  # noqa: E731
        f"sync/unary/w4/p1/{size}B/{kind}/{setting}/tls-off/c8/n1/m1/closed/python"
    )
    levels = [f"app-gzip-{n}" for n in range(1, 10)]
    by_hand = {s: compression_numbers(df, TEXT_64K, key(s)) for s in [*levels, "grpc-gzip", "grpc-deflate"]}
    ranked = sorted(levels, key=lambda s: -by_hand[s]["speed"])
    best, runner, slowest = ranked[0], ranked[1], ranked[-1]
    most = max(levels, key=lambda s: by_hand[s]["saved"])
    assert (best, slowest, most) == ("app-gzip-1", "app-gzip-8", "app-gzip-8")  # what this run measured
    # the leading comparison: the level that pays on the most links, against none
    lead = found.instances[0]
    assert lead.cells == {"none": TEXT_64K, best: key(best)}
    assert found.ratio == pytest.approx(median(df, key(best), CPU) / median(df, TEXT_64K, CPU))
    # every setting's numbers are an instance (the per-setting detail), and so are the other payloads' pairs
    detail = {tuple(i.cells.values()): i.derived for i in found.instances}
    for setting, numbers in by_hand.items():
        derived = detail[(TEXT_64K, key(setting))]
        assert derived["server_cpu_added_us"] == pytest.approx(numbers["server"])
        assert derived["client_cpu_added_us"] == pytest.approx(numbers["client"])
        assert derived["wire_bytes_saved"] == pytest.approx(numbers["saved"])
        assert derived["break_even_bit_per_s"] == pytest.approx(numbers["speed"])
    assert (key("none", "random"), key("app-gzip-6", "random")) in detail
    assert (key("none", "zeros"), key("app-gzip-6", "zeros")) in detail
    assert (key("none", size=2**20), key("app-gzip-9", size=2**20)) in detail
    assert len(found.instances) == 11 + 3
    # the sentence: the best level, the range of break-even speeds, the most saved, gRPC's own against app-gzip-6
    b, s = by_hand[best], by_hand[slowest]
    # gRPC's own against app-gzip-6: the server CPU each adds to none's
    gzip6, grpc, deflate = (by_hand[s]["server"] for s in ("app-gzip-6", "grpc-gzip", "grpc-deflate"))
    zeros = compression_numbers(df, key("none", "zeros"), key("app-gzip-6", "zeros"))
    mib = compression_numbers(df, key("none", size=2**20), key("app-gzip-9", size=2**20))
    saved_fraction = b["saved"] / median(df, TEXT_64K, "wire_bytes_per_rpc")
    for text in (
        f"{best} pays on the most links: below {b['speed'] / 1e9:.3g} Gbit/s (+{b['server']:,.0f} us of server CPU "
        f"and +{b['client']:,.0f} us on the client per RPC, {saved_fraction:.0%} of the bytes saved)",
        f"the 9 levels measured break even between {s['speed'] / 1e6:.3g} Mbit/s ({slowest}) and "
        f"{b['speed'] / 1e9:.3g} Gbit/s",
        f"{most} saves the most",
        f"gRPC's own grpc-gzip cost +{grpc:,.0f} us of server CPU per RPC ({grpc / gzip6:.2f}x app-gzip-6's "
        f"+{gzip6:,.0f} us, the same zlib level)",
        f"pays below {by_hand['grpc-gzip']['speed'] / 1e6:.3g} Mbit/s",
        f"grpc-deflate +{deflate:,.0f} us ({deflate / gzip6:.2f}x)",
        ". Random: app-gzip-6 never pays: no bytes saved",  # the other kinds first, then the other sizes
        f"; zeros: app-gzip-6 pays below {zeros['speed'] / 1e9:.3g} Gbit/s",
        f"; 1 MiB: app-gzip-9 pays below {mib['speed'] / 1e6:.3g} Mbit/s",
    ):
        assert text in found.sentence, text
    assert found.headline.startswith(f"{best} pays below {b['speed'] / 1e9:.3g} Gbit/s on 64 KiB of text")
    assert (
        f"grpc-gzip and grpc-deflate add {grpc / gzip6:.2f}x and {deflate / gzip6:.2f}x the server CPU app-gzip-6 adds"
        in found.headline
    )
    # the label rests on the best level against none, and on its lead over the runner-up being outside the spread
    (best_low, _), (_, runner_high) = (
        break_even_range(df, TEXT_64K, key(best)),
        break_even_range(df, TEXT_64K, key(runner)),
    )
    codes = {r.code for r in found.reasons}
    assert (findings.RANKING_INSIDE_SPREAD in codes) == (best_low <= runner_high)
    assert findings.RANKING_INSIDE_SPREAD in codes  # in this run app-gzip-1 and app-gzip-2 are that close
    assert f"{best}'s lead over {runner} is inside the repetitions' spread" in found.sentence
    assert found.confidence == findings.INDICATIVE
    assert "app-gzip-1 against none: 2 repetitions each; spread" in found.sentence


def test_a_run_without_app_gzip_levels_or_app_gzip_6(quick):
    df, manifest = quick
    only_grpc = only(findings.compute(df[df["compression"].isin(["none", "grpc-gzip"])], manifest), "compression")
    assert only_grpc.subject == "grpc-gzip vs none" and len(only_grpc.instances) == 1
    numbers = compression_numbers(df, TEXT_64K, TEXT_64K.replace("/none/", "/grpc-gzip/"))
    assert f"gRPC's own grpc-gzip cost +{numbers['server']:,.0f} us of server CPU per RPC for" in only_grpc.sentence
    assert "app-gzip-6" not in only_grpc.sentence and "levels" not in only_grpc.sentence
    # an effect of several times is said as a factor, not as a percentage over 100
    factor = median(df, TEXT_64K.replace("/none/", "/grpc-gzip/"), CPU) / median(df, TEXT_64K, CPU)
    assert f"the {factor:.1f}x difference" in only_grpc.sentence and "00%" not in only_grpc.sentence
    random = df[(df["payload_kind"] == "random") | (df["compression"] == "none")]
    never = only(findings.compute(random, manifest), "compression")
    assert never.headline == "app-gzip-6 never pays on 64 KiB of random"
    assert "app-gzip-6 never pays: no bytes saved" in never.sentence


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
    assert {f.study for f in found} == {"server_model", "payload_size", "concurrency", "load_generator"}
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


def test_apart_on_two_repetitions_is_clear_only_beyond_three_times_the_noise(quick, quick_findings):
    df, manifest = quick
    effect = abs(only(quick_findings, "server_model").ratio - 1)
    noisy = with_calibration(manifest, {"noise": {"cv": {CPU: effect / findings.NOISE_FACTOR + 0.01}}})
    quiet = with_calibration(manifest, {"noise": {"cv": {CPU: effect / findings.NOISE_FACTOR - 0.01}}})
    within = only(findings.compute(df, noisy), "server_model")
    assert within.confidence == findings.INDICATIVE and {r.code for r in within.reasons} >= {findings.WITHIN_NOISE}
    assert f"the {effect:.0%} difference is within 3x this machine's noise" in within.sentence
    beyond = only(findings.compute(df, quiet), "server_model")
    assert beyond.confidence == findings.CLEAR
    assert f"apart, and the {effect:.0%} difference is over 3x this machine's noise" in beyond.sentence
    # without a calibration the same comparison is indicative: apart is all there is
    assert only(quick_findings, "server_model").confidence == findings.INDICATIVE


def test_latencies_near_the_machines_floor_are_indicative(quick):
    df, manifest = quick
    p50 = min(median(df, SYNC, "lat_p50_ms"), median(df, AIO, "lat_p50_ms"))
    quiet = {"noise": {"cv": {CPU: 0.01}}}  # so that only the floor can hold the label back
    near = with_calibration(manifest, quiet | {"floor": {"python": {"p50_ms": p50 / findings.FLOOR_FACTOR * 1.01}}})
    far = with_calibration(manifest, quiet | {"floor": {"python": {"p50_ms": p50 / findings.FLOOR_FACTOR * 0.99}}})
    held_back = only(findings.compute(df, near), "server_model")
    assert held_back.confidence == findings.INDICATIVE and findings.NEAR_FLOOR in {r.code for r in held_back.reasons}
    assert "machine's floor" in held_back.sentence
    assert only(findings.compute(df, far), "server_model").confidence == findings.CLEAR


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


def test_failed_rows_are_left_out_and_one_repetition_is_indicative():
    cells = [
        ({"impl": "sync"}, reps([100, 102], [9000, 9100])),
        ({"impl": "aio"}, reps([150], [6000])),
    ]
    df = table(cells)
    failed = df.iloc[[0]].assign(repetition=2, order=99, failed=True, server_cpu_us_per_rpc=1e6, rps=1.0)
    found = only(findings.compute(pd.concat([df, failed], ignore_index=True), MANIFEST), "server_model")
    assert found.values["sync"]["server_cpu_us_per_rpc"] == pytest.approx(101)
    assert found.instances[0].repetitions == {"sync": 2, "aio": 1}
    assert found.confidence == findings.INDICATIVE
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
    # every repetition on its side of the SLO, but 2 readings of a tail latency: indicative; 4 make it clear
    assert knee.confidence == findings.INDICATIVE and {r.code for r in knee.reasons} == {findings.FEW_REPETITIONS}
    assert "rests on 2 readings of a tail latency" in knee.sentence
    four = table([open_cell(500, [3, 4, 3, 4]), open_cell(1000, [20, 22, 21, 20]), open_cell(2000, [80, 95, 70, 90])])
    clear = only(findings.compute(four, MANIFEST), "open_loop_knee")
    assert clear.confidence == findings.CLEAR and "every repetition on the same side of the SLO" in clear.sentence
    straddles = table([open_cell(500, [3, 4]), open_cell(1000, [20, 22]), open_cell(2000, [45, 60])])
    unsure = only(findings.compute(straddles, MANIFEST), "open_loop_knee")
    assert unsure.confidence == findings.INCONCLUSIVE
    assert "the repetitions disagree whether 2,000 RPC/s meets the SLO" in unsure.sentence


# -- the labels at 2 and 5 repetitions: within the noise, beyond it, overlapping --------------------------------------

# Server CPU per RPC of a sync and an aio cell; the aio cell is 10 % dearer.
TWO_APART = ([100, 102], [110, 112])
TWO_OVERLAPPING = ([100, 112], [104, 115])
FIVE_APART = ([100, 101, 102, 99, 100], [110, 111, 109, 112, 110])
FIVE_OVERLAPPING = ([100, 108, 103, 111, 99], [105, 110, 101, 112, 104])


def model_finding(sync_cpu: list[float], aio_cpu: list[float], cv: float | None) -> findings.Finding:
    df = table(
        [
            ({"impl": "sync"}, reps(sync_cpu, [9000] * len(sync_cpu))),
            ({"impl": "aio"}, reps(aio_cpu, [6000] * len(aio_cpu))),
        ]
    )
    manifest = MANIFEST if cv is None else with_calibration(MANIFEST, {"noise": {"cv": {CPU: cv}}})
    return only(findings.compute(df, manifest), "server_model")


@pytest.mark.parametrize(
    ("samples", "cv", "label", "code", "words"),
    [
        # 2 a side, apart: the effect (10.0 %) against 3 x the calibrated CV decides; without a calibration, indicative
        (TWO_APART, 0.02, findings.CLEAR, None, "apart, and the 10% difference is over 3x this machine's noise (2.0%"),
        (
            TWO_APART,
            0.04,
            findings.INDICATIVE,
            findings.WITHIN_NOISE,
            "but the 10% difference is within 3x this machine",
        ),
        (
            TWO_APART,
            None,
            findings.INDICATIVE,
            findings.FEW_REPETITIONS,
            "no calibrated noise to weigh the 10% difference",
        ),
        # 2 a side, overlapping: inside the spread whatever the noise
        (
            TWO_OVERLAPPING,
            0.001,
            findings.INCONCLUSIVE,
            findings.INSIDE_SPREAD,
            "overlapping, so the difference is inside",
        ),
        # 5 a side: the exact test decides, the calibrated noise plays no part
        (FIVE_APART, 0.5, findings.CLEAR, None, f"5 repetitions each; Mann-Whitney p = {2 / comb(10, 5):.3f}"),
        (FIVE_APART, None, findings.CLEAR, None, f"Mann-Whitney p = {2 / comb(10, 5):.3f}"),
        (FIVE_OVERLAPPING, 0.001, findings.INCONCLUSIVE, findings.INSIDE_SPREAD, ": inside the repetitions' spread"),
    ],
    ids=[
        "2-beyond-noise",
        "2-within-noise",
        "2-uncalibrated",
        "2-overlapping",
        "5-apart",
        "5-uncalibrated",
        "5-overlapping",
    ],
)
def test_labels_at_two_and_five_repetitions(samples, cv, label, code, words):
    found = model_finding(*samples, cv)
    assert found.ratio == pytest.approx(statistics.median(samples[1]) / statistics.median(samples[0]))
    assert found.confidence == label
    judged = {findings.INSIDE_SPREAD, findings.FEW_REPETITIONS, findings.WITHIN_NOISE, findings.ONE_REPETITION}
    assert {r.code for r in found.reasons} & judged == ({code} if code else set())
    assert {r.code for r in found.reasons} - judged == {findings.SERVER_NOT_LIMIT}  # said, without changing the label
    assert words in found.sentence  # the sentence says what the label rests on


def test_three_times_the_noise_is_the_line():
    # effect 10 %: clear just above CV = 10 % / 3, indicative just below; the two sides' ranges apart either way
    effect = statistics.median(TWO_APART[1]) / statistics.median(TWO_APART[0]) - 1
    assert model_finding(*TWO_APART, effect / 3 * 0.99).confidence == findings.CLEAR
    assert model_finding(*TWO_APART, effect / 3 * 1.01).confidence == findings.INDICATIVE


def test_two_and_three_repetitions_say_their_own_chance():
    found = model_finding([100, 102, 101], [110, 112], None)
    assert "3 and 2 repetitions" in found.sentence and "1 time in 5" in found.sentence
    assert "1 time in 5 (20%)" in findings.legend([found])


# -- the machine's line: no calibration, the CPU-latency hold, the system facts' warnings --------------------------


def with_machine(manifest: Manifest, **extra: object) -> Manifest:
    """The manifest with machine fields, typed (as runs write them) or in the JSON forms machine_note also reads."""
    return replace(manifest, **extra)


@dataclass(frozen=True)
class Hold:
    requested_us: int
    held: bool
    reason: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    value: str


class Facts:
    """Like bench.machine.system.SystemFacts: warnings() gives the checks that warn."""

    def warnings(self) -> list[Check]:
        return [Check("load", "warning", "1.2"), Check("steal", "warning", "3%")]


CALIBRATED = {"floor": {"python": {"p50_ms": 0.05}}, "noise": {"cv": {CPU: 0.01, "rps": 0.02, "lat_p50_ms": 0.03}}}


def test_the_machine_line_says_what_weakens_the_findings(quick, quick_findings):
    df, manifest = quick
    # the committed quick run: no calibration, 2 repetitions a side
    assert findings.machine_note(manifest, quick_findings) == (
        "Machine: the run has no noise calibration, so below 4 repetitions a side no finding is clear."
    )
    assert findings.machine_note(manifest, ()) is None  # nothing compared, nothing to weaken
    calibrated = with_machine(manifest, calibration=CALIBRATED, cpu_latency_hold=True)
    assert findings.machine_note(calibrated, findings.compute(df, calibrated)) is None
    for hold in (False, {"held": False, "reason": "not root"}, Hold(0, False, "not root")):
        note = findings.machine_note(with_machine(manifest, calibration=CALIBRATED, cpu_latency_hold=hold))
        assert note.startswith("Machine: the CPU-latency request (/dev/cpu_dma_latency) was not held")
        assert ("(not root)" in note) == (hold is not False) and note.count("\n") == 0
    for system in (Facts(), {"checks": [{"name": "load", "status": "warning"}, {"name": "cpu", "status": "ok"},
                                        {"name": "steal", "status": "warning"}]}):  # fmt: skip
        note = findings.machine_note(with_machine(manifest, calibration=CALIBRATED, system=system))
        assert note == "Machine: grpclab system warned about load and steal (see the manifest)."
    all_three = findings.machine_note(with_machine(manifest, cpu_latency_hold=False, system=Facts()), quick_findings)
    assert all_three.count(";") == 2 and all_three.startswith("Machine: the run has no noise calibration")
    for renderer in (findings.to_text, findings.to_markdown, findings.to_html):
        assert "was not held" in renderer(quick_findings, note=all_three)


def test_a_calibrated_run_reads_its_calibration_from_the_manifest_json_shape(quick):
    df, manifest = quick
    calibrated = with_machine(manifest, calibration=CALIBRATED)
    assert findings.read_calibration(calibrated) == findings.Calibration({"python": 0.05}, CALIBRATED["noise"]["cv"])
    found = findings.compute(df, calibrated)
    # with a 1 % CV of server CPU per RPC, sync vs aio (55 %) and TLS (11 %) are beyond 3x the noise: clear
    assert only(found, "server_model").confidence == findings.CLEAR
    assert only(found, "tls", "TLS vs plaintext").confidence == findings.CLEAR
    assert only(found, "tls", "mTLS vs plaintext").confidence == findings.INCONCLUSIVE  # ranges overlap


# -- wired in: the end of `grpclab run` ----------------------------------------------------------------------------


def test_the_run_summary_ends_with_the_findings_and_writes_them_beside_the_run(quick, quick_findings, tmp_path):
    run_dir = Path(shutil.copytree(QUICK, tmp_path / "quick-run"))
    out = io.StringIO()
    document = command.finish(run_dir, Console(file=out, width=160))
    text = out.getvalue()
    df, manifest = quick
    note = findings.machine_note(manifest, quick_findings)
    assert document == findings.Document(str(df["run_id"].iloc[0]), quick_findings, note)
    # findings.json in the run directory reads back as what the cells give
    assert findings.read(run_dir / findings.FILE_NAME) == document
    assert f"results: {run_dir}/cells.parquet, cells.csv, manifest.json, findings.json" in text
    # the table and its warnings first, the findings last: every one with its label and study, then the legend and
    # the machine's line
    tail = text[text.index(f"Findings ({len(quick_findings)})") :]
    assert text.index("┃") < text.index("results: ") < text.index("Findings (")
    flat = " ".join(tail.split())
    for finding in quick_findings:
        assert " ".join(f"{finding.confidence} {findings._TITLES[finding.study]}".split()) in flat
        assert " ".join(finding.headline.split()) in flat
    assert flat.endswith(" ".join(note.split()))
    assert " ".join(findings.legend(quick_findings).split()) in flat
    assert "(few repetitions; the Python generator saturated in the sync cell)" in flat  # qualifiers, compact


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
        ('{"format": "grpclab.findings/2", "findings": [{"study": "x"}]}', "findings[0]: missing"),
        ('{"format": "grpclab.findings/2", "note": 3, "findings": []}', "note: expected a string"),
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
    assert page.startswith('<section class="findings"') and page.count('<li class="finding ') == len(quick_findings)
    # the HTML's details carry every compared instance: for compression, every setting's row
    compression = only(quick_findings, "compression")
    section = page[page.index('data-study="compression"') :]
    section = section[: section.index("</details>")]
    assert section.count("<tr><td>") == len(compression.instances) == 14
    assert "break even bit per s" in section


def test_the_legend_says_how_little_two_repetitions_prove(quick_findings):
    # 2 + 2 samples of one distribution: both of one side below both of the other in 2 of the C(4, 2) = 6 orders
    assert findings.chance_apart(2, 2) == Fraction(2, comb(4, 2)) == Fraction(1, 3)
    assert "two cells that do not differ give ranges apart 1 time in 3 (33%)" in findings.legend(quick_findings)
    assert findings.chance_apart(2, 3) == Fraction(1, 5) and findings.chance_apart(3, 4) == Fraction(2, 35)
    five = findings.compute(results.load(CROSSCHECK), results.read_manifest(CROSSCHECK))
    assert findings.legend(five) == findings._LEGEND
