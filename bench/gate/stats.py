"""The statistics of the regression gate: is a difference between two small samples real, and how large?

Statistics: Mann-Whitney U test, Hodges-Lehmann ratio, Moses confidence interval
--------------------------------------------------------------------------------
Each side is a handful of repetitions (the CI spec has 5). Per cell and metric:

* **test**: the two-sided Mann-Whitney U (Wilcoxon rank-sum) test with its exact
  null distribution (computed by counting rank sums, no approximation for the
  sample sizes the lab uses; a normal approximation beyond 10,000 pairs). It
  only assumes that, without a change, the repetitions of both sides are
  exchangeable, which interleaved or same-machine runs are built to make true.
  It is what benchstat uses, so the verdicts read the same way.
* **ratio**: the Hodges-Lehmann estimate on the log scale, i.e. the median of
  all n x m ratios head_j / base_i. Logs turn "head is 10 % slower" into a
  shift, which is the model the interval needs, and make the result symmetric
  (x2 and x0.5 are equally far from 1).
* **interval**: the Moses distribution-free interval for that shift: the k-th
  smallest and k-th largest of the n x m log-ratios, k taken from the same exact
  U distribution. Its coverage is at least the nominal level for any continuous
  distribution (96.8 % for 5 + 5 at alpha 0.05), and it is the inversion of the
  test: with no ties, "p < alpha" and "the interval excludes 1" are the same event.

Why not a bootstrap over repetitions: with 5 repetitions a resampled median can
take only a few distinct values, the percentile interval is too narrow (it
under-covers badly below ~10 samples), and the result depends on a seed. The
rank method is exact at these sizes, deterministic, and needs only numpy: scipy
would add a large pinned dependency for ``mannwhitneyu`` alone, and has no Moses
interval (tests/test_compare.py checks the p-values against brute-force
enumeration instead).

Consequence worth knowing: with n + m repetitions the smallest possible p-value
is 2 / C(n+m, n); with 3 + 3 that is 0.1, so fewer than 4 repetitions per side can
never show a significant change at alpha 0.05 (the output says so).

Samples that are zero or negative (e.g. ``errors``) cannot be compared as
ratios; for those the shift and its interval are computed on the raw values and
shown relative to the base median.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

DEFAULT_ALPHA = 0.05
METHOD = "Mann-Whitney U (exact), Hodges-Lehmann ratio, Moses CI"
_EXACT_PAIRS_LIMIT = 10_000  # n*m above this: normal approximation (the lab's runs are far below)
MIN_SAMPLES = 2  # per side, to compute anything at all


@functools.lru_cache(maxsize=256)
def u_distribution(n: int, m: int) -> np.ndarray:
    """P(U = u) for u = 0 .. n*m under the null hypothesis (no ties).

    U counts the (base, head) pairs with head > base. Counting the ways to pick n of
    the n+m ranks with each rank sum gives the exact distribution.
    """
    total = n + m
    max_sum = sum(range(m + 1, total + 1))
    ways = np.zeros((n + 1, max_sum + 1))
    ways[0, 0] = 1.0
    for rank in range(1, total + 1):
        # 0/1 knapsack over ranks; the right-hand side is evaluated before the update.
        ways[1:, rank:] += ways[:-1, : max_sum + 1 - rank].copy()
    offset = n * (n + 1) // 2
    counts = ways[n, offset : offset + n * m + 1]
    return counts / counts.sum()


def u_statistic(base: np.ndarray, head: np.ndarray) -> float:
    """Pairs with head > base, ties counting one half."""
    greater = (head[None, :] > base[:, None]).sum()
    ties = (head[None, :] == base[:, None]).sum()
    return float(greater + 0.5 * ties)


def _normal_sd(n: int, m: int) -> float:
    return math.sqrt(n * m * (n + m + 1) / 12.0)


def p_value(base: np.ndarray, head: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (exact null distribution; normal approximation for huge samples)."""
    n, m = len(base), len(head)
    u = u_statistic(base, head)
    if n * m > _EXACT_PAIRS_LIMIT:
        z = (abs(u - n * m / 2.0) - 0.5) / _normal_sd(n, m)
        return min(1.0, 2.0 * (1.0 - NormalDist().cdf(max(z, 0.0))))
    dist = u_distribution(n, m)
    below = dist[: math.floor(u) + 1].sum()  # P(U0 <= u)
    above = dist[math.ceil(u) :].sum()  # P(U0 >= u)
    return float(min(1.0, 2.0 * min(below, above)))


