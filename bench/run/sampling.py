"""Server-side measurements the runner takes at the window's edges, from the kernel, not the server.

CPU comes from /proc (psutil) for every server process, so it covers all
threads and every process of a --processes N server and needs no RPC. Wire
bytes come from the kernel's TCP counters of the server's sockets
(``tcp_info``'s bytes_acked and bytes_received, read over sock_diag netlink in
this process: :class:`TcpCounters`): what really crossed the link, including
HTTP/2 framing, TLS records and gRPC compression, measured rather than computed
from message sizes. A server in a network namespace of its own is read there.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Sample:
    cpu_s: float  # user + system of all server processes
    rss_bytes: int
    tx_bytes: int | None  # server -> client, acked (None: counters unavailable)
    rx_bytes: int | None  # client -> server
    # When the counters were read (time.monotonic()). The runner samples at the window's
    # edges, a little late (a sock_diag dump takes 1-2 ms, more on a busy machine), so the
    # interval between two samples is not exactly the window: the runner rescales.
    cpu_at: float = 0.0
    wire_at: float = 0.0  # just after the dump returned


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


class TcpCounters:
    """Summed TCP byte counters of the established sockets on one local port, in one network namespace.

    One sock_diag dump (netlink, in process) per reading, about 1-2 ms; the ``ss -ti`` subprocess it
    replaces took 4-30 ms, so readings sat further from the window's edges. The netlink socket is
    opened on first use, in ``netns`` (a name under /run/netns) or, for None, the harness's own
    namespace, where reading needs no privilege.
    """

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._socket = None
        self.problem: str | None = None  # why counters are unavailable, once they are

    def read(self, port: int) -> tuple[int, int] | None:
        """(bytes_acked, bytes_received) over established TCP sockets with local port ``port``."""
        if self.problem is not None:
            return None
        try:
            if self._socket is None:
                self._socket = _open_diag(self.netns)
            tx = rx = 0
            for family in (socket.AF_INET, socket.AF_INET6):
                for message in self._socket.get_sock_stats(
                    family=family, states=_ESTABLISHED, extensions=_INET_DIAG_INFO
                ):
                    if message["idiag_sport"] != port:
                        continue
                    info = message.get_attr("INET_DIAG_INFO")
                    if info is None:
                        continue
                    tx += info["tcpi_bytes_acked"]
                    rx += info["tcpi_bytes_received"]
            return tx, rx
        except Exception as exc:  # noqa: BLE001 - any failure of the netlink library: no counters, the row says why
            self.problem = f"sock_diag: {exc}"
            self.close()
            return None

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


_ESTABLISHED = 1 << 1  # TCP_ESTABLISHED
_INET_DIAG_INFO = 1 << (2 - 1)  # ask for INET_DIAG_INFO (struct tcp_info)
_HERE = TcpCounters()  # the harness's own namespace (loopback cells), opened once


def _open_diag(namespace: str | None):
    from pyroute2.netlink.diag import NETLINK_SOCK_DIAG, DiagSocket, MarshalDiag
    from pyroute2.netlink.nlsocket import NetlinkSocket

    from .netns import netlink_fd  # opens the socket in the namespace without forking the harness

    fileno = netlink_fd(namespace, NETLINK_SOCK_DIAG) if namespace else None

    class NamespacedDiag(DiagSocket):  # DiagSocket takes no file descriptor; NetlinkSocket does
        def __init__(self) -> None:
            NetlinkSocket.__init__(self, NETLINK_SOCK_DIAG, fileno=fileno)
            self.set_marshal(MarshalDiag())

    diag = NamespacedDiag()
    diag.bind()
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
