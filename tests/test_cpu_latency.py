"""Holding /dev/cpu_dma_latency: the request is made, read back, and gone when the holder is, however it ends.

The first tests use a regular file as the device (pure logic). The ones marked slow use the real device
where this process may open it (root), and skip elsewhere. Another process (a run of another checkout)
may hold a request at the same time: the device reads back the lowest of all requests, so every check
compares with what it read before.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bench.machine import cpu_latency

REPO = Path(__file__).resolve().parent.parent


def fake_device(tmp_path: Path, value: int = cpu_latency.NO_REQUEST_US) -> Path:
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(struct.pack("=i", value))
    return device


def test_hold_writes_a_native_int32_and_reads_back(tmp_path):
    device = fake_device(tmp_path)
    with cpu_latency.hold(7, device) as state:
        assert state == cpu_latency.HoldState(requested_us=7, held=True, effective_us=7)
        assert device.read_bytes() == struct.pack("=i", 7)
        assert state.describe().startswith("holding /dev/cpu_dma_latency at 7 us (effective request: 7 us)")
    assert cpu_latency.read_request_us(device) == 7  # a file keeps it; the real device drops it (tests below)


def test_a_missing_device_is_a_warning_not_an_error(tmp_path):
    device = tmp_path / "nothing"
    with cpu_latency.hold(0, device) as state:
        assert not state.held and state.effective_us is None
        assert state.reason == f"{device} does not exist (not Linux, or no PM QoS)"
    assert state.describe().startswith("warning: /dev/cpu_dma_latency not held: ")
    assert "\n" not in state.describe()


def test_no_permission_is_a_warning_not_an_error(tmp_path, monkeypatch):
    device = fake_device(tmp_path)
    real_open = os.open

    def refuse_writes(path, flags, *args):
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse_writes)
    with cpu_latency.hold(0, device) as state:
        assert not state.held
        assert state.reason == f"cannot open {device}: permission denied (it needs root)"
        assert state.effective_us == cpu_latency.NO_REQUEST_US  # still readable: what others hold


def test_an_error_in_the_block_still_closes_the_device(tmp_path, monkeypatch):
    closed = []
    real_close = os.close
    monkeypatch.setattr(os, "close", lambda fd: (closed.append(fd), real_close(fd)))
    with pytest.raises(RuntimeError, match="boom"):
        with cpu_latency.hold(0, fake_device(tmp_path)):
            raise RuntimeError("boom")
    assert len(closed) == 1


@pytest.mark.parametrize("us", [-1, cpu_latency.NO_REQUEST_US + 1])
def test_out_of_range_requests_are_refused(tmp_path, us):
    with pytest.raises(ValueError, match="0..2000000000"):
        with cpu_latency.hold(us, fake_device(tmp_path)):
            pass


def test_format_request():
    assert cpu_latency.format_request(cpu_latency.NO_REQUEST_US) == "none"
    assert cpu_latency.format_request(0) == "0 us"
    assert cpu_latency.format_request(None) == "unknown"


# --- the real device ----------------------------------------------------------------------------------------


def _may_hold() -> bool:
    try:
        os.close(os.open(cpu_latency.DEVICE, os.O_RDWR))
    except OSError:
        return False
    return True


real_device = pytest.mark.skipif(not _may_hold(), reason="/dev/cpu_dma_latency cannot be opened here (needs root)")


@real_device
@pytest.mark.slow
def test_the_kernel_drops_the_request_when_the_hold_ends():
    before = cpu_latency.read_request_us()
    assert before is not None
    with cpu_latency.hold(0) as state:
        assert state.held and state.effective_us == 0
        assert cpu_latency.read_request_us() == 0
    assert cpu_latency.read_request_us() == before


HOLDER = """
import sys, time
from bench.machine import cpu_latency
with cpu_latency.hold(0) as state:
    print("held" if state.held else state.reason, flush=True)
    time.sleep(60)
"""


@real_device
@pytest.mark.slow
def test_a_sigkilled_holder_leaves_no_request_behind():
    """SIGKILL runs no cleanup code: the kernel closes the holder's descriptors, and that removes the request."""
    before = cpu_latency.read_request_us()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], cwd=REPO, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cpu_latency.read_request_us() == 0
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=10) == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert cpu_latency.read_request_us() == before


@real_device
@pytest.mark.slow
def test_children_of_a_holder_do_not_keep_the_request():
    """The descriptor is not inherited: a process started while holding cannot outlive the hold with it."""
    before = cpu_latency.read_request_us()
    with cpu_latency.hold(0):
        child = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)
    try:
        assert cpu_latency.read_request_us() == before
        fds = os.listdir(f"/proc/{child.pid}/fd")
        targets = {os.readlink(f"/proc/{child.pid}/fd/{fd}") for fd in fds}
        assert str(cpu_latency.DEVICE) not in targets
    finally:
        child.kill()
        child.wait()
