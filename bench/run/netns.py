"""Network namespaces and the link between them, for cells whose ``link`` is not loopback.

Per cell, :class:`CellNetwork` creates two namespaces, S (server) and L (load generators), joins them
with a veth pair addressed from 198.18.0.0/15 (RFC 2544's benchmarking range: 198.18.0.1/30 in S,
.2 in L, so the only route either has is to the other), brings up ``lo`` in both and, for a shaped
link (``veth-<rate>``), puts a tbf qdisc on both veth ends. Links, addresses and qdiscs are set over
netlink with pyroute2, no ``ip``/``tc`` subprocess; creating and removing a cell's network takes ~30 ms.

No fork: pyroute2's own namespace helpers fork the harness to enter a namespace, and a forked copy of
the harness inherits its SIGTERM handler and its stack (a signal there unwinds the *copy* through the
run's cleanup code). Instead a short-lived thread enters the namespace (unshare/setns change only the
calling thread's network namespace), creates it or opens a netlink socket there, and ends; the socket
stays bound to that namespace and is handed to pyroute2 by file descriptor.

Nothing of it may outlive the harness:

* names carry the harness's pid, a tag of the run and a counter: ``grpclab-<pid>-<tag>-<n>-srv`` / ``-gen``
  (a fleet's, bench.remote.fleet: ``-hub`` / ``-host-<name>``);
* the cell's network is removed when its block ends, also on failure, Ctrl-C and SIGTERM (which the
  executor turns into KeyboardInterrupt). Removing a namespace's name destroys it once its last process
  is gone (the server and generators exit with the harness), and the veth pair goes with it;
* against SIGKILL of the harness, a reaper process (``python -m bench.run.netns reap PID``, started with the
  first link cell, in its own session so Ctrl-C does not reach it) holds a pipe whose only writer is the
  harness: when the harness is gone, however it died, the pipe reads EOF and the reaper SIGKILLs what still
  runs inside the namespaces carrying the harness's pid (a process without a parent-death signal would keep
  its namespace alive), removes them, then exits;
* every run first sweeps namespaces whose harness pid is dead (:func:`sweep`): a reaper killed along
  with its harness leaves nothing for longer than until the next run. A namespace whose harness is alive
  is never touched.

Creating namespaces needs CAP_SYS_ADMIN (the bind mount under /run/netns) and CAP_NET_ADMIN (links,
addresses, qdiscs): :func:`privilege_problem` says which is missing, in one line.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..spec.link import MTU, Link
from .manifest import LinkInfo

NETNS_DIR = Path("/run/netns")
SERVER_ADDRESS = "198.18.0.1"  # servers.certs.SERVER_SAN has it, so TLS cells verify across the link
LOADGEN_ADDRESS = "198.18.0.2"
PREFIX_LEN = 30
SERVER_IF = "lab-srv"  # interface names live inside the namespaces, so they need not be unique
LOADGEN_IF = "lab-gen"
# the role: a cell's server or generators (srv, gen), or a fleet's hub or host (bench.remote.fleet)
_NAME = re.compile(r"grpclab-(\d+)-([A-Za-z0-9_.]+)-(\d+)-(srv|gen|hub|host-[A-Za-z0-9_.]+)")
_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.]+")

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

# tbf, chosen so that throughput equals the rate (tests/test_links.py checks it on this machine):
# * burst (the bucket): at least one whole GSO packet (veth hands tbf TCP segments of up to 64 KiB plus
#   the Ethernet header; a smaller bucket makes tbf split every one in software) and at least 2 ms at
#   the rate, so that a dequeue woken late by timer or softirq latency does not lose tokens. Measured
#   here with a TCP bulk transfer: 64 KiB alone reached 99.6-99.8 % of the rate at 1-2 Gbit/s, 2 ms
#   100.0 %. A full bucket lets one burst pass at veth speed, so a window of T seconds can see at most
#   burst/(rate*T) more than the rate: 0.1 % for a 2 s window;
# * limit (the queue, bytes): burst + max(100 ms at the rate, 256 KiB). TCP small queues keep each
#   socket's backlog in the qdisc to about two GSO packets (~140 KiB), so the queue never fills and
#   tbf does not drop; the qdisc's drop counter is read after each cell and a drop goes in the row's notes.
GSO_MAX = 65536 + 14
BURST_TIME_S = 0.002
QUEUE_TIME_S = 0.1
QUEUE_FLOOR = 256 * 1024


class NetnsError(RuntimeError):
    """A cell's namespaces or link could not be built (one line, goes into the row)."""


