"""The regression gate: compare's statistics on synthetic samples, `grpclab compare` and `grpclab regress` end to end.

The statistics tests are deterministic (seeded samples, exact p-values). The CLI
tests measure real, small runs: one cell, 5 repetitions of 0.5 s per side, the
sides interleaved as `grpclab regress` interleaves them; B's server burns a
known amount of extra CPU per RPC (servers/faults.py).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import cli
from bench.analysis import results, schema
from bench.gate import adaptive, compare, regress, render, stats
from bench.run import server_process
from bench.run.executor import Side, execute
from bench.run.manifest import Environment, Manifest, PlacementInfo
from bench.run.measure import ServerCode
from bench.run.placement import LocalPlacement
from bench.run.plan import Plan
from bench.run.store import RunStore
from bench.spec import DEFAULTS, Cell, Settings, parse_spec

REPO = Path(__file__).resolve().parent.parent

# -- statistics --------------------------------------------------------------


def lognormal(seed: int, n: int, centre: float, cv: float) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(centre), cv, n)


def brute_force_p(base: np.ndarray, head: np.ndarray) -> float:
    """Two-sided permutation p-value of the U statistic over every split of the pooled sample."""
    pooled = np.concatenate([base, head])
    n = len(base)
    observed = stats.u_statistic(base, head)
    centre = n * len(head) / 2
    us = []
    for idx in itertools.combinations(range(len(pooled)), n):
        mask = np.zeros(len(pooled), bool)
        mask[list(idx)] = True
        us.append(stats.u_statistic(pooled[mask], pooled[~mask]))
    us = np.array(us)
    return float(np.mean(np.abs(us - centre) >= abs(observed - centre) - 1e-9))


@pytest.mark.parametrize(("n", "m", "seed"), [(5, 5, 1), (5, 5, 2), (4, 6, 3), (3, 7, 4), (6, 6, 5)])
def test_p_value_matches_brute_force_enumeration(n, m, seed):
    rng = np.random.default_rng(seed)
    base, head = rng.normal(100, 5, n), rng.normal(103, 5, m)
    assert stats.p_value(base, head) == pytest.approx(brute_force_p(base, head), abs=1e-9)


def test_smallest_p_values_are_the_textbook_ones():
    # Complete separation of 5 + 5: 2 / C(10, 5) = 2 / 252.
    assert stats.p_value(np.arange(5.0), np.arange(5.0) + 10) == pytest.approx(2 / 252)
    assert stats.min_p_value(3, 3) == pytest.approx(0.1)
    assert stats.critical_count(3, 3, 0.05) == -1  # 3 + 3 can never be significant at 0.05
    assert stats.critical_count(5, 5, 0.05) == 2  # P(U <= 2) = 4/252 < 0.025 < P(U <= 3) = 7/252


def test_identical_samples_are_not_a_change():
    sample = lognormal(1, 5, 100.0, 0.03)
    est = stats.estimate(sample, sample.copy())
    assert est.p_value == pytest.approx(1.0)
    assert est.ratio == pytest.approx(1.0)
    assert est.ci_low < 1.0 < est.ci_high
    assert stats.verdict(est, direction=-1, threshold=0.05) == "~"


@pytest.mark.parametrize(
    ("metric", "factor", "expected"),
    [
        ("lat_p50_ms", 1.2, "worse"),  # latency up 20 %
        ("lat_p50_ms", 1 / 1.2, "better"),
        ("server_cpu_us_per_rpc", 1.2, "worse"),
        ("rps", 1.2, "better"),  # throughput up 20 %
        ("rps", 1 / 1.2, "worse"),
        ("server_cpu_util", 1.2, "changed"),  # no direction: reported, never a regression
    ],
)
def test_a_20_percent_shift_with_low_noise_is_found_in_the_metric_s_direction(metric, factor, expected):
    base = lognormal(2, 5, 100.0, 0.02)
    head = lognormal(3, 5, 100.0 * factor, 0.02)
    est = stats.estimate(base, head)
    assert est.significant
    assert est.ratio == pytest.approx(factor, rel=0.04)
    assert stats.verdict(est, compare.DIRECTION[metric], threshold=0.05) == expected


def test_a_small_shift_in_noisy_samples_is_not_significant():
    base = lognormal(4, 5, 100.0, 0.30)
    head = lognormal(5, 5, 108.0, 0.30)
    est = stats.estimate(base, head)
    assert not est.significant
    assert stats.verdict(est, -1, 0.05) == "~"


def test_a_significant_change_inside_the_threshold_does_not_count():
    base = lognormal(6, 5, 100.0, 0.002)
    head = lognormal(7, 5, 103.0, 0.002)  # +3 %, nearly no noise: clearly significant
    est = stats.estimate(base, head)
    assert est.significant and est.ratio == pytest.approx(1.03, rel=0.005)
    assert stats.verdict(est, -1, threshold=0.05) == "~"
    assert stats.verdict(est, -1, threshold=0.02) == "worse"


def test_interval_contains_the_true_ratio_for_a_known_shift():
    base = lognormal(8, 5, 100.0, 0.05)
    head = lognormal(9, 5, 115.0, 0.05)
    est = stats.estimate(base, head)
    assert est.ci_low < 1.15 < est.ci_high
    assert est.ci_low <= est.ratio <= est.ci_high


def test_interval_coverage_is_at_least_nominal():
    """Over many seeded samples the 95 % interval holds the true ratio at least ~95 % of the time.

    For 5 + 5 the Moses interval's exact level is 1 - 8/252 = 96.8 %; 400 draws put the
    observed coverage within about +-2 % of that.
    """
    true_ratio, hits, draws = 1.10, 0, 400
    for seed in range(draws):
        rng = np.random.default_rng(1000 + seed)
        base = rng.lognormal(np.log(50.0), 0.1, 5)
        head = rng.lognormal(np.log(50.0 * true_ratio), 0.1, 5)
        est = stats.estimate(base, head)
        hits += est.ci_low <= true_ratio <= est.ci_high
    assert hits / draws >= 0.94, hits / draws


def test_significance_and_interval_agree_without_ties():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        base, head = rng.normal(100, 5, 5), rng.normal(100 + seed % 15, 5, 5)
        est = stats.estimate(base, head)
        excludes_one = est.ci_low > 1 or est.ci_high < 1
        assert (est.p_value < 0.05) == excludes_one, (seed, est)


def test_too_few_repetitions_say_so():
    est = stats.estimate([1.0, 1.1, 1.2], [5.0, 5.1, 5.2])
    assert not est.significant and "cannot reach" in est.note
    assert stats.verdict(est, -1, 0.05) == "~"
    assert stats.verdict(stats.estimate([1.0], [2.0, 3.0]), -1, 0.05) == "n/a"


def test_zeros_are_compared_on_raw_values():
    est = stats.estimate([0, 0, 0, 0, 0], [30, 40, 50, 60, 70])
    assert est.significant and np.isnan(est.ratio) and "base median is 0" in est.note
    assert stats.verdict(est, compare.DIRECTION["errors"], 0.05) == "worse"


# -- comparing tables ------------------------------------------------------

# The spec's default cell, as a unary 1 KiB call with one in flight (unary normalizes stream_messages to 1).
CELL = {**DEFAULTS, "payload_size": 1024, "concurrency": 1, "stream_messages": 1}


def synthetic_rows(cell: Cell, values: dict[str, np.ndarray], **flags) -> list[dict]:
    n = len(next(iter(values.values())))
    rows = []
    for rep in range(n):
        row = schema.empty_row()
        row.update(cell.to_dict(), cell_key=cell.key(), repetition=rep, order=rep, run_id="synthetic")
        row.update({metric: float(v[rep]) for metric, v in values.items()})
        for flag, reps in flags.items():
            row[flag] = rep in reps
        rows.append(row)
    return rows


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_failed_and_saturated_rows_are_left_out_with_a_warning():
    cell = Cell(**CELL)
    base = frame(synthetic_rows(cell, {"lat_p50_ms": lognormal(10, 6, 1.0, 0.01)}, loadgen_saturated={0}))
    head = frame(synthetic_rows(cell, {"lat_p50_ms": lognormal(11, 6, 1.0, 0.01)}, failed={5}))
    base.loc[base["repetition"] == 0, "lat_p50_ms"] = 1000.0  # would be a huge outlier if it were used
    cmp = compare.compare_frames(base, head, ["lat_p50_ms"])
    row = cmp.rows.iloc[0]
    assert (row["n_base"], row["n_head"]) == (5, 5)
    assert row["verdict"] == "~"
    text = " ".join(cmp.warnings)
    assert "1 with the load generator saturated" in text and "1 failed" in text
    assert cmp.head_failures == [cell.key()] and cmp.regression  # head failed where base did not


def _cpu_comparison(cv: float, n: int = 5, factor: float = 1.0, seed: int = 20) -> compare.Comparison:
    cell = Cell(**CELL)
    base = frame(synthetic_rows(cell, {"server_cpu_us_per_rpc": lognormal(seed, n, 200.0, cv)}))
    head = frame(synthetic_rows(cell, {"server_cpu_us_per_rpc": lognormal(seed + 1, n, 200.0 * factor, cv)}))
    return compare.compare_frames(base, head, ["server_cpu_us_per_rpc"])


def test_a_noisy_comparison_says_what_it_could_not_have_detected():
    cmp = _cpu_comparison(cv=0.15)
    row = cmp.rows.iloc[0]
    assert row["verdict"] == "~" and row["underpowered"]
    assert row["detectable"] > 0.3  # 15 % noise at 5 + 5: only a very large change would show
    assert row["detectable"] == pytest.approx(
        stats.detectable_change(row["spread"] * stats.detectable_shift_in_sds(5, 5), -1)
    )
    assert len(cmp.blind) == 1 and not cmp.regression
    summary = render._summary_line(cmp)
    assert summary.startswith("no significant regression shown, but the run was underpowered")
    assert "1 of the ~ (in 1 cell) are underpowered" in summary
    (line,) = render.power_lines(cmp)
    assert line == (
        f"this run could not have detected a 5 % change in server CPU per RPC of {row['cell']}: "
        f"the smallest detectable was {row['detectable'] * 100:.1f}%"
    )
    markdown = render.to_markdown(cmp)
    # 15 % noise is also over the stability limit (10 %), so the verdict names the unstable sides too
    assert "| detectable (80%) | verdict |" in markdown and "**~ underpowered (unstable: base and head)**" in markdown
    assert line in markdown
    doc = json.loads(render.to_json(cmp))
    assert doc["power"]["underpowered"] == 1 and doc["power"]["sentences"] == [line]
    assert doc["rows"][0]["detectable"] == pytest.approx(row["detectable"]) and doc["rows"][0]["underpowered"]


def test_a_quiet_comparison_is_not_underpowered():
    cmp = _cpu_comparison(cv=0.005)
    row = cmp.rows.iloc[0]
    assert row["verdict"] == "~" and not row["underpowered"] and row["detectable"] < 0.05
    assert render._summary_line(cmp).startswith("no significant regression:")
    assert render.power_lines(cmp) == []
    assert "~ underpowered" not in render.to_markdown(cmp)


def test_a_caught_regression_is_not_called_underpowered_even_when_noisy():
    cmp = _cpu_comparison(cv=0.03, factor=1.5)
    row = cmp.rows.iloc[0]
    assert row["verdict"] == "worse"
    assert len(cmp.blind) == 0 and render._summary_line(cmp).startswith("REGRESSION")


def test_unknown_metric_and_disjoint_runs_are_refused():
    a = frame(synthetic_rows(Cell(**CELL), {"rps": np.ones(5)}))
    b = frame(synthetic_rows(Cell(**{**CELL, "impl": "aio", "workers": 0}), {"rps": np.ones(5)}))
    with pytest.raises(compare.CompareError, match="unknown metric 'lat_p42_ms'"):
        compare.compare_frames(a, a, ["lat_p42_ms"])
    with pytest.raises(compare.CompareError, match="no cell in common"):
        compare.compare_frames(a, b, ["rps"])


def _manifest(env: Environment, settings: Settings) -> Manifest:
    where = PlacementInfo("local", settings.server_cpus, settings.loadgen_cpus)
    return Manifest("t", None, {}, settings, None, Plan([]), where, "ecdsa-p256", env, "2026-11-25T00:00:00+00:00")


def test_environment_differences_split_into_hard_and_soft():
    env = Environment(cpu_model="X", cores=2, kernel="6.1", versions={"python": "3.11.7", "grpcio": "1.85.3"})
    settings = Settings(duration=2.0, repetitions=5)
    base = _manifest(env, settings)
    head = _manifest(
        replace(env, kernel="6.2", versions={**env.versions, "grpcio": "1.86.0"}), replace(settings, repetitions=10)
    )
    hard, soft = compare.environment_differences(base, head)
    assert hard == ["grpcio 1.85.3 vs 1.86.0"]
    assert sorted(soft) == ["kernel 6.1 vs 6.2", "settings.repetitions 5 vs 10"]


# -- grpclab compare on run directories ----------------------------------------

TINY = {
    "name": "gate-tiny",
    "settings": {
        "duration": 0.5,
        "warmup": 0.2,
        "repetitions": 5,
        "loadgen_processes": 1,
        "cell_timeout": 20.0,
        "server_cpus": [0],
        "loadgen_cpus": [1],
        "calibrate": False,
    },
    "axes": {"impl": ["sync"], "rpc": ["unary"], "payload_size": ["1KiB"], "concurrency": [1]},
}
SLOW_CPU_US = "2000"  # several times the cell's own server CPU per RPC (~150-350 us): unmistakable


def grpclab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def _quiet(*args) -> None:
    pass


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> dict[str, Path]:
    """A, A' (same code) and B (server burns SLOW_CPU_US per RPC): one cell x 5 repetitions each, interleaved."""
    root = tmp_path_factory.mktemp("gate-runs")
    spec = parse_spec(TINY)
    plan = Plan.make(spec.cells, spec.settings)
    sides = []
    for name in ("A", "A2", "B"):
        where = LocalPlacement.from_settings(spec.settings).describe()
        store = RunStore.create(root / name, Manifest.new(spec, plan, None, where))
        env = {"GRPCLAB_INJECT_CPU_US": SLOW_CPU_US} if name == "B" else {}
        sides.append(Side(store, name, ServerCode(env=env)))
    execute(sides, plan, spec.settings, _quiet)
    return {side.name: side.store.dir for side in sides}


