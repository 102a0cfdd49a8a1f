"""The grpc-go reference server's own parts: the launcher (servers/go_server.py), the Go unit tests, gofmt and
go vet, and the binary's one-line errors. Its wire contract is tested with the Python servers' in
test_servers.py and test_protos.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from server_impls import GO_BUILT, GO_MISSING

from servers import go_server, payloads
from servers.config import ConfigError, ServerConfig

GO_DIR = Path(__file__).resolve().parent.parent / "servers" / "go"
GO = shutil.which("go")
needs_go = pytest.mark.skipif(GO is None, reason="Go not installed: the Go server's unit tests need it")
needs_binary = pytest.mark.skipif(not GO_BUILT, reason=GO_MISSING)


# --- the launcher (pure logic) ----------------------------------------------------------------------------


def test_text_is_a_prefix_of_any_longer_text() -> None:
    # The premise of the corpus: one file of the largest size holds every smaller text payload.
    longest = payloads.make("text", 200_000)
    for size in (0, 1, 999, 4096, 65_536, 199_999):
        assert payloads.make("text", size) == longest[:size]


def test_text_corpus_is_written_once_and_replaces_old_versions(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(go_server, "CORPUS_SIZE", 50_000)
    stale = tmp_path / "text-corpus-0000000000000000.bin"
    tmp_path.joinpath("unrelated.bin").write_bytes(b"x")
    stale.write_bytes(b"old")
    path = go_server.text_corpus(tmp_path)
    assert path.read_bytes() == payloads.make("text", 50_000)
    assert not stale.exists() and tmp_path.joinpath("unrelated.bin").exists()
    inode = path.stat().st_ino
    assert go_server.text_corpus(tmp_path) == path and path.stat().st_ino == inode  # cached: not rewritten
    path.write_bytes(b"cut short")  # a damaged file is rewritten
    assert go_server.text_corpus(tmp_path).read_bytes() == payloads.make("text", 50_000)
    # The key follows the generator's source and the size.
    monkeypatch.setattr(go_server, "CORPUS_SIZE", 60_000)
    assert go_server.text_corpus(tmp_path) != path and not path.exists()


def test_the_default_corpus_covers_the_largest_reply() -> None:
    from servers import logic

    assert go_server.CORPUS_SIZE == logic.MAX_RESPONSE_SIZE


def test_command_translates_the_options(tmp_path: Path) -> None:
    config = ServerConfig(
        impl="go",
        host="::1",
        port=0,
        workers=7,  # no Go counterpart: not passed
        tls_dir=tmp_path,
        mtls=True,
        compression="gzip",
        max_message_bytes=1000,
        max_concurrent_rpcs=5,
        grace=1.5,
    )
    argv = go_server.command(config, Path("/bin/server"), Path("/c/corpus"))
    assert argv == [
        "/bin/server",
        "--host=::1",
        "--port=0",
        "--compression=gzip",
        "--max-message-bytes=1000",
        "--grace=1.5",
        "--text-corpus=/c/corpus",
        "--max-concurrent-rpcs=5",
        f"--tls={tmp_path}",
        "--mtls",
    ]
    plain = go_server.command(ServerConfig(impl="go"), Path("/bin/server"), Path("/c"))
    assert not any(a.startswith(("--tls", "--mtls", "--max-concurrent")) for a in plain)


def test_missing_binary_names_make_setup(monkeypatch) -> None:
    monkeypatch.delenv(go_server.ENV_BINARY, raising=False)
    monkeypatch.setattr(go_server, "find_binary", lambda: None)
    with pytest.raises(ConfigError, match=r"make setup") as info:
        go_server.exec_server(ServerConfig(impl="go", port=0))
    assert "\n" not in str(info.value)


# --- the Go code itself -----------------------------------------------------------------------------------


def _go(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOTOOLCHAIN": "local"}
    return subprocess.run([GO, *args], cwd=GO_DIR, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@needs_go
def test_go_unit_tests_pass() -> None:
    result = _go("test", "-count=1", "./...")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@needs_go
def test_go_code_is_gofmt_and_vet_clean() -> None:
    gofmt = subprocess.run(
        [str(Path(GO).parent / "gofmt"), "-l", "."], cwd=GO_DIR, capture_output=True, text=True, timeout=60
    )
    assert gofmt.returncode == 0 and gofmt.stdout == "", f"not gofmt'd: {gofmt.stdout}{gofmt.stderr}"
    vet = _go("vet", "./...")
    assert vet.returncode == 0, vet.stderr


# --- the binary's own errors: one line, exit 2 ------------------------------------------------------------

BAD_BINARY_ARGS = {
    "unknown flag": (["--no-such-flag"], {}, "no-such-flag"),
    "deflate": (["--compression", "deflate"], {}, "grpc-go has no deflate compressor"),
    "unknown compression": (["--compression", "brotli"], {}, "--compression"),
    "port": (["--port", "70000"], {}, "--port"),
    "port not a number": (["--port", "eighty"], {}, "-port"),
    "mtls without tls": (["--mtls"], {}, "--mtls"),
    "negative grace": (["--grace", "-1"], {}, "--grace"),
    "no corpus": (["--text-corpus", ""], {}, "--text-corpus"),
    "missing tls dir": (["--tls", "/nonexistent"], {}, "--tls"),
    "bad delay": ([], {"GRPCLAB_INJECT_DELAY_US": "50ms"}, "GRPCLAB_INJECT_DELAY_US"),
    "bad stall": ([], {"GRPCLAB_INJECT_STALL": "5"}, "GRPCLAB_INJECT_STALL"),
}


@pytest.mark.slow
@needs_binary
@pytest.mark.parametrize("case", list(BAD_BINARY_ARGS))
def test_binary_bad_arguments_are_one_line_exit_2(case: str) -> None:
    args, env, mention = BAD_BINARY_ARGS[case]
    corpus = go_server.text_corpus()
    command = [str(go_server.find_binary()), "--port=0", f"--text-corpus={corpus}", *args]
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=20)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result
    assert len(lines) == 1 and lines[0].startswith("grpclab serve: error: ") and mention in lines[0], result.stderr
    assert result.stdout == ""


@pytest.mark.slow
@needs_binary
def test_binary_port_in_use_is_one_line_exit_2() -> None:
    # `grpclab serve` probes the port before the exec; the binary reports a clash itself too.
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        command = [str(go_server.find_binary()), f"--port={port}", f"--text-corpus={go_server.text_corpus()}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr == f"grpclab serve: error: cannot bind 127.0.0.1:{port}: address already in use\n"


@pytest.mark.slow
@needs_binary
def test_binary_version() -> None:
    assert go_server.version() == f"grpclab-go-server (grpc-go 1.85.0, {_go_version_of_binary()})"


def _go_version_of_binary() -> str:
    # `go version FILE` reads the toolchain version the binary was built with (no build needed).
    if GO is None:
        pytest.skip("Go not installed")
    out = subprocess.run([GO, "version", str(go_server.find_binary())], capture_output=True, text=True, timeout=30)
    return out.stdout.split(": ", 1)[1].strip()