@dataclass(frozen=True)
class Tbf:
    rate_bps: int  # bit/s of Ethernet frames
    burst_bytes: int
    limit_bytes: int


def tbf_for(rate_bps: int) -> Tbf:
    """The tbf parameters of a link shaped to ``rate_bps`` (see the comment above for why these)."""
    rate_bytes = rate_bps / 8
    burst = max(GSO_MAX, round(rate_bytes * BURST_TIME_S))
    return Tbf(rate_bps, burst, burst + max(round(rate_bytes * QUEUE_TIME_S), QUEUE_FLOOR))


def link_info(link: Link) -> LinkInfo:
    """How a link value is built, for the manifest."""
    tbf = tbf_for(link.rate_bps) if link.rate_bps is not None else None
    return LinkInfo(
        link=link.value,
        namespaces="grpclab-<harness pid>-<run tag>-<n>-srv / -gen",
        server_address=f"{SERVER_ADDRESS}/{PREFIX_LEN}",
        loadgen_address=f"{LOADGEN_ADDRESS}/{PREFIX_LEN}",
        mtu=MTU,
        qdisc="tbf on both veth ends" if tbf else "none (veth default: noqueue)",
        rate_bps=tbf.rate_bps if tbf else None,
        burst_bytes=tbf.burst_bytes if tbf else None,
        limit_bytes=tbf.limit_bytes if tbf else None,
    )


# -- privilege --------------------------------------------------------------------------------------


def _effective_caps() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def privilege_problem() -> str | None:
    """Why this process cannot build link cells (one line), or None when it can."""
    try:
        caps = _effective_caps()
    except OSError as exc:
        return f"cannot read this process's capabilities ({exc.strerror})"
    missing = [name for bit, name in ((CAP_SYS_ADMIN, "CAP_SYS_ADMIN"), (CAP_NET_ADMIN, "CAP_NET_ADMIN"))
               if not caps >> bit & 1]  # fmt: skip
    if missing:
        return (
            f"network namespaces need root ({' and '.join(missing)} missing in this process); "
            "run as root, or measure link=loopback"
        )
    if shutil.which("nsenter") is None:
        return "nsenter (util-linux) not found: it starts the server and generators inside their namespaces"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "pyroute2 is not installed (make setup installs it)"
    return None


# -- names ------------------------------------------------------------------------------------------


def run_tag(run_id: str) -> str:
    """A run id as it fits in a namespace name (letters, digits, '_' and '.'; at most 40 characters)."""
    return _TAG_CHARS.sub("_", run_id)[-40:].strip("_") or "run"


def names(pid: int, tag: str, n: int) -> tuple[str, str]:
    """The server's and the generators' namespace names of cell ``n`` of a harness."""
    return f"grpclab-{pid}-{tag}-{n}-srv", f"grpclab-{pid}-{tag}-{n}-gen"


def owner_pid(name: str) -> int | None:
    """The harness pid a lab namespace name carries (None: not the lab's)."""
    match = _NAME.fullmatch(name)
    return int(match[1]) if match else None


def lab_namespaces() -> list[str]:
    try:
        return sorted(name for name in os.listdir(NETNS_DIR) if owner_pid(name) is not None)
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


# -- entering namespaces from a thread (see the module doc: no fork) --------------------------------

