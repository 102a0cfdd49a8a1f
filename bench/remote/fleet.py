"""A small lab network of hosts, one network namespace each, for workers that must not share the host's network.

``with Fleet(tag="interop") as fleet:`` builds a hub namespace holding a bridge; each :meth:`Fleet.host` is a new
namespace joined to that bridge by a veth pair and addressed from one /24 of 198.18.0.0/15 (RFC 2544's
benchmarking range; the first free one from 198.18.1.0/24 up, never 198.18.0.0/24, whose /30s the link cells of
bench.run.netns use). The harness itself (the driver) reaches the hosts through one more veth pair, hub to host
namespace, whose host end has the subnet's .1: its only route is the fleet's /24, so no traffic of the fleet
leaves the harness and its own namespaces, and nothing from outside can reach the hosts (their only interface
besides ``lo`` is on the bridge). A host's processes (:meth:`Host.launch`) run inside its namespace, pinned;
a program that listens on every address (grpc-go's worker: ``:PORT``) listens on that namespace's only.

Nothing of it outlives the fleet (bench.run.netns does the namespace work, with the same rules as a link cell's):

* names carry the harness's pid, the tag and a counter: ``grpclab-<pid>-<tag>-<n>-hub`` and ``-host-<name>``;
* when the block ends, also on an exception, Ctrl-C or SIGTERM (made KeyboardInterrupt while the block runs in
  the main thread), every process the fleet launched is ended by pid (SIGTERM, then SIGKILL after
  :data:`STOP_GRACE_S`), then anything still inside its namespaces (a launched process's children), then the
  host end of the uplink is deleted and the namespaces removed; removing the hub's name destroys the bridge and
  every veth pair with it;
* launched processes get the parent-death signal (SIGTERM), so they go when the harness is SIGKILLed; and the
  harness's reaper (bench.run.netns.ensure_reaper) then ends what is still inside its namespaces and removes
  them; the next run's sweep does the same for a reaper killed with its harness.

The parent-death signal is the *thread's* that launched: launch from a thread that lives as long as the fleet.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..run import netns
from . import go_worker

LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
LINK_CELLS = ipaddress.ip_network("198.18.0.0/24")  # bench.run.netns's link cells (198.18.0.0/30) live here
SUBNET_PREFIX = 24
BRIDGE_IF = "lab-br"  # inside the hub
UPLINK_HUB_IF = "lab-up"  # the hub's end of the harness's veth pair
HOST_IF = "lab0"  # each host's end of its veth pair
STOP_GRACE_S = 5.0  # a lab worker's own clean stop (it stops its servers and generators first) fits in this
READY_TIMEOUT_S = 30.0
ALLOCATION_LOCK = Path("/run/lock/grpclab-fleet.lock")  # two fleets (two harnesses) never pick the same /24
_HOST_NAME = re.compile(r"[A-Za-z0-9_.]{1,40}")
_fleets = 0
_fleets_lock = threading.Lock()


class FleetError(RuntimeError):
    """A fleet's network or a worker in it could not be set up (one line)."""


@dataclass
class Host:
    """One namespace on the fleet's network; its processes run inside it."""

    name: str
    address: str
    namespace: str
    fleet: Fleet = field(repr=False)

    def launch(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cpus: Sequence[int] | None = None,
        **popen: Any,
    ) -> subprocess.Popen:
        """Start ``command`` inside this host's namespace, pinned to ``cpus`` (None: unpinned).

        ``env`` is added to the harness's environment. nsenter, setpriv and taskset each exec the next, so the
        pid is the program's own (the fleet ends it by pid; /proc and the pinning are the program's).
        """
        prefix = [_tool("nsenter"), f"--net={netns.NETNS_DIR / self.namespace}", "--"]
        prefix += [_tool("setpriv"), "--pdeathsig", "TERM", "--"]  # goes when the harness goes, even by SIGKILL
        if cpus:
            prefix += [_tool("taskset"), "-c", ",".join(map(str, cpus))]
        environment = {**os.environ, **env} if env is not None else None
        return self.fleet._track(subprocess.Popen([*prefix, *command], env=environment, **popen))


