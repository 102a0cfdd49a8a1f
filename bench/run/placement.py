"""Where a cell's server and load generators run: the seam between measuring and the machine.

The measuring code (bench.run.measure) never starts a process itself. Per cell it asks the run's
:class:`Placement` for a :class:`Site`::

    with placement.cell(cell) as site:
        server = site.server.start(ServerLaunch(args, tls_dir, env, code_dir, python))  # healthy, or raises
        server.target                    # what the generators dial
        server.sample()                  # server-side CPU, RSS and wire bytes now (a sampling.Sample)
        site.loadgen.launch(command, ...)  # a generator process, placed; site.loadgen.cpus: how many it has
        site.notes()                     # what the row should say about the place (e.g. a qdisc's drops)
        server.stop()                    # its exit code

and ``placement.describe()`` says where things ran, for the manifest and the rows (server_cpus,
loadgen_cpus).

The run's placement is :class:`LinkPlacement`; what it does depends on the cell's ``link`` axis:

* ``loopback`` (:class:`LocalPlacement`): one machine, the server pinned with taskset to
  ``server_cpus``, the generators to ``loadgen_cpus``, the target 127.0.0.1;
* ``veth``, ``veth-<rate>`` (network namespaces, bench.run.netns): ``cell()`` creates namespace S
  (server) and L (generators) joined by a veth pair with 198.18.0.1/.2 (tbf on both ends for a rate),
  and removes both when the block ends, also on failure. The server's command is prefixed with
  ``nsenter --net=S`` (it execs, so the pid, the taskset pinning and the CPU readings are as local)
  and started with ``--host 198.18.0.1``, which is the target; generator commands are prefixed with
  ``nsenter --net=L``; ``sample()`` reads the server's CPU and RSS by pid as today, and its TCP
  counters over a sock_diag socket opened in S, since the sockets live there. The health check runs in
  L, as a short subprocess, so it also proves the link (route, TLS names) before the load starts.
  Without the privilege to create namespaces such a cell's row fails with one line saying so, and
  loopback cells run as before.

Over gRPC benchmark workers (``grpclab run --hosts``, bench.remote.drive.WorkersPlacement) nothing is
started here: the workers start the server and the generators, and the marks of gRPC's protocol, not
this process's samples, cut the window. Such a placement is a :class:`DrivenPlacement`: it measures a
repetition itself (``measure(cell, repetition, order, context) -> row``), and bench.run.measure hands it
the repetition instead of asking it for a Site. Everything else of a run (plan, resume, per-cell files,
progress, calibration, findings) is the executor's, as for a local run.

A placement that describes itself differently (addresses, hosts) adds typed fields to PlacementInfo
(bench.run.manifest), which the manifest records (the workers: PlacementInfo.workers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..load.channels import channel_credentials
from ..spec import Cell, Settings
from ..spec.link import Link
from . import netns, sampling, server_process
from .manifest import PlacementInfo
from .sampling import Sample, TcpCounters

if TYPE_CHECKING:
    from .hosts import WorkerAddress

HEALTH_TIMEOUT_S = 20.0


class RunError(Exception):
    """A run that cannot start where it is placed (CPUs not available here...): one line, exit 2."""


@dataclass(frozen=True)
class ServerLaunch:
    """What to start: `grpclab serve` arguments (the host and port are the placement's) and its code."""

    args: tuple[str, ...]
    tls_dir: Path | None = None  # the client's certificates for the health check; None: plaintext
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment (test-only fault knobs)
    code_dir: Path | None = None  # serve this source tree's code (grpclab regress: the base's worktree)
    python: str | None = None  # ... with this interpreter and its packages (default: the harness's)


class RunningServer(Protocol):
    """A started, healthy server."""

    @property
    def target(self) -> str: ...  # host:port the generators dial

    def sample(self) -> Sample: ...  # its CPU, RSS and wire bytes, read now

    def stop(self) -> int: ...  # stop it; its exit code (0: a clean shutdown)


class ServerHost(Protocol):
    cpus: tuple[int, ...]  # CPUs the server has (its utilisation is per these)

    def start(self, launch: ServerLaunch) -> RunningServer: ...  # ServerStartError when it does not come up


class LoadgenHost(Protocol):
    cpus: tuple[int, ...]  # CPUs the generators have (ghz --cpus, their utilisation)

    def launch(self, command: Sequence[str], **popen: Any) -> subprocess.Popen: ...


def _no_notes() -> list[str]:
    return []


@dataclass(frozen=True)
class Site:
    """Where one cell runs."""

    server: ServerHost
    loadgen: LoadgenHost
    notes: Callable[[], list[str]] = _no_notes  # caveats for the row, asked after the load


class Placement(Protocol):
    def check(self) -> None: ...  # RunError when this machine cannot provide it; called before anything is written

    def describe(self) -> PlacementInfo: ...

    def cell(self, cell: Cell) -> AbstractContextManager[Site]: ...


@runtime_checkable
class DrivenPlacement(Protocol):
    """A placement that measures a repetition itself (over gRPC benchmark workers): no Site, no local process."""

    def check(self) -> None: ...

    def describe(self) -> PlacementInfo: ...

    def problems(self, cells: Sequence[Cell]) -> list[str]: ...  # one line per cell it cannot run

    def measure(self, cell: Cell, repetition: int, order: int, context: Any) -> dict: ...  # failures are rows


# -- local: one machine, processes pinned to CPUs ------------------------------------------------


@dataclass(frozen=True)
class LocalServer:
    process: server_process.ServerProcess
    counters: TcpCounters = field(default_factory=TcpCounters)  # its TCP counters, in this namespace

    @property
    def target(self) -> str:
        return self.process.target

    def sample(self) -> Sample:
        return sampling.take(self.process.pids, self.process.port, self.counters)

    def stop(self) -> int:
        self.counters.close()
        return self.process.stop()


@dataclass(frozen=True)
class LocalServerHost:
    cpus: tuple[int, ...]

    def start(self, launch: ServerLaunch) -> LocalServer:
        process = server_process.start(
            [*launch.args, "--port", "0", "--exit-with-parent"],
            env=dict(launch.env),
            cpus=list(self.cpus),
            code_dir=launch.code_dir,
            python=launch.python,
        )
        try:
            wait_healthy(process.target, launch.tls_dir)
        except BaseException:
            process.stop()
            raise
        return LocalServer(process)


@dataclass(frozen=True)
class LocalLoadgenHost:
    cpus: tuple[int, ...] = ()  # empty: not pinned

    def launch(self, command: Sequence[str], **popen: Any) -> subprocess.Popen:
        return server_process.popen_pinned(command, list(self.cpus), **popen)


@dataclass(frozen=True)
class LocalPlacement:
    """Server and generators on this machine, each pinned to its own CPUs; the server on 127.0.0.1."""

    server_cpus: tuple[int, ...]
    loadgen_cpus: tuple[int, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalPlacement:
        return cls(tuple(settings.server_cpus), tuple(settings.loadgen_cpus))

    def check(self) -> None:
        available = os.sched_getaffinity(0)
        for name in ("server_cpus", "loadgen_cpus"):
            missing = sorted(set(getattr(self, name)) - available)
            if missing:
                raise RunError(
                    f"settings.{name}: CPU {missing[0]} is not available here "
                    f"(available: {','.join(map(str, sorted(available)))}; override with --{name.replace('_', '-')})"
                )

    def describe(self) -> PlacementInfo:
        return PlacementInfo(kind="local", server_cpus=self.server_cpus, loadgen_cpus=self.loadgen_cpus)

    @contextmanager
    def cell(self, cell: Cell) -> Iterator[Site]:
        yield Site(LocalServerHost(self.server_cpus), LocalLoadgenHost(self.loadgen_cpus))


# -- network namespaces: the link axis -------------------------------------------------------------


@dataclass(frozen=True)
class NetnsServer:
    process: server_process.ServerProcess
    counters: TcpCounters  # opened in the server's namespace

    @property
    def target(self) -> str:
        return f"{netns.SERVER_ADDRESS}:{self.process.port}"

    def sample(self) -> Sample:
        return sampling.take(self.process.pids, self.process.port, self.counters)

    def stop(self) -> int:
        self.counters.close()
        return self.process.stop()


@dataclass(frozen=True)
class NetnsServerHost:
    cpus: tuple[int, ...]
    net: netns.CellNetwork

    def start(self, launch: ServerLaunch) -> NetnsServer:
        args = [*launch.args, "--host", netns.SERVER_ADDRESS, "--port", "0", "--exit-with-parent"]
        process = server_process.start(
            args,
            env=dict(launch.env),
            cpus=list(self.cpus),
            code_dir=launch.code_dir,
            python=launch.python,
            prefix=self.net.enter(self.net.server_ns),
        )
        server = NetnsServer(process, TcpCounters(self.net.server_ns))
        try:
            self._wait_healthy(server.target, launch.tls_dir)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_healthy(self, target: str, tls_dir: Path | None) -> None:
        """The health check, from the generators' namespace (the harness's own cannot reach S)."""
        command = [*self.net.enter(self.net.loadgen_ns), sys.executable, "-m", "bench.run.placement", "health"]
        command += [target, *([str(tls_dir)] if tls_dir else [])]
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=HEALTH_TIMEOUT_S + 15)
        except subprocess.TimeoutExpired:
            raise server_process.ServerStartError(f"server not healthy from {self.net.loadgen_ns}: timed out") from None
        if out.returncode != 0:
            tail = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
            raise server_process.ServerStartError(f"server not healthy from the generators' namespace: {tail}")


@dataclass(frozen=True)
class NetnsLoadgenHost:
    cpus: tuple[int, ...]
    net: netns.CellNetwork

    def launch(self, command: Sequence[str], **popen: Any) -> subprocess.Popen:
        return server_process.popen_pinned([*self.net.enter(self.net.loadgen_ns), *command], list(self.cpus), **popen)


@dataclass
class LinkPlacement:
    """Loopback cells as :class:`LocalPlacement` places them; other links in a pair of namespaces per cell."""

    local: LocalPlacement
    tag: str = "run"  # goes into the namespaces' names (bench.run.netns.run_tag)
    _cells: int = 0
    _reaper: netns.Reaper = field(default_factory=netns.Reaper)
    _problem: str | None = None
    _checked: bool = False

    def check(self) -> None:
        self.local.check()
        if self.problem() is None:
            netns.sweep()  # what dead runs left; never a live run's

    def problem(self) -> str | None:
        """Why link cells cannot run here (checked once), or None."""
        if not self._checked:
            self._problem, self._checked = netns.privilege_problem(), True
        return self._problem

    def describe(self) -> PlacementInfo:
        return self.local.describe()

    @contextmanager
    def cell(self, cell: Cell) -> Iterator[Site]:
        link = Link.parse(cell.link)
        if not link.namespaced:
            with self.local.cell(cell) as site:
                yield site
            return
        problem = self.problem()
        if problem is not None:
            raise netns.NetnsError(f"link={cell.link}: {problem}")
        self._reaper.ensure()
        self._cells += 1
        server_ns, loadgen_ns = netns.names(os.getpid(), self.tag, self._cells)
        with netns.cell_network(server_ns, loadgen_ns, link) as net:
            yield Site(
                NetnsServerHost(self.local.server_cpus, net),
                NetnsLoadgenHost(self.local.loadgen_cpus, net),
                notes=lambda: _link_notes(net),
            )


def _link_notes(net: netns.CellNetwork) -> list[str]:
    drops = net.qdisc_drops()
    if drops and any(drops):
        return [f"link {net.link.value}: tbf dropped {drops[0]} packets server-side, {drops[1]} generator-side"]
    return []


def link_warning(where: Placement, cells: Sequence[Cell]) -> str | None:
    """One line for the start of a run whose link cells will fail here (they fail in their rows; the rest run)."""
    keys = sorted({cell.key() for cell in cells if Link.parse(cell.link).namespaced})
    problem = where.problem() if keys and isinstance(where, LinkPlacement) else None
    if problem is None:
        return None
    return f"{len(keys)} cells with link != loopback will fail ({problem}); the loopback cells run"


def for_settings(
    settings: Settings, run_id: str | None = None, workers: Sequence[WorkerAddress] | None = None
) -> Placement | DrivenPlacement:
    """The placement a run asks for (the one place that chooses): over ``workers`` when given, else this machine."""
    if workers:
        from ..remote.drive import WorkersPlacement

        return WorkersPlacement(tuple(workers), settings)
    return LinkPlacement(LocalPlacement.from_settings(settings), netns.run_tag(run_id or "run"))


def wait_healthy(target: str, tls_dir: Path | None, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Wait until the server's health service says SERVING; ServerStartError after ``timeout``."""
    creds = channel_credentials(tls_dir) if tls_dir else None
    channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
    deadline = time.monotonic() + timeout
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                if time.monotonic() > deadline:
                    raise server_process.ServerStartError(f"server not healthy: {exc.code().name}") from None
            if time.monotonic() > deadline:
                raise server_process.ServerStartError("server not healthy: not SERVING")
            time.sleep(0.05)
    finally:
        channel.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.run.placement health TARGET [TLS_DIR]``: exit 0 once SERVING, else 1 with one line."""
    args = sys.argv[1:] if argv is None else argv
    if not 2 <= len(args) <= 3 or args[0] != "health":
        print("usage: python -m bench.run.placement health TARGET [TLS_DIR]", file=sys.stderr)
        return 2
    try:
        wait_healthy(args[1], Path(args[2]) if len(args) == 3 else None)
    except server_process.ServerStartError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
