"""`grpclab compare BASE_RUN HEAD_RUN`: per cell and metric, did HEAD get better, worse, or is it noise?

Cells are matched by their axis values (``cell_key``). For every common cell and
every chosen metric the comparison reports the base and head medians over the
repetitions, the ratio head/base with a 95 % confidence interval, a p-value and a
verdict in benchstat's spirit: ``better``, ``worse`` or ``~`` (no change shown).

A change counts only when it is **significant** (p < alpha and the interval
excludes 1) **and beyond the threshold** (the estimated ratio differs from 1 by
more than ``threshold``, e.g. 5 %). Direction is per metric: more RPC/s is better,
less latency and less CPU per RPC is better; metrics without a direction
(utilizations, window lengths) are reported as ``changed`` and never fail a gate.

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

Rows that failed, and rows whose load generator was saturated, are left out of
the statistics with a warning: a saturated generator measures the client, not the
server. Environments that differ where it matters (CPU model, core count, Python,
grpcio, protobuf, or the measuring settings) make the comparison meaningless and
are refused with exit code 2 unless ``--allow-env-mismatch`` is given; the
differences are printed either way.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from ..analysis import results, schema
from ..run.manifest import Manifest

DEFAULT_METRICS = ("rps", "lat_p50_ms", "lat_p99_ms", "server_cpu_us_per_rpc")
# The CI gate's (grpclab regress, bench.gate.study): without p99. Over 5 repetitions of a 2 s window
# p99 varied 19-58 % (CV) in the gate study, caught none of its 20 slowdowns (server CPU per RPC
# caught all) and raised a false alarm on an A/A regress run: a test that only adds noise.
GATE_METRICS = ("rps", "lat_p50_ms", "server_cpu_us_per_rpc")
DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05
FORMATS = ("table", "markdown", "json")
METHOD = "Mann-Whitney U (exact), Hodges-Lehmann ratio, Moses CI"

# +1: higher is better; -1: lower is better; 0: no direction (reported, never a regression).
_HIGHER_BETTER = ("rps", "rpcs", "rpcs_ok", "payload_ratio")
_NO_DIRECTION = (
    "loadgen_processes",
    "duration_s",
    "offered_rps",
    "server_cpu_s",
    "server_cpu_util",
    "loadgen_cpu_s",
    "loadgen_cpu_util",
)
METRICS: tuple[str, ...] = tuple(c.name for c in schema.METRICS if c.kind in ("int", "float"))
DIRECTION: dict[str, int] = {
    name: 1 if name in _HIGHER_BETTER else 0 if name in _NO_DIRECTION else -1 for name in METRICS
}

# Environment fields that change what is measured: a difference makes the comparison meaningless.
_HARD_VERSIONS = ("python", "grpcio", "protobuf")
_HARD_SETTINGS = ("duration", "warmup", "loadgen_processes", "server_cpus", "loadgen_cpus")
_EXACT_PAIRS_LIMIT = 10_000  # n*m above this: normal approximation (the lab's runs are far below)
_MIN_SAMPLES = 2  # per side, to compute anything at all


class CompareError(Exception):
    """Input that cannot be compared (no common cells, unknown metric, different environments): exit 2."""


# -- statistics ----------------------------------------------------------


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
    if n < _MIN_SAMPLES or m < _MIN_SAMPLES:
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
    if est.n_base < _MIN_SAMPLES or est.n_head < _MIN_SAMPLES:
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


# -- comparing runs ------------------------------------------------------


@dataclass
class Comparison:
    """The result of comparing two runs: one row per common cell x metric, plus everything worth a warning."""

    base: str
    head: str
    metrics: tuple[str, ...]
    threshold: float
    alpha: float
    rows: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    head_failures: list[str] = field(default_factory=list)  # cells whose head failed where the base did not
    base_info: dict = field(default_factory=dict)
    head_info: dict = field(default_factory=dict)

    @property
    def worse(self) -> pd.DataFrame:
        return self.rows[self.rows["verdict"] == "worse"]

    @property
    def regression(self) -> bool:
        """What --fail-on-regression fails on: a significant change for the worse beyond the threshold,
        or a cell whose head repetitions failed where the base's did not."""
        return bool(len(self.worse) or self.head_failures)

    def counts(self) -> dict[str, int]:
        return {v: int((self.rows["verdict"] == v).sum()) for v in ("worse", "better", "changed", "~", "n/a")}


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    metrics = tuple(m.strip() for m in metrics if m.strip())
    if not metrics:
        raise CompareError("--metric: name at least one metric")
    for name in metrics:
        if name not in METRICS:
            raise CompareError(f"--metric: unknown metric {name!r}; numeric metrics: {', '.join(METRICS)}")
    return tuple(dict.fromkeys(metrics))


