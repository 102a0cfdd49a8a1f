"""`grpclab serve|certs|call` as a user runs them: output, exit codes, and one clear line for every mistake."""

from __future__ import annotations

import ipaddress
import json
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from server_impls import impls, param

# Every test here starts processes (servers, generators, the CLI): not part of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
GRPCLAB = [sys.executable, "-m", "bench.cli"]
# What the tutorial's four client programs print, in order (also checked by test_protos.py).
TUTORIAL_LINES = (REPO / "tests" / "tutorial_protos" / "expected_output.txt").read_text().splitlines()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 20.0) -> Result:
    """Run ``grpclab ARGS`` to completion; a command still running after ``timeout`` is killed (with its forks)."""
    proc = subprocess.Popen(
        [*GRPCLAB, *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's session: only what this call started
        proc.communicate()
        pytest.fail(f"grpclab {' '.join(args)} still running after {timeout} s")
    return Result(proc.returncode, stdout, stderr)


def assert_usage_error(result: Result, *mentions: str) -> None:
    """Exit 2, exactly one stderr line naming the problem, no traceback, nothing on stdout."""
    lines = result.stderr.splitlines()
    assert result.code == 2, result
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("grpclab"), lines[0]
    for mention in mentions:
        assert mention in lines[0], (mention, lines[0])
    assert result.stdout == ""


# --- grpclab serve ----------------------------------------------------------------------------------------


@contextmanager
def serve_raw(*args: str) -> Iterator[tuple[subprocess.Popen, dict]]:
    """``grpclab serve ARGS`` without the harness: yields the process and its parsed first stdout line."""
    proc = subprocess.Popen(
        [*GRPCLAB, "serve", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        line = b""
        deadline = time.monotonic() + 30
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n") and time.monotonic() < deadline:
                if selector.select(timeout=0.1):
                    chunk = os.read(proc.stdout.fileno(), 1)
                    if not chunk:
                        break
                    line += chunk
        if not line.endswith(b"\n"):
            stderr = proc.stderr.read() if proc.poll() is not None else b"(still running)"
            pytest.fail(f"no ready line; stderr: {stderr.decode(errors='replace')}")
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _loopback(ip: str) -> bool:
    """127.0.0.1, also as grpc's IPv4-mapped IPv6 socket address ::ffff:127.0.0.1."""
    address = ipaddress.ip_address(ip)
    return str(getattr(address, "ipv4_mapped", None) or address) == "127.0.0.1"


@pytest.mark.parametrize("impl", impls("aio", "sync", "go"))
def test_serve_prints_one_json_ready_line(impl: str) -> None:
    with serve_raw("--impl", impl, "--port", "0") as (proc, ready):
        assert ready["event"] == "ready"
        assert ready["impl"] == impl
        assert ready["pid"] == proc.pid
        assert ready["tls"] is False
        port = ready["port"]
        assert isinstance(port, int) and 0 < port < 65536
        # It listens on that port, on the loopback address only (not the tutorial's [::]).
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("inet") if c.status == "LISTEN"]
        assert listening and all(_loopback(addr.ip) and addr.port == port for addr in listening), listening
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        proc.terminate()
        assert proc.wait(10) == 0
        # Nothing after the ready line, and a quiet shutdown.
        assert proc.stdout.read() == b""
        assert b"Traceback" not in proc.stderr.read()


@pytest.fixture(scope="module", params=[1, 2], ids=["holder-1-process", "holder-2-processes"])
def holder(request, module_server) -> int:
    """A port held by a running server (with --processes 2 its sockets use SO_REUSEPORT)."""
    return module_server("--impl", "sync", "--processes", str(request.param)).port


@pytest.mark.parametrize(
    "impl, processes", [param("sync", "1"), param("sync", "2"), param("aio", "1"), param("aio", "2"), param("go", "1")]
)
def test_port_in_use_is_one_line_exit_2(holder: int, impl: str, processes: str) -> None:
    # The newcomer must be refused, never join the holder's SO_REUSEPORT group.
    result = run_cli("serve", "--impl", impl, "--port", str(holder), "--processes", processes, timeout=10)
    assert_usage_error(result, str(holder))


# (arguments after `serve`, environment, what the one stderr line must mention); {missing} is a directory
# that does not exist, {partial} one with ca.crt and server.crt but no server.key.
BAD_SERVE = {
    "unknown-impl": (["--impl", "threads"], {}, ["--impl", "threads"]),
    "missing-tls-dir": (["--tls", "{missing}"], {}, ["--tls", "{missing}"]),
    "tls-dir-without-key": (["--tls", "{partial}"], {}, ["server.key"]),
    "mtls-without-tls": (["--mtls"], {}, ["--mtls", "--tls"]),
    "workers-0": (["--workers", "0"], {}, ["--workers"]),
    "workers-negative-aio": (["--workers", "-3", "--impl", "aio"], {}, ["--workers"]),
    "processes-0": (["--processes", "0"], {}, ["--processes"]),
    "port-70000": (["--port", "70000"], {}, ["--port"]),
    "port-not-a-number": (["--port", "eighty"], {}, ["--port"]),
    "unknown-compression": (["--compression", "brotli"], {}, ["--compression"]),
    "max-message-bytes-0": (["--max-message-bytes", "0"], {}, ["--max-message-bytes"]),
    "negative-grace": (["--grace", "-1"], {}, ["--grace"]),
    "uvloop-with-sync": (["--uvloop", "--impl", "sync"], {}, ["--uvloop"]),
    "uvloop-with-go": (["--uvloop", "--impl", "go"], {}, ["--uvloop"]),
    # grpc-go: one process, and no deflate compressor (these need no Go binary: refused before it runs)
    "go-processes-2": (["--impl", "go", "--processes", "2"], {}, ["--processes", "go"]),
    "go-deflate": (["--impl", "go", "--compression", "deflate"], {}, ["deflate", "grpc-go"]),
    "go-binary-missing": (["--impl", "go"], {"GRPCLAB_GO_SERVER": "/nonexistent/server"}, ["GRPCLAB_GO_SERVER"]),
    "go-delay-abc": (["--impl", "go"], {"GRPCLAB_INJECT_DELAY_US": "abc"}, ["GRPCLAB_INJECT_DELAY_US"]),
    "unknown-flag": (["--no-such-flag"], {}, ["--no-such-flag"]),
    **{
        f"delay-{label}": ([], {"GRPCLAB_INJECT_DELAY_US": value}, ["GRPCLAB_INJECT_DELAY_US"])
        for label, value in (("abc", "abc"), ("-5", "-5"), ("1.5", "1.5"), ("50ms", "50ms"), ("superscript-2", "²"))
    },
    "delay-x-processes-2": (["--processes", "2"], {"GRPCLAB_INJECT_DELAY_US": "x"}, ["GRPCLAB_INJECT_DELAY_US"]),
    "cpu-1e3": ([], {"GRPCLAB_INJECT_CPU_US": "1e3"}, ["GRPCLAB_INJECT_CPU_US"]),
    "stall-5": ([], {"GRPCLAB_INJECT_STALL": "5"}, ["GRPCLAB_INJECT_STALL"]),
    "stall-5:superscript-2": ([], {"GRPCLAB_INJECT_STALL": "5:²"}, ["GRPCLAB_INJECT_STALL"]),
}


@pytest.mark.parametrize("case", list(BAD_SERVE))
def test_bad_serve_arguments_are_one_line_exit_2(tmp_path: Path, case: str) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "ca.crt").write_text("x")
    (partial / "server.crt").write_text("x")
    places = {"missing": str(tmp_path / "no-such-dir"), "partial": str(partial)}
    args, env, mentions = BAD_SERVE[case]
    args, mentions = [a.format(**places) for a in args], [m.format(**places) for m in mentions]
    # --port 0 first: a command that wrongly starts serving is still killed by run_cli's timeout.
    assert_usage_error(run_cli("serve", "--port", "0", *args, env=env, timeout=15), *mentions)


@pytest.mark.parametrize(
    "args, mentions",
    [
        ([], ["COMMAND"]),
        (["bogus"], ["bogus"]),
        (["call", "--timeout", "soon"], ["--timeout"]),
        (["call", "--compression", "lz4"], ["--compression"]),
    ],
    ids=["no-command", "unknown-command", "call-timeout", "call-compression"],
)
def test_bad_command_line_is_one_line_exit_2(args: list[str], mentions: list[str]) -> None:
    assert_usage_error(run_cli(*args), *mentions)


# --- grpclab certs ----------------------------------------------------------------------------------------


def test_certs_writes_the_set_with_private_keys(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    result = run_cli("certs", str(d))
    assert result.code == 0, result.stderr
    assert str(d) in result.stdout and result.stderr == ""
    assert {p.name for p in d.iterdir()} == {"ca.crt", "server.crt", "server.key", "client.crt", "client.key"}
    for key in ("server.key", "client.key"):
        assert stat.S_IMODE((d / key).stat().st_mode) == 0o600, key
    for cert in ("ca.crt", "server.crt", "client.crt"):
        assert stat.S_IMODE((d / cert).stat().st_mode) == 0o644, cert
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_bad_certs_arguments_are_one_line_exit_2(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert_usage_error(run_cli("certs", str(a_file)), str(a_file))
    assert_usage_error(run_cli("certs", str(tmp_path / "tls"), "--days", "0"), "--days")
    assert_usage_error(run_cli("certs"), "dir")


# --- grpclab call -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plaintext", "tls-gzip", "mtls"])
def test_call_prints_the_tutorial_lines(server, lab_certs, ca_only_dir, mode: str) -> None:
    if mode == "plaintext":
        srv, client = server("--impl", "sync"), []
    elif mode == "tls-gzip":
        srv = server("--impl", "aio", "--tls", str(lab_certs.dir), "--compression", "gzip")
        client = ["--tls", str(ca_only_dir), "--compression", "gzip"]
    else:
        srv = server("--impl", "sync", "--tls", str(lab_certs.dir), "--mtls")
        client = ["--tls", str(lab_certs.dir)]
    result = run_cli("call", "--target", srv.target, *client)
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == TUTORIAL_LINES
    assert result.stderr == ""


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused for as long as the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_call_to_a_dead_port_is_one_unavailable_line(dead_port: int) -> None:
    started = time.monotonic()
    result = run_cli("call", "--target", f"127.0.0.1:{dead_port}", "--timeout", "5")
    assert result.code not in (0, 2), result  # an RPC failure, not a usage error
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("UNAVAILABLE: "), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert time.monotonic() - started < 5  # refused at once, not after the deadline


def test_call_without_client_certificate_to_mtls_server(server, lab_certs, ca_only_dir) -> None:
    srv = server("--impl", "aio", "--tls", str(lab_certs.dir), "--mtls")
    result = run_cli("call", "--target", srv.target, "--tls", str(ca_only_dir), "--timeout", "5")
    assert result.code not in (0, 2)
    assert result.stderr.startswith("UNAVAILABLE: ") and len(result.stderr.splitlines()) == 1, result.stderr


def test_call_with_a_missing_tls_dir_is_one_line_exit_2(tmp_path: Path, dead_port: int) -> None:
    missing = tmp_path / "nothing-here"
    assert_usage_error(run_cli("call", "--target", f"127.0.0.1:{dead_port}", "--tls", str(missing)), "ca.crt")
