"""`grpclab run` end to end, through the real CLI in a subprocess.

What a run leaves behind (manifest, tidy tables, one row per cell x repetition in the
recorded shuffled order), that a killed or interrupted run leaves no process behind and
resumes exactly where it stopped, that bad input is one line and exit 2 and writes
nothing, and that a cell that fails is a row, not the end of the run.

Every process a run starts inherits a per-test token in its environment, so the tests
find all of them (servers run in their own sessions; a killed run's children are
reparented) and stop any that is left over, by pid, even when a test fails.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import google.protobuf
import grpc
import pandas as pd
import psutil
import pytest

from bench.analysis import findings, results, schema
from bench.machine import environment
from bench.run.manifest import MANIFEST, Manifest, PlacementInfo
from bench.run.placement import LocalPlacement
from bench.run.plan import Plan
from bench.run.store import CELLS_DIR, RunStore, cell_file_name
from bench.spec import load_spec, parse_spec, with_settings

REPO = Path(__file__).resolve().parent.parent
TOKEN = "GRPCLAB_TEST_RUNNER_TOKEN"
CLI_TIMEOUT_S = 120

pytestmark = [
    pytest.mark.slow,  # real servers and load generators: not part of `pytest -m "not slow"`
    pytest.mark.skipif(
        not {0, 1} <= os.sched_getaffinity(0), reason="runs pin the server to CPU 0 and the load generator to CPU 1"
    ),
]

# Three cells x two repetitions; the spec's own duration and repetitions are overridden on the
# command line. With the default seed (1) both rounds come out in a different, non-spec order.
TINY = """
name = "tiny"
[settings]
duration = 5.0
warmup = 0.1
repetitions = 3
cell_timeout = 20.0
calibrate = false  # tests/test_machine_run.py runs the calibration; these tests are about the run's directory
[axes]
impl = ["sync"]
rpc = ["unary", "server_stream", "bidi"]
stream_messages = [3]
concurrency = [2]
"""

# Six short cells, one repetition each: about 1 s per cell.
SIX = """
name = "six"
[settings]
duration = 0.3
warmup = 0.1
repetitions = 1
cell_timeout = 20.0
calibrate = false
[axes]
impl = ["sync", "aio"]
concurrency = [1, 2, 4]
"""


class Cli:
    """Runs `python -m bench.cli` with a token in its environment and finds every process carrying it."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.popens: list[subprocess.Popen] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, TOKEN: self.token, **(extra or {})}

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bench.cli", *map(str, args)],
            cwd=REPO,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )

    def start(self, *args: str, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.cli", *map(str, args)],
            cwd=REPO,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )
        self.popens.append(proc)
        return proc

    def processes(self) -> list[psutil.Process]:
        """Every live process started (directly or not) by this test's runs."""
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get(TOKEN) == self.token and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def lab_processes(self, needle: str) -> list[psutil.Process]:
        """The live token processes whose command line contains ``needle`` (e.g. 'bench.cli serve')."""
        found = []
        for proc in self.processes():
            try:
                if needle in " ".join(proc.cmdline()):
                    found.append(proc)
            except psutil.NoSuchProcess:
                continue
        return found

    def wait_gone(self, timeout: float = 20.0) -> list[str]:
        """Wait until no token process is alive; return the command lines of those still alive after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            alive = self.processes()
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        lines = []
        for proc in alive:
            try:
                lines.append(f"pid {proc.pid}: {' '.join(proc.cmdline())}")
            except psutil.NoSuchProcess:
                continue
        return lines

    def cleanup(self) -> list[str]:
        """Kill what this test started and is still alive (by pid); return what was left over."""
        for proc in self.popens:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        leftovers = self.wait_gone(timeout=10.0)
        for proc in self.processes():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        return leftovers


@pytest.fixture
def cli() -> Iterator[Cli]:
    runs = Cli()
    try:
        yield runs
    finally:
        leftovers = runs.cleanup()
    if leftovers:
        pytest.fail("processes left behind by the run:\n" + "\n".join(leftovers), pytrace=False)


def git_head() -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def write_spec(directory: Path, text: str, name: str = "spec.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def cell_files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / CELLS_DIR).glob("*.json"))}


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every path under ``directory`` with its bytes (None for directories)."""
    return {str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes() for p in sorted(directory.rglob("*"))}


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"run exited ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def mid_cell(cli: Cli, run_dir: Path, proc: subprocess.Popen) -> None:
    """Wait until at least one repetition is on disk and another one is being measured."""
    wait_for(
        lambda: cell_files(run_dir) and cli.lab_processes("bench.load.worker"),
        timeout=90,
        what="a finished repetition and a running one",
        proc=proc,
    )