def check_alpha_threshold(alpha: float, threshold: float) -> None:
    if not 0 < alpha < 1:
        raise CompareError(f"--alpha: expected a number between 0 and 1, got {alpha}")
    if not threshold >= 0:
        raise CompareError(f"--threshold: expected a number >= 0 (0.05 = 5 %), got {threshold}")


def usable(df: pd.DataFrame) -> pd.Series:
    """Rows the statistics may use: not failed, load generator not saturated."""
    return ~df["failed"].astype(bool) & ~df["loadgen_saturated"].astype(bool)


def _exclusion_warning(side: str, df: pd.DataFrame) -> str | None:
    failed = df["failed"].astype(bool)
    saturated = ~failed & df["loadgen_saturated"].astype(bool)
    if not failed.any() and not saturated.any():
        return None
    cells = df.loc[failed | saturated, "cell_key"].nunique()
    parts = []
    if failed.any():
        parts.append(f"{int(failed.sum())} failed")
    if saturated.any():
        parts.append(f"{int(saturated.sum())} with the load generator saturated (it measures the client there)")
    return f"{side}: left out {' and '.join(parts)} of {len(df)} repetitions, in {cells} cells"


def short_labels(keys: Sequence[str]) -> dict[str, str]:
    """Short cell labels: only the parts of the cell keys that differ between the compared cells."""
    split = [k.split("/") for k in keys]
    if not split:
        return {}
    width = max(len(s) for s in split)
    varying = [i for i in range(width) if len({s[i] if i < len(s) else "" for s in split}) > 1]
    if not varying:
        varying = [0, 1]
    return {k: "/".join(s[i] for i in varying if i < len(s)) for k, s in zip(keys, split, strict=True)}


def compare_frames(
    base: pd.DataFrame,
    head: pd.DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    *,
    base_name: str = "base",
    head_name: str = "head",
) -> Comparison:
    """Compare two tidy tables (results.load); raises CompareError when they share no cell."""
    metrics = check_metrics(metrics)
    check_alpha_threshold(alpha, threshold)
    base_keys = list(dict.fromkeys(base.sort_values("order")["cell_key"].astype(str)))
    head_keys = set(head["cell_key"].astype(str))
    common = [k for k in base_keys if k in head_keys]
    if not common:
        raise CompareError(f"{base_name} and {head_name} have no cell in common (are they runs of the same spec?)")
    warnings: list[str] = []
    only_base = len(base_keys) - len(common)
    only_head = len(head_keys) - len(common)
    if only_base or only_head:
        warnings.append(
            f"compared {len(common)} common cells; {only_base} cells only in {base_name}, "
            f"{only_head} only in {head_name} (not compared)"
        )
    for side, df in ((base_name, base), (head_name, head)):
        text = _exclusion_warning(side, df[df["cell_key"].isin(common)])
        if text:
            warnings.append(text)
    b_ok, h_ok = base[usable(base)], head[usable(head)]
    labels = short_labels(common)
    rows = []
    head_failures = []
    short: set[str] = set()
    for key in common:
        b_cell, h_cell = b_ok[b_ok["cell_key"] == key], h_ok[h_ok["cell_key"] == key]
        base_failed = int(base.loc[base["cell_key"] == key, "failed"].astype(bool).sum())
        head_failed = int(head.loc[head["cell_key"] == key, "failed"].astype(bool).sum())
        if head_failed and not base_failed:
            head_failures.append(key)
        for metric in metrics:
            est = estimate(b_cell[metric].to_numpy(float), h_cell[metric].to_numpy(float), alpha)
            if "cannot reach" in est.note:
                short.add(key)
            rows.append(
                {
                    "cell_key": key,
                    "cell": labels[key],
                    "metric": metric,
                    "direction": DIRECTION[metric],
                    "n_base": est.n_base,
                    "n_head": est.n_head,
                    "base_median": est.base_median,
                    "head_median": est.head_median,
                    "ratio": est.ratio,
                    "ci_low": est.ci_low,
                    "ci_high": est.ci_high,
                    "p_value": est.p_value,
                    "significant": est.significant,
                    "verdict": verdict(est, DIRECTION[metric], threshold),
                    "note": est.note,
                }
            )
    if head_failures:
        warnings.append(
            f"{head_name}: repetitions failed in {len(head_failures)} cells where {base_name} had no failure "
            f"(a regression for --fail-on-regression): {', '.join(head_failures[:3])}"
            + (" ..." if len(head_failures) > 3 else "")
        )
    if short:
        warnings.append(
            f"{len(short)} cells have too few usable repetitions for any change to be significant at "
            f"alpha {alpha:g} (need at least 4 per side): a `~` there means 'cannot tell', not 'no change'"
        )
    table = pd.DataFrame(rows)
    if table["n_base"].ge(_MIN_SAMPLES).mul(table["n_head"].ge(_MIN_SAMPLES)).sum() == 0 and not head_failures:
        raise CompareError(
            f"no common cell has {_MIN_SAMPLES} usable repetitions on both sides "
            "(every repetition failed or had its load generator saturated)"
        )
    return Comparison(
        base=base_name,
        head=head_name,
        metrics=metrics,
        threshold=threshold,
        alpha=alpha,
        rows=table,
        warnings=warnings,
        head_failures=head_failures,
    )


