"""The workers a run is driven over: ``--hosts``, ``--hosts @FILE`` and a spec's ``[hosts]`` table.

The list is gRPC's ``QPS_WORKERS`` form, ``HOST:PORT,HOST:PORT[,...]``: the first entry is the server
worker, every other one a client worker (gRPC's qps_json_driver with one server). ``@FILE`` reads the same
list from a file, entries separated by commas, whitespace or newlines: what a Kubernetes LoadTest's driver
gets as its workers file. A spec says it as ``[hosts] workers = ["HOST:PORT", ...]``; ``--hosts`` overrides it.

Every entry goes through :func:`resolve_entries`, the one place that checks what a user wrote. An entry
``netns:lab`` or ``netns:go`` asks for a worker the lab starts itself, each in a network namespace of its own on
one bridge (bench.remote.fleet): :func:`started` starts them for the run's duration and gives their addresses.
Such entries do not mix with ``HOST:PORT`` ones (the lab's namespaces reach only each other and the harness).
A bad entry is a :class:`HostsError`: one line naming the flag or key, exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..spec import Settings, SpecError
from .placement import RunError

SERVER = "server"
CLIENT = "client"
_SEPARATORS = re.compile(r"[\s,]+")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$")
NETNS = "netns:"  # netns:KIND: a worker the lab starts in a namespace of its own
NETNS_KINDS = ("lab", "go")  # bench.remote.fleet.WORKER_KINDS (checked equal by a test; importing it here is heavy)


class HostsError(SpecError):
    """A ``--hosts`` value or ``[hosts]`` table that names no usable workers (one line naming it; exit 2)."""


@dataclass(frozen=True)
class WorkerAddress:
    """One worker of a driven run: its driver port's address and what the run asks of it."""

    address: str  # HOST:PORT of its WorkerService
    role: str  # SERVER | CLIENT

    @property
    def host(self) -> str:
        """The host part, brackets removed (the server's target is this host and the port RunServer answers)."""
        return self.address.rpartition(":")[0].strip("[]")


def split_list(text: str) -> list[str]:
    """The entries of a QPS_WORKERS-style list (commas, whitespace or newlines between them)."""
    return [entry for entry in _SEPARATORS.split(text.strip()) if entry]


def from_flag(value: str) -> tuple[WorkerAddress, ...]:
    """``--hosts LIST`` or ``--hosts @FILE``."""
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise HostsError(f"--hosts: {value}: cannot read the workers file ({exc.strerror or exc})") from None
        return resolve_entries(split_list(text), f"--hosts {value}")
    return resolve_entries(split_list(value), "--hosts")


def from_table(table: object, where: str = "hosts") -> tuple[WorkerAddress, ...]:
    """A spec's ``[hosts]`` table: ``workers = ["HOST:PORT", ...]`` (server first)."""
    if not isinstance(table, dict):
        raise HostsError(f'{where}: expected a table with workers = ["HOST:PORT", ...]')
    unknown = sorted(set(table) - {"workers"})
    if unknown:
        raise HostsError(f"{where}.{unknown[0]}: unknown key (allowed: workers)")
    workers = table.get("workers")
    if not isinstance(workers, list) or not all(isinstance(entry, str) for entry in workers):
        raise HostsError(f'{where}.workers: expected a list of "HOST:PORT" strings, server first')
    return resolve_entries(workers, f"{where}.workers")


def resolve_entries(entries: Sequence[str], where: str) -> tuple[WorkerAddress, ...]:
    """The workers ``entries`` name, the first the server and the rest clients; HostsError naming ``where``."""
    if len(entries) < 2:
        raise HostsError(
            f"{where}: {len(entries)} worker(s) given; a driven run needs a server worker and at least one client "
            "worker: HOST:PORT,HOST:PORT[,...]"
        )
    addresses = [_address(entry, f"{where}[{index}]") for index, entry in enumerate(entries)]
    started_here = [address.startswith(NETNS) for address in addresses]
    if any(started_here) and not all(started_here):
        raise HostsError(
            f"{where}: netns: workers and HOST:PORT workers do not mix (the lab's namespaces reach only each other)"
        )
    seen: set[str] = set()
    for index, address in enumerate(addresses):
        if address in seen and not address.startswith(NETNS):
            raise HostsError(f"{where}[{index}]: {address} is listed twice (one worker runs one server or one load)")
        seen.add(address)
    return tuple(WorkerAddress(address, SERVER if index == 0 else CLIENT) for index, address in enumerate(addresses))


@contextmanager
def started(workers: Sequence[WorkerAddress], settings: Settings, tag: str) -> Iterator[tuple[WorkerAddress, ...]]:
    """The run's workers, answering: ``netns:KIND`` entries started now, each in a namespace of its own, and
    stopped (namespaces removed) when the block ends, however it ends; ``HOST:PORT`` entries as given.

    A grpc-go worker is pinned to the run's CPUs for its role here (it ignores the configs' ``core_list``); a lab
    worker pins the servers and generators it starts itself.
    """
    if not any(worker.address.startswith(NETNS) for worker in workers):
        yield tuple(workers)
        return
    from ..remote import fleet

    kinds = [worker.address.removeprefix(NETNS) for worker in workers]
    cpus = [settings.server_cpus if worker.role == SERVER else settings.loadgen_cpus for worker in workers]
    try:
        with fleet.Fleet(tag) as network:
            addresses = fleet.start_workers(network, kinds, cpus)
            yield tuple(WorkerAddress(address, worker.role) for address, worker in zip(addresses, workers, strict=True))
    except fleet.FleetError as exc:
        raise RunError(f"--hosts netns: {exc}") from None


def _address(entry: str, where: str) -> str:
    if entry.startswith(NETNS):
        if entry.removeprefix(NETNS) not in NETNS_KINDS:
            kinds = " or ".join(NETNS + kind for kind in NETNS_KINDS)
            raise HostsError(f"{where}: {entry!r}: a worker the lab starts is {kinds}")
        return entry
    host, colon, port = entry.rpartition(":")
    if not colon or not host or not _HOST.match(host) or (":" in host and not host.startswith("[")):
        raise HostsError(f"{where}: {entry!r}: expected HOST:PORT (an IPv6 host in brackets: [::1]:10000)")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise HostsError(f"{where}: {entry!r}: the port must be a number 1-65535")
    return f"{host}:{int(port)}"
