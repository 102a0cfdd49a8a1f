"""Spread of repetitions: the coefficient of variation, and the ``unstable`` rule (one place for both).

A cell is **unstable** in a metric when the coefficient of variation (sample standard deviation / mean) of its
successful repetitions exceeds ``max(NOISE_FACTOR x the machine's noise for that metric, MIN_CV)``:

* ``MIN_CV`` = 10 % is pyperf's rule ("the benchmark seems to be unstable: the standard deviation is more than
  10 % of the mean"), the floor of the limit;
* the machine's noise is the calibration's CV of that metric over short windows of one fixed cell, measured at the
  start of the same run (bench.run.calibration). A cell that spreads more than twice what the machine does to a
  fixed cell has something of its own going on (a bimodal server, a generator at its limit, a neighbour that came
  and went); on a noisy machine the limit rises with the noise, so the flag keeps meaning "more than the machine".

Only the metrics the calibration measures are judged (``METRICS``), and only with at least ``MIN_REPETITIONS``
finite values. It is computed when results are read (the summary, the report, ``grpclab compare``), never stored
in a row, so a run measured before the rule existed gets it too, and changing the rule changes every view at once.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

METRICS = ("rps", "lat_p50_ms", "server_cpu_us_per_rpc")  # the calibration's noise metrics
MIN_CV = 0.10  # pyperf: a standard deviation above 10 % of the mean is unstable
NOISE_FACTOR = 2.0
MIN_REPETITIONS = 2


def cv(values: Iterable[float]) -> float:
    """Sample standard deviation / mean of the finite values; NaN with fewer than two, or a mean of 0."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(finite) < 2:
        return math.nan
    mean = statistics.fmean(finite)
    return statistics.stdev(finite) / abs(mean) if mean else math.nan


def limit(metric: str, noise_cv: Mapping[str, float] | None = None) -> float:
    """The CV above which ``metric`` is unstable, given the machine's noise (None or missing: MIN_CV alone)."""
    noise = (noise_cv or {}).get(metric)
    if noise is None or not math.isfinite(noise):
        return MIN_CV
    return max(NOISE_FACTOR * noise, MIN_CV)


@dataclass(frozen=True)
class Spread:
    """An unstable metric of one cell: its CV over repetitions and the limit it exceeded."""

    metric: str
    cv: float
    limit: float

    def text(self) -> str:
        return f"{self.metric} CV {self.cv:.0%} > {self.limit:.0%}"


def unstable(samples: Mapping[str, Iterable[float]], noise_cv: Mapping[str, float] | None = None) -> list[Spread]:
    """The unstable metrics of one cell, from its repetitions' values per metric (the rule in the docstring)."""
    found = []
    for metric in METRICS:
        values = [float(v) for v in samples.get(metric, ()) if v is not None and math.isfinite(float(v))]
        if len(values) < MIN_REPETITIONS:
            continue
        spread, bound = cv(values), limit(metric, noise_cv)
        if math.isfinite(spread) and spread > bound:
            found.append(Spread(metric, spread, bound))
    return found


def unstable_cells(df: pd.DataFrame, noise_cv: Mapping[str, float] | None = None) -> dict[str, list[Spread]]:
    """cell_key -> its unstable metrics, over the successful repetitions of a run's tidy table (cells with none
    are left out)."""
    ok = df[~df["failed"].astype(bool)]
    out = {}
    for key, rows in ok.groupby("cell_key", observed=True, sort=False):
        found = unstable({m: rows[m].to_numpy(dtype=float) for m in METRICS if m in rows}, noise_cv)
        if found:
            out[str(key)] = found
    return out
