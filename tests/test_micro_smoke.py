"""The micro-benchmarks (bench/micro/bench_*.py) still run: each body once, timing off, exercised by `make test`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Each test runs pytest-benchmark in a subprocess: not part of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def pytest_bench(*args: str) -> subprocess.CompletedProcess:
    # A separate pytest: bench/micro has its own conftest and must not mix with this session's fixtures.
    command = [sys.executable, "-m", "pytest", "bench/micro", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)


def test_every_micro_benchmark_runs_once():
    done = pytest_bench("--benchmark-disable")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
    # protobuf 4 sizes x 2, gzip 9 levels x 3 kinds x 2, round trip 2 models x 2 sizes
    assert "66 passed" in done.stdout, done.stdout[-500:]


def test_benchmark_json_is_written(tmp_path):
    out = tmp_path / "micro.json"
    done = pytest_bench(
        "-k",
        "serialize and 1024B",
        f"--benchmark-json={out}",
        "--benchmark-min-rounds=1",
        "--benchmark-max-time=0.001",
        "--benchmark-warmup=off",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = [b["fullname"] for b in json.loads(out.read_text())["benchmarks"]]
    assert names == ["bench/micro/bench_messages.py::test_serialize[1024B]"]
