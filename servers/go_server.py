"""`grpclab serve --impl go`: the grpc-go reference server (servers/go), started in this process's place.

The options are checked here, as for the Python servers; then this process execs the Go binary with
the translated flags. The pid the harness started stays the server's pid, and what the harness set
on this process carries over: the CPU pinning (taskset) and the parent-death signal of
``--exit-with-parent`` (PR_SET_PDEATHSIG survives execve), so the Go server dies with the harness.

The Go server sends text payloads from the Python generator's own output: payloads.make("text", n)
is a prefix of payloads.make("text", m) for n < m, so one corpus file of the largest reply size,
written once and cached, gives it the very bytes a Python server sends.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from . import logic, payloads
from .config import ConfigError, ServerConfig

BINARY_NAME = "grpclab-go-server"
# Another build of the Go server (default: .venv/bin/grpclab-go-server, where `make setup` puts it).
ENV_BINARY = "GRPCLAB_GO_SERVER"
CORPUS_SIZE = logic.MAX_RESPONSE_SIZE  # every text reply a request may ask for is a prefix of it
MISSING = f"the Go server is not built: install Go (>= 1.26) and run make setup (it builds .venv/bin/{BINARY_NAME})"


def find_binary() -> Path | None:
    """$GRPCLAB_GO_SERVER, else the binary next to this interpreter (.venv/bin); None when it is not there."""
    configured = os.environ.get(ENV_BINARY)
    path = Path(configured) if configured else Path(sys.executable).parent / BINARY_NAME  # not resolved
    return path if path.is_file() and os.access(path, os.X_OK) else None


def version(binary: Path | None = None) -> str | None:
    """The binary's own version line, e.g. 'grpclab-go-server (grpc-go 1.85.0, go1.26.8)'; None if missing."""
    binary = binary or find_binary()
    if binary is None:
        return None
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0] if out.returncode == 0 and lines else None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "grpclab"


def corpus_key() -> str:
    """Changes whenever the text generator (or the Python whose random module it uses) could change."""
    source = inspect.getsource(payloads.make) + inspect.getsource(payloads._text)
    material = f"{source}\n{sys.version_info[:2]}\n{CORPUS_SIZE}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def text_corpus(cache_dir: Path | None = None) -> Path:
    """The cached corpus file, written (atomically) on first use; older versions are removed."""
    cache_dir = cache_dir or _cache_dir()
    path = cache_dir / f"text-corpus-{corpus_key()}.bin"
    try:
        if path.stat().st_size == CORPUS_SIZE:
            return path
    except FileNotFoundError:
        pass
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=".text-corpus-", delete=False) as tmp:
            tmp.write(payloads.make("text", CORPUS_SIZE))
        os.replace(tmp.name, path)  # a concurrent launcher writes the same bytes: either rename wins
    except OSError as exc:
        raise ConfigError(f"--impl go: cannot write the text payload corpus in {cache_dir}: {exc}") from None
    for old in cache_dir.glob("text-corpus-*.bin"):
        if old != path:
            old.unlink(missing_ok=True)  # a running server keeps its mapping of an unlinked file
    return path


def command(config: ServerConfig, binary: Path, corpus: Path) -> list[str]:
    """The Go server's argv for ``config``. --workers has no Go counterpart (a goroutine per RPC)."""
    args = [
        str(binary),
        f"--host={config.host}",
        f"--port={config.port}",
        f"--compression={config.compression}",
        f"--max-message-bytes={config.max_message_bytes}",
        f"--grace={config.grace}",
        f"--text-corpus={corpus}",
    ]
    if config.max_concurrent_rpcs is not None:
        args.append(f"--max-concurrent-rpcs={config.max_concurrent_rpcs}")
    if config.tls_dir is not None:
        args.append(f"--tls={config.tls_dir}")
    if config.mtls:
        args.append("--mtls")
    return args


def exec_server(config: ServerConfig) -> NoReturn:
    """Replace this process with the Go server; raises ConfigError when it cannot start."""
    binary = find_binary()
    if binary is None:
        configured = os.environ.get(ENV_BINARY)
        if configured:
            raise ConfigError(f"--impl go: {ENV_BINARY}={configured} is not an executable file")
        raise ConfigError(f"--impl go: {MISSING}")
    argv = command(config, binary, text_corpus())
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        raise ConfigError(f"--impl go: cannot run {binary}: {exc.strerror}") from None
