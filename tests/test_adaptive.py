"""The adaptive gate's stopping rule (bench.gate.adaptive), run on synthetic sequences: no process started.

The evidence that sequential sampling keeps the gate honest: many synthetic A/A sequences (no change)
go through the real rule (adaptive.run, next_round) and the real decision (stats.estimate and
stats.verdict, what compare_frames applies per cell x metric), and the false-alarm rate per test
is counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from bench.analysis import schema
from bench.gate import adaptive, compare, stats
from bench.spec import DEFAULTS, Cell

METRIC = "server_cpu_us_per_rpc"
RULE = adaptive.Rule(
    threshold=0.05,
    alpha=0.05,
    metrics=(METRIC,),
    directions={METRIC: -1},
    budget_s=math.inf,
    max_repetitions=40,
)
PAIR_S = 6.2  # one repetition on both sides of the CI spec, harness included


class Synthetic:
    """A measurer over pre-drawn log-normal sequences: 'measuring' reveals the next values of a cell."""

    def __init__(self, sds: Mapping[str, float], rng: np.random.Generator, shift: float = 0.0, cap: int = 40):
        self.values = {
            key: (np.exp(rng.normal(0.0, sd, cap)), np.exp(rng.normal(shift, sd, cap))) for key, sd in sds.items()
        }
        self.count = dict.fromkeys(sds, 0)
        self.rounds: list[dict[str, int]] = []

    def measure(self, targets: Mapping[str, int]) -> None:
        self.rounds.append(dict(targets))
        for key, target in targets.items():
            self.count[key] = max(self.count[key], target)

    def seen(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        base, head = self.values[key]
        return base[: self.count[key]], head[: self.count[key]]

    def noise(self) -> list[adaptive.CellNoise]:
        return [
            adaptive.CellNoise(key, self.count[key], {METRIC: adaptive.metric_noise(*self.seen(key))})
            for key in self.values
        ]

    def elapsed_s(self) -> float:
        return sum(self.count.values()) * PAIR_S

    def seconds_per_pair(self) -> float:
        return PAIR_S


def gate_runs(sds: Mapping[str, float], runs: int, seed: int, rule: adaptive.Rule = RULE, shift: float = 0.0):
    """(verdicts, significant flags, repetitions) over ``runs`` adaptive gate runs, one entry per cell and run."""
    rng = np.random.default_rng(seed)
    verdicts, significant, repetitions = [], [], []
    for _ in range(runs):
        measurer = Synthetic(sds, rng, shift, rule.max_repetitions)
        adaptive.run(measurer, rule, dict.fromkeys(sds, 5))
        for key in sds:
            est = stats.estimate(*measurer.seen(key), rule.alpha)
            verdicts.append(stats.verdict(est, -1, rule.threshold))
            significant.append(est.significant)
            repetitions.append(measurer.count[key])
    return np.array(verdicts), np.array(significant), np.array(repetitions)


RUNS = 1500  # per noise level; the binomial SE of a 5 % rate is then 0.56 %


@pytest.mark.parametrize("sd", [0.01, 0.03, 0.045, 0.06, 0.09, 0.15])
def test_aa_false_alarms_stay_under_alpha_with_the_adaptive_rule(sd):
    """One cell, its own spread deciding when to stop (the most selective case), RUNS A/A runs per noise
    level: from stopping at once (1 % noise) through stopping in between to always at the cap (15 %).

    Measured with 4,000 runs per level (seeds +17): the gate's false alarms ('worse') 0 %, 0.05 %,
    0.35 %, 0.32 %, 0.9 %, 2.75 %; p < alpha either way 3.2 %, 5.0 %, 5.5 %, 5.5 %, 4.9 %, 5.2 %, where a
    fixed-n test is at 3.2 % (5 + 5) to 5.0 % (40 + 40). At the cap the rule is a fixed-n test."""
    verdicts, significant, _ = gate_runs({"cell": sd}, runs=RUNS, seed=int(sd * 1000))
    slack = 3 * math.sqrt(RULE.alpha * (1 - RULE.alpha) / RUNS)  # three binomial SEs of the simulation
    # The gate's false alarm, per test: significant and estimated beyond the threshold, for the worse.
    # A two-sided test at alpha puts at most alpha / 2 on that side.
    assert np.mean(verdicts == "worse") <= RULE.alpha / 2 + slack / 2
    # Either direction (worse or better)
    assert np.mean(verdicts != "~") <= RULE.alpha + slack
    # The test alone (p < alpha either way, ignoring the threshold): still at alpha within the simulation's
    # error; the selection of the stop costs about half a point where the rule is most selective.
    assert np.mean(significant) <= RULE.alpha + slack


def test_the_rule_measures_more_where_the_noise_is_higher():
    _, _, quiet = gate_runs({"cell": 0.01}, runs=100, seed=1)
    _, _, middle = gate_runs({"cell": 0.03}, runs=100, seed=2)
    _, _, loud = gate_runs({"cell": 0.15}, runs=100, seed=3)
    assert np.mean(quiet == 5) >= 0.95  # 1 % noise: 5 repetitions already detect 5 %
    assert 5 < np.median(middle) < RULE.max_repetitions
    assert (loud == RULE.max_repetitions).all()


def test_several_cells_each_stop_when_their_own_noise_allows():
    sds = {"quiet": 0.01, "middle": 0.025, "loud": 0.05}
    verdicts, _, repetitions = gate_runs(sds, runs=300, seed=4)
    per_cell = repetitions.reshape(-1, 3)
    assert np.mean(per_cell[:, 0] == 5) >= 0.95
    assert np.median(per_cell[:, 1]) < np.median(per_cell[:, 2])
    assert np.mean(verdicts == "worse") <= RULE.alpha / 2


def test_a_10_percent_slowdown_is_caught_by_the_adaptive_gate():
    """Power, not just validity: a true +10 % on 4 % noise (about this machine's robust spread) is caught."""
    verdicts, _, repetitions = gate_runs({"cell": 0.04}, runs=400, seed=5, shift=math.log(1.10))
    assert np.mean(verdicts == "worse") >= 0.90
    assert np.median(repetitions) < RULE.max_repetitions


def test_the_budget_stops_the_rule_and_names_the_underpowered_cells():
    rule = adaptive.Rule(0.05, 0.05, (METRIC,), {METRIC: -1}, budget_s=20 * PAIR_S, max_repetitions=40)
    measurer = Synthetic({"a": 0.10, "b": 0.10}, np.random.default_rng(6))
    outcome = adaptive.run(measurer, rule, {"a": 5, "b": 5})
    assert outcome.stop == adaptive.STOP_BUDGET
    assert sorted(outcome.underpowered) == ["a", "b"]
    assert outcome.measured_s <= rule.budget_s
    assert outcome.repetitions == measurer.count and sum(measurer.count.values()) == 20
    assert abs(measurer.count["a"] - measurer.count["b"]) <= 1  # the budget is shared in turns


def test_rounds_grow_at_most_by_the_growth_factor_and_stop_at_the_cap():
    rule = adaptive.Rule(0.05, 0.05, (METRIC,), {METRIC: -1}, budget_s=math.inf, max_repetitions=12)
    measurer = Synthetic({"a": 0.2}, np.random.default_rng(7), cap=12)
    outcome = adaptive.run(measurer, rule, {"a": 5})
    assert [r["a"] for r in measurer.rounds] == [5, 10, 12]
    assert outcome.stop == adaptive.STOP_CAP and outcome.underpowered == ["a"] and outcome.rounds == 3


def test_the_rule_never_sees_the_difference_between_the_sides():
    """The same noise with head shifted by any factor gives the same rounds: the stop depends on the spread."""
    rounds = []
    for factor in (1.0, 1.3, 0.6):
        measurer = Synthetic({"a": 0.04, "b": 0.02}, np.random.default_rng(8))
        measurer.values = {k: (b, h * factor) for k, (b, h) in measurer.values.items()}
        adaptive.run(measurer, RULE, {"a": 5, "b": 5})
        rounds.append(measurer.rounds)
    assert rounds[0] == rounds[1] == rounds[2]


def test_cells_whose_repetitions_all_fail_are_not_measured_again():
    noise = adaptive.CellNoise("dead", 5, {METRIC: adaptive.MetricNoise(float("nan"), True, 0, 0)})
    decision = adaptive.next_round([noise], RULE, remaining_s=1e6, seconds_per_pair=PAIR_S)
    assert decision.stop == adaptive.STOP_NO_DATA and decision.underpowered == ["dead"]


def test_the_decision_code_is_compare_s():
    """The simulation decides with stats.estimate + stats.verdict; compare_frames gives the same verdicts."""
    rng = np.random.default_rng(9)
    cell = Cell(**{**DEFAULTS, "payload_size": 1024, "concurrency": 1, "stream_messages": 1})
    for _ in range(20):
        measurer = Synthetic({cell.key(): 0.04}, rng, shift=math.log(1.06))
        adaptive.run(measurer, RULE, {cell.key(): 5})
        base, head = measurer.seen(cell.key())
        frames = [_frame(cell, values) for values in (base, head)]
        row = compare.compare_frames(*frames, [METRIC], RULE.threshold, RULE.alpha).rows.iloc[0]
        assert row["verdict"] == stats.verdict(stats.estimate(base, head, RULE.alpha), -1, RULE.threshold)


def _frame(cell: Cell, values: np.ndarray) -> pd.DataFrame:
    rows = []
    for rep, value in enumerate(values):
        row = schema.empty_row()
        row.update(cell.to_dict(), cell_key=cell.key(), repetition=rep, order=rep, run_id="synthetic")
        row[METRIC] = float(value)
        rows.append(row)
    return pd.DataFrame(rows)
