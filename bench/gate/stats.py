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

Power: the smallest change the data could have detected
-------------------------------------------------------
A ``~`` says "no change shown", which is worth something only if a change that
matters would have shown. So every comparison also reports its **detectable
change**, defined as:

    the smallest true change (a shift delta of the log metric, i.e. a ratio
    exp(delta)) that the test above, two-sided at the run's alpha with these n
    and m repetitions, declares significant in the change's direction with
    probability POWER (80 %), when each repetition's log value carries normal
    noise with the spread measured in this comparison.

Its two parts:

* **spread** (:func:`spread`): how far apart two repetitions of the *same* side
  are. The Mann-Whitney test compares values pairwise across the sides, and
  without a change a base-head difference is distributed like a difference
  within one side; so the spread is taken from exactly those: the median of all
  within-side absolute differences of the log values (base with base, head with
  head, pooled; the Shamos scale estimator), divided by what that median is for
  unit normal noise at these n and m (so it reads as a standard deviation; a
  seeded Monte Carlo factor, about 0.95-1.0). Each side is compared only with
  itself, so shifting either side leaves it unchanged: it measures the noise,
  never the base/head difference, which is what lets the adaptive gate stop on
  it (bench.gate.adaptive). It is robust (29 % breakdown) where a standard
  deviation is not: this machine's noise comes in episodes (a repetition now and
  then costs 20-50 % more CPU per RPC), which the rank test shrugs off but which
  would inflate an SD two- to fourfold and make every run look underpowered.
  On normal noise it keeps 66-80 % of the SD's efficiency (n = 5-20).
* **the test's power curve** (:func:`detectable_shift_in_sds`): the true shift,
  in noise standard deviations, that the exact test detects with probability
  POWER. With no ties the test rejects upwards exactly when the Moses interval's
  lower end is above 0, and that end is ``delta + L``, L being the (c+1)-th
  smallest of the n x m noise differences (c = :func:`critical_count`). So the
  power at delta is P(-L < delta), and the shift with 80 % power is the 80th
  percentile of -L, computed once per (n, m, alpha) from POWER_DRAWS seeded
  draws of standard normal samples (deterministic; Monte Carlo error about +-1 %
  of power). The 50 %-power version of the same number is the median of -L,
  about the Moses interval's half-width: a change the size of the interval's
  half-width is caught only half of the time, which is why the interval alone
  understates what a run could miss. Beyond n x m = 10,000 pairs the normal
  approximation with Mann-Whitney's efficiency 3/pi against normal noise is used:
  (z(1-alpha/2) + z(POWER)) sqrt((1/n + 1/m) pi / 3).

detectable change = exp(k s) - 1 for an increase (k the shift in SDs, s the spread),
and 1 - exp(-k s) for a decrease, whichever is the metric's regression direction
(:func:`detectable_change`). A comparison is **underpowered** when that is larger
than the threshold: a change of the threshold's size could have gone unnoticed, so
its ``~`` means "cannot tell". Samples with zeros use the raw values' spread
relative to the base median.

