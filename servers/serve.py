"""Running configured server processes until SIGTERM/SIGINT.

One process serves in the foreground. With ``processes > 1`` this process becomes
a launcher: it reserves the port, forks the servers before any gRPC object
exists (gRPC's fork rule), lets them share the port through SO_REUSEPORT, prints
one ready line for all of them, forwards SIGTERM/SIGINT and exits when they do.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import grpc

from . import certs
from .config import ServerConfig, validate
from .faults import Faults
from .logic import LabState
from .stop_signals import StopSignals

Announce = Callable[[dict], None]
READY_TIMEOUT_S = 30.0
# After SIGTERM, children get the grace period plus this before SIGKILL (a loaded 2-core box is slow).
REAP_MARGIN_S = 10.0


def ready_line(config: ServerConfig, port: int, pids: list[int], faults: Faults) -> dict:
    return {
        "event": "ready",
        "impl": config.impl,
        "host": config.host,
        "port": port,
        "pid": os.getpid(),
        "pids": pids,
        "tls": config.tls_dir is not None,
        "mtls": config.mtls,
        "compression": config.compression,
        "workers": config.workers if config.impl == "sync" else None,
        "processes": config.processes,
        "options": config.options,
        "grpcio": grpc.__version__,
        "protobuf": protobuf_runtime(),
        "faults_injected": faults.active,
    }


# The metaclass of generated message classes belongs to the runtime that implements them: its module names
# the runtime. protobuf has no public function for this (api_implementation is internal), but every message
# class is a public object, and these module names have held from protobuf 4 to 7.
PROTOBUF_RUNTIMES = {
    "google._upb._message": "upb",
    "google.protobuf.pyext._message": "cpp",
    "google.protobuf.internal.python_message": "python",
}


def protobuf_runtime() -> str | None:
    """Which protobuf runtime this process encodes and decodes with: "upb", "cpp" or "python".

    Read from a generated message class (see PROTOBUF_RUNTIMES); an unknown module is returned as it is,
    so a new runtime shows up by name rather than as a wrong one. None: protobuf could not be imported.
    """
    try:
        from protos import lab_pb2
    except ImportError:
        return None
    module = type(lab_pb2.Record).__module__
    return PROTOBUF_RUNTIMES.get(module, module)


def _print_line(info: dict) -> None:
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()


def run(config: ServerConfig, faults: Faults | None = None) -> int:
    """Serve until told to stop; returns the process exit code. Raises ConfigError, CertError, BindError."""
    validate(config)
    if config.tls_dir is not None:
        certs.load(config.tls_dir)  # a missing file is a usage error, before any fork
    faults = faults if faults is not None else Faults.from_env(os.environ)
    if config.impl == "go":
        from . import go_server

        probe_port(config)
        go_server.exec_server(config)  # the Go server reads the same fault variables itself
    if config.processes == 1:
        probe_port(config)
        return _serve_one(config, faults, lambda port: _print_line(ready_line(config, port, [os.getpid()], faults)))
    return _serve_many(config, faults)


def _serve_one(config: ServerConfig, faults: Faults, on_ready: Callable[[int], None]) -> int:
    state = LabState(config.impl, faults)
    if config.impl == "sync":
        return _serve_sync(config, state, on_ready)
    coro = _serve_aio(config, state, on_ready)
    if config.uvloop:
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def _serve_sync(config: ServerConfig, state: LabState, on_ready: Callable[[int], None]) -> int:
    from . import sync_server

    stop = StopSignals()  # not a threading.Event: setting one from a handler can deadlock (servers.stop_signals)
    server, port = sync_server.build(config, state)
    on_ready(port)
    stop.wait()
    # Bounded: a grpcio race (a handler's reply after an error status already sent for a
    # malformed request) can leave one RPC open forever, and stop() would never finish.
    server.stop(config.grace).wait(config.grace + 1)
    return 0


async def _serve_aio(config: ServerConfig, state: LabState, on_ready: Callable[[int], None]) -> int:
    from . import aio_server

    stop = StopSignals()  # not loop.add_signal_handler: a SIGTERM after asyncio.run returns would kill the exit
    server, port = await aio_server.build(config, state)
    on_ready(port)
    await stop.wait_async()
    await server.stop(config.grace)
    return 0


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def probe_port(config: ServerConfig) -> None:
    """Raise BindError if ``config.port`` is taken, before gRPC core tries and logs its own error lines."""
    from .transport import BindError

    if not config.port:
        return
    with socket.socket(_family(config.host), socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as gRPC sets it: TIME_WAIT leftovers are no clash, a listening socket is.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as exc:
            raise BindError(f"cannot bind {config.host}:{config.port}: {exc.strerror}") from None


def _reserve_port(config: ServerConfig) -> socket.socket:
    """Bind (not listen) a SO_REUSEPORT socket so the port is ours and the children can bind it too."""
    from .transport import BindError

    family = _family(config.host)
    # A bind without SO_REUSEPORT fails on a port that any socket holds, even another
    # SO_REUSEPORT group, which the reuseport bind below would silently join instead.
    probe_port(config)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind {config.host}:{config.port}: {exc.strerror}") from None
    return sock


def exit_with_parent(parent: int) -> None:
    """Have the kernel SIGTERM this process when ``parent`` dies, even by SIGKILL (Linux).

    Used by forked servers (parent: the launcher) and by `serve --exit-with-parent`
    (parent: the harness), so a killed harness never leaves servers behind.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _serve_many(config: ServerConfig, faults: Faults) -> int:
    reserved = _reserve_port(config)
    port = reserved.getsockname()[1]
    child_config = replace(config, port=port, reuse_port=True)
    launcher = os.getpid()
    read_fd, write_fd = os.pipe()
    pids: list[int] = []
    for _ in range(config.processes):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.close(read_fd)
            exit_with_parent(launcher)
            code = 1
            try:
                code = _serve_one(child_config, faults, lambda p: os.write(write_fd, f"{os.getpid()}\n".encode()))
            except BaseException as exc:  # noqa: BLE001 - a child reports and exits; the launcher decides
                print(
                    f"grpclab serve: error: server process {os.getpid()}: {type(exc).__name__}: {exc}",
                    file=sys.stderr,
                    flush=True,
                )
                code = 2
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(write_fd)

    stopping = False
    signalled: set[int] = set()

    def forward(*_: object) -> None:
        nonlocal stopping
        stopping = True
        # Stopping: later SIGTERMs change nothing (the children's stop is bounded by _reap), and at the launcher's
        # exit Python puts back the default action of the signals it handled, which would kill it (servers.stop_signals)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Once per child: a second SIGTERM can reach a child after asyncio.run() restored SIG_DFL on its way
        # out, and would kill it (exit -15) instead of letting it finish its graceful stop.
        for child in pids:
            if child in signalled:
                continue
            signalled.add(child)
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes: dict[int, int] = {}
    if not _wait_ready(read_fd, pids, codes):
        forward()
        _reap(pids, codes, config.grace + REAP_MARGIN_S)
        return 2
    reserved.close()
    _print_line(ready_line(config, port, pids, faults))
    pid, status = os.waitpid(-1, 0)  # blocks until a child exits: on our SIGTERM, or on its own
    codes[pid] = os.waitstatus_to_exitcode(status)
    unexpected = not stopping
    forward()
    _reap(pids, codes, config.grace + REAP_MARGIN_S)
    for child, code in codes.items():
        if code != 0:
            print(f"grpclab serve: error: server process {child} exited with code {code}", file=sys.stderr, flush=True)
    if unexpected:
        print(f"grpclab serve: error: server process {pid} exited on its own", file=sys.stderr, flush=True)
        return 1
    return 0 if all(c == 0 for c in codes.values()) else 1


def _wait_ready(read_fd: int, pids: list[int], codes: dict[int, int]) -> bool:
    """True once every child reported ready; False if one exited first (recorded in codes) or time ran out."""
    ready: set[int] = set()
    buffer = b""
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while len(ready) < len(pids) and time.monotonic() < deadline:
            readable, _, _ = select.select([read_fd], [], [], 0.1)
            if readable:
                buffer += os.read(read_fd, 4096)
                *lines, buffer = buffer.split(b"\n")
                ready.update(int(line) for line in lines if line.strip())
            for pid in pids:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
                    return False
        return len(ready) == len(pids)
    finally:
        os.close(read_fd)


def _reap(pids: list[int], codes: dict[int, int], timeout: float) -> None:
    """Collect every child's exit code into ``codes``; past ``timeout`` seconds, SIGKILL the rest."""
    deadline = time.monotonic() + timeout
    while len(codes) < len(pids):
        if time.monotonic() > deadline:
            for pid in pids:
                if pid not in codes:
                    os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        for pid in pids:
            if pid not in codes:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