class Fleet:
    """K hosts on one bridge in their own namespaces (see the module doc); a context manager."""

    def __init__(self, tag: str = "fleet") -> None:
        global _fleets
        with _fleets_lock:
            _fleets += 1
            self.number = _fleets
        self.tag = netns.run_tag(tag)
        self.pid = os.getpid()
        self.hub = f"grpclab-{self.pid}-{self.tag}-{self.number}-hub"
        self.hosts: list[Host] = []
        self.subnet: ipaddress.IPv4Network | None = None
        self.uplink_if = f"gl{self.pid}f{self.number}"[:15]  # in the harness's namespace: must be unique there
        self._processes: list[subprocess.Popen] = []
        self._namespaces: list[str] = []
        self._stack = ExitStack()

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Fleet:
        problem = netns.privilege_problem() or (None if shutil.which("setpriv") else "setpriv (util-linux) not found")
        if problem:
            raise FleetError(f"fleet: {problem}")
        netns.sweep()  # what dead harnesses left; never a live one's
        netns.ensure_reaper()
        try:
            if threading.current_thread() is threading.main_thread():
                from ..run.executor import sigterm_interrupts

                self._stack.enter_context(sigterm_interrupts())
            self._build_hub()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End every process the fleet launched and remove its network (idempotent)."""
        try:
            self._end_processes()
        finally:
            with suppress(Exception):  # gone with the hub anyway; deleting it first frees the address at once
                _delete_link_here(self.uplink_if)
            for name in reversed(self._namespaces):
                with suppress(OSError):
                    netns.remove(name)  # an error is left for the reaper / the next sweep
            self._namespaces.clear()
            self._stack.close()

    def _track(self, proc: subprocess.Popen) -> subprocess.Popen:
        self._processes.append(proc)
        return proc

    def _end_processes(self) -> None:
        running = [p for p in self._processes if p.poll() is None]
        for proc in running:
            with suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._processes.clear()
        # What the launched processes started and left (they should stop their children themselves).
        deadline = time.monotonic() + STOP_GRACE_S
        while (left := netns.processes_in(self._namespaces)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in left:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # -- the network ----------------------------------------------------------------------------------

    def _build_hub(self) -> None:
        try:
            netns.create(self.hub)
            self._namespaces.append(self.hub)
            with netns.iproute(self.hub) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                ipr.link("add", ifname=BRIDGE_IF, kind="bridge")
                bridge = ipr.link_lookup(ifname=BRIDGE_IF)[0]
                ipr.link("set", index=bridge, state="up")
                with _allocation_lock():
                    self.subnet = _free_subnet()
                    here = os.open(f"/proc/{os.getpid()}/ns/net", os.O_RDONLY)  # the main thread's: the harness's
                    try:
                        ipr.link("add", ifname=UPLINK_HUB_IF, kind="veth",
                                 peer={"ifname": self.uplink_if, "net_ns_fd": here})  # fmt: skip
                    finally:
                        os.close(here)
                    _address_here(self.uplink_if, str(self.subnet[1]), SUBNET_PREFIX)
                ipr.link("set", index=ipr.link_lookup(ifname=UPLINK_HUB_IF)[0], master=bridge, state="up")
        except Exception as exc:  # noqa: BLE001 - netlink and mount errors come in several types; one line
            raise FleetError(f"fleet {self.tag}: cannot build its network ({type(exc).__name__}: {exc})") from None

    @property
    def driver_address(self) -> str:
        """The harness's own address on the fleet's network (the end of its uplink)."""
        return str(self._subnet()[1])

    def _subnet(self) -> ipaddress.IPv4Network:
        if self.subnet is None:
            raise FleetError("the fleet is not set up: use it in a `with` block")
        return self.subnet

    def host(self, name: str) -> Host:
        """A new namespace on the fleet's network, addressed .2, .3, ... in the order hosts are made."""
        if not _HOST_NAME.fullmatch(name) or any(h.name == name for h in self.hosts):
            raise ValueError(f"host name {name!r}: 1-40 letters, digits, '_' or '.', unique in the fleet")
        subnet = self._subnet()
        index = len(self.hosts)
        if index + 2 >= subnet.num_addresses - 1:
            raise FleetError(f"fleet {self.tag}: no address left in {subnet}")
        namespace = f"grpclab-{self.pid}-{self.tag}-{self.number}-host-{name}"
        address = str(subnet[index + 2])
        try:
            netns.create(namespace)
            self._namespaces.append(namespace)
            port = f"lab-p{index}"
            with netns.iproute(self.hub) as ipr:
                fd = os.open(netns.NETNS_DIR / namespace, os.O_RDONLY)
                try:
                    ipr.link("add", ifname=port, kind="veth", peer={"ifname": HOST_IF, "net_ns_fd": fd})
                finally:
                    os.close(fd)
                bridge = ipr.link_lookup(ifname=BRIDGE_IF)[0]
                ipr.link("set", index=ipr.link_lookup(ifname=port)[0], master=bridge, state="up")
            with netns.iproute(namespace) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                index_if = ipr.link_lookup(ifname=HOST_IF)[0]
                ipr.addr("add", index=index_if, address=address, prefixlen=SUBNET_PREFIX)
                ipr.link("set", index=index_if, state="up")
        except Exception as exc:  # noqa: BLE001 - as above
            raise FleetError(f"fleet {self.tag}: cannot add host {name} ({type(exc).__name__}: {exc})") from None
        host = Host(name, address, namespace, self)
        self.hosts.append(host)
        return host


