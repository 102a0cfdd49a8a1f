"""Shared fixtures: one throwaway TLS set per session, and `grpclab serve` subprocesses that always get stopped.

The fast tier (`pytest -m "not slow"`) starts no process: a test that does must be marked ``slow``, and
one that is not fails here the moment it tries (subprocess.Popen refuses), naming the mark it needs.

Servers are started through bench.run.server_process (the harness's own code path). Every server a test
(or a module) starts is stopped at teardown, even when the test failed, and the test fails when a server
died during the test or did not exit 0 on SIGTERM: a server that crashes or hangs on shutdown is a bug.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from bench.run import server_process
from bench.run.server_process import ServerProcess
from servers import certs

# Every test server stops this fast after SIGTERM (open RPCs get this long to finish).
GRACE_S = 1.0
# bench.run.server_process SIGKILLs a server still alive this long after SIGTERM (a shutdown hang).
STOP_TIMEOUT_S = GRACE_S + 6.0


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(self: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process ({args!r}): mark it @pytest.mark.slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


class Servers:
    """Starts `grpclab serve` processes and stops every one of them at close()."""

    grace = GRACE_S
    stop_timeout = STOP_TIMEOUT_S

    def __init__(self) -> None:
        self._started: list[tuple[ServerProcess, IO[str]]] = []

    def __call__(self, *args: str, env: dict[str, str] | None = None, cpus: list[int] | None = None) -> ServerProcess:
        """Start ``grpclab serve ARGS`` (``--port 0`` and ``--grace 1`` unless given) and wait for its ready line."""
        args = list(args)
        if "--port" not in args:
            args += ["--port", "0"]
        if "--grace" not in args:
            args += ["--grace", str(GRACE_S)]
        # If pytest itself is killed, the kernel stops the server too.
        args.append("--exit-with-parent")
        srv = server_process.start(args, env=env, cpus=cpus)
        try:
            # server_process deletes its stderr file when it stops the server; an open handle keeps it readable.
            handle = open(srv.stderr_path, errors="replace")  # noqa: SIM115 - closed in close()
        except OSError:
            srv.stop(STOP_TIMEOUT_S)
            raise
        self._started.append((srv, handle))
        return srv

    def stderr(self, srv: ServerProcess) -> str:
        for started, handle in self._started:
            if started is srv:
                handle.seek(0)
                return handle.read()
        raise KeyError(srv.args)

    def close(self) -> list[str]:
        """Stop every server (SIGTERM, SIGKILL after STOP_TIMEOUT_S); return what went wrong, if anything."""
        problems = []
        for srv, handle in self._started:
            try:
                what = f"`grpclab serve {' '.join(srv.args)}` (pid {srv.proc.pid})"
                # A test that stopped a server itself has checked its exit code: not reported twice.
                stopped_by_test = srv.exit_code is not None
                found = []
                if not stopped_by_test and srv.proc.poll() is not None:
                    found.append(f"{what} died during the test with exit code {srv.proc.returncode}")
                code = srv.stop(STOP_TIMEOUT_S)
                if code != 0 and not stopped_by_test:
                    found.append(f"{what} exited with code {code} on SIGTERM (negative: killed by that signal)")
                stderr = self.stderr(srv).strip()
                if found and stderr:
                    found.append(f"its stderr:\n{stderr[-3000:]}")
                problems += found
            except Exception as exc:  # noqa: BLE001 - keep stopping the others, report at the end
                problems.append(f"stopping {srv.args}: {exc!r}")
            finally:
                handle.close()
        self._started.clear()
        return problems


@contextmanager
def _server_pool() -> Iterator[Servers]:
    """A Servers whose processes all stop on exit; fails the test (at teardown) on a crash or a bad exit code."""
    servers = Servers()
    try:
        yield servers
    finally:
        problems = servers.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server() -> Iterator[Servers]:
    """Factory: ``srv = server("--impl", "aio", env={...})`` -> a started ServerProcess (.target, .port, .pids)."""
    with _server_pool() as servers:
        yield servers


@pytest.fixture(scope="module")
def module_server() -> Iterator[Servers]:
    """Like ``server``, for servers shared by the tests of one module (stopped after the module)."""
    with _server_pool() as servers:
        yield servers


@pytest.fixture(scope="session")
def server_pool():
    """The context manager behind ``server``, for fixtures that manage servers themselves.

    A parametrized module-scoped fixture uses it so that each parameter's server stops as soon as
    pytest moves on to the next parameter: ``with server_pool() as servers: yield servers(...)``.
    """
    return _server_pool


@pytest.fixture(scope="session")
def lab_certs(tmp_path_factory: pytest.TempPathFactory) -> certs.CertPaths:
    """CA + server + client certificates for the session (`--tls DIR`; a client here also presents its cert)."""
    return certs.generate(tmp_path_factory.mktemp("tls") / "certs")


@pytest.fixture(scope="session")
def ca_only_dir(lab_certs: certs.CertPaths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client TLS dir with only ca.crt: trusts the lab CA, has no client certificate to present."""
    d = tmp_path_factory.mktemp("ca-only")
    shutil.copy(lab_certs.ca_cert, d / "ca.crt")
    return d


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Last resort (Ctrl-C in the middle of a fixture): never leave a server behind.
    server_process.stop_all()
