"""Server-side measurements the runner takes at the window's edges, from the kernel, not the server.

CPU comes from /proc (psutil) for every server process, so it covers all
threads and every process of a --processes N server and needs no RPC. Wire
bytes come from the kernel's TCP counters of the server's sockets (``ss -ti``):
what really crossed the loopback, including HTTP/2 framing, TLS records and
gRPC compression, measured rather than computed from message sizes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass

import psutil

_BYTES = re.compile(r"\bbytes_(acked|received):(\d+)")


@dataclass(frozen=True)
class Sample:
    cpu_s: float  # user + system of all server processes
    rss_bytes: int
    tx_bytes: int | None  # server -> client, acked (None: ss unavailable)
    rx_bytes: int | None  # client -> server
    # When the counters were read (time.monotonic()). The runner samples at the window's
    # edges, but ss is a subprocess that takes 3-30 ms to run (more on a busy machine), so
    # the interval between two samples is not exactly the window: the runner rescales.
    cpu_at: float = 0.0
    wire_at: float = 0.0  # ss reads the counters just before it exits: its return time


def server_cpu(pids: list[int]) -> tuple[float, int]:
    cpu, rss = 0.0, 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
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
