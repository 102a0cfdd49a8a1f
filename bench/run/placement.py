"""Where a cell's server and load generators run: the seam between measuring and the machine.

The measuring code (bench.run.measure) never starts a process itself. Per cell it asks the run's
:class:`Placement` for a :class:`Site`::

    with placement.cell(cell) as site:
        server = site.server.start(ServerLaunch(args, tls_dir, env, code_dir, python))  # healthy, or raises
        server.target                    # what the generators dial
        server.sample()                  # server-side CPU, RSS and wire bytes now (a sampling.Sample)
        site.loadgen.launch(command, ...)  # a generator process, placed; site.loadgen.cpus: how many it has
        server.stop()                    # its exit code

and ``placement.describe()`` says where things ran, for the manifest and the rows (server_cpus,
loadgen_cpus).

Today's placement is :class:`LocalPlacement`: one machine, the server pinned with taskset to
``server_cpus``, the generators to ``loadgen_cpus``, the target 127.0.0.1. The next two drop in
without touching measure():

* **network namespaces**: ``cell()`` creates namespace A (server) and B (generators) joined by a veth
  pair with 198.18.x.y addresses, and removes both when the block ends, also on failure (it is a
  context manager for this reason). The server's command is prefixed with ``ip netns exec A`` and
  started with ``--host`` its 198.18 address, which is the target; generator commands are prefixed
  with ``ip netns exec B``; ``sample()`` reads the server's CPU and RSS by pid as today, and its TCP
  counters with ``ip netns exec A ss ...``, since the sockets live in A. The health check runs in B.
* **remote workers**: ``start()`` is an RPC to a worker agent on another host, which starts
  ``grpclab serve`` there and answers with its address (the target) and an id; ``sample()`` asks that
  agent for its /proc and ss readings, ``stop()`` asks it to stop. ``cpus`` are the remote host's.

A placement that describes itself differently (addresses, hosts) adds typed fields to PlacementInfo
(bench.run.manifest), which the manifest records.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..load.channels import channel_credentials
from ..spec import Cell, Settings
from . import sampling, server_process
from .manifest import PlacementInfo
from .sampling import Sample

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


@dataclass(frozen=True)
class Site:
    """Where one cell runs."""

    server: ServerHost
    loadgen: LoadgenHost


class Placement(Protocol):
    def check(self) -> None: ...  # RunError when this machine cannot provide it; called before anything is written

    def describe(self) -> PlacementInfo: ...

    def cell(self, cell: Cell) -> AbstractContextManager[Site]: ...


# -- local: one machine, processes pinned to CPUs ------------------------------------------------


@dataclass(frozen=True)
class LocalServer:
    process: server_process.ServerProcess

    @property
    def target(self) -> str:
        return self.process.target

    def sample(self) -> Sample:
        return sampling.take(self.process.pids, self.process.port)

    def stop(self) -> int:
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


def for_settings(settings: Settings) -> Placement:
    """The placement a run's settings ask for (the one place that chooses)."""
    return LocalPlacement.from_settings(settings)


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