def critical_count(n: int, m: int, alpha: float) -> int:
    """The largest c with 2 P(U0 <= c) < alpha (-1 when even U = 0 is not significant)."""
    if n * m > _EXACT_PAIRS_LIMIT:
        z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
        return max(-1, math.floor(n * m / 2.0 - z * _normal_sd(n, m) - 0.5))
    cdf = np.cumsum(u_distribution(n, m))
    below = np.nonzero(2.0 * cdf < alpha)[0]
    return int(below[-1]) if len(below) else -1


def min_p_value(n: int, m: int) -> float:
    """The smallest two-sided p-value n + m samples can produce (complete separation)."""
    return float(min(1.0, 2.0 * u_distribution(n, m)[0])) if n * m <= _EXACT_PAIRS_LIMIT else 0.0


@dataclass(frozen=True)
class Estimate:
    """One metric of one cell, base vs head."""

    n_base: int
    n_head: int
    base_median: float
    head_median: float
    ratio: float  # Hodges-Lehmann estimate of head / base
    ci_low: float  # confidence interval of the ratio (NaN when n is too small to have one)
    ci_high: float
    p_value: float
    significant: bool  # p < alpha and the interval excludes 1
    note: str = ""


def estimate(base: Sequence[float], head: Sequence[float], alpha: float = DEFAULT_ALPHA) -> Estimate:
    """Compare two samples (NaNs dropped): medians, p-value, Hodges-Lehmann ratio with its Moses interval."""
    b = np.asarray(base, dtype=float)
    h = np.asarray(head, dtype=float)
    b, h = b[np.isfinite(b)], h[np.isfinite(h)]
    n, m = len(b), len(h)
    nan = float("nan")
    if n < MIN_SAMPLES or m < MIN_SAMPLES:
        med_b = float(np.median(b)) if n else nan
        med_h = float(np.median(h)) if m else nan
        return Estimate(n, m, med_b, med_h, nan, nan, nan, nan, False, f"too few samples ({n}+{m})")
    med_b, med_h = float(np.median(b)), float(np.median(h))
    p = p_value(b, h)
    c = critical_count(n, m, alpha)
    positive = bool((b > 0).all() and (h > 0).all())
    diffs = np.sort(((np.log(h)[None, :] - np.log(b)[:, None]) if positive else (h[None, :] - b[:, None])).ravel())
    shift = float(np.median(diffs))
    lo, hi = (float(diffs[c]), float(diffs[len(diffs) - 1 - c])) if c >= 0 else (-math.inf, math.inf)
    notes = []
    if c < 0:
        notes.append(f"n={n}+{m} cannot reach p<{alpha:g} (min p {min_p_value(n, m):.3f})")
    significant = bool(p < alpha and (lo > 0 or hi < 0))
    if positive:
        ratio, ci_low, ci_high = math.exp(shift), math.exp(lo), math.exp(hi)
    elif med_b != 0:
        scale = abs(med_b)
        ratio, ci_low, ci_high = 1 + shift / scale, 1 + lo / scale, 1 + hi / scale
        notes.append("zeros present: shift computed on raw values, shown relative to the base median")
    else:
        ratio = ci_low = ci_high = nan
        notes.append("base median is 0: no ratio")
    if not math.isfinite(ci_low) or not math.isfinite(ci_high):
        ci_low = ci_high = nan
    return Estimate(n, m, med_b, med_h, ratio, ci_low, ci_high, p, significant, "; ".join(notes))


def verdict(est: Estimate, direction: int, threshold: float) -> str:
    """'better' / 'worse' (direction known) or 'changed' (no direction), else '~'; 'n/a' without samples."""
    if est.n_base < MIN_SAMPLES or est.n_head < MIN_SAMPLES:
        return "n/a"
    if not est.significant:
        return "~"
    if math.isfinite(est.ratio):
        beyond = abs(est.ratio - 1.0) > threshold
        up = est.ratio > 1.0
    else:  # base median 0: any significant change is beyond any threshold
        beyond, up = True, est.head_median > est.base_median
    if not beyond:
        return "~"
    if direction == 0:
        return "changed"
    return "better" if up == (direction > 0) else "worse"