def _tool(name: str) -> str:
    return shutil.which(name) or name


@contextmanager
def _allocation_lock() -> Iterator[None]:
    ALLOCATION_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(ALLOCATION_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _free_subnet() -> ipaddress.IPv4Network:
    """The first /24 of the lab's range that nothing in the harness's namespace uses (its routes and addresses)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        used = [
            ipaddress.ip_network(f"{route.get_attr('RTA_DST')}/{route['dst_len']}", strict=False)
            for route in ipr.get_routes(family=socket.AF_INET)
            if route.get_attr("RTA_DST") is not None and route["dst_len"] > 0
        ]
        used += [
            ipaddress.ip_network(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}", strict=False)
            for a in ipr.get_addr(family=socket.AF_INET)
        ]
    return first_free_subnet(used)


def first_free_subnet(used: Sequence[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /24 of 198.18.0.0/15 after the link cells' that overlaps none of ``used``."""
    for subnet in LAB_RANGE.subnets(new_prefix=SUBNET_PREFIX):
        if subnet != LINK_CELLS and not any(subnet.overlaps(other) for other in used):
            return subnet
    raise FleetError(f"no free /{SUBNET_PREFIX} left in {LAB_RANGE} for a fleet")


def _address_here(ifname: str, address: str, prefixlen: int) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
        ipr.link("set", index=index, state="up")


def _delete_link_here(ifname: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if found:
            ipr.link("del", index=found[0])


# -- workers on a fleet --------------------------------------------------------------------------------------

WORKER_KINDS = ("lab", "go")


def start_worker(
    host: Host, kind: str, cpus: Sequence[int] | None = None, driver_port: int = go_worker.DEFAULT_DRIVER_PORT
) -> str:
    """Start a worker of ``kind`` ("lab": `grpclab worker`, "go": grpc-go's) on ``host``; its ``ADDR:PORT`` once ready.

    ``cpus`` pins grpc-go's worker, whole (it ignores a config's core_list, so this is where its CPUs are set). The
    lab's worker is left unpinned: it pins what it starts to the configs' core_list, and refuses a CPU outside its
    own mask. The lab's worker binds the host's address, grpc-go's every address of the namespace. Each host has
    its own ports, so ``driver_port`` is free unless two workers share a host.
    """
    proc, address = _launch_worker(host, kind, cpus, driver_port)
    _wait_ready(address, proc)
    return address


def start_workers(fleet: Fleet, kinds: Sequence[str], cpus: Sequence[Sequence[int] | None] | None = None) -> list[str]:
    """One worker per kind, each on a new host of ``fleet``; their ``ADDR:PORT`` in order (the server's first).

    ``cpus[i]`` pins worker ``i`` if it is grpc-go's (see :func:`start_worker`). All start at once, then each is
    waited for (a lab worker takes about a second to import its modules).
    """
    launched = [
        _launch_worker(fleet.host(f"{kind}{len(fleet.hosts)}"), kind, cpus[i] if cpus else None)
        for i, kind in enumerate(kinds)
    ]
    for proc, address in launched:
        _wait_ready(address, proc)
    return [address for _, address in launched]


def _launch_worker(
    host: Host, kind: str, cpus: Sequence[int] | None, driver_port: int = go_worker.DEFAULT_DRIVER_PORT
) -> tuple[subprocess.Popen, str]:
    if kind == "lab":
        command = [sys.executable, "-m", "bench.cli", "worker", "--host", host.address,
                   "--driver-port", str(driver_port), "--exit-with-parent"]  # fmt: skip
    elif kind == "go":
        problem = go_worker.missing()
        if problem:
            raise FleetError(problem)
        command = go_worker.command(driver_port)
    else:
        raise ValueError(f"worker kind {kind!r}: one of {', '.join(WORKER_KINDS)}")
    proc = host.launch(command, cpus=cpus if kind == "go" else None, cwd=go_worker.REPO, stdout=subprocess.DEVNULL)
    return proc, f"{host.address}:{driver_port}"


def _wait_ready(address: str, proc: subprocess.Popen) -> None:
    """Until the worker answers CoreCount (a lab worker binds before it says ready, grpc-go's prints nothing)."""
    import grpc

    from protos.grpc.testing import control_pb2, worker_service_pb2_grpc

    deadline = time.monotonic() + READY_TIMEOUT_S
    with grpc.insecure_channel(address) as channel:
        stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
        while True:
            if proc.poll() is not None:
                raise FleetError(f"worker at {address} exited with {proc.returncode} before it was ready")
            try:
                stub.CoreCount(control_pb2.CoreRequest(), timeout=1.0, wait_for_ready=True)
                return
            except grpc.RpcError as exc:
                if time.monotonic() > deadline:
                    raise FleetError(
                        f"worker at {address} not ready in {READY_TIMEOUT_S:.0f} s ({exc.code().name})"
                    ) from None
