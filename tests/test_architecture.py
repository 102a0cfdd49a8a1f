"""The shape of the harness: stages in folders, `from bench import results` cheap to reach, a fast tier that starts
no process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import bench

REPO = Path(__file__).resolve().parent.parent
STAGES = {"spec", "run", "load", "remote", "analysis", "gate", "machine", "studies", "micro"}


def test_bench_is_folders_by_stage():
    top = {p.name for p in (REPO / "bench").iterdir() if p.suffix == ".py"}
    assert top == {"__init__.py", "cli.py"}, "a module at bench/ top level: put it in its stage's folder"
    folders = {p.name for p in (REPO / "bench").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == STAGES


def test_results_is_a_lazy_alias_of_the_analysis_module():
    from bench import results
    from bench.analysis import results as analysis_results

    assert results is analysis_results
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        bench.nothing  # noqa: B018


def test_the_fast_tier_refuses_a_test_that_starts_a_process():
    with pytest.raises(AssertionError, match="mark it @pytest.mark.slow"):
        subprocess.run(["true"], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["bench.cli", "bench.load.worker", "bench.remote.worker", "bench.remote.generator"])
def test_the_server_and_the_generator_workers_do_not_import_pandas(module):
    # `grpclab serve` (bench.cli) and every load-generator process import bench: pandas and pyarrow would cost
    # each of them its import time and memory.
    code = f"import sys, {module}; from bench import spec; print(sorted({{'pandas', 'pyarrow'}} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
