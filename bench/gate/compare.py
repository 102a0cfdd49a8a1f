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

Statistics (bench.gate.stats): the Mann-Whitney U test, the Hodges-Lehmann ratio and the Moses
interval, exact at the lab's sample sizes. Rendering: bench.gate.render.

Power: every row also carries the **detectable change** (stats: the change the test would have
caught with 80 % power, given the repetitions and their measured spread). A row whose detectable
change exceeds the threshold is **underpowered**: its ``~`` means "cannot tell", not "no change",
and the output says so per row and in the summary.

Rows that failed, and rows whose load generator was saturated, are left out of
the statistics with a warning: a saturated generator measures the client, not the
server. A cell x metric whose repetitions are ``unstable`` on either side
(bench.analysis.stability, against that side's calibrated noise) says so next to
its verdict. Environments that differ where it matters (CPU model, core count, Python,
grpcio, protobuf, the measuring settings, or the /dev/cpu_dma_latency hold: idle
CPUs that poll and idle CPUs that halt give latencies up to 2x apart) make the
comparison meaningless and are refused with exit code 2 unless
``--allow-env-mismatch`` is given; the differences are printed either way.

A run driven over gRPC benchmark workers (``grpclab run --hosts``) measured on its workers' machines, not on
the driver's: for such a run the CPU model, CPU count and versions that count are its server worker's and its
first client worker's (their facts in the manifest's placement), checked by the same rules against the other
run's (its workers', or its own machine for a local run). A worker whose facts were not recorded (a foreign
worker) is a warning, not a refusal: nothing says it differs, nothing says it does not. A local run and a
driven run on the same kind of machines are compared, with a warning: the same cells, rows and rules, but the
window is cut by the workers' marks instead of the harness's own samples (the test suite finds the two within
15-20 % of each other on one machine, so differences of that size between them are not the code's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..analysis import results, schema, stability
from ..analysis.summary import noise_cv
from ..run.manifest import Manifest
from . import render
from .stats import DEFAULT_ALPHA, MIN_SAMPLES, estimate, verdict

DEFAULT_METRICS = ("rps", "lat_p50_ms", "lat_p99_ms", "server_cpu_us_per_rpc")
# The CI gate's (grpclab regress, bench.gate.study): without p99. Over 5 repetitions of a 2 s window
# p99 varied 19-58 % (CV) in the gate study, caught none of its 20 slowdowns (server CPU per RPC
# caught all) and raised a false alarm on an A/A regress run: a test that only adds noise.
GATE_METRICS = ("rps", "lat_p50_ms", "server_cpu_us_per_rpc")
DEFAULT_THRESHOLD = 0.05

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


class CompareError(Exception):
    """Input that cannot be compared (no common cells, unknown metric, different environments): exit 2."""


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
    adaptive: dict | None = None  # grpclab regress: how the repetitions were chosen (adaptive.Outcome.to_json)

    @property
    def worse(self) -> pd.DataFrame:
        return self.rows[self.rows["verdict"] == "worse"]

    @property
    def blind(self) -> pd.DataFrame:
        """Rows that show no change (``~``) but could not have detected one of the threshold's size."""
        return self.rows[(self.rows["verdict"] == "~") & self.rows["underpowered"]]

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
    base_noise: dict[str, float] | None = None,
    head_noise: dict[str, float] | None = None,
) -> Comparison:
    """Compare two tidy tables (results.load); raises CompareError when they share no cell.

    ``base_noise``, ``head_noise``: each run's calibrated noise (metric -> CV), for the unstable rule.
    """
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
    unstable_cells: set[str] = set()
    for key in common:
        b_cell, h_cell = b_ok[b_ok["cell_key"] == key], h_ok[h_ok["cell_key"] == key]
        base_failed = int(base.loc[base["cell_key"] == key, "failed"].astype(bool).sum())
        head_failed = int(head.loc[head["cell_key"] == key, "failed"].astype(bool).sum())
        if head_failed and not base_failed:
            head_failures.append(key)
        spread = {
            side: {s.metric: s for s in stability.unstable({m: cell[m] for m in stability.METRICS}, noise)}
            for side, cell, noise in (("base", b_cell, base_noise), ("head", h_cell, head_noise))
        }
        for metric in metrics:
            shaky = [side for side in ("base", "head") if metric in spread[side]]
            if shaky:
                unstable_cells.add(key)
            est = estimate(b_cell[metric].to_numpy(float), h_cell[metric].to_numpy(float), alpha)
            if "cannot reach" in est.note:
                short.add(key)
            detectable = est.detectable(DIRECTION[metric])
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
                    "spread": est.spread,
                    "detectable": detectable,
                    # NaN (nothing to compare) is not underpowered: it is n/a
                    "underpowered": bool(detectable > threshold),
                    "note": est.note,
                    "unstable": " and ".join(shaky),  # the side(s) whose repetitions spread too much
                    "unstable_detail": "; ".join(f"{side}: {spread[side][metric].text()}" for side in shaky),
                }
            )
    if head_failures:
        warnings.append(
            f"{head_name}: repetitions failed in {len(head_failures)} cells where {base_name} had no failure "
            f"(a regression for --fail-on-regression): {', '.join(head_failures[:3])}"
            + (" ..." if len(head_failures) > 3 else "")
        )
    if unstable_cells:
        warnings.append(
            f"{len(unstable_cells)} cells have unstable repetitions in a compared metric (coefficient of variation "
            f"above max({stability.NOISE_FACTOR:g} x the run's calibrated noise, {stability.MIN_CV:.0%})): "
            "their verdicts rest on spread samples (marked 'unstable')"
        )
    if short:
        warnings.append(
            f"{len(short)} cells have too few usable repetitions for any change to be significant at "
            f"alpha {alpha:g} (need at least 4 per side): a `~` there means 'cannot tell', not 'no change'"
        )
    table = pd.DataFrame(rows)
    if table["n_base"].ge(MIN_SAMPLES).mul(table["n_head"].ge(MIN_SAMPLES)).sum() == 0 and not head_failures:
        raise CompareError(
            f"no common cell has {MIN_SAMPLES} usable repetitions on both sides "
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

    b_kind, h_kind = base.placement.kind, head.placement.kind
    if b_kind == h_kind == "local":
        differ(hard, "CPU model", b_env.cpu_model, h_env.cpu_model)
        differ(hard, "cores", b_env.cores, h_env.cores)
        b_ver, h_ver = b_env.versions, h_env.versions
        for name in sorted(set(b_ver) | set(h_ver)):
            differ(hard if name in _HARD_VERSIONS else soft, name, b_ver.get(name), h_ver.get(name))
        differ(soft, "kernel", b_env.kernel, h_env.kernel)
    else:
        if b_kind != h_kind:
            soft.append(
                f"placement {b_kind} vs {h_kind}: a driven run's window is cut by the workers' marks, a local "
                "run's by the harness's samples (within 15-20 % of each other in the test suite)"
            )
        for role in ("server", "client"):
            b_machine, h_machine = _machine(base, role), _machine(head, role)
            if b_machine is None or h_machine is None:
                soft.append(
                    f"{role} machine not recorded by {'base' if b_machine is None else 'head'} (a foreign worker)"
                )
                continue
            differ(hard, f"{role} CPU model", b_machine[0], h_machine[0])
            differ(hard, f"{role} CPUs", b_machine[1], h_machine[1])
            for name in _HARD_VERSIONS:
                if name in b_machine[2] and name in h_machine[2]:
                    differ(hard, f"{role} {name}", b_machine[2][name], h_machine[2][name])
    b_hold, h_hold = base.cpu_latency_hold, head.cpu_latency_hold
    if b_hold is not None and h_hold is not None:
        differ(hard, "cpu_latency_hold", b_hold.regime(), h_hold.regime())
    elif b_hold is not None or h_hold is not None:
        soft.append(
            "cpu_latency_hold recorded by one run only (the other was written before grpclab recorded it; "
            "it held nothing unless someone ran `grpclab system tune`)"
        )
    b_set, h_set = asdict(base.settings), asdict(head.settings)
    for name in sorted(set(b_set) | set(h_set)):
        differ(hard if name in _HARD_SETTINGS else soft, f"settings.{name}", b_set.get(name), h_set.get(name))
    return hard, soft


def _machine(manifest: Manifest, role: str) -> tuple[str | None, int | None, dict] | None:
    """(CPU model, CPUs, versions) of the machine that ran a run's server or load; None: not recorded.

    A local run's is its own machine; a driven run's is its first worker of that role (bench.remote.drive).
    """
    if not manifest.placement.workers:
        env = manifest.environment
        return env.cpu_model, env.cores, env.versions
    worker = next((w for w in manifest.placement.workers if w.role == role), None)
    if worker is None or worker.system is None:
        return None
    return worker.system.cpu.model, len(worker.system.cpu.online), worker.versions or {}


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
        base_noise=noise_cv(b_manifest),
        head_noise=noise_cv(h_manifest),
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
    render.emit(cmp, fmt)
    return 1 if fail_on_regression and cmp.regression else 0
