"""The gate study (bench.gate.study): its replay of adaptive gate runs on a synthetic recording (no process),
and the command end to end on a tiny real recording (slow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.analysis import results, schema
from bench.gate import adaptive, compare, study
from bench.spec import DEFAULTS, Cell

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {"warmup": 0.5, "duration": 2.0}
METRICS = ("rps", "server_cpu_us_per_rpc")
CELLS = [
    Cell(**{**DEFAULTS, "payload_size": 1024, "concurrency": 1, "stream_messages": 1}),
    Cell(**{**DEFAULTS, "impl": "aio", "workers": 0, "payload_size": 1024, "concurrency": 1, "stream_messages": 1}),
]


def recording(name: str, factor: float, n: int, seed: int, noise: float = 0.03) -> pd.DataFrame:
    """N repetitions of each cell: server CPU per RPC log-normal around 200 us x factor, 3.0-3.2 s of wall each."""
    rng = np.random.default_rng(seed)
    rows = []
    for index, cell in enumerate(CELLS):
        for rep in range(n):
            row = schema.empty_row()
            row.update(cell.to_dict(), cell_key=cell.key(), repetition=rep, order=rep * len(CELLS) + index)
            row.update(run_id=name, rps=1500.0, overhead_s=0.5 + rng.uniform(0, 0.2))
            row["server_cpu_us_per_rpc"] = float(200.0 * factor * math.exp(rng.normal(0, noise)))
            rows.append(row)
    return pd.DataFrame(rows)


def frames(n: int = 16) -> dict[str, pd.DataFrame]:
    return {
        "A": recording("A", 1.0, n, 1),
        "A2": recording("A2", 1.0, n, 2),
        "B10": recording("B10", 1.10, n, 3),
        "B30": recording("B30", 1.30, n, 4),
    }


RULE = adaptive.Rule(0.05, 0.05, METRICS, compare.DIRECTION, budget_s=60.0, max_repetitions=16)


def test_replayed_gate_runs_follow_the_rule_and_charge_the_recorded_wall_times():
    recorded = frames()
    trials = study.run_trials(recorded, SETTINGS, trials=6, first=5, rule=RULE, fixed_overhead_s=14.0, seed=3)
    assert trials["independent"] is False  # every trial draws from the same recording
    outcome = trials["outcome"]
    assert set(outcome) == {"A/A", "A/B10", "A/B30"}
    for runs in outcome.values():
        assert len(runs) == 6
        for run in runs:
            reps = run["repetitions"]
            assert set(reps) == {cell.key() for cell in CELLS}
            assert all(5 <= n <= RULE.max_repetitions for n in reps.values())
            # each repetition pair costs 2 x (2.5 s + 0.5-0.7 s): what the rule was charged
            pairs = sum(reps.values())
            assert 6.0 * pairs <= run["measured_s"] <= 6.4 * pairs
            assert run["wall_s"] == pytest.approx(run["measured_s"] + 14.0)
            if run["stop"] == adaptive.STOP_BUDGET:
                assert run["underpowered_cells"]
            assert run["measured_s"] <= RULE.budget_s or pairs == 5 * len(CELLS)  # the first round always runs
    assert all(run["fired"] for run in outcome["A/B30"])  # +30 % on 3 % noise: unmissable
    assert not any(run["fired"] for run in outcome["A/A"])


def test_the_replay_takes_repetitions_in_the_trial_s_order():
    recorded = frames()
    keys = [cell.key() for cell in CELLS]
    order = {key: (list(range(15, -1, -1)), list(range(16))) for key in keys}  # base backwards, head forwards
    replay = study.Replay(recorded["A"], recorded["A2"], order, SETTINGS, METRICS)
    replay.measure(dict.fromkeys(keys, 3))
    base, head = replay.revealed()
    assert sorted(base.loc[base["cell_key"] == keys[0], "repetition"]) == [13, 14, 15]
    assert sorted(head.loc[head["cell_key"] == keys[0], "repetition"]) == [0, 1, 2]
    replay.measure({keys[0]: 5})
    base, _ = replay.revealed()
    assert sorted(base.loc[base["cell_key"] == keys[0], "repetition"]) == [11, 12, 13, 14, 15]
    assert len(base[base["cell_key"] == keys[1]]) == 3
    assert replay.pairs == 8
    noise = {c.key: c for c in replay.noise()}
    assert noise[keys[0]].attempted == 5 and noise[keys[0]].metrics["server_cpu_us_per_rpc"].n_base == 5


def test_the_first_round_is_charged_the_setup_as_regress_charges_it():
    recorded = frames()
    keys = [cell.key() for cell in CELLS]
    order = {key: (list(range(16)), list(range(16))) for key in keys}
    replay = study.Replay(recorded["A"], recorded["A2"], order, SETTINGS, METRICS, setup_s=18.0)
    replay.measure(dict.fromkeys(keys, 5))
    pairs_s = replay.spent_s - 18.0
    assert 6.0 * 10 <= pairs_s <= 6.4 * 10  # 10 pairs of 2 x (2.5 s + 0.5-0.7 s), plus the setup once
    replay.measure(dict.fromkeys(keys, 6))
    assert 6.0 * 12 <= replay.spent_s - 18.0 <= 6.4 * 12  # not charged again in later rounds
    trials = study.run_trials(
        recorded, SETTINGS, trials=2, first=5, rule=RULE, fixed_overhead_s=0.0, seed=3, setup_s=30
    )
    for run in trials["outcome"]["A/A"]:
        assert run["measured_s"] >= 30 + 6.0 * sum(run["repetitions"].values())


def test_a_recording_shorter_than_the_cap_is_refused():
    with pytest.raises(SystemExit, match="--max-repetitions"):
        study.run_trials(frames(n=10), SETTINGS, trials=1, first=5, rule=RULE, fixed_overhead_s=0.0, seed=1)


def test_the_report_names_rates_overlap_noise_and_walls():
    recorded = frames()
    trials = study.run_trials(recorded, SETTINGS, trials=4, first=5, rule=RULE, fixed_overhead_s=14.0, seed=3)
    meta = {
        "spec": "synthetic",
        "k": 5,
        "series": {"B10": 0.10, "B30": 0.30},
        "calibration_repetitions": 3,
        "injection": {
            name: {c.key(): {"baseline_us_per_rpc": 200.0, "inject_us": 20} for c in CELLS} for name in ("B10", "B30")
        },
        "settings": SETTINGS,
        "seed": 3,
        "fixed_overhead_s": 14.0,
        "recorded_at": "2026-12-01T00:00:00+00:00",
        "recording_s": 600.0,
        "environment": {"cpu_model": "synthetic", "cores": 2, "kernel": "6.x"},
        "cpu_latency_start": "no request (2000000000)",
        "cpu_latency_end": "no request (2000000000)",
        "recording_machine": "cpuidle driver haltpoll; CPU-latency hold effective request 0 us",
    }
    text = study.report(meta, recorded, trials, RULE, first=5)
    assert "| A/A (same code): false alarm | 4 | 0 | **0%** |" in text
    assert "A/B (server 10% slower): detection" in text and "A/B (server 30% slower): detection" in text
    assert "**overlap**" in text and "CPU-latency hold" in text and "no request (2000000000)" in text
    assert "| cell | A/A server CPU/RPC | A/A trials the cell fired in |" in text  # which cells caught it
    assert "| cell | CV rps | CV server_cpu_us_per_rpc |" in text


def test_the_cpu_latency_device_is_read_as_a_native_int(tmp_path, monkeypatch):
    device = tmp_path / "cpu_dma_latency"
    monkeypatch.setattr(study, "CPU_LATENCY_DEVICE", device)
    assert study.latency_state() == "no /dev/cpu_dma_latency"
    device.write_bytes((2_000_000_000).to_bytes(4, sys.byteorder))
    assert study.cpu_latency_request_us() is None and study.latency_state() == "no request (2000000000)"
    device.write_bytes((0).to_bytes(4, sys.byteorder))
    assert study.cpu_latency_request_us() == 0 and study.latency_state() == "held at 0 us"


def test_gate_study_reuse_of_the_study_before_the_adaptive_gate_without_its_recording_is_one_line_exit_2(capsys):
    # results/gate-study-2026-11-25 commits the study and its trials, not the 1,800 recorded repetitions
    committed = REPO / "results" / "gate-study-2026-11-25"
    assert json.loads((committed / "study.json").read_text())["k"] == 5
    assert study.main(["--reuse", "--out", str(committed)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "A/manifest.json: not found" in err


@pytest.mark.slow
def test_the_study_runs_end_to_end_on_a_tiny_recording(tmp_path):
    """One cell, 0.3 s windows, 6 repetitions per series: calibration, recording of A, A', B5, B10 interleaved,
    replayed adaptive gate runs, the report; then --reuse with another threshold, without measuring."""
    out = tmp_path / "study"
    args = ["--filter", "impl=sync,rpc=unary,compression=none", "--duration", "0.3", "--repetitions", "4"]
    args += ["--max-repetitions", "6", "--recorded", "6", "--trials", "3", "--calibration-repetitions", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.gate.study", *args, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("A", "A2", "B5", "B10"):
        df = results.load(out / name)
        assert len(df) == 6 and not df["failed"].any()
        manifest = results.read_manifest(out / name)
        assert manifest.gate_study.series == name
        assert (manifest.gate_study.injection is None) == (name in study.SAME_CODE)
    injected = {
        name: next(iter(results.read_manifest(out / name).gate_study.injection.values())).inject_us
        for name in ("B5", "B10")
    }
    assert injected["B10"] == pytest.approx(2 * injected["B5"], abs=1)
    meta = json.loads((out / study.STUDY_JSON).read_text())
    assert meta["series"] == {"B5": 0.05, "B10": 0.1} and "cpu_latency_start" in meta
    report = (out / study.REPORT).read_text()
    assert "A/B (server 10% slower): detection" in report and "A/B (server 5% slower): detection" in report
    again = subprocess.run(
        [sys.executable, "-m", "bench.gate.study", "--reuse", "--out", str(out), "--threshold", "0.5"]
        + ["--max-repetitions", "6", "--repetitions", "4", "--trials", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "threshold ±50%" in (out / study.REPORT).read_text()
