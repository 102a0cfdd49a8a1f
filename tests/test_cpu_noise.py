"""bench.studies.cpu_noise: its arithmetic on synthetic readings (fast) and one tiny real run (slow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.studies import cpu_noise

REPO = Path(__file__).resolve().parent.parent


def synthetic(levels: list[float], rate: float = 1000.0, window: int = 4) -> list[dict]:
    """Repetitions whose server burns level us per RPC every second; /proc rounds to 10 ms ticks."""
    reps = []
    for i, level in enumerate(levels):
        readings, cpu = [], 1.0037 + 0.0021 * i  # ticks round each reading down to 10 ms
        for second in range(window + 1):
            readings.append((cpu, 100.0 + second, math.floor(cpu * 100) / 100, 100.0 + second))
            cpu += level * rate / 1e6
        reps.append(
            {
                "cell": "sync/unary/w4/p1/1024B/text/none",
                "repetition": i,
                "rate": rate,
                "ok": rate * window,
                "readings": readings,
            }
        )
    return reps


def test_cpu_per_rpc_and_the_cvs_come_from_the_readings():
    levels = [103.7, 112.1, 91.3, 100.9]
    reps = synthetic(levels)
    assert cpu_noise.cpu_per_rpc_us(reps[1], 0, 2) == pytest.approx(112.1)
    (row,) = cpu_noise.summarize(reps, window_s=4)
    mean = sum(levels) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in levels) / 3)
    assert row["cv_2s_clock"] == pytest.approx(sd / mean)
    assert row["cv_4s_clock"] == pytest.approx(sd / mean)
    assert row["cv_within_1s"] == pytest.approx(0.0, abs=1e-9)  # a constant level within each run
    assert row["rpcs_vs_schedule"] == pytest.approx(1.0)
    assert row["cv_2s_ticks"] != pytest.approx(row["cv_2s_clock"], rel=1e-3)  # ticks add their rounding


@pytest.mark.slow
def test_a_tiny_real_run_writes_its_report(tmp_path):
    out = tmp_path / "noise"
    done = subprocess.run(
        [sys.executable, "-m", "bench.studies.cpu_noise", "--filter", "impl=sync,rpc=unary,compression=none"]
        + ["--repetitions", "2", "--window", "2", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    doc = json.loads((out / cpu_noise.NOISE_JSON).read_text())
    (row,) = doc["summary"]
    assert row["repetitions"] == 2 and row["median_us_2s"] > 0
    assert 0.9 < row["rpcs_vs_schedule"] < 1.1  # the open-loop schedule is what the server got
    assert "| cell | median us/RPC |" in (out / cpu_noise.REPORT).read_text()
