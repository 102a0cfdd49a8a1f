"""Collect bench_*.py here, so `pytest bench/micro` runs the micro-benchmarks and the default `tests/` run never does.

`pytest bench/micro --benchmark-disable` runs every benchmark body once as a plain test (tests/test_micro_smoke.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
