"""`grpclab regress --base GIT_REF`: this checkout's servers against a base commit's, measured interleaved.

What it measures
----------------
The base commit is checked out into a temporary git worktree (``git worktree add
--detach``; removed afterwards, also on failure, Ctrl-C or SIGTERM). Each server
under test runs from its own source tree: ``python -m bench.cli serve`` with the
tree as working directory and first on PYTHONPATH. The harness, the load
generator and the spec are this checkout's (head's) and identical for both
sides, so the gate measures the **servers** (servers/, protos/, the serve entry
point, and the packages they run on), not a change of the load generator.

Packages: with ``--base-env auto`` (the default) the base gets **its own
environment** when its pins (constraints.txt, pyproject.toml) differ from head's:
a venv inside the temporary directory, built from the base's pins the way
``make setup`` builds .venv (runtime dependencies only; ~1 min from pip's cache),
so a grpcio or protobuf upgrade is measured as such. The base's manifest records
that environment's versions, and the comparison shows the difference as a warning
instead of refusing it. With identical pins both sides run on this environment
(the same packages; building a copy would measure nothing). ``--base-env own``
always builds one; ``--base-env shared`` never does (code changes only).

How it runs
-----------
Both sides get the same plan: the spec's cells x repetitions in the runner's
shuffled, seeded order. Each step is measured on both sides back to back, the
order within the pair a seeded coin flip (ABBA..., never always base first), one
server at a time with the spec's CPU pinning. Drift of the machine over the run
(thermal, noisy neighbours, CI runner load) therefore hits base and head
equally. Two ordinary run directories result, ``base/`` and ``head/``, plus
``comparison.md`` and ``comparison.json`` (see bench/gate/stats.py for the statistics).

How many repetitions: adaptively (bench/gate/adaptive.py). The first round is the
spec's repetitions (``--repetitions``); then, while a gated cell x metric could not
have detected a change of the threshold, the underpowered cells get more interleaved
pairs in further rounds, until none is underpowered, the measuring budget
(``--budget`` minutes) is spent, or ``--max-repetitions`` is reached. The rule looks
only at each side's spread, never at the base/head difference, and the comparison
is made once, at the end. ``--max-repetitions`` equal to ``--repetitions`` measures a
fixed number, as before. Each round's steps are appended to both manifests' plans,
and ``regress`` in the manifests records the budget, the rounds and why it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..machine import environment
from ..run import placement, server_process
from ..run.executor import Side, estimate_seconds, execute, sigterm_interrupts
from ..run.manifest import GitState, Manifest, RegressInfo
from ..run.measure import ServerCode
from ..run.plan import Plan
from ..run.progress import Reporter, console
from ..run.store import RunStore
from ..spec import Cell, Settings, SpecError, filter_cells, load_spec, with_settings
from . import adaptive, compare, render

DEFAULT_SPEC = "bench/specs/ci.toml"
RESULTS_ROOT = Path("results")
REPO = environment.REPO


class RegressError(Exception):
    """A gate that cannot run (unknown ref, not a git checkout, base server does not start): exit 2."""


# -- git -----------------------------------------------------------------


def _git(repo: Path, *args: str, check: bool = True) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise RegressError("git not found on PATH") from None
    if check and done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise RegressError(f"git {' '.join(args)}: {detail}")
    return done.stdout.strip()


def resolve_commit(repo: Path, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise RegressError(f"--base: expected a git ref, got {ref!r}")
    sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if not sha:
        raise RegressError(
            f"--base: {ref!r} is not a commit in {repo} (in CI, check out with fetch-depth: 0 so base refs exist)"
        )
    return sha


@contextmanager
def worktree(repo: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of ``commit`` in a temporary directory, removed on exit whatever happens."""
    parent = Path(tempfile.mkdtemp(prefix="grpclab-regress-"))
    path = parent / "base"
    try:
        _git(repo, "worktree", "add", "--detach", str(path), commit)
        yield path
    finally:
        # --force: the servers leave __pycache__ behind; prune: forget it even if removal half-failed.
        _git(repo, "worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(parent, ignore_errors=True)
        _git(repo, "worktree", "prune", check=False)


def _pins_from_text(constraints: str | None, pyproject: str | None) -> dict[str, str]:
    pins: dict[str, str] = {}
    lines = list((constraints or "").splitlines())
    if pyproject:
        try:
            project = tomllib.loads(pyproject).get("project", {})
            lines += list(project.get("dependencies", []))
        except tomllib.TOMLDecodeError:
            pass
    for line in lines:
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep and name.strip():
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def pin_differences(repo: Path, commit: str) -> list[str]:
    """'name base -> head' for every package pinned differently in the base commit and in this checkout."""

    def show(name: str) -> str | None:
        text = _git(repo, "show", f"{commit}:{name}", check=False)
        return text or None

    def read(name: str) -> str | None:
        try:
            return (repo / name).read_text()
        except OSError:
            return None

    base = _pins_from_text(show("constraints.txt"), show("pyproject.toml"))
    head = _pins_from_text(read("constraints.txt"), read("pyproject.toml"))
    return [
        f"{name} {base.get(name, '(none)')} -> {head.get(name, '(none)')}"
        for name in sorted(set(base) | set(head))
        if base.get(name) != head.get(name)
    ]


def _check_server_starts(code_dir: Path, what: str, python: str | None = None) -> None:
    """Fail fast with one line when a side's server cannot even start (e.g. the base needs other packages)."""
    try:
        with server_process.running(
            ["--impl", "sync", "--port", "0", "--exit-with-parent"], code_dir=code_dir, python=python, timeout=30.0
        ):
            pass
    except server_process.ServerStartError as exc:
        hint = "" if python else " (if it needs other packages, give it its own environment: --base-env own)"
        raise RegressError(f"the {what} server does not start from {code_dir}: {exc}{hint}") from None


# -- the base's own environment -------------------------------------------------

BASE_ENV_CHOICES = ("auto", "own", "shared")
ENV_BUILD_TIMEOUT_S = 900.0


def build_environment(tree: Path, venv: Path) -> str:
    """A venv at ``venv`` with the packages ``tree`` pins (its constraints.txt); returns its interpreter.

    What ``make setup`` would install in that checkout (runtime dependencies only), so a
    dependency upgrade between base and head (e.g. grpcio) is measured, not hidden.
    """
    python = str(venv / "bin" / "python")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PIP_CONSTRAINT", None)  # head's constraints, inherited from make: not the base's
    if (tree / "constraints.txt").is_file():
        env["PIP_CONSTRAINT"] = str(tree / "constraints.txt")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", "--quiet", "-e", f"{tree}[uvloop]"],
    ]
    for command in steps:
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=ENV_BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RegressError(
                f"building the base's environment: {command[2]} took over {ENV_BUILD_TIMEOUT_S:.0f} s"
            ) from None
        if done.returncode != 0:
            detail = ((done.stderr or done.stdout).strip().splitlines() or ["failed"])[-1]
            raise RegressError(f"building the base's environment ({' '.join(command[1:4])}): {detail}")
    return python