def environment_differences(base: Manifest, head: Manifest) -> tuple[list[str], list[str]]:
    """(differences that make a comparison meaningless, differences worth a warning) between two manifests."""
    hard: list[str] = []
    soft: list[str] = []
    b_env, h_env = base.environment, head.environment

    def differ(where: list[str], label: str, a: object, b: object) -> None:
        if a != b:
            where.append(f"{label} {a} vs {b}")

    differ(hard, "CPU model", b_env.cpu_model, h_env.cpu_model)
    differ(hard, "cores", b_env.cores, h_env.cores)
    b_ver, h_ver = b_env.versions, h_env.versions
    for name in sorted(set(b_ver) | set(h_ver)):
        differ(hard if name in _HARD_VERSIONS else soft, name, b_ver.get(name), h_ver.get(name))
    differ(soft, "kernel", b_env.kernel, h_env.kernel)
    b_set, h_set = asdict(base.settings), asdict(head.settings)
    for name in sorted(set(b_set) | set(h_set)):
        differ(hard if name in _HARD_SETTINGS else soft, f"settings.{name}", b_set.get(name), h_set.get(name))
    return hard, soft


def _run_info(manifest: Manifest) -> dict:
    git = manifest.environment.git
    return {
        "commit": git.commit,
        "dirty": git.dirty,
        "ref": manifest.regress.ref if manifest.regress else None,
        "spec": manifest.spec_name,
        "status": manifest.status,
    }


def compare_runs(
    base_dir: str | Path,
    head_dir: str | Path,
    metrics: Sequence[str] = DEFAULT_METRICS,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    allow_env_mismatch: bool = False,
) -> Comparison:
    """Load two run directories and compare them; CompareError (exit 2) on input that cannot be compared."""
    metrics = check_metrics(metrics)
    base_dir, head_dir = Path(base_dir), Path(head_dir)
    b_manifest, h_manifest = results.read_manifest(base_dir), results.read_manifest(head_dir)
    hard, soft = environment_differences(b_manifest, h_manifest)
    if hard and not allow_env_mismatch:
        raise CompareError(
            f"{base_dir} and {head_dir} were measured differently: {'; '.join(hard)} "
            "(a difference would measure the environment, not the code; --allow-env-mismatch compares anyway)"
        )
    cmp = compare_frames(
        results.load(base_dir),
        results.load(head_dir),
        metrics,
        threshold,
        alpha,
        base_name=str(base_dir),
        head_name=str(head_dir),
    )
    if hard:
        cmp.warnings.insert(0, f"environments differ (compared anyway, --allow-env-mismatch): {'; '.join(hard)}")
    if soft:
        cmp.warnings.append(f"minor environment differences: {'; '.join(soft)}")
    for name, manifest in ((base_dir, b_manifest), (head_dir, h_manifest)):
        if manifest.status != "complete":
            cmp.warnings.append(f"{name}: run status is {manifest.status!r}, not 'complete'")
    cmp.base_info, cmp.head_info = _run_info(b_manifest), _run_info(h_manifest)
    return cmp


# -- output --------------------------------------------------------------


