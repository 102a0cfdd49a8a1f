"""Go cells (impl = "go") in runs: a missing Go server fails its rows with one line and warns up front (fast: no
process is started for them), and, with the Go server built, a small run of sync, aio and go cells under both load
generators gives go rows and the report's Python-against-Go section (slow).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

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