@pytest.mark.slow
def test_injected_slowdown_fails_the_gate(real_runs):
    done = grpclab("compare", str(real_runs["A"]), str(real_runs["B"]), "--fail-on-regression", "--format", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    rows = {r["metric"]: r for r in doc["rows"]}
    assert doc["regression"] is True
    assert rows["server_cpu_us_per_rpc"]["verdict"] == "worse"
    assert rows["server_cpu_us_per_rpc"]["ratio"] > 2
    assert rows["rps"]["verdict"] == "worse"
    assert rows["server_cpu_us_per_rpc"]["p_value"] == pytest.approx(2 / 252)  # complete separation


@pytest.mark.slow
def test_a_a_pair_passes_the_gate(real_runs):
    # Real A/A noise at a 25 % threshold: only a systematic difference between two runs of the
    # same code could fail this. (How often the gate's default 5 % fires on A/A is measured by
    # bench.gate.study, not asserted here.)
    done = grpclab("compare", str(real_runs["A"]), str(real_runs["A2"]), "--fail-on-regression", "--threshold", "0.25")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no significant regression" in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_without_fail_on_regression_a_regression_exits_0(real_runs):
    done = grpclab("compare", str(real_runs["A"]), str(real_runs["B"]), "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert "| cell | metric | base | head |" in done.stdout
    # the verdict is bold; a side whose repetitions were spread (bench.analysis.stability) is named after it
    assert re.search(r"\*\*worse( \(unstable: [a-z ]+\))?\*\*", done.stdout), done.stdout
    assert "REGRESSION" in done.stdout


def _copy_with_manifest(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / results.MANIFEST).read_text())
    edit(manifest)
    (dst / results.MANIFEST).write_text(json.dumps(manifest))
    return dst


@pytest.mark.slow
def test_different_environments_are_refused_unless_allowed(real_runs, tmp_path):
    def upgrade(manifest: dict) -> None:
        manifest["environment"]["versions"]["grpcio"] = "9.9.9"

    other = _copy_with_manifest(real_runs["A2"], tmp_path / "other-grpcio", upgrade)
    done = grpclab("compare", str(real_runs["A"]), str(other))
    assert done.returncode == 2
    assert "grpcio" in done.stderr and "9.9.9" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = grpclab("compare", str(real_runs["A"]), str(other), "--allow-env-mismatch")
    assert done.returncode == 0, done.stderr
    assert "warning: environments differ" in done.stderr and "9.9.9" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--metric", "rps,lat_p42_ms"], "unknown metric 'lat_p42_ms'"),
        (["--alpha", "1.5"], "--alpha"),
        (["--threshold", "-1"], "--threshold"),
    ],
)
def test_bad_options_are_one_line_exit_2(real_runs, args, expected):
    done = grpclab("compare", str(real_runs["A"]), str(real_runs["A2"]), *args)
    assert done.returncode == 2
    assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_runs_without_a_common_cell_and_non_runs_exit_2(real_runs, tmp_path):
    def rename(manifest: dict) -> None:
        pass

    other = _copy_with_manifest(real_runs["A2"], tmp_path / "other-cells", rename)
    df = pd.read_parquet(other / results.PARQUET)
    df["cell_key"] = df["cell_key"] + "-elsewhere"
    df.to_parquet(other / results.PARQUET)
    done = grpclab("compare", str(real_runs["A"]), str(other))
    assert done.returncode == 2 and "no cell in common" in done.stderr
    done = grpclab("compare", str(real_runs["A"]), str(tmp_path))
    assert done.returncode == 2 and "manifest.json: not found" in done.stderr