def _num(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def pct_text(ratio: float) -> str:
    return "-" if ratio is None or not math.isfinite(ratio) else f"{(ratio - 1) * 100:+.1f}%"


def _ci(row: pd.Series | dict) -> str:
    if not math.isfinite(row["ci_low"]) or not math.isfinite(row["ci_high"]):
        return "-"
    return f"[{pct_text(row['ci_low'])}, {pct_text(row['ci_high'])}]"


def _p(row: pd.Series | dict) -> str:
    return "-" if not math.isfinite(row["p_value"]) else f"p={row['p_value']:.3f} n={row['n_base']}+{row['n_head']}"


def _describe(name: str, info: dict) -> str:
    commit = (info.get("commit") or "")[:12]
    bits = [name]
    if info.get("ref"):
        bits.append(f"ref {info['ref']}")
    if commit:
        bits.append(f"commit {commit}{' (dirty)' if info.get('dirty') else ''}")
    return ", ".join(bits)


def _settings_line(cmp: Comparison) -> str:
    return (
        f"threshold ±{cmp.threshold * 100:g} %, alpha {cmp.alpha:g}, 95 % CI; "
        f"method: {METHOD}; a change counts when significant and beyond the threshold"
    )


def _summary_line(cmp: Comparison) -> str:
    counts = cmp.counts()
    parts = [f"{counts['worse']} worse", f"{counts['better']} better", f"{counts['~']} ~"]
    if counts["changed"]:
        parts.append(f"{counts['changed']} changed (no direction)")
    if counts["n/a"]:
        parts.append(f"{counts['n/a']} n/a")
    verdict_text = "REGRESSION" if cmp.regression else "no significant regression"
    return f"{verdict_text}: {', '.join(parts)} of {len(cmp.rows)} cell x metric comparisons"


_STYLE = {"worse": "bold red", "better": "green", "changed": "yellow", "~": "dim", "n/a": "dim"}


def render_table(cmp: Comparison, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{cmp.base} -> {cmp.head}", title_justify="left")
    for name, justify in (
        ("cell", "left"),
        ("metric", "left"),
        ("base", "right"),
        ("head", "right"),
        ("head/base", "right"),
        ("95% CI", "right"),
        ("test", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify)
    previous = None
    for _, row in cmp.rows.iterrows():
        style = _STYLE.get(row["verdict"], "")
        table.add_row(
            row["cell"] if row["cell_key"] != previous else "",
            row["metric"],
            _num(row["base_median"]),
            _num(row["head_median"]),
            pct_text(row["ratio"]),
            _ci(row),
            _p(row),
            f"[{style}]{row['verdict']}[/{style}]" if style else row["verdict"],
        )
        previous = row["cell_key"]
    console.print(table)
    console.print(f"base: {_describe(cmp.base, cmp.base_info)}; head: {_describe(cmp.head, cmp.head_info)}")
    console.print(_settings_line(cmp), highlight=False)
    style = "bold red" if cmp.regression else "green"
    console.print(f"[{style}]{_summary_line(cmp)}[/{style}]")


def to_markdown(cmp: Comparison) -> str:
    lines = [
        "## grpclab compare",
        "",
        f"- base: {_describe(cmp.base, cmp.base_info)}",
        f"- head: {_describe(cmp.head, cmp.head_info)}",
        f"- {_settings_line(cmp)}",
        "",
        f"**{_summary_line(cmp)}**",
        "",
        "| cell | metric | base | head | head/base | 95% CI | test | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for _, row in cmp.rows.iterrows():
        shown = f"**{row['verdict']}**" if row["verdict"] in ("worse", "better", "changed") else row["verdict"]
        lines.append(
            f"| `{row['cell']}` | {row['metric']} | {_num(row['base_median'])} | {_num(row['head_median'])} | "
            f"{pct_text(row['ratio'])} | {_ci(row)} | {_p(row)} | {shown} |"
        )
    if cmp.warnings:
        lines += ["", "Warnings:", ""] + [f"- {text}" for text in cmp.warnings]
    return "\n".join(lines) + "\n"


def _clean(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def to_json(cmp: Comparison) -> str:
    rows = [{k: _clean(v) for k, v in row.items()} for row in cmp.rows.to_dict(orient="records")]
    doc = {
        "base": {"run": cmp.base, **cmp.base_info},
        "head": {"run": cmp.head, **cmp.head_info},
        "metrics": list(cmp.metrics),
        "threshold": cmp.threshold,
        "alpha": cmp.alpha,
        "method": METHOD,
        "summary": cmp.counts(),
        "regression": cmp.regression,
        "head_failures": cmp.head_failures,
        "warnings": cmp.warnings,
        "rows": rows,
    }
    return json.dumps(doc, indent=2) + "\n"


def print_warnings(cmp: Comparison, stream=None) -> None:
    stream = stream or sys.stderr
    for text in cmp.warnings:
        print(f"warning: {text}", file=stream)


def emit(cmp: Comparison, fmt: str) -> None:
    """Warnings to stderr, the comparison to stdout in ``fmt``."""
    print_warnings(cmp)
    if fmt == "table":
        from rich.console import Console

        console = Console()
        if not console.is_terminal:
            console = Console(width=200)  # CI logs: wide enough for the table
        render_table(cmp, console)
    elif fmt == "markdown":
        sys.stdout.write(to_markdown(cmp))
    else:
        sys.stdout.write(to_json(cmp))


def parse_metrics(text: str) -> tuple[str, ...]:
    return check_metrics(text.split(","))


def main(
    base: Path,
    head: Path,
    *,
    metrics: str = ",".join(DEFAULT_METRICS),
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    fmt: str = "table",
    fail_on_regression: bool = False,
    allow_env_mismatch: bool = False,
) -> int:
    """`grpclab compare`: 0, or 1 with --fail-on-regression when HEAD regressed; CompareError for bad input."""
    cmp = compare_runs(base, head, parse_metrics(metrics), threshold, alpha, allow_env_mismatch)
    emit(cmp, fmt)
    return 1 if fail_on_regression and cmp.regression else 0
