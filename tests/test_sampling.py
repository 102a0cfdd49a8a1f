"""Server CPU as the runner reads it (bench.run.sampling): the process CPU clock, checked against a child
that burns known CPU in threads that then exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from bench.run import sampling

pytestmark = pytest.mark.slow

BURN_S = 0.15  # per thread; three burns in all

CHILD = f"""
import sys, threading, time
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
burn({BURN_S})
threads = [threading.Thread(target=burn, args=({BURN_S},)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("burned", time.process_time(), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_the_process_clock_counts_threads_that_exited_in_nanoseconds(child):
    first = sampling.process_cpu_seconds(child.pid)
    assert first >= 0
    readings = [first]
    line = child.stdout.readline()  # the two threads have exited by now
    readings.append(sampling.process_cpu_seconds(child.pid))
    own_view = float(line.split()[1])  # the child's own time.process_time()
    assert readings == sorted(readings)  # never backwards
    cpu = readings[-1]
    assert cpu >= 3 * BURN_S
    assert cpu == pytest.approx(own_view, abs=0.01)  # the same clock the child reads of itself
    # What the alternatives would have said: the live threads' schedstat lost the exited threads' time,
    live = 0
    for tid in os.listdir(f"/proc/{child.pid}/task"):
        with open(f"/proc/{child.pid}/task/{tid}/schedstat") as f:
            live += int(f.read().split()[0])
    assert live / 1e9 < cpu - 1.5 * BURN_S
    # ... and /proc's utime + stime (psutil) is whole clock ticks.
    times = psutil.Process(child.pid).cpu_times()
    ticks = (times.user + times.system) * os.sysconf("SC_CLK_TCK")
    assert abs(ticks - round(ticks)) < 1e-6
    assert abs(cpu * 100 - round(cpu * 100)) > 1e-6 or cpu == 0  # nanoseconds, not 10 ms ticks (1e-7 odds)


def test_server_cpu_sums_processes_and_skips_one_that_is_gone(child):
    child.stdout.readline()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    cpu, rss = sampling.server_cpu([child.pid, gone.pid])
    assert cpu == pytest.approx(sampling.process_cpu_seconds(child.pid), abs=0.005)
    assert rss > 0
    with pytest.raises(ProcessLookupError):
        sampling.process_cpu_seconds(gone.pid)


BURSTS = """
import time
end = time.monotonic() + 5
while time.monotonic() < end:
    burst = time.thread_time() + 0.0003
    while time.thread_time() < burst:
        pass
    time.sleep(0.0007)
"""


def test_a_server_like_process_is_read_to_the_nanosecond():
    """A child that works in short bursts and blocks between them (as a server between RPCs): its clock
    advances by at most the time between two readings, in amounts that are not whole ticks or ms.

    (A thread that never blocks is accounted at the scheduler tick, 4 ms on this kernel, while it runs;
    a server's threads block between RPCs and are accounted at every switch.)"""
    child = subprocess.Popen([sys.executable, "-c", BURSTS])
    try:
        time.sleep(0.3)
        steps = []
        for _ in range(10):
            began = time.monotonic()
            a = sampling.process_cpu_seconds(child.pid)
            time.sleep(0.005)
            b = sampling.process_cpu_seconds(child.pid)
            steps.append((b - a, time.monotonic() - began))
        assert all(0 <= cpu <= wall + 0.001 for cpu, wall in steps), steps
        assert sum(cpu for cpu, _ in steps) > 0
        assert any(abs(cpu * 1000 - round(cpu * 1000)) > 1e-3 for cpu, _ in steps), steps
    finally:
        child.kill()
        child.wait()