Why 80 %: it is the conventional power of a study design, and it makes
"detectable" mean "caught four times out of five", not "caught half of the time"
(the interval's half-width). Checked by simulation in tests/test_power.py: for
normal and lognormal samples with known spread, a true change equal to the
detectable change is declared significant 80 % (+-3.5 %) of the time, and the
reported number (from each sample's own spread) averages the one the true spread
gives. The reported number is itself an estimate, so a change of the size one
particular run reports is caught 72-80 % of the time (72 % at 5 + 5, 79 % at
20 + 20: the power curve is concave there). When 10-20 % of the repetitions are
hit by +20-45 % episodes, that is 79 % at 20 + 20, ~70 % at 8-12 a side, and
43-50 % at 5 + 5: with few repetitions the robust spread describes the bulk of
the data, and a few episodes cost the rank test more than the bulk suggests.

What "detected" means in the verdict: significant **and** estimated beyond the
threshold. A true change at the detectable change is significant 80 % of the time;
it also reads ``worse`` when its estimate exceeds the threshold, which for a
detectable change well above the threshold is nearly always, and for one just at
the threshold about half of the time.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

DEFAULT_ALPHA = 0.05
POWER = 0.80  # the detectable change is the one caught with this probability
POWER_DRAWS = 4000  # seeded normal samples behind each (n, m, alpha) power number
_POWER_SEED = 20261128
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


@functools.lru_cache(maxsize=1024)
def detectable_shift_in_sds(n: int, m: int, alpha: float = DEFAULT_ALPHA, power: float = POWER) -> float:
    """The true shift, in noise standard deviations, that the exact two-sided test at ``alpha`` with
    n + m samples declares significant in its direction with probability ``power`` (normal noise).

    inf when n + m samples can never be significant at ``alpha``. See the module docstring.
    """
    c = critical_count(n, m, alpha)
    if c < 0:
        return math.inf
    if n * m > _EXACT_PAIRS_LIMIT:
        z = NormalDist().inv_cdf(1.0 - alpha / 2.0) + NormalDist().inv_cdf(power)
        return z * math.sqrt((1.0 / n + 1.0 / m) * math.pi / 3.0)
    rng = np.random.default_rng([_POWER_SEED, n, m])
    chunk = max(1, 2_000_000 // (n * m))
    lower_ends = []
    for start in range(0, POWER_DRAWS, chunk):
        size = min(chunk, POWER_DRAWS - start)
        base, head = rng.standard_normal((size, n)), rng.standard_normal((size, m))
        diffs = (head[:, None, :] - base[:, :, None]).reshape(size, n * m)
        lower_ends.append(np.partition(diffs, c, axis=1)[:, c])  # the Moses lower end without a shift
    return float(np.quantile(-np.concatenate(lower_ends), power))


def _within_side_differences(base: np.ndarray, head: np.ndarray) -> np.ndarray:
    """|x_i - x_j| for every pair within base and within head (never across the sides)."""
    parts = []
    for side in (base, head):
        i, j = np.triu_indices(len(side), 1)
        parts.append(np.abs(side[i] - side[j]))
    return np.concatenate(parts)


_ASYMPTOTIC_PAIR_MEDIAN = math.sqrt(2.0) * NormalDist().inv_cdf(0.75)  # median |X - X'| for unit normal X, X'


@functools.lru_cache(maxsize=1024)
def _unit_normal_pair_median(n: int, m: int) -> float:
    """Mean over seeded unit-normal samples of the median within-side difference at n + m: the normal scale."""
    if n * m > _EXACT_PAIRS_LIMIT:
        return _ASYMPTOTIC_PAIR_MEDIAN
    rng = np.random.default_rng([_POWER_SEED, n, m, 1])
    medians = [
        float(np.median(_within_side_differences(rng.standard_normal(n), rng.standard_normal(m))))
        for _ in range(POWER_DRAWS)
    ]
    return float(np.mean(medians))


def spread(base: Sequence[float], head: Sequence[float]) -> tuple[float, bool]:
    """(spread, on the log scale?) of two samples: the noise as a standard deviation, never the difference.

    The median of the within-side absolute differences (module docstring), scaled to read as a normal
    standard deviation. Of the log values when all are positive; otherwise of the raw values relative
    to the base median. NaN with fewer than 2 values on a side (or a base median of 0 on the raw scale).
    """
    b, h = np.asarray(base, dtype=float), np.asarray(head, dtype=float)
    b, h = b[np.isfinite(b)], h[np.isfinite(h)]
    positive = bool((b > 0).all() and (h > 0).all())
    if len(b) < MIN_SAMPLES or len(h) < MIN_SAMPLES:
        return float("nan"), positive
    scale = _unit_normal_pair_median(len(b), len(h))
    if positive:
        return float(np.median(_within_side_differences(np.log(b), np.log(h)))) / scale, True
    centre = abs(float(np.median(b)))
    if centre == 0:
        return float("nan"), False
    return float(np.median(_within_side_differences(b, h))) / scale / centre, False


def detectable_shift(spread_value: float, n: int, m: int, alpha: float = DEFAULT_ALPHA) -> float:
    """The true shift caught with POWER, on the spread's scale: inf when n + m can never be significant."""
    k = detectable_shift_in_sds(n, m, alpha) if n >= MIN_SAMPLES and m >= MIN_SAMPLES else math.inf
    if not math.isfinite(k):
        return math.inf
    if not math.isfinite(spread_value):
        return float("nan")
    return spread_value * k


def detectable_change(shift: float, direction: int, log_scale: bool = True) -> float:
    """A detectable shift as the relative change of the metric in its regression direction (0.18 = 18 %).

    On the log scale an increase of ``shift`` is exp(shift) - 1, a decrease 1 - exp(-shift); the latter
    for metrics where higher is better (their regression is a drop). Raw-scale shifts are relative already.
    """
    if not math.isfinite(shift):
        return shift
    if not log_scale:
        return shift
    return -math.expm1(-shift) if direction > 0 else math.expm1(shift)


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
    spread: float = float("nan")  # the noise as an SD of log values (raw / |base median| if not log_scale)
    detectable_shift: float = float("nan")  # true shift caught with POWER (same scale as spread); inf: none
    log_scale: bool = True

    def detectable(self, direction: int) -> float:
        """The detectable change in the metric's regression direction (module docstring)."""
        return detectable_change(self.detectable_shift, direction, self.log_scale)


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
    noise, log_scale = spread(b, h)
    shift = detectable_shift(noise, n, m, alpha)
    return Estimate(
        n, m, med_b, med_h, ratio, ci_low, ci_high, p, significant, "; ".join(notes), noise, shift, log_scale
    )


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