# -- grpclab regress -----------------------------------------------------------


@pytest.mark.slow
def test_server_code_dir_serves_that_tree_s_code(tmp_path):
    """The hook regress uses: a server started with code_dir runs the code found there, not the installed one."""
    stub = tmp_path / "tree" / "bench"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    (stub / "cli.py").write_text(
        "import json, os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "print(json.dumps({'event': 'ready', 'port': 1, 'pids': [os.getpid()], 'cwd': os.getcwd()}), flush=True)\n"
        "time.sleep(60)\n"
    )
    with server_process.running(["serve"], code_dir=tmp_path / "tree", timeout=20) as srv:
        assert srv.ready["cwd"] == str(tmp_path / "tree")


def test_pins_are_read_from_constraints_and_pyproject():
    pins = regress._pins_from_text(
        "grpcio==1.85.3\n# a comment\nFoo_Bar==2.0  # why\n-e .\n", '[project]\ndependencies = ["rich==15.0.0"]\n'
    )
    assert pins == {"grpcio": "1.85.3", "foo-bar": "2.0", "rich": "15.0.0"}


def _worktrees() -> list[str]:
    """This test's worktrees of the repository: those under its own TMPDIR (see ``own_tmpdir``).

    The repository's whole list is shared with every other checkout of it (other worktrees, other
    regress runs), so comparing all of it would see their changes as this test's.
    """
    command = ["git", "-C", str(REPO), "worktree", "list", "--porcelain"]
    listing = subprocess.run(command, capture_output=True, text=True)
    root = os.environ["TMPDIR"]
    paths = [line.removeprefix("worktree ") for line in listing.stdout.splitlines() if line.startswith("worktree ")]
    return [path for path in paths if path.startswith(root)]