def environment_versions(python: str) -> dict[str, str | None]:
    """environment.versions() as another interpreter (the base's venv) sees it: this checkout's
    bench.machine.environment (stdlib only), imported from the working directory, run on that interpreter."""
    script = "import json; from bench.machine.environment import versions; print(json.dumps(versions()))"
    done = subprocess.run([python, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RegressError(f"reading the base environment's versions: {done.stderr.strip()[-200:]}")
    return json.loads(done.stdout)


# -- measuring in rounds ----------------------------------------------------


class InterleavedRounds:
    """adaptive.Measurer over real sides: each round's repetitions measured on base and head, interleaved."""

    def __init__(self, sides: Sequence[Side], cells: Sequence[Cell], settings: Settings, metrics: Sequence[str]):
        self.sides = sides
        self.cells = {cell.key(): cell for cell in cells}
        self.settings = settings
        self.metrics = tuple(metrics)
        self.rounds = 0
        self.spent_s = 0.0
        self.pairs = 0

    def measure(self, targets: Mapping[str, int]) -> None:
        counts = self.attempted()
        wanted = [(self.cells[k], counts.get(k, 0), n) for k, n in targets.items() if n > counts.get(k, 0)]
        self.rounds += 1
        seed = self.settings.seed if self.rounds == 1 else self.settings.seed * 1000 + self.rounds
        plan = Plan.repetitions(wanted, seed)
        if self.rounds > 1:
            extra = sum(stop - first for _, first, stop in wanted)
            print(
                f"round {self.rounds}: {len(wanted)} underpowered cells, {extra} more repetitions per side "
                f"(~{extra * self.seconds_per_pair() / 60:.1f} min)",
                flush=True,
            )
        # The manifests' plans grow by the round's steps, and the executor is given the whole plan: it
        # measures the steps not yet measured (as a resumed run), each with its position in the run as
        # its `order`, and draws the order of the sides afresh for the new steps.
        for side in self.sides:
            side.store.manifest = replace(side.store.manifest, plan=Plan(side.store.manifest.plan.steps + plan.steps))
        began = time.monotonic()
        try:
            execute(self.sides, self.sides[0].store.manifest.plan, self.settings, Reporter(console(), sides=True))
        finally:
            self.spent_s += time.monotonic() - began
            self.pairs += len(plan.steps)

    def frames(self) -> list[pd.DataFrame]:
        return [pd.DataFrame(side.store.rows()) for side in self.sides]

    def attempted(self) -> dict[str, int]:
        """Repetitions per cell that both sides have measured (failed ones included)."""
        counts = [df.groupby("cell_key").size().to_dict() if len(df) else {} for df in self.frames()]
        return {key: min(c.get(key, 0) for c in counts) for key in self.cells}

    def noise(self) -> list[adaptive.CellNoise]:
        base, head = (df[compare.usable(df)] for df in self.frames())
        attempted = self.attempted()
        cells = []
        for key in self.cells:
            b, h = base[base["cell_key"] == key], head[head["cell_key"] == key]
            noise = {m: adaptive.metric_noise(b[m].to_numpy(float), h[m].to_numpy(float)) for m in self.metrics}
            cells.append(adaptive.CellNoise(key, attempted[key], noise))
        return cells

    def elapsed_s(self) -> float:
        return self.spent_s

    def seconds_per_pair(self) -> float:
        if self.pairs:
            return self.spent_s / self.pairs
        return estimate_seconds(1, len(self.sides), self.settings)


# -- the command ----------------------------------------------------------


def regress(
    *,
    base_ref: str,
    spec_path: str = DEFAULT_SPEC,
    out: Path | None = None,
    threshold: float = compare.DEFAULT_THRESHOLD,
    alpha: float = compare.DEFAULT_ALPHA,
    metrics: str = ",".join(compare.GATE_METRICS),
    repetitions: int | None = None,
    budget_min: float = adaptive.DEFAULT_BUDGET_S / 60,
    max_repetitions: int = adaptive.DEFAULT_MAX_REPETITIONS,
    filter_expr: str | None = None,
    fail_on_regression: bool = False,
    base_env: str = "auto",
    repo: Path = REPO,
) -> int:
    """Run the gate; returns the exit code (0, 1 on a regression with --fail-on-regression, 130 on Ctrl-C)."""
    metric_names = compare.parse_metrics(metrics)
    compare.check_alpha_threshold(alpha, threshold)  # before measuring, not after
    if not budget_min > 0:
        raise RegressError(f"--budget: expected minutes of measuring > 0, got {budget_min}")
    top = Path(_git(repo, "rev-parse", "--show-toplevel"))
    base_sha = resolve_commit(top, base_ref)
    head_sha = _git(top, "rev-parse", "HEAD", check=False) or None
    spec = with_settings(load_spec(spec_path), repetitions=repetitions)
    cells = filter_cells(spec.cells, filter_expr) if filter_expr else spec.cells
    if not cells:
        raise SpecError(f"--filter: {filter_expr!r} selects no cell of {spec.name}")
    first = spec.settings.repetitions
    if max_repetitions < first:
        raise RegressError(
            f"--max-repetitions: {max_repetitions} is below the first round's {first} repetitions "
            "(equal measures a fixed number)"
        )
    rule = adaptive.Rule(
        threshold=threshold,
        alpha=alpha,
        metrics=metric_names,
        directions=compare.DIRECTION,
        budget_s=budget_min * 60,
        max_repetitions=max_repetitions,
    )
    where = placement.for_settings(spec.settings)
    where.check()
    out = out or RESULTS_ROOT / f"regress-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()):
        raise RegressError(f"--out: {out} already exists and is not empty")

    if base_env not in BASE_ENV_CHOICES:
        raise RegressError(f"--base-env: expected one of {', '.join(BASE_ENV_CHOICES)}, got {base_env!r}")
    pins = pin_differences(top, base_sha)
    own_env = base_env == "own" or (base_env == "auto" and bool(pins))
    for line in pins:
        which = "the base gets its own environment" if own_env else "both sides run on THIS environment's packages"
        print(f"note: base pins differ from head's: {line}; {which}", file=sys.stderr)
    minutes = estimate_seconds(len(cells) * first, 2, spec.settings) / 60
    more = (
        f"then more for underpowered cells, up to {max_repetitions} per cell and {budget_min:g} min of measuring"
        if max_repetitions > first
        else "fixed"
    )
    print(
        f"regress: base {base_ref} ({base_sha[:12]}) vs head {head_sha[:12] if head_sha else '?'} (this checkout): "
        f"{len(cells)} cells x {first} repetitions x 2 sides, interleaved (~{minutes:.1f} min); {more}; "
        f"out {out}",
        flush=True,
    )
    began = time.monotonic()
    try:
        with sigterm_interrupts(), worktree(top, base_sha) as tree:
            base_python = None
            if own_env:
                print(f"building the base's own environment from its pins in {tree.parent / 'venv'}", flush=True)
                base_python = build_environment(tree, tree.parent / "venv")
            _check_server_starts(tree, "base", base_python)
            _check_server_starts(top, "head")
            manifests = {}
            for side in ("base", "head"):
                manifest = Manifest.new(spec, Plan([]), filter_expr, where.describe())  # rounds add their steps
                info = RegressInfo(
                    side=side,
                    ref=base_ref if side == "base" else "HEAD (working tree)",
                    commit=base_sha if side == "base" else head_sha,
                    base_ref=base_ref,
                    base_commit=base_sha,
                    server_code="git worktree of the base commit" if side == "base" else str(top),
                    harness="head's harness and load generator for both sides (measures server-side changes)",
                    server_environment="the base's own venv, from its pins"
                    if side == "base" and base_python
                    else "this checkout's environment",
                )
                env = manifest.environment
                if side == "base":
                    env = replace(env, git=GitState(**environment.git_state(tree)))
                    if base_python:  # what the base's server ran on, so compare shows an upgrade as such
                        env = replace(env, versions=environment_versions(base_python), python_executable=base_python)
                manifests[side] = replace(manifest, regress=info, environment=env)
            sides = [
                Side(
                    RunStore.create(out / "base", manifests["base"]),
                    "base",
                    ServerCode(code_dir=tree, python=base_python),
                ),
                Side(RunStore.create(out / "head", manifests["head"]), "head", ServerCode(code_dir=top)),
            ]
            rounds = InterleavedRounds(sides, cells, spec.settings, metric_names)
            outcome = adaptive.run(rounds, rule, {cell.key(): first for cell in cells})
            for side in sides:  # how the repetitions were chosen, in both manifests
                info = replace(
                    side.store.manifest.regress,
                    budget_s=rule.budget_s,
                    max_repetitions=max_repetitions,
                    rounds=outcome.rounds,
                    stop=outcome.stop,
                )
                side.store.manifest = replace(side.store.manifest, regress=info)
                side.store.write_manifest()
    except KeyboardInterrupt:
        print(f"\ninterrupted: the worktree is removed; partial runs kept in {out}", file=sys.stderr)
        return 130
    print(f"measured in {time.monotonic() - began:.0f} s", flush=True)

    try:
        # With its own environment the base may differ in grpcio or protobuf on purpose: warned, not refused.
        cmp = compare.compare_runs(
            out / "base", out / "head", metric_names, threshold, alpha, allow_env_mismatch=own_env
        )
    except compare.CompareError as exc:
        (out / "comparison.md").write_text(f"## grpclab regress\n\n**The runs could not be compared:** {exc}\n")
        raise
    cmp.adaptive = outcome.to_json()
    (out / "comparison.md").write_text(render.to_markdown(cmp))
    (out / "comparison.json").write_text(render.to_json(cmp))
    render.emit(cmp, "table")
    print(f"comparison: {out / 'comparison.md'} (and comparison.json); runs: {out / 'base'}, {out / 'head'}")
    return 1 if fail_on_regression and cmp.regression else 0
