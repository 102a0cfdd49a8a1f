"""`grpclab system`, `grpclab system tune` and `grpclab doctor` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.machine import cpu_latency, environment

REPO = Path(__file__).resolve().parent.parent
GRPCLAB = [sys.executable, "-m", "bench.cli"]


def grpclab(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GRPCLAB, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def may_hold() -> bool:
    try:
        os.close(os.open(cpu_latency.DEVICE, os.O_RDWR))
    except OSError:
        return False
    return True


real_device = pytest.mark.skipif(not may_hold(), reason="/dev/cpu_dma_latency cannot be opened here (needs root)")


@pytest.mark.slow
def test_system_prints_every_item_and_exits_0():
    done = grpclab("system")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    names = [line[5:].split()[0] for line in lines if line.startswith(("ok  ", "WARN"))]
    assert names[:3] == ["cpu", "cpuidle", "cpu_dma_latency"] and "steal" in names and "load" in names
    assert lines[-1].endswith("warnings") or lines[-1] in ("no warnings", "1 warning")
    assert environment.cpu_model() in lines[0]


@pytest.mark.slow
def test_system_json_is_the_manifests_shape():
    done = grpclab("system", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema_version"] == 1
    assert data["cpu"]["online"] and data["cpu"]["model"] == environment.cpu_model()
    assert {c["status"] for c in data["checks"]} <= {"ok", "warning"}
    assert data["activity"]["steal_interval_s"] == 0.25


@pytest.mark.slow
def test_doctor_ends_with_the_system_warnings():
    done = grpclab("doctor")
    assert done.returncode == 0, done.stderr
    system_line = next(line for line in done.stdout.splitlines() if line.startswith("system "))
    assert system_line.endswith("(details: grpclab system)")
    warned = [line for line in done.stdout.splitlines() if line.strip().startswith("WARNING ")]
    count = system_line.split()[1]
    assert len(warned) >= (0 if count == "no" else int(count))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "mention"),
    [(["--us", "-1"], "--us: must be 0..2000000000"), (["--seconds", "0"], "--seconds: must be > 0")],
)
def test_tune_bad_input_is_one_line_exit_2(args, mention):
    done = grpclab("system", "tune", *args)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"grpclab system: error: {mention}"), done.stderr


def test_tune_without_the_device_is_one_warning_line_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cpu_latency, "DEVICE", tmp_path / "missing")
    assert cpu_latency.tune(0, seconds=5) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"warning: /dev/cpu_dma_latency not held: {tmp_path / 'missing'} does not exist (not Linux, or no PM QoS); "
        "idle CPUs may enter slow-to-wake states"
    ]


@real_device
@pytest.mark.slow
@pytest.mark.parametrize("how", ["seconds", "sigterm", "sigint"])
def test_tune_holds_until_told_and_then_releases(how):
    before = cpu_latency.read_request_us()
    args = ["system", "tune", "--us", "3"] + (["--seconds", "1"] if how == "seconds" else [])
    proc = subprocess.Popen(
        [*GRPCLAB, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("holding /dev/cpu_dma_latency at 3 us"), first + proc.stderr.read()
        assert ("for 1 s" in first) == (how == "seconds")
        assert cpu_latency.read_request_us() == min(3, before)
        if how != "seconds":
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and err == "", err
    assert out.splitlines()[-1] == f"released; effective request now: {cpu_latency.format_request(before)}"
    assert cpu_latency.read_request_us() == before
