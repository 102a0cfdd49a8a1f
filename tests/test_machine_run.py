"""Issue 11 part B, for real: `grpclab run` holds /dev/cpu_dma_latency for its whole duration and releases it
however it ends (SIGKILL included), a run with the hold off says so and measures the difference, and the
calibration lands in the manifest.

The request is read back from the device while the run goes on. Another process may hold a request too (the
device reads the lowest of all): the tests compare with what they read before, and skip when someone already holds
0 us, since then this run's request cannot be seen to come and go. No test judges a speed: the floor with and
without the hold are recorded, not compared.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.analysis import results, stability
from bench.machine import cpu_latency
from bench.run import calibration

REPO = Path(__file__).resolve().parent.parent
TOKEN = "GRPCLAB_TEST_MACHINE_RUN_TOKEN"
NO_REQUEST = cpu_latency.NO_REQUEST_US


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not {0, 1} <= os.sched_getaffinity(0), reason="runs pin the server to CPU 0 and the load generator to CPU 1"
    ),
    pytest.mark.skipif(not cpu_latency.may_hold(), reason="/dev/cpu_dma_latency cannot be opened here (needs root)"),
]

SPEC = """
name = "machine"
[settings]
duration = {duration}
warmup = 0.1
repetitions = 1
cell_timeout = 60.0
calibrate = {calibrate}
[axes]
concurrency = [1]
"""


def request_before() -> int:
    before = cpu_latency.read_request_us()
    assert before is not None
    if before == 0:
        pytest.skip("another process holds /dev/cpu_dma_latency at 0: this run's request cannot be told apart")
    return before


def start(tmp_path: Path, name: str, *args: str, duration: float = 0.3, calibrate: bool = True) -> subprocess.Popen:
    spec = tmp_path / f"{name}.toml"
    spec.write_text(SPEC.format(duration=duration, calibrate=str(calibrate).lower()))
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", str(spec), "--out", str(tmp_path / name), *args],
        cwd=REPO,
        env={**os.environ, TOKEN: name},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def watch(proc: subprocess.Popen, timeout: float = 120.0) -> tuple[list[int | None], str, str]:
    """The device's request, read every 10 ms until the run ends; then its output."""
    seen: list[int | None] = []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        seen.append(cpu_latency.read_request_us())
        time.sleep(0.01)
    out, err = proc.communicate(timeout=30)
    return seen, out, err


def held_spans(seen: list[int | None]) -> int:
    """How many separate stretches of 0 us the readings have."""
    return sum(1 for i, value in enumerate(seen) if value == 0 and (i == 0 or seen[i - 1] != 0))


def leftovers(token: str) -> list[str]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(TOKEN) == token and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(" ".join(proc.cmdline()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, list[int | None], int, str]]:
    """A run with the hold (the default) and one without, each calibrated: (dir, readings, before, stdout)."""
    tmp = tmp_path_factory.mktemp("machine-runs")
    done = {}
    for name, args in (("held", ()), ("off", ("--no-cpu-latency-hold",))):
        before = request_before()
        seen, out, err = watch(start(tmp, name, *args))
        assert "Traceback" not in err and f"results: {tmp / name}" in out, err
        assert cpu_latency.read_request_us() == before, "the run ended, its request must be gone"
        done[name] = (tmp / name, seen, before, out)
    return done


def test_a_run_holds_the_request_from_start_to_end_and_releases_it(runs):
    run_dir, seen, before, out = runs["held"]
    assert 0 in seen, "never saw the run's request"
    assert held_spans(seen) == 1, "released and taken again within one run"
    assert set(seen) <= {0, before}
    assert "holding /dev/cpu_dma_latency at 0 us (effective request: 0 us)" in out
    manifest = results.read_manifest(run_dir)
    assert manifest.cpu_latency_hold.held and manifest.cpu_latency_hold.effective_us == 0
    assert manifest.system.pinning == (0, 1) and manifest.system.cpu_latency_request_us == 0
    assert "cpu_latency_hold: /dev/cpu_dma_latency held at 0 us for the whole run: idle CPUs polled" in out


