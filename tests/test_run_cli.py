"""`grpclab run` end to end: run directory contents, SIGKILL + resume, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench import results

REPO = Path(__file__).resolve().parent.parent
TINY = """
name = "tiny"
[settings]
duration = 0.3
warmup = 0.1
repetitions = 2
loadgen_processes = 1
cell_timeout = 20.0
[axes]
impl = ["sync", "aio"]
rpc = ["unary", "bidi"]
stream_messages = [3]
concurrency = [2]
"""


def grpclab(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120, **kwargs
    )


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _lab_descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [p for p in proc.children(recursive=True) if "bench." in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def _watch_until_cells(proc: subprocess.Popen, out: Path, count: int, timeout: float = 60) -> list[psutil.Process]:
    """Wait until the run has written ``count`` cell files; return every lab process it started meanwhile."""
    parent = psutil.Process(proc.pid)
    started: list[psutil.Process] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(list((out / "cells").glob("*.json"))) < count:
        started += _lab_descendants(parent)
        time.sleep(0.05)
    return started + _lab_descendants(parent)


def test_run_writes_manifest_and_tidy_tables(tiny_spec, tmp_path):
    out = tmp_path / "run"
    done = grpclab("run", str(tiny_spec), "--out", str(out))
    assert done.returncode == 0, done.stderr
    manifest = results.read_manifest(out)
    assert manifest["status"] == "complete"
    assert manifest["environment"]["versions"]["grpcio"]
    assert manifest["environment"]["git"]["commit"]
    assert manifest["pinning"] == {"server_cpus": [0], "loadgen_cpus": [1]}
    df = results.load(out)
    assert len(df) == 4 * 2 == len(manifest["plan"])
    assert set(df["server_cpus"]) == {"0"} and set(df["loadgen_cpus"]) == {"1"}
    assert not df["failed"].any() and (df["rpcs_ok"] > 0).all()
    # repetitions interleaved: every cell's repetition 0 runs before any repetition 1
    assert df.sort_values("order")["repetition"].tolist() == [0] * 4 + [1] * 4
    assert (out / "cells.csv").read_text().count("\n") == 1 + 8
    assert "hdr_call" not in (out / "cells.csv").read_text().splitlines()[0]


def test_sigkill_then_resume_runs_only_what_is_missing(tiny_spec, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", str(tiny_spec), "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        started = _watch_until_cells(proc, out, 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {p.name for p in (out / "cells").glob("*.json")}
    assert 2 <= len(before) < 8
    # servers exit with their parent (--exit-with-parent), load generators end by themselves
    gone, alive = psutil.wait_procs(started, timeout=15)
    assert not alive, [p.cmdline() for p in alive]
    done = grpclab("run", "--resume", str(out))
    assert done.returncode == 0, done.stderr
    after = {p.name for p in (out / "cells").glob("*.json")}
    assert before < after and len(after) == 8
    df = results.load(out)
    assert not df.duplicated(["cell_key", "repetition"]).any()


def test_ctrl_c_keeps_finished_cells_and_says_how_to_resume(tiny_spec, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", str(tiny_spec), "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = _watch_until_cells(proc, out, 1)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"grpclab run --resume {out}" in output
    assert "Traceback" not in output
    assert results.read_manifest(out)["status"] == "interrupted"
    gone, alive = psutil.wait_procs(started, timeout=15)
    assert not alive, [p.cmdline() for p in alive]


@pytest.mark.parametrize(
    ("spec_text", "extra", "expected"),
    [
        ('name = "x"\n[axes]\ncompression = ["none", "gzp"]\n', [], "axes.compression[1]"),
        ('name = "x"\ncolour = 1\n', [], "colour"),
        ('name = "x"\n[axes\n', [], "invalid TOML"),
        (TINY, ["--filter", "impl=asio"], "--filter"),
        (TINY, ["--server-cpus", "99"], "settings.server_cpus"),
        (TINY, ["--duration", "-1"], "settings.duration"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, spec_text, extra, expected):
    spec = tmp_path / "spec.toml"
    spec.write_text(spec_text)
    out = tmp_path / "run"
    done = grpclab("run", str(spec), "--out", str(out), *extra)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert not out.exists()


def test_bad_run_directories_are_named(tmp_path):
    missing = grpclab("run", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "nope.toml" in missing.stderr
    not_a_run = grpclab("run", "--resume", str(tmp_path))
    assert not_a_run.returncode == 2 and "manifest.json" in not_a_run.stderr
    run = tmp_path / "run"
    (run / "cells").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"schema": "grpclab.run/1"}))
    (run / "cells" / "broken.json").write_text("{not json")
    corrupt = grpclab("run", "--resume", str(run))
    assert corrupt.returncode == 2 and "broken.json" in corrupt.stderr
    assert len(corrupt.stderr.strip().splitlines()) == 1
    occupied = grpclab("run", "--out", str(run))
    assert occupied.returncode == 2 and "not empty" in occupied.stderr


def test_a_cell_that_fails_is_recorded_and_the_run_goes_on(tiny_spec, tmp_path):
    out = tmp_path / "run"
    # a malformed fault knob makes every server refuse to start: each repetition becomes a failed row
    done = grpclab(
        "run",
        str(tiny_spec),
        "--out",
        str(out),
        "--repetitions",
        "1",
        env={**os.environ, "GRPCLAB_INJECT_DELAY_US": "soon"},
    )
    assert done.returncode == 0, done.stderr
    df = results.load(out)
    assert len(df) == 4 and df["failed"].all()
    assert df["error"].str.contains("GRPCLAB_INJECT_DELAY_US").all()