# -- a run's directory ------------------------------------------------------------------------


def test_run_leaves_manifest_and_one_typed_row_per_cell_and_repetition(cli, tmp_path):
    spec_path = write_spec(tmp_path, TINY)
    out = tmp_path / "run"
    heads = {git_head()}
    done = cli.run(
        "run",
        spec_path,
        "--out",
        out,
        "--duration",
        "0.3",
        "--repetitions",
        "2",
        "--server-cpus",
        "0",
        "--loadgen-cpus",
        "1",
    )
    heads.add(git_head())  # others may commit while the run runs
    assert done.returncode == 0, done.stderr
    assert f"results: {out}/cells.parquet, cells.csv, manifest.json, findings.json" in done.stdout
    assert done.stderr == ""
    # three RPC kinds of one server: one study, each streaming kind against unary, and nothing else
    assert [f.study for f in findings.read(out / findings.FILE_NAME).findings] == ["rpc", "rpc"]
    # the findings come last, after the line naming the files
    lines = done.stdout.splitlines()
    files_at = next(i for i, line in enumerate(lines) if line.startswith("results: "))
    assert [line for line in lines[files_at:] if line.startswith("Findings")][0].startswith("Findings (2)")

    # the manifest: spec, settings as run, code and machine, pinning, the plan
    manifest = results.read_manifest(out)
    assert json.loads((out / MANIFEST).read_text())["schema"] == "grpclab.run/2"
    assert manifest.status == "complete" and manifest.ended_at
    assert manifest.spec_name == "tiny"
    assert manifest.spec_path == str(spec_path)
    assert manifest.spec_source == tomllib.loads(TINY)
    assert manifest.settings.duration == 0.3 and manifest.settings.repetitions == 2
    assert manifest.placement == PlacementInfo(kind="local", server_cpus=(0,), loadgen_cpus=(1,))
    env = manifest.environment
    assert env.git.commit in heads and len(env.git.commit) == 40
    assert isinstance(env.git.dirty, bool)
    assert env.cpu_model == environment.cpu_model() != ""
    assert env.versions["grpcio"] == grpc.__version__
    assert env.versions["protobuf"] == google.protobuf.__version__
    assert env.versions["python"] == platform.python_version()

    # the plan: every cell once per round, rounds in repetition order, each round shuffled with the seed
    spec = with_settings(load_spec(spec_path), duration=0.3, repetitions=2)
    keys = [cell.key() for cell in spec.cells]
    plan = manifest.plan
    assert plan == Plan.make(spec.cells, spec.settings)
    assert manifest.steps == len(plan.steps) == 3 * 2 and manifest.cells == 3
    plan_steps = plan.steps
    plan_keys = [cell.key() for cell, _ in plan_steps]
    plan_reps = [rep for _, rep in plan_steps]
    assert plan_reps == [0, 0, 0, 1, 1, 1]
    assert sorted(plan_keys[:3]) == sorted(plan_keys[3:]) == sorted(keys)
    assert plan_keys[:3] != keys or plan_keys[3:] != keys, "the rounds were not shuffled"

    # the tidy table: one typed row per cell x repetition, each at its place in the plan
    df = results.load(out)
    assert len(df) == 6
    assert sorted(df["order"]) == list(range(6))
    for row in df.itertuples():
        assert (row.cell_key, row.repetition) == (plan_keys[row.order], plan_reps[row.order])
    assert not df["failed"].any(), df["error"].tolist()
    assert (df["rpcs_ok"] > 0).all() and (df["duration_s"] == 0.3).all()
    assert set(df["server_cpus"]) == {"0"} and set(df["loadgen_cpus"]) == {"1"}
    assert isinstance(df["impl"].dtype, pd.CategoricalDtype)
    for name in ("rpcs", "repetition", "order", "concurrency"):
        assert df[name].dtype == "int64", name
    for name in ("rps", "lat_p99_ms", "server_cpu_us_per_rpc", "rate"):
        assert df[name].dtype == "float64", name
    for name in ("failed", "loadgen_saturated"):
        assert df[name].dtype == "bool", name
    # ... and run in that order: each repetition's file was written after the previous one's
    written = sorted(
        df.itertuples(), key=lambda r: (out / CELLS_DIR / cell_file_name(r.cell_key, r.repetition)).stat().st_mtime_ns
    )
    assert [r.order for r in written] == list(range(6))

    # cells.csv: the same rows in run order, without the histograms, every value as text
    with open(out / "cells.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == schema.CSV_NAMES
        rows = list(reader)
    assert [(r["cell_key"], int(r["repetition"])) for r in rows] == list(zip(plan_keys, plan_reps, strict=True))
    assert {r["server_cpus"] for r in rows} == {"0"} and {r["loadgen_cpus"] for r in rows} == {"1"}


# -- SIGKILL, resume, Ctrl-C ------------------------------------------------------------------


def test_killed_run_leaves_no_process_and_resume_runs_only_the_missing_repetitions(cli, tmp_path):
    out = tmp_path / "run"
    proc = cli.start("run", write_spec(tmp_path, SIX), "--out", out)
    mid_cell(cli, out, proc)
    servers = cli.lab_processes("bench.cli serve")
    loadgens = cli.lab_processes("bench.load.worker")
    assert servers and loadgens, "the kill must land while a cell is being measured"
    # while there: the server really runs on CPU 0 and the load generator on CPU 1
    for group, cpus in ((servers, [0]), (loadgens, [1])):
        for child in group:
            try:
                if Path(child.cmdline()[0]).name != "taskset":  # not yet exec'd by `taskset -c`
                    assert child.cpu_affinity() == cpus, " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                continue
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)

    # Both die with their parent (PR_SET_PDEATHSIG): a server gets SIGTERM and its 2 s grace
    # to finish, a load generator exits at once. Nothing may linger until a timeout of its own
    # (a load generator still connecting to the dead server would wait 10 s).
    leftovers = cli.wait_gone(timeout=8.0)
    assert not leftovers, leftovers
    before = cell_files(out)
    assert 1 <= len(before) < 6
    assert results.read_manifest(out).status == "running"

    resumed = cli.run("run", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    missing = 6 - len(before)
    progress = [line for line in resumed.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == missing and progress[-1].startswith(f"[{missing}/{missing}]"), resumed.stdout
    after = cell_files(out)
    assert len(after) == 6
    assert {name: after[name] for name in before} == before, "resume rewrote finished repetitions"
    df = results.load(out)
    assert len(df) == 6 and not df.duplicated(["cell_key", "repetition"]).any()
    assert not df["failed"].any(), df["error"].tolist()
    manifest = results.read_manifest(out)
    assert manifest.status == "complete"
    assert sorted(df["order"]) == list(range(6))
    assert not cli.processes()


@pytest.mark.parametrize(
    ("sig", "to_group"),
    [
        pytest.param(signal.SIGINT, False, id="sigint"),
        # a terminal's Ctrl-C: the whole foreground process group, load generators included
        pytest.param(signal.SIGINT, True, id="ctrl-c-to-process-group"),
        pytest.param(signal.SIGTERM, False, id="sigterm"),
    ],
)
def test_interrupted_run_exits_130_says_how_to_resume_and_leaves_no_process(cli, tmp_path, sig, to_group):
    out = tmp_path / "run"
    proc = cli.start("run", write_spec(tmp_path, SIX), "--out", out, start_new_session=True)
    mid_cell(cli, out, proc)
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert f"continue with: grpclab run --resume {out}" in stdout
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert not cli.wait_gone(timeout=5.0), "processes left behind"  # the run stopped them before it exited
    assert results.read_manifest(out).status == "interrupted"
    # finished repetitions are kept and valid; the interrupted one is not recorded (not even as failed)
    rows = RunStore.open(out).rows()
    assert 1 <= len(rows) < 6
    assert not any(row["failed"] for row in rows), [row["error"] for row in rows]


# -- bad input --------------------------------------------------------------------------------

BAD_SPECS = [
    pytest.param('name = "x"\n[axes]\ncompression = ["none", "gzp"]\n', [], "axes.compression[1]", id="axis-value"),
    pytest.param('name = "x"\ncolour = 1\n', [], "colour: unknown key", id="top-level-key"),
    pytest.param('name = "x"\n[axes]\ncolour = [1]\n', [], "axes.colour: unknown axis", id="axis-name"),
    pytest.param('name = "x"\n[settings]\ndurration = 1\n', [], "settings.durration", id="settings-key"),
    pytest.param('name = "x"\n[axes\n', [], ("spec.toml: invalid TOML", "line 2"), id="invalid-toml"),
    pytest.param("[axes]\nimpl = ['aio']\n", [], "name: required", id="no-name"),
    pytest.param(TINY, ["--filter", "impl=asio"], "--filter: impl", id="filter-value"),
    pytest.param(TINY, ["--filter", "colour=red"], "--filter: unknown axis 'colour'", id="filter-axis"),
    pytest.param(TINY, ["--filter", "impl"], "--filter: expected axis=value", id="filter-syntax"),
    pytest.param(TINY, ["--filter", "impl=aio"], "--filter: 'impl=aio' selects no cell", id="filter-selects-nothing"),
    pytest.param(
        TINY, ["--server-cpus", "99"], ("settings.server_cpus: CPU 99 is not available", "--server-cpus"), id="cpu-99"
    ),
    pytest.param(TINY, ["--loadgen-cpus", "0"], "settings.loadgen_cpus: overlaps", id="cpus-overlap"),
    pytest.param(TINY, ["--server-cpus", "zero"], "argument --server-cpus", id="cpu-not-a-number"),
    pytest.param(TINY, ["--duration", "0"], "settings.duration", id="duration"),
    pytest.param(TINY, ["--repetitions", "0"], "settings.repetitions", id="repetitions"),
]


def assert_one_line_error(done: subprocess.CompletedProcess, *expected: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("grpclab run: error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(("spec_text", "extra", "expected"), BAD_SPECS)
def test_bad_spec_or_flag_is_one_line_exit_2_and_writes_nothing(cli, tmp_path, spec_text, extra, expected):
    spec = write_spec(tmp_path, spec_text)
    out = tmp_path / "run"
    done = cli.run("run", spec, "--out", out, *extra)
    assert_one_line_error(done, *((expected,) if isinstance(expected, str) else expected))
    assert done.stdout == ""
    assert not out.exists()


def test_missing_or_unreadable_spec_file_is_named(cli, tmp_path):
    out = tmp_path / "run"
    missing = cli.run("run", tmp_path / "nope.toml", "--out", out)
    assert_one_line_error(missing, f"spec file not found: {tmp_path / 'nope.toml'}")
    a_directory = cli.run("run", tmp_path, "--out", out)
    assert_one_line_error(a_directory, f"{tmp_path}: cannot read")
    assert not out.exists()


@pytest.fixture
def planned_run(tmp_path: Path) -> Path:
    """A run directory as `grpclab run` creates it before its first cell: manifest, empty cells/."""
    spec = parse_spec(tomllib.loads(TINY), "tiny.toml")
    run_dir = tmp_path / "planned"
    where = LocalPlacement.from_settings(spec.settings).describe()
    RunStore.create(run_dir, Manifest.new(spec, Plan.make(spec.cells, spec.settings), None, where))
    return run_dir


def test_resume_of_something_that_is_not_a_run_is_named_and_left_alone(cli, tmp_path, planned_run):
    not_a_run = tmp_path / "notes"
    not_a_run.mkdir()
    (not_a_run / "todo.txt").write_text("measure things\n")
    before = snapshot(not_a_run)
    done = cli.run("run", "--resume", not_a_run)
    assert_one_line_error(done, str(not_a_run / "manifest.json"), "not found")
    assert snapshot(not_a_run) == before

    absent = tmp_path / "absent"
    assert_one_line_error(cli.run("run", "--resume", absent), str(absent / "manifest.json"))
    assert not absent.exists()

    (planned_run / "manifest.json").write_text('{"schema": "grpclab.run/1", ')
    before = snapshot(planned_run)
    assert_one_line_error(cli.run("run", "--resume", planned_run), "manifest.json: corrupt manifest")
    assert snapshot(planned_run) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("{not json", "corrupt cell file", id="not-json"),
        pytest.param('{"schema": "someone.else/1", "row": {}}', "not a grpclab cell file", id="foreign"),
        pytest.param('{"schema": "grpclab.cell/1", "row": {"impl": "sync"}}', "lacks columns", id="truncated-row"),
    ],
)
def test_resume_with_a_corrupt_cell_file_names_it_and_writes_nothing(cli, planned_run, content, expected):
    broken = planned_run / CELLS_DIR / "0123456789abcdef-r0.json"
    broken.write_text(content)
    before = snapshot(planned_run)
    done = cli.run("run", "--resume", planned_run)
    assert_one_line_error(done, str(broken), expected)
    assert done.stdout == ""
    assert snapshot(planned_run) == before


def test_out_to_a_non_empty_directory_is_refused_and_left_alone(cli, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    before = snapshot(out)
    done = cli.run("run", write_spec(tmp_path, TINY), "--out", out)
    assert_one_line_error(done, str(out), "not empty", f"--resume {out}")
    assert done.stdout == ""
    assert snapshot(out) == before


# -- a cell that fails ------------------------------------------------------------------------


def refusing_taskset(directory: Path) -> Path:
    """A `taskset` test double that refuses to start aio servers and runs everything else normally.

    The runner starts servers and load generators through `taskset -c CPUS`; putting this first on
    PATH makes exactly the aio cells' servers fail to start, the way a broken server would: an
    error line on stderr and exit 2 before the ready line.
    """
    real = shutil.which("taskset")
    run_rest = f'exec {real} "$@"' if real else 'shift 2; exec "$@"'
    script = directory / "taskset"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  *"bench.cli serve --impl aio"*)\n'
        '    echo "grpclab serve: error: aio server refused by the test double" >&2; exit 2 ;;\n'
        "esac\n"
        f"{run_rest}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def test_a_cell_whose_server_cannot_start_is_a_failed_row_and_the_run_goes_on(cli, tmp_path):
    bin_dir = refusing_taskset(tmp_path)
    out = tmp_path / "run"
    done = cli.run(
        "run", write_spec(tmp_path, SIX), "--out", out, env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    )
    assert done.returncode == 0, done.stderr
    assert "FAILED: server --impl aio" in done.stdout
    assert results.read_manifest(out).status == "complete"
    df = results.load(out).sort_values("order")
    assert len(df) == 6
    failed = df[df["failed"]]
    assert set(failed["impl"]) == {"aio"} and len(failed) == 3
    assert failed["error"].str.contains("did not start: grpclab serve: error: aio server refused").all()
    assert (failed["rpcs"] == 0).all() and failed["rps"].isna().all() and failed["lat_p50_ms"].isna().all()
    ok = df[~df["failed"]]
    assert set(ok["impl"]) == {"sync"} and (ok["rpcs_ok"] > 0).all() and (ok["error"] == "").all()
    # the run went on after a failure: some repetition succeeded after one failed
    assert ok["order"].max() > failed["order"].min()
    with open(out / "cells.csv", newline="") as f:
        assert sum(r["failed"] == "true" for r in csv.DictReader(f)) == 3


def test_a_server_refusing_its_fault_knobs_fails_every_cell_but_the_run_completes(cli, tmp_path):
    out = tmp_path / "run"
    spec = write_spec(tmp_path, SIX)
    done = cli.run("run", spec, "--out", out, "--filter", "concurrency=1", env={"GRPCLAB_INJECT_DELAY_US": "soon"})
    assert done.returncode == 0, done.stderr
    df = results.load(out)
    assert len(df) == 2 and df["failed"].all()
    assert df["error"].str.contains("GRPCLAB_INJECT_DELAY_US: expected a non-negative integer, got 'soon'").all()
    assert results.read_manifest(out).filter == "concurrency=1"