def test_the_calibration_lands_in_the_manifest_and_the_summary(runs):
    run_dir, _, _, out = runs["held"]
    cal = results.read_manifest(run_dir).calibration
    assert set(cal.floor) == {"python"} and not cal.failures and not cal.hold_off and cal.floor_with_hold is None
    floor = cal.floor["python"]
    assert floor.cell == calibration.floor_cell("python").key()
    assert 0 < floor.p50_ms <= floor.p99_ms and floor.rps > 0 and floor.server_cpu_us_per_rpc > 0
    assert cal.noise.cell == calibration.noise_cell().key()
    for metric, values in cal.noise.windows.items():
        assert len(values) == calibration.NOISE_WINDOWS and all(v > 0 for v in values)
        assert cal.noise.cv[metric] == pytest.approx(stability.cv(values))
    assert (cal.window_s, cal.warmup_s) == (0.3, 0.1) and cal.seconds > calibration.repetitions(["python"], False) * 0.4
    assert "floor (no-op unary, 0 B, one RPC in flight, sync server; as the run measures): python p50" in out
    assert "noise (CV of 5 repetitions of sync/unary/w4/p1/0B/text/none/tls-off/c8/n1/m1/closed/python)" in out


def test_a_run_with_the_hold_off_warns_and_measures_what_the_hold_changes(runs):
    run_dir, seen, before, out = runs["off"]
    # nothing held while the run measures: only the comparison floor, inside one short hold
    assert held_spans(seen) == 1 and set(seen) <= {0, before}
    assert seen.count(0) < seen.count(before)
    assert "warning: /dev/cpu_dma_latency not held: turned off (settings.cpu_latency_hold = false" in out
    manifest = results.read_manifest(run_dir)
    hold = manifest.cpu_latency_hold
    assert (hold.requested, hold.held, hold.effective_us) == (False, False, before)
    cal = manifest.calibration
    assert cal.hold_off and set(cal.floor_with_hold) == set(cal.floor) == {"python"}
    assert "the hold was off for this run; the floor held at 0 us for comparison: python p50" in out
    idle = next(c for c in manifest.system.checks if c.name == "cpuidle")
    if idle.status == "warning":  # a machine whose idle CPUs may sleep (this VM's): the summary says what it does
        assert f"warning: machine: cpuidle: {idle.value}" in out
    # and the two runs do not compare, unless asked
    compared = subprocess.run(
        [sys.executable, "-m", "bench.cli", "compare", str(runs["held"][0]), str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert compared.returncode == 2
    assert "cpu_latency_hold effective request 0 us vs effective request none" in compared.stderr


def test_the_report_of_a_run_with_the_hold_off_shows_the_warning_the_floor_and_the_noise(runs, tmp_path):
    # `grpclab report` of the real run (the fast tests check the report over a hand-made manifest)
    run_dir = runs["off"][0]
    made = subprocess.run(
        [sys.executable, "-m", "bench.cli", "report", str(run_dir), "--out", str(tmp_path / "report")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0 and "Traceback" not in made.stderr, made.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    machine = page[page.index("<h2>The machine</h2>") : page.index("<h2>Figures</h2>")]
    assert '<p class="warn">cpu_latency_hold: /dev/cpu_dma_latency not held: turned off' in machine
    cal = results.read_manifest(run_dir).calibration
    off, held = cal.floor["python"].p50_ms, cal.floor_with_hold["python"].p50_ms
    floor = "floor (no-op unary, 0 B, one RPC in flight, sync server; without the cpu_latency hold): python p50"
    assert floor in machine
    # the difference the hold makes, in the run's own numbers (a figure, not judged: any machine may show either)
    assert f"python p50 {off:.3f} ms without, {held:.3f} ms with the hold, {off / held:.2f}x" in machine
    assert f"noise (CV of {calibration.NOISE_WINDOWS} repetitions of {calibration.noise_cell().key()}" in machine
    assert "<h3>Machine state (grpclab system, as the run began)</h3>" in page and "<h3>Calibration</h3>" in page


def test_a_sigkilled_run_leaves_no_request_and_no_process_behind(tmp_path):
    before = request_before()
    proc = start(tmp_path, "killed", duration=30.0, calibrate=False)
    try:
        deadline = time.monotonic() + 60
        while cpu_latency.read_request_us() != 0 or not (tmp_path / "killed" / "cells").is_dir():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never held its request"
            time.sleep(0.05)
        time.sleep(1.0)  # well inside the 30 s window
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert cpu_latency.read_request_us() == before  # the kernel closed the descriptor, and dropped the request
    deadline = time.monotonic() + 10
    while leftovers("killed") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers("killed")
