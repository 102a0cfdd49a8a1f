"""bench.analysis.measured: the README's "Measured on this machine" figures, computed from committed runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.analysis import measured, results

REPO = Path(__file__).resolve().parent.parent
QUICK = REPO / "results" / "quick-2026-12-01"  # a quick-matrix run (the findings example's)


@pytest.fixture(scope="module")
def quick():
    return results.load(QUICK)


def _cells(df, section: measured.Section) -> set[tuple[str, ...]]:
    rows = measured.select(df, section).drop_duplicates("cell_key")
    return {tuple(str(row[a]) for a in section.vary) for _, row in rows.iterrows()}


def test_each_section_has_the_cells_that_differ_from_the_base_in_its_axes_only(quick):
    rpc, gzip, tls = measured.SECTIONS
    kinds = ("unary", "server_stream", "client_stream", "bidi")
    assert _cells(quick, rpc) == {(impl, kind) for impl in ("sync", "aio") for kind in kinds}
    levels = {f"app-gzip-{n}" for n in range(1, 10)}
    assert _cells(quick, gzip) == {("text", c) for c in levels | {"none", "grpc-gzip", "grpc-deflate"}} | {
        (kind, c) for kind in ("random", "zeros") for c in ("none", "app-gzip-6")
    }
    assert _cells(quick, tls) == {(impl, t) for impl in ("sync", "aio") for t in ("off", "on", "mtls")}
    # nothing else slips in: the ghz, 100-message, open-loop and 4-connection cells share the base's other axes
    for section in measured.SECTIONS:
        picked = measured.select(quick, section)
        assert set(picked["loadgen"].astype(str)) == {"python"} and set(picked["mode"].astype(str)) == {"closed"}
        assert set(picked["connections"].astype(str)) == {"1"} and set(picked["concurrency"].astype(str)) == {"8"}


def test_the_tables_are_the_lab_s_per_cell_table_of_each_section_and_of_every_cell(quick):
    text = measured.tables(QUICK)
    assert text.count("| reps | RPC/s | p50 ms | p99 ms | srv CPU us/RPC |") == len(measured.SECTIONS) + 1
    every = text.split("<details>", 1)[1]
    assert every.count("\n| ") == 1 + quick["cell_key"].nunique()  # the header and one row per cell


def test_describe_names_the_run_its_machine_and_settings():
    text = measured.describe(QUICK, system=True)
    manifest = results.read_manifest(QUICK)
    assert text.startswith("Run `quick-2026-12-01` (`grpclab run bench/specs/quick.toml`), 2026-12-01 11:19-11:25 UTC")
    assert f"commit `{manifest.environment.git.commit[:7]}`: AMD EPYC, 2 CPUs" in text
    assert "54 cells x 2 repetitions of 2 s after 0.5 s of warm-up, in a shuffled order (seed 1)" in text
    assert "0 of 108 repetitions failed" in text
    assert "grpclab system" not in text  # that run was made before runs recorded the machine


def test_the_floor_check_divides_the_python_generator_s_p50_by_ghz_s_by_hand(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(QUICK, run)
    df = results.load(run)
    # the run's own rows stand in for a floor run: its Python rows' p50 median against a by-hand median
    python = df.loc[~df["failed"] & (df["loadgen"].astype(str) == "python"), "lat_p50_ms"].median()
    for hand, verdict in ((python / 1.25, "within"), (python / 1.35, "over")):
        runs = [{"p50_ms": hand * 0.9}, {"p50_ms": hand}, {"p50_ms": hand * 1.5}]
        (run / measured.BY_HAND).write_text(json.dumps({"runs": runs}))
        text = measured.floor_check(run)
        assert '`client = "aio"`' in text and f"**{python / hand:.2f}x**, {verdict} the 1.3x" in text
    (run / measured.BY_HAND).unlink()
    with pytest.raises(results.ResultsError, match="ghz-by-hand.json"):
        measured.floor_check(run)


def test_the_floor_spec_is_the_calibration_s_floor_cell_with_each_generator():
    from dataclasses import replace

    from bench.run import calibration
    from bench.spec.parse import load_spec

    spec = load_spec(REPO / "bench" / "specs" / "floor.toml")
    assert spec.name == "floor" and spec.settings.cpu_latency_hold and not spec.settings.calibrate
    # the same cell as the floor every run calibrates, with the 16 threads the README's hold table used
    expected = [replace(calibration.floor_cell(generator), workers=16) for generator in ("python", "ghz")]
    expected.append(replace(expected[0], client="sync-threads"))  # grpcio's blocking stub: no asyncio per call
    assert sorted(c.key() for c in spec.cells) == sorted(c.key() for c in expected)
