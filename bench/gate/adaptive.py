"""The adaptive gate: how many repetitions a comparison gets, decided from the measured noise alone.

`grpclab regress` (and the gate study's replay of it) measures in rounds:

1. **Round 1**: the spec's repetitions of every cell, on both sides, interleaved as always.
2. After each round, for every cell and gated metric, the rule looks at how far apart the repetitions
   **of the same side** are (stats.spread: base with base, head with head) and how many there are, and computes the
   detectable change (stats: the change caught with 80 % power at the run's alpha). A cell is
   **underpowered** while any of its gated metrics could not have detected a change of the threshold
   (detectable change > threshold).
3. It stops when no cell is underpowered, when the time budget is spent (the next repetition pair
   would not fit), or when every underpowered cell is at ``max_repetitions``. Otherwise the next
   round measures the underpowered cells only, each up to the repetitions its measured spread says
   it needs (the smallest n with a detectable change <= threshold), at most ``growth`` times its
   present count, at most ``max_repetitions``, and all of it fitted into the budget that is left
   (repetitions handed out one per cell in turn, most underpowered first).
4. Then it **decides once**: the ordinary comparison of all repetitions (bench.gate.compare).

Why the decision stays valid
----------------------------
The data decide how long to measure, so the final test is not a fixed-n test. Two things keep it
honest. The stopping rule never sees the base/head difference: shifting either side leaves every
number it uses unchanged, so a head that looks worse is not measured more (or less) than one that
looks fine; the rule is blind to the very thing the test asks about. And there is one decision, at
the end, never a look at the p-value between rounds (peeking at p-values and stopping when they
look good is what inflates false alarms). Some dependence remains: under no change, a sample whose
sides happen to be tight is also one whose sides separate more easily, and the rule stops early on
tight sides. tests/test_adaptive.py measures how much that matters, running many synthetic A/A
sequences (no change, normal noise from 1 % to 15 % CV) through this rule and the real decision
code: the gate's false-alarm rate (``worse`` verdicts) per test stays far below alpha (under 1 % at
alpha 0.05 and a 5 % threshold: when the rule stops, the noise is small next to the threshold, and a
false alarm must also be estimated beyond it), and the rate of p < alpha in either direction stays
at alpha within the simulation's error (at most ~6 % at alpha 0.05 where the rule is most
selective, against 5 % for a fixed-n test; see that test for the figures).

What the rule cannot fix: a machine noisier than the budget allows. Then it stops on the budget, the
comparison marks the cells that stayed underpowered, and their ``~`` reads "cannot tell".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from . import stats

DEFAULT_BUDGET_S = 8 * 60.0  # measuring time of a gate run, both sides, all rounds
DEFAULT_MAX_REPETITIONS = 40  # per side and cell
GROWTH = 2.0  # a round at most doubles a cell's repetitions: the spread it plans with is itself uncertain

STOP_POWERED = "powered"  # every gated cell x metric can detect a change of the threshold
STOP_BUDGET = "budget"  # the next repetition pair would not fit in the time budget
STOP_CAP = "max-repetitions"  # every underpowered cell is at max_repetitions
STOP_NO_DATA = "no-usable-data"  # the underpowered cells have no spread to plan with (failed, saturated)


@dataclass(frozen=True)
class Rule:
    """The stopping rule's settings."""

    threshold: float
    alpha: float
    metrics: tuple[str, ...]
    directions: Mapping[str, int]  # metric -> +1 higher is better, -1 lower is better, 0 none
    budget_s: float = DEFAULT_BUDGET_S
    max_repetitions: int = DEFAULT_MAX_REPETITIONS
    growth: float = GROWTH


@dataclass(frozen=True)
class MetricNoise:
    """What the rule knows of one cell x metric: its spread and sample sizes, not the difference."""

    spread: float  # stats.spread: the noise as an SD, from within-side differences only
    log_scale: bool
    n_base: int  # usable repetitions
    n_head: int


@dataclass(frozen=True)
class CellNoise:
    key: str
    attempted: int  # repetitions measured per side (failed and excluded ones too)
    metrics: Mapping[str, MetricNoise]


def metric_noise(base: np.ndarray, head: np.ndarray) -> MetricNoise:
    """The spread of one cell x metric from each side's usable values (NaNs dropped): stats.spread."""
    b, h = np.asarray(base, float), np.asarray(head, float)
    b, h = b[np.isfinite(b)], h[np.isfinite(h)]
    spread, log_scale = stats.spread(b, h)
    return MetricNoise(spread, log_scale, len(b), len(h))


def detectable(noise: MetricNoise, alpha: float, direction: int, n_base: int = 0, n_head: int = 0) -> float:
    """Detectable change with the spread of ``noise`` and n_base + n_head repetitions (default: its own)."""
    n, m = n_base or noise.n_base, n_head or noise.n_head
    shift = stats.detectable_shift(noise.spread, n, m, alpha)
    return stats.detectable_change(shift, direction, noise.log_scale) if math.isfinite(shift) else math.inf


def cell_detectable(cell: CellNoise, rule: Rule) -> dict[str, float]:
    return {m: detectable(cell.metrics[m], rule.alpha, rule.directions[m]) for m in rule.metrics}