_CLONE_NEWNET = 0x40000000
_MS_BIND, _MS_REC, _MS_SHARED = 4096, 16384, 1 << 20
_MNT_DETACH = 2
_T = TypeVar("_T")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _os_error(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


def _in_thread(work: Callable[[], _T]) -> _T:
    """Run ``work`` in a fresh thread (whose namespace it may change) and return its result or raise its error."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="grpclab-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _shared_netns_dir(libc: ctypes.CDLL) -> None:
    """/run/netns as a shared mount point, as `ip netns add` makes it (so mounts under it propagate)."""
    NETNS_DIR.mkdir(mode=0o755, exist_ok=True)
    if libc.mount(b"none", bytes(NETNS_DIR), b"none", _MS_SHARED | _MS_REC, None) == 0:
        return
    if libc.mount(bytes(NETNS_DIR), bytes(NETNS_DIR), b"none", _MS_BIND | _MS_REC, None) != 0:
        raise _os_error(f"mount --bind {NETNS_DIR}")
    if libc.mount(b"none", bytes(NETNS_DIR), b"none", _MS_SHARED | _MS_REC, None) != 0:
        raise _os_error(f"mount --make-rshared {NETNS_DIR}")


def create(name: str) -> None:
    """A new, empty network namespace, named like `ip netns add NAME` names one (/run/netns/NAME)."""
    libc = _libc()
    _shared_netns_dir(libc)
    path = NETNS_DIR / name
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))

    def work() -> None:
        if libc.unshare(_CLONE_NEWNET) != 0:
            raise _os_error("unshare(CLONE_NEWNET)")
        own = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if libc.mount(own, bytes(path), b"none", _MS_BIND, None) != 0:
            raise _os_error(f"mount --bind {path}")

    try:
        _in_thread(work)
    except BaseException:
        with suppress(OSError):
            path.unlink()
        raise


def netlink_fd(name: str, protocol: int) -> int:
    """A netlink socket (its file descriptor) opened inside namespace ``name``."""
    libc = _libc()

    def work() -> int:
        fd = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                raise _os_error(f"setns {name}")
        finally:
            os.close(fd)
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, protocol).detach()

    return _in_thread(work)


def iproute(name: str):
    """pyroute2's IPRoute on a netlink socket inside namespace ``name`` (use it in a ``with``)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink import NETLINK_ROUTE

    return IPRoute(fileno=netlink_fd(name, NETLINK_ROUTE))


def remove(name: str) -> None:
    """Remove one namespace's name (the kernel frees it, and its veth end, once no process is in it)."""
    path = NETNS_DIR / name
    _libc().umount2(bytes(path), _MNT_DETACH)  # fails harmlessly when it is not mounted
    with suppress(FileNotFoundError):
        path.unlink()


def processes_in(namespaces: list[str]) -> list[int]:
    """The pids of the processes whose network namespace is one of ``namespaces`` (by name)."""
    inodes = set()
    for name in namespaces:
        with suppress(OSError):
            inodes.add(os.stat(NETNS_DIR / name).st_ino)  # the bind mount: the namespace's own nsfs inode
    pids = []
    for entry in os.listdir("/proc") if inodes else ():
        if entry.isdigit():
            with suppress(OSError):
                if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                    pids.append(int(entry))
    return pids


def _end_orphans(namespaces: list[str]) -> None:
    """SIGKILL what still runs inside the namespaces of a harness that is gone.

    Lab processes exit with their harness (parent-death signal), but a process that has none (a foreign worker
    started without it, a grandchild) would keep its namespace alive, unnamed, forever: its harness is dead, so
    nobody else will end it.
    """
    for pid in processes_in(namespaces):
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def remove_of(pid: int) -> list[str]:
    """Remove every lab namespace of harness ``pid`` and end what runs in them (the reaper, after it is gone)."""
    gone = [name for name in lab_namespaces() if owner_pid(name) == pid]
    _end_orphans(gone)
    for name in gone:
        remove(name)
    return gone


def sweep(own_pid: int | None = None) -> list[str]:
    """Remove lab namespaces left by harnesses that are dead; returns their names. Live runs' stay."""
    own_pid = os.getpid() if own_pid is None else own_pid
    stale = [name for name in lab_namespaces() if (pid := owner_pid(name)) != own_pid and not _alive(pid)]
    _end_orphans(stale)
    for name in stale:
        remove(name)
    return stale


# -- the reaper -------------------------------------------------------------------------------------


class Reaper:
    """Removes this harness's namespaces after it is gone, even when it was SIGKILLed (see the module doc)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def ensure(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        # stdin is the pipe: the harness holds its only write end (close_fds keeps it from every other
        # child), so EOF means the harness has exited or been killed.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.run.netns", "reap", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal must not end it before the harness's cleanup
            cwd=Path(__file__).resolve().parents[2],
        )

    def close(self) -> None:
        """Let the reaper go (the harness is done with namespaces): it sweeps once more and exits."""
        if self.proc is not None:
            with suppress(OSError):
                self.proc.stdin.close()
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            self.proc = None


_PROCESS_REAPER = Reaper()


def ensure_reaper() -> None:
    """This harness's shared reaper, started once and left running until the harness ends (however it ends).

    For namespaces whose owner cannot close a reaper of its own without touching another's (a fleet beside a
    run's link cells in one process): closing a reaper removes *every* namespace of the harness's pid.
    """
    _PROCESS_REAPER.ensure()


def _reap(harness_pid: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the harness's own cleanup must not be raced by our exit
    while sys.stdin.buffer.read(4096):
        pass
    remove_of(harness_pid)
    return 0


# -- one cell's network -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CellNetwork:
    """The two namespaces of one cell, joined by a (possibly shaped) veth pair."""

    server_ns: str
    loadgen_ns: str
    link: Link

    @property
    def server_ns_path(self) -> str:
        return str(NETNS_DIR / self.server_ns)

    @property
    def loadgen_ns_path(self) -> str:
        return str(NETNS_DIR / self.loadgen_ns)

    def enter(self, namespace: str) -> list[str]:
        """The command prefix that execs a program inside ``namespace`` (same pid, so pinning and /proc hold)."""
        return [shutil.which("nsenter") or "nsenter", f"--net={NETNS_DIR / namespace}", "--"]

    def qdisc_drops(self) -> tuple[int, int] | None:
        """Packets tbf dropped on the server's and the generators' side (None: not shaped or unreadable)."""
        if not self.link.shaped:
            return None
        try:
            return _drops(self.server_ns, SERVER_IF), _drops(self.loadgen_ns, LOADGEN_IF)
        except Exception:  # noqa: BLE001 - a statistic; the cell's own numbers do not depend on it
            return None


def _drops(namespace: str, ifname: str) -> int:
    with iproute(namespace) as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        total = 0
        for qdisc in ipr.get_qdiscs(index=index):
            stats = qdisc.get_attr("TCA_STATS2")
            basic = stats.get_attr("TCA_STATS_QUEUE") if stats else None
            if basic is not None:
                total += basic["drops"]
        return total


@contextmanager
def cell_network(server_ns: str, loadgen_ns: str, link: Link) -> Iterator[CellNetwork]:
    """Build a cell's namespaces and link; remove them when the block ends, whatever ends it."""
    net = CellNetwork(server_ns, loadgen_ns, link)
    try:
        _build(net)
        yield net
    finally:
        for name in (server_ns, loadgen_ns):
            try:
                remove(name)
            except OSError:
                pass  # left for the reaper / the next run's sweep, which retry


def _build(net: CellNetwork) -> None:
    try:
        create(net.server_ns)
        create(net.loadgen_ns)
        with iproute(net.server_ns) as ipr:
            # Created inside S with its peer placed in L directly: no end ever exists in the harness's own
            # namespace, so a crash here cannot leave an interface behind there.
            loadgen_fd = os.open(NETNS_DIR / net.loadgen_ns, os.O_RDONLY)
            try:
                ipr.link("add", ifname=SERVER_IF, kind="veth", peer={"ifname": LOADGEN_IF, "net_ns_fd": loadgen_fd})
            finally:
                os.close(loadgen_fd)
        for namespace, ifname, address in (
            (net.server_ns, SERVER_IF, SERVER_ADDRESS),
            (net.loadgen_ns, LOADGEN_IF, LOADGEN_ADDRESS),
        ):
            with iproute(namespace) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                index = ipr.link_lookup(ifname=ifname)[0]
                ipr.addr("add", index=index, address=address, prefixlen=PREFIX_LEN)
                ipr.link("set", index=index, state="up")
                if net.link.rate_bps is not None:
                    tbf = tbf_for(net.link.rate_bps)
                    ipr.tc(
                        "add",
                        "tbf",
                        index=index,
                        handle="1:",
                        rate=f"{tbf.rate_bps}bit",
                        burst=tbf.burst_bytes,
                        limit=tbf.limit_bytes,
                    )
    except Exception as exc:  # noqa: BLE001 - netlink and mount errors come in several types; one line for the row
        raise NetnsError(f"link {net.link.value}: cannot build the namespaces ({type(exc).__name__}: {exc})") from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "reap" and args[1].isdigit():
        return _reap(int(args[1]))
    if args == ["sweep"]:
        for name in sweep():
            print(f"removed {name}")
        return 0
    print("usage: python -m bench.run.netns reap HARNESS_PID | sweep", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
