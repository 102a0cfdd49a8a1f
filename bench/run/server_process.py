"""Starting and stopping `grpclab serve` as a child process, for the harness and the tests alike.

A server is started in its own session (process group) so that a server with
--processes N, which forks, can be ended as a whole; it is stopped with SIGTERM
first (graceful, exit 0 expected) and SIGKILL of its group only as a last resort.
Only processes this module started are ever signalled.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

READY_TIMEOUT_S = 30.0
# What runs: `grpclab serve`. Another entry point that takes the same arguments it needs and prints the same
# ready line (bench.studies.bare_server, the overhead benchmark's tutorial-style server) starts the same way.
LAB_SERVE = ("bench.cli", "serve")
_LIVE: dict[int, subprocess.Popen] = {}  # every server started and not yet stopped, for emergency cleanup


class ServerStartError(RuntimeError):
    """The server exited or stayed silent instead of printing its ready line."""


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    ready: dict
    args: list[str]
    stderr_path: str
    exit_code: int | None = field(default=None)

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pids(self) -> list[int]:
        """Every process that serves (the launcher's children with --processes N)."""
        return [int(p) for p in self.ready.get("pids", [self.proc.pid])]

    def stderr_text(self) -> str:
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the process group; returns the exit code."""
        if self.exit_code is None:
            self.exit_code = _terminate(self.proc, timeout)
            try:
                os.unlink(self.stderr_path)
            except OSError:
                pass
        return self.exit_code


def serve_command(args: Sequence[str], python: str | None = None, entry: Sequence[str] = LAB_SERVE) -> list[str]:
    return [python or sys.executable, "-m", *entry, *args]


def popen_pinned(command: Sequence[str], cpus: Sequence[int] | None, **popen: Any) -> subprocess.Popen:
    """Start ``command`` on ``cpus`` (all CPUs when empty): the one way the lab pins a process it starts.

    ``taskset -c`` pins before the program starts, so every thread and forked child inherits it.
    Without taskset, the child is pinned with sched_setaffinity right after it is created, before
    it can have started a thread.
    """
    taskset = shutil.which("taskset")
    if cpus and taskset:
        command = [taskset, "-c", ",".join(map(str, cpus)), *command]
    proc = subprocess.Popen(list(command), **popen)
    if cpus and not taskset:
        os.sched_setaffinity(proc.pid, cpus)
    return proc


def start(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cpus: Sequence[int] | None = None,
    timeout: float = READY_TIMEOUT_S,
    code_dir: str | os.PathLike | None = None,
    python: str | None = None,
    entry: Sequence[str] = LAB_SERVE,
    prefix: Sequence[str] = (),
) -> ServerProcess:
    """Start ``grpclab serve ARGS`` and wait for its ready line; raises ServerStartError.

    ``code_dir``: serve the code of this source tree (e.g. a base commit's git worktree) instead of the
    installed one: it is the server's working directory and comes first on its PYTHONPATH.
    ``python``: the interpreter (and so the packages) to serve with; default this one.
    ``entry``: the module (and its arguments before ARGS) run with ``python -m``; default `grpclab serve`.
    ``prefix``: a command that execs the server (e.g. ``nsenter --net=...``: the same pid, placed elsewhere).
    """
    stderr = tempfile.NamedTemporaryFile(prefix="grpclab-serve-", suffix=".log", delete=False)  # noqa: SIM115
    child_env = {**os.environ, **(env or {})}
    if code_dir is not None:
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code_dir), child_env.get("PYTHONPATH")]))
    proc = popen_pinned(
        [*prefix, *serve_command(args, python, entry)],
        cpus,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=child_env,
        cwd=code_dir,
        start_new_session=True,
    )
    stderr.close()
    _LIVE[proc.pid] = proc
    try:
        ready = _read_ready(proc, timeout)
    except ServerStartError:
        _terminate(proc, 5.0)
        with open(stderr.name, errors="replace") as f:
            tail = f.read().strip().splitlines()[-1:] or ["(no output)"]
        os.unlink(stderr.name)
        raise ServerStartError(f"server {' '.join(args)} did not start: {tail[0]}") from None
    except BaseException:  # Ctrl-C while waiting: never leave the server behind
        _terminate(proc, 5.0)
        raise
    return ServerProcess(proc=proc, ready=ready, args=list(args), stderr_path=stderr.name)


@contextmanager
def running(args: Sequence[str], **kwargs) -> Iterator[ServerProcess]:
    server = start(args, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def _read_ready(proc: subprocess.Popen, timeout: float) -> dict:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break  # stdout closed: the server exited
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        message = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(message, dict) and message.get("event") == "ready":
                        return message
            elif proc.poll() is not None:
                break
    raise ServerStartError("no ready line")


def _terminate(proc: subprocess.Popen, timeout: float) -> int:
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # Still alive, so not yet reaped: its pid is still its group's id and cannot
                # belong to anyone else. The group holds only this server and its own forks.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return proc.wait()
    finally:
        _LIVE.pop(proc.pid, None)
        if proc.stdout:
            proc.stdout.close()


def stop_all() -> None:
    """Emergency stop of every server this process started (Ctrl-C, fatal error)."""
    for proc in list(_LIVE.values()):
        _terminate(proc, 5.0)