def underpowered(cell: CellNoise, rule: Rule) -> bool:
    return any(d > rule.threshold for d in cell_detectable(cell, rule).values())


def needed_repetitions(cell: CellNoise, rule: Rule) -> int | None:
    """Repetitions per side (attempted) at which every gated metric's detectable change would be under
    the threshold if the spread stays as measured; None when not even max_repetitions would do."""
    lost = cell.attempted - min(min(n.n_base, n.n_head) for n in cell.metrics.values())  # failed/excluded
    for usable in range(max(stats.MIN_SAMPLES, cell.attempted - lost), rule.max_repetitions - lost + 1):
        if all(
            detectable(cell.metrics[m], rule.alpha, rule.directions[m], usable, usable) <= rule.threshold
            for m in rule.metrics
        ):
            return usable + lost
    return None


@dataclass
class Decision:
    """What the rule says after a round: stop (and why) or the repetitions each cell should reach."""

    stop: str | None
    targets: dict[str, int] = field(default_factory=dict)  # cell key -> repetitions per side to reach
    underpowered: list[str] = field(default_factory=list)


def next_round(cells: Sequence[CellNoise], rule: Rule, remaining_s: float, seconds_per_pair: float) -> Decision:
    """The next round (or the stop) from the cells' noise, the budget left and the cost of one pair."""
    weak = [c for c in cells if underpowered(c, rule)]
    keys = [c.key for c in weak]
    if not weak:
        return Decision(STOP_POWERED)
    growable = [c for c in weak if c.attempted < rule.max_repetitions]
    if not growable:
        return Decision(STOP_CAP, underpowered=keys)
    # A cell whose repetitions fail or saturate the generator does so again: more of them is no data.
    growable = [c for c in growable if all(math.isfinite(n.spread) for n in c.metrics.values())]
    if not growable:
        return Decision(STOP_NO_DATA, underpowered=keys)
    if math.isinf(remaining_s) and remaining_s > 0:
        affordable = sum(rule.max_repetitions - c.attempted for c in growable)
    else:
        affordable = int(remaining_s // seconds_per_pair) if seconds_per_pair > 0 else 0
    if affordable < 1:
        return Decision(STOP_BUDGET, underpowered=keys)
    wanted: dict[str, int] = {}
    for c in growable:
        need = needed_repetitions(c, rule) or rule.max_repetitions
        wanted[c.key] = max(c.attempted + 1, min(need, math.ceil(c.attempted * rule.growth), rule.max_repetitions))
    # Hand out what the budget affords one repetition at a time, most underpowered cell first, in turns.
    worst_first = sorted(growable, key=lambda c: -max(cell_detectable(c, rule).values()))
    targets = {c.key: c.attempted for c in worst_first}
    while affordable > 0 and any(targets[k] < wanted[k] for k in targets):
        for c in worst_first:
            if affordable > 0 and targets[c.key] < wanted[c.key]:
                targets[c.key] += 1
                affordable -= 1
    attempted = {c.key: c.attempted for c in growable}
    return Decision(None, {k: v for k, v in targets.items() if v > attempted[k]}, keys)


@dataclass
class Outcome:
    """How an adaptive run went: for the comparison's output and the manifests."""

    rounds: int
    stop: str
    repetitions: dict[str, int]  # cell key -> repetitions per side measured
    underpowered: list[str]  # cells still underpowered at the stop
    measured_s: float
    budget_s: float
    max_repetitions: int

    def to_json(self) -> dict:
        return {
            "rounds": self.rounds,
            "stop": self.stop,
            "repetitions": self.repetitions,
            "underpowered_cells": self.underpowered,
            "measured_s": round(self.measured_s, 1),
            "budget_s": self.budget_s,
            "max_repetitions": self.max_repetitions,
        }


class Measurer(Protocol):
    """What the loop drives: the real gate (regress), the study's replay of a recording, or a simulation."""

    def measure(self, targets: Mapping[str, int]) -> None: ...  # bring each cell to that many repetitions per side

    def noise(self) -> list[CellNoise]: ...  # every cell's spread so far (never the base/head difference)

    def elapsed_s(self) -> float: ...  # measuring time spent so far

    def seconds_per_pair(self) -> float: ...  # what one more repetition on both sides costs


def run(measurer: Measurer, rule: Rule, first: Mapping[str, int]) -> Outcome:
    """Measure round 1 (``first``: repetitions per cell), then rounds as the rule says; the decision is the caller's."""
    measurer.measure(first)
    rounds = 1
    while True:
        cells = measurer.noise()
        decision = next_round(cells, rule, rule.budget_s - measurer.elapsed_s(), measurer.seconds_per_pair())
        if decision.stop is not None:
            return Outcome(
                rounds=rounds,
                stop=decision.stop,
                repetitions={c.key: c.attempted for c in cells},
                underpowered=decision.underpowered,
                measured_s=measurer.elapsed_s(),
                budget_s=rule.budget_s,
                max_repetitions=rule.max_repetitions,
            )
        measurer.measure(decision.targets)
        rounds += 1
