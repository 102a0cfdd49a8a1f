"""Server-side measurements the runner takes at the window's edges, from the kernel, not the server.

CPU is each server process's CPU clock (``clock_gettime`` on the process's
CPUCLOCK_SCHED clock): nanoseconds of on-CPU time of all its threads, those that
already exited included, summed over every process of a --processes N server; it
needs no RPC (details at :func:`process_cpu_seconds`). Wire bytes come from the
kernel's TCP counters of the server's sockets (``tcp_info``'s bytes_acked and
bytes_received, read over sock_diag netlink in this process: :class:`TcpCounters`):
what really crossed the link, including HTTP/2 framing, TLS records and gRPC
compression, measured rather than computed from message sizes. A server in a
network namespace of its own is read there (a network namespace, not a PID one:
its process clock is read from here like any other).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from dataclasses import dataclass

import psutil

_CPUCLOCK_SCHED = 2


@dataclass(frozen=True)
class Sample:
    cpu_s: float  # on-CPU time of all server processes (their CPU clocks)
    rss_bytes: int
    tx_bytes: int | None  # server -> client, acked (None: counters unavailable)
    rx_bytes: int | None  # client -> server
    # When the counters were read (time.monotonic()). The runner samples at the window's
    # edges, a little late (a sock_diag dump takes ~1 ms, more on a busy machine), so the
    # interval between two samples is not exactly the window: the runner rescales.
    cpu_at: float = 0.0
    wire_at: float = 0.0  # just after the dump returned


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


class TcpCounters:
    """Summed TCP byte counters of the established sockets on one local port, in one network namespace.

    A sock_diag dump per address family (a netlink request from this process, the kernel's inet_diag
    answer with each socket's ``struct tcp_info``), parsed here with ``struct``. gRPC serves an IPv4
    address on IPv6 sockets (v4-mapped) where it can, so the first reading asks both families and
    later readings only those where it found the port's sockets. Most of a dump's ~0.8 ms is the kernel
    walking its TCP hash table, whatever the number of sockets; the ``ss -ti`` subprocess it replaces
    adds a fork and exec and its own parsing (3 ms on an idle machine, 4-30 ms on a busy one), so
    readings sat further from the window's edges. (pyroute2's DiagSocket parses the same answer, but
    its request machinery adds ~0.9 ms per dump; pyroute2 builds the namespaces, links and qdiscs.)
    The netlink socket is opened on first use, in ``netns`` (a name under /run/netns; bench.run.netns
    opens it there without forking the harness) or, for None, the harness's own namespace, where
    reading needs no privilege.
    """

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.families: tuple[int, ...] = (socket.AF_INET6, socket.AF_INET)
        self._socket: socket.socket | None = None
        self._seq = 0
        self.problem: str | None = None  # why counters are unavailable, once they are

    def read(self, port: int) -> tuple[int, int] | None:
        """(bytes_acked, bytes_received) over established TCP sockets with local port ``port``."""
        if self.problem is not None:
            return None
        try:
            if self._socket is None:
                self._socket = _open_diag(self.netns)
            tx = rx = 0
            found = []
            for family in self.families:
                sockets = self._dump(family, port)
                if sockets:
                    found.append(family)
                for acked, received in sockets:
                    tx += acked
                    rx += received
            if found:
                self.families = tuple(found)  # the port's sockets live there; skip the other family's dump
            return tx, rx
        except OSError as exc:
            self.problem = f"sock_diag: {exc}"
            self.close()
            return None

    def _dump(self, family: int, port: int) -> list[tuple[int, int]]:
        """(bytes_acked, bytes_received) of each established TCP socket of ``family`` on local ``port``."""
        assert self._socket is not None
        self._seq += 1
        request = _REQUEST.pack(family, socket.IPPROTO_TCP, _INET_DIAG_INFO_EXT, _ESTABLISHED)
        flags = _NLM_F_REQUEST | _NLM_F_DUMP
        header = _NLMSG.pack(_NLMSG.size + len(request), _SOCK_DIAG_BY_FAMILY, flags, self._seq, 0)
        self._socket.send(header + request)
        found = []
        while True:
            data = memoryview(self._socket.recv(_RECV_BYTES))
            at = 0
            while at + _NLMSG.size <= len(data):
                length, kind, _, seq, _ = _NLMSG.unpack_from(data, at)
                if length < _NLMSG.size:
                    raise OSError("sock_diag: malformed answer")
                body = data[at + _NLMSG.size : at + length]
                at += (length + 3) & ~3
                if seq != self._seq:
                    continue  # an answer to an earlier, abandoned request
                if kind == _NLMSG_DONE:
                    return found
                if kind == _NLMSG_ERROR:
                    code = -int.from_bytes(body[:4], "little", signed=True)
                    raise OSError(code, f"sock_diag: {os.strerror(code)}")
                if int.from_bytes(body[_SPORT : _SPORT + 2], "big") != port:
                    continue
                counters = _tcp_bytes(body[_INET_DIAG_MSG_BYTES:])
                if counters is not None:
                    found.append(counters)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


# Netlink and inet_diag (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h), native byte order.
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLMSG = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
# inet_diag_req_v2: family, protocol, extensions wanted, pad, states; then inet_diag_sockid (48 bytes, zero: all)
_REQUEST = struct.Struct("=BBBxI48x")
_ESTABLISHED = 1 << 1  # 1 << TCP_ESTABLISHED
_INET_DIAG_INFO = 2  # the attribute carrying struct tcp_info
_INET_DIAG_INFO_EXT = 1 << (_INET_DIAG_INFO - 1)
_INET_DIAG_MSG_BYTES = 72  # inet_diag_msg: 4 bytes, inet_diag_sockid (48), expires, rqueue, wqueue, uid, inode
_SPORT = 4  # inet_diag_sockid.idiag_sport (big endian) inside inet_diag_msg
# struct tcp_info: 8 one-byte fields, 24 __u32, then __u64 pacing_rate, max_pacing_rate, bytes_acked, bytes_received
_TCPI_BYTES = struct.Struct("=QQ")
_TCPI_BYTES_ACKED = 120
_RECV_BYTES = 1 << 20
_RTA = struct.Struct("=HH")  # rtattr: length, type


def _tcp_bytes(attributes: memoryview) -> tuple[int, int] | None:
    """bytes_acked and bytes_received from the INET_DIAG_INFO attribute, if the answer has it."""
    at = 0
    while at + _RTA.size <= len(attributes):
        length, kind = _RTA.unpack_from(attributes, at)
        if length < _RTA.size:
            return None
        if kind == _INET_DIAG_INFO and length - _RTA.size >= _TCPI_BYTES_ACKED + _TCPI_BYTES.size:
            return _TCPI_BYTES.unpack_from(attributes, at + _RTA.size + _TCPI_BYTES_ACKED)
        at += (length + 3) & ~3
    return None


_HERE = TcpCounters()  # the harness's own namespace (loopback cells), opened once


def _open_diag(namespace: str | None) -> socket.socket:
    if namespace is None:
        diag = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
    else:
        from .netns import netlink_fd  # opens the socket in the namespace without forking the harness

        diag = socket.socket(fileno=netlink_fd(namespace, _NETLINK_SOCK_DIAG))
    diag.bind((0, 0))
    return diag


def tcp_bytes(port: int, counters: TcpCounters | None = None) -> tuple[int, int] | None:
    """Sum of bytes_acked / bytes_received over established sockets with local port ``port`` (None: unavailable)."""
    return (counters or _HERE).read(port)


def take(pids: list[int], port: int, counters: TcpCounters | None = None) -> Sample:
    cpu, rss = server_cpu(pids)
    cpu_at = time.monotonic()
    wire = tcp_bytes(port, counters)
    wire_at = time.monotonic()
    return Sample(cpu, rss, *(wire if wire else (None, None)), cpu_at=cpu_at, wire_at=wire_at)