@pytest.fixture(autouse=True)
def own_tmpdir(tmp_path, monkeypatch) -> None:
    """regress makes its worktree with tempfile.mkdtemp: under this directory, for this test's processes."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))


@pytest.fixture
def tiny_spec_file(tmp_path) -> Path:
    path = tmp_path / "gate-tiny.toml"
    path.write_text(
        'name = "gate-tiny"\n[settings]\nduration = 0.3\nwarmup = 0.1\nrepetitions = 2\ncell_timeout = 20.0\n'
        "calibrate = false\n"
        'loadgen_processes = 1\n[axes]\nimpl = ["sync"]\nrpc = ["unary"]\nconcurrency = [1]\n'
    )
    return path


@pytest.mark.slow
def test_regress_measures_both_sides_and_removes_its_worktree(tiny_spec_file, tmp_path):
    before = _worktrees()
    out = tmp_path / "regress"
    spec = str(tiny_spec_file)
    done = grpclab(
        "regress", "--base", "HEAD", "--spec", spec, "--out", str(out), "--fail-on-regression", "--max-repetitions", "2"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _worktrees() == before
    for side in ("base", "head"):
        manifest = results.read_manifest(out / side)
        assert manifest.status == "complete" and manifest.regress.side == side
        assert len(results.load(out / side)) == 2
    assert "| cell | metric |" in (out / "comparison.md").read_text()
    assert json.loads((out / "comparison.json").read_text())["regression"] is False
    # 2 repetitions per side can never be significant, and the output says so instead of hiding it
    assert "too few usable repetitions" in done.stderr
    assert "too few usable repetitions for any change to be significant" in done.stdout
    assert "stopped because the underpowered cells reached --max-repetitions 2" in done.stdout


@pytest.mark.slow
def test_regress_adds_rounds_for_underpowered_cells_within_its_budget(tiny_spec_file, tmp_path):
    """2 repetitions can detect nothing: the gate measures more rounds, interleaved, until the cap of 6,
    and both manifests, the rows and the comparison say how it went."""
    out = tmp_path / "regress"
    spec = str(tiny_spec_file)
    adaptive_args = ["--max-repetitions", "6", "--budget", "2", "--threshold", "0.001"]  # never powered
    done = grpclab("regress", "--base", "HEAD", "--spec", spec, "--out", str(out), *adaptive_args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "round 2:" in done.stdout and "round 3:" in done.stdout
    frames = {side: results.load(out / side) for side in ("base", "head")}
    for side, df in frames.items():
        manifest = results.read_manifest(out / side)
        assert manifest.status == "complete"
        assert (manifest.regress.rounds, manifest.regress.stop, manifest.regress.max_repetitions) == (
            3,
            "max-repetitions",
            6,
        )
        assert manifest.regress.budget_s == 120
        assert sorted(df["repetition"]) == list(range(6))  # rounds of 2, 2 more (doubling), 2 more (cap)
        assert sorted(df["order"]) == list(range(6))  # each step's position in the whole run
        assert len(manifest.plan.steps) == 6
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["adaptive"]["rounds"] == 3 and doc["adaptive"]["stop"] == "max-repetitions"
    assert doc["adaptive"]["repetitions"] == {frames["base"]["cell_key"][0]: 6}
    assert all(row["detectable"] is None or row["detectable"] >= 0 for row in doc["rows"])
    assert "adaptive repetitions: 3 rounds, 6 per side and cell" in done.stdout


@pytest.mark.slow
def test_regress_ctrl_c_removes_the_worktree(tiny_spec_file, tmp_path):
    before = _worktrees()
    out = tmp_path / "regress"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "regress", "--base", "HEAD", "--spec", str(tiny_spec_file)]
        + ["--out", str(out), "--repetitions", "20"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob("*/cells/*.json")):
        time.sleep(0.05)
    assert _worktrees() != before == []  # the base worktree exists while measuring, under this test's TMPDIR
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    assert _worktrees() == before
    assert results.read_manifest(out / "base").status == "interrupted"


@pytest.mark.slow
def test_regress_unknown_ref_is_one_line_exit_2(tiny_spec_file):
    before = _worktrees()
    done = grpclab("regress", "--base", "no-such-ref-xyz", "--spec", str(tiny_spec_file))
    assert done.returncode == 2
    assert "no-such-ref-xyz" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _worktrees() == before


@pytest.mark.slow
@pytest.mark.timeout(900)  # builds a venv: from pip's cache (filled by make setup) about 30 s, longer without it
def test_regress_can_give_the_base_its_own_environment(tiny_spec_file, tmp_path):
    """--base-env own (what auto does when the pins differ): the base server runs on a venv built from its pins."""
    before = _worktrees()
    out = tmp_path / "regress"
    done = grpclab(
        "regress",
        "--base",
        "HEAD",
        "--spec",
        str(tiny_spec_file),
        "--out",
        str(out),
        "--base-env",
        "own",
        "--max-repetitions",
        "2",
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "building the base's own environment" in done.stdout
    base, head = results.read_manifest(out / "base"), results.read_manifest(out / "head")
    assert base.regress.server_environment == "the base's own venv, from its pins"
    assert head.regress.server_environment == "this checkout's environment"
    python = base.environment.python_executable
    assert python != sys.executable and python.endswith("/venv/bin/python")
    assert base.environment.versions["grpcio"] == head.environment.versions["grpcio"]  # same pins
    assert not Path(python).exists()  # removed with the worktree
    assert _worktrees() == before
    assert len(results.load(out / "base")) == 2 and not results.load(out / "base")["failed"].any()


def test_cli_metric_defaults_are_compare_s_and_the_gate_s():
    from bench.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["compare", "a", "b"]).metric == ",".join(compare.DEFAULT_METRICS)
    assert parser.parse_args(["regress", "--base", "x"]).metric == ",".join(compare.GATE_METRICS)
    regress_defaults = parser.parse_args(["regress", "--base", "x"])
    assert regress_defaults.budget * 60 == adaptive.DEFAULT_BUDGET_S
    assert regress_defaults.max_repetitions == adaptive.DEFAULT_MAX_REPETITIONS
    assert "lat_p99_ms" not in compare.GATE_METRICS and set(compare.GATE_METRICS) < set(compare.DEFAULT_METRICS)


# -- grpclab compare on the committed runs (no process) -----------------------------------------------

DATA = REPO / "tests" / "data"
RUN_V1, RUN_V2 = DATA / "sample-run-v1", DATA / "sample-run"  # before and after the manifest got its type


def test_compare_reads_a_run_written_before_the_manifest_format_change(capsys):
    assert cli.main(["compare", str(RUN_V1), str(RUN_V2), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["base"]["commit"] != doc["head"]["commit"] and doc["base"]["status"] == "complete"
    cells = {row["cell_key"] for row in doc["rows"]}
    assert cells == set(results.load(RUN_V1)["cell_key"]) == set(results.load(RUN_V2)["cell_key"])
    assert {row["verdict"] for row in doc["rows"]} <= {"~", "n/a"}  # 2 repetitions a side can never be significant
    assert "too few usable repetitions" in err and "left out" in err  # saturated repetitions are named


def test_compare_markdown_and_refusals_on_the_committed_runs(capsys, tmp_path):
    assert cli.main(["compare", str(RUN_V1), str(RUN_V2), "--format", "markdown"]) == 0
    assert "| cell | metric | base | head |" in capsys.readouterr().out
    other = shutil.copytree(RUN_V2, tmp_path / "other")
    manifest = json.loads((other / results.MANIFEST).read_text())
    manifest["environment"]["versions"]["protobuf"] = "0.0.1"
    (other / results.MANIFEST).write_text(json.dumps(manifest))
    assert cli.main(["compare", str(RUN_V1), str(other)]) == 2
    err = capsys.readouterr().err
    assert "protobuf" in err and "0.0.1" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["compare", str(RUN_V1), str(RUN_V2), "--metric", "rps,nope"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err
