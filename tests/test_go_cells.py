"""Go cells (impl = "go") in runs: a missing Go server fails its rows with one line and warns up front (fast: no
process is started for them), and, with the Go server built, a small run of sync, aio and go cells under both load
generators gives go rows and the report's Python-against-Go section (slow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from server_impls import GO_BUILT, GO_MISSING

from bench.analysis import reference, report, results
from bench.run import measure
from bench.run.placement import LocalPlacement
from bench.spec import Cell, Settings, parse_spec
from servers import go_server

MISSING_BINARY = "/nonexistent/grpclab-go-server"


def cells(text: str) -> tuple[Cell, ...]:
    return parse_spec({"name": "t"} | tomllib.loads(text)).cells


GO_AND_SYNC = cells('[axes]\nimpl = ["sync", "go"]\nrpc = ["unary", "bidi"]')


def test_go_rows_note_that_workers_do_not_apply():
    notes = {cell.impl: measure.impl_notes(cell) for cell in GO_AND_SYNC}
    assert notes["go"] == ["go: workers axis does not apply; GOMAXPROCS follows the server CPUs"]
    assert notes["sync"] == []


def test_without_the_go_binary_a_go_cell_is_a_failed_row_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv(go_server.ENV_BINARY, MISSING_BINARY)
    settings = Settings()
    ctx = measure.Context("r", settings, tmp_path, LocalPlacement.from_settings(settings))
    go = next(c for c in GO_AND_SYNC if c.impl == "go")
    row = measure.measure(go, 0, 0, ctx)  # fails before anything starts: the fast tier refuses any process
    assert row["failed"] is True
    assert row["error"] == f"impl go: {go_server.ENV_BINARY}={MISSING_BINARY} is not an executable file"
    assert "\n" not in row["error"]
    assert row["impl"] == "go" and row["workers"] == 0 and row["cell_key"] == go.key()
    assert row["notes"] == measure.GO_NOTE


def test_without_the_go_binary_the_run_warns_once_naming_the_go_cells(monkeypatch):
    monkeypatch.setenv(go_server.ENV_BINARY, MISSING_BINARY)
    warning = measure.go_warning(GO_AND_SYNC)
    assert warning == (
        f"2 go cells will fail (impl go: {go_server.ENV_BINARY}={MISSING_BINARY} is not an executable file); "
        "the other cells run"
    )
    assert measure.go_warning([c for c in GO_AND_SYNC if c.impl == "sync"]) is None


def test_the_default_binary_missing_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.delenv(go_server.ENV_BINARY, raising=False)
    monkeypatch.setattr(go_server, "find_binary", lambda: None)
    assert go_server.missing_text() == f"impl go: {go_server.MISSING}"
    assert "make setup" in go_server.missing_text()


def test_another_sides_code_finds_its_own_go_server(monkeypatch):
    # grpclab regress runs the base's tree with its own venv: the harness's binary says nothing about it
    monkeypatch.setenv(go_server.ENV_BINARY, MISSING_BINARY)
    go = next(c for c in GO_AND_SYNC if c.impl == "go")
    base = measure.ServerCode(code_dir=Path("/base"), python="/base/.venv/bin/python")
    assert measure.missing_server(go, base) is None
    assert measure.missing_server(go, measure.ServerCode()) is not None
    assert measure.missing_server(go, measure.ServerCode(env={go_server.ENV_BINARY: "/elsewhere"})) is None


# -- real runs (slow) -------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
SPEC = """
name = "go-cells"
[settings]
duration = 1.0
warmup = 0.3
repetitions = 1
[axes]
impl = {impls}
loadgen = ["python", "ghz"]
concurrency = [4]
"""


def grpclab_run(tmp_path: Path, impls: list[str], env: dict[str, str] | None = None) -> tuple[Path, str]:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(impls=json.dumps(impls)))
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(spec), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return out, done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not GO_BUILT, reason=GO_MISSING)
def test_a_run_with_go_cells_gives_go_rows_under_both_generators_and_the_ratio_section(tmp_path):
    out, _ = grpclab_run(tmp_path, ["sync", "aio", "go"])
    df = results.load(out)
    go = df[df["impl"] == "go"]
    assert sorted(go["loadgen"].astype(str)) == ["ghz", "python"]
    assert not go["failed"].any(), go["error"].tolist()
    assert (go["workers"] == 0).all() and (go["rpcs_ok"] > 0).all() and (go["errors"] == 0).all()
    assert all(measure.GO_NOTE in notes for notes in go["notes"])
    assert (go["server_cpu_us_per_rpc"] > 0).all()
    index = report.write(out)
    page = index.read_text()
    assert 'id="python-cost"' in page and (index.parent / "python_cost.png").is_file()
    # the section's ratios are the medians' (one repetition each: the rows' own values)
    found = reference.ratios(df, results.read_manifest(out))
    assert {(r.impl, r.python.generator) for r in found} == {(i, g) for i in ("sync", "aio") for g in ("python", "ghz")}
    for r in found:
        py = df[df["cell_key"] == r.python.key].iloc[0]
        ref = df[df["cell_key"] == r.go.key].iloc[0]
        expected = py["server_cpu_us_per_rpc"] / ref["server_cpu_us_per_rpc"]
        assert r.cpu_ratio == pytest.approx(expected)
        assert f"{expected:.2f}x" in page
    assert "## What Python costs per RPC" in (index.parent / "summary.md").read_text()


@pytest.mark.slow
def test_a_run_without_the_go_server_fails_its_go_cells_in_their_rows_and_runs_the_rest(tmp_path):
    out, stdout = grpclab_run(tmp_path, ["sync", "go"], env={go_server.ENV_BINARY: MISSING_BINARY})
    assert "warning: 2 go cells will fail (impl go: GRPCLAB_GO_SERVER=" in stdout
    df = results.load(out)
    go, sync = df[df["impl"] == "go"], df[df["impl"] == "sync"]
    assert go["failed"].all() and len(go) == 2
    assert set(go["error"]) == {f"impl go: {go_server.ENV_BINARY}={MISSING_BINARY} is not an executable file"}
    assert not sync["failed"].any() and (sync["rpcs_ok"] > 0).all()
