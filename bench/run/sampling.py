"""Server-side measurements the runner takes at the window's edges, from the kernel, not the server.

CPU is each server process's CPU clock (``clock_gettime`` on the process's
CPUCLOCK_SCHED clock): nanoseconds of on-CPU time of all its threads, those that
already exited included, summed over every process of a --processes N server; it
needs no RPC (details at :func:`process_cpu_seconds`). Wire
bytes come from the kernel's TCP counters of the server's sockets (``ss -ti``):
what really crossed the loopback, including HTTP/2 framing, TLS records and
gRPC compression, measured rather than computed from message sizes.
"""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

import psutil

_CPUCLOCK_SCHED = 2
_BYTES = re.compile(r"\bbytes_(acked|received):(\d+)")


@dataclass(frozen=True)
class Sample:
    cpu_s: float  # on-CPU time of all server processes (their CPU clocks)
    rss_bytes: int
    tx_bytes: int | None  # server -> client, acked (None: ss unavailable)
    rx_bytes: int | None  # client -> server
    # When the counters were read (time.monotonic()). The runner samples at the window's
    # edges, but ss is a subprocess that takes 3-30 ms to run (more on a busy machine), so
    # the interval between two samples is not exactly the window: the runner rescales.
    cpu_at: float = 0.0
    wire_at: float = 0.0  # ss reads the counters just before it exits: its return time


def process_cpu_clock_id(pid: int) -> int:
    """The clock id of process ``pid``'s CPU-time clock, as glibc's clock_getcpuclockid(3) makes it.

    The kernel encodes it as ``(~pid << 3) | CPUCLOCK_SCHED`` (include/linux/posix-timers.h,
    MAKE_PROCESS_CPUCLOCK); CPUCLOCK_SCHED (2) is the scheduler's nanosecond runtime.
    """
    return (~pid << 3) | _CPUCLOCK_SCHED


def process_cpu_seconds(pid: int) -> float:
    """On-CPU time of every thread process ``pid`` ever had, in seconds with nanosecond resolution.

    Why this clock and not /proc (psutil), per-thread schedstat or /proc/PID/schedstat, checked on
    Linux 6.x (tests/test_sampling.py runs the same check):

    * /proc/PID/stat's utime + stime (what psutil reads) is the process's runtime but in clock ticks:
      10 ms units, so a reading is up to 20 ms short, 2-5 % of a 2 s window's server CPU here.
    * /proc/PID/task/*/schedstat is nanoseconds per live thread: a thread that has exited is gone
      from it, and so is its time (a sync server's pool threads come and go).
    * /proc/PID/schedstat is the main thread's line only, not the process's.
    * The process CPU clock is the kernel's thread_group_cputime: the live threads' runtime plus
      the runtime of every thread that exited, accumulated in the process's signal struct. It is
      nanoseconds, covers all threads, and never goes backwards. A thread's runtime is brought up
      to date at every context switch and every scheduler tick, so the slice of a thread that is
      running at the moment of the reading is counted up to the last tick (4 ms on this kernel);
      a server's threads block between RPCs and are accounted at each switch. The harness reads
      the clock for its own children (the servers it started).

    Raises ProcessLookupError when the process is gone and OSError when the clock is unavailable.
    """
    try:
        return time.clock_gettime_ns(process_cpu_clock_id(pid)) / 1e9
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ESRCH) and not psutil.pid_exists(pid):
            raise ProcessLookupError(pid) from None
        raise


def server_cpu(pids: list[int]) -> tuple[float, int]:
    """(CPU seconds, resident bytes) summed over the server's processes; a process that is gone counts 0.

    CPU from each process's CPU clock (:func:`process_cpu_seconds`); where that clock cannot be
    read, from /proc's utime + stime (tick-granular, but the same quantity).
    """
    cpu, rss = 0.0, 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            try:
                cpu += process_cpu_seconds(pid)
            except ProcessLookupError:
                continue
            except OSError:
                times = proc.cpu_times()
                cpu += times.user + times.system
            rss += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


def tcp_bytes(port: int) -> tuple[int, int] | None:
    """Sum of bytes_acked / bytes_received over established sockets with local port ``port``."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    out = subprocess.run(
        [ss, "-tinH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, timeout=10
    )
    if out.returncode != 0:
        return None
    tx = rx = 0
    for kind, value in _BYTES.findall(out.stdout):
        if kind == "acked":
            tx += int(value)
        else:
            rx += int(value)
    return tx, rx


def take(pids: list[int], port: int) -> Sample:
    cpu, rss = server_cpu(pids)
    cpu_at = time.monotonic()
    wire = tcp_bytes(port)
    wire_at = time.monotonic()
    return Sample(cpu, rss, *(wire if wire else (None, None)), cpu_at=cpu_at, wire_at=wire_at)
