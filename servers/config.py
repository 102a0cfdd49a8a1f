"""One options object decides a server: what `grpclab serve` parses and what both server models read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

IMPLS = ("sync", "aio", "go")  # go: the grpc-go reference server (servers/go, servers/go_server.py)
COMPRESSIONS = {
    "none": grpc.Compression.NoCompression,
    "gzip": grpc.Compression.Gzip,
    "deflate": grpc.Compression.Deflate,
}
# 16 MiB payloads plus framing and app-gzip overhead fit with room to spare.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# The tutorial's thread pool size.
DEFAULT_WORKERS = 10


@dataclass(frozen=True)
class ServerConfig:
    impl: str = "sync"
    host: str = "127.0.0.1"  # not the tutorial's [::]: a benchmark server must not face the network
    port: int = 50051
    workers: int = DEFAULT_WORKERS  # sync thread pool size; grpc.aio and go ignore it
    processes: int = 1
    tls_dir: Path | None = None
    mtls: bool = False
    compression: str = "none"
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_concurrent_rpcs: int | None = None
    grace: float = 2.0  # seconds open RPCs get to finish after SIGTERM
    uvloop: bool = False
    # Also serve grpc.testing.BenchmarkService (servers/benchmark_service.py): the lab's worker asks for it.
    benchmark_service: bool = False
    # Set by the multi-process launcher only: all processes share one port.
    reuse_port: bool = False

    def channel_options(self) -> list[tuple[str, int]]:
        return [
            # 0 with a single process: a port clash must fail loudly, not silently share the port.
            ("grpc.so_reuseport", 1 if self.reuse_port else 0),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
        ]

    def grpc_compression(self) -> grpc.Compression:
        return COMPRESSIONS[self.compression]

    def describe(self) -> dict:
        """JSON-ready summary for the ready line."""
        d = asdict(self)
        d["tls_dir"] = str(self.tls_dir) if self.tls_dir else None
        return d


class ConfigError(ValueError):
    """A server option that cannot work (one line, naming the flag)."""


def validate(config: ServerConfig) -> None:
    """Check everything that can be checked before any process or socket exists."""
    if config.impl not in IMPLS:
        raise ConfigError(f"--impl: unknown server model {config.impl!r}; allowed: {', '.join(IMPLS)}")
    if config.compression not in COMPRESSIONS:
        raise ConfigError(f"--compression: unknown value {config.compression!r}; allowed: {', '.join(COMPRESSIONS)}")
    for flag, value, low in (
        ("--workers", config.workers, 1),
        ("--processes", config.processes, 1),
        ("--max-message-bytes", config.max_message_bytes, 1),
    ):
        if value < low:
            raise ConfigError(f"{flag}: must be >= {low}, got {value}")
    if config.impl == "go" and config.processes != 1:
        raise ConfigError(
            f"--processes: --impl go runs one process (GOMAXPROCS covers every CPU it may use), got {config.processes}"
        )
    if config.impl == "go" and config.benchmark_service:
        raise ConfigError(
            "--benchmark-service: the Go reference server serves the tutorial's services only; "
            "for grpc-go's BenchmarkService run grpc-go's benchmark worker (grpclab-go-worker)"
        )
    if config.impl == "go" and config.compression == "deflate":
        raise ConfigError("--compression deflate: grpc-go has no deflate compressor; use none or gzip with --impl go")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"--port: must be 0-65535, got {config.port}")
    if config.max_concurrent_rpcs is not None and config.max_concurrent_rpcs < 1:
        raise ConfigError(f"--max-concurrent-rpcs: must be >= 1, got {config.max_concurrent_rpcs}")
    if config.grace < 0:
        raise ConfigError(f"--grace: must be >= 0, got {config.grace}")
    if config.mtls and config.tls_dir is None:
        raise ConfigError("--mtls: needs --tls DIR (the server certificate and the CA that signs client certs)")
    if config.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise ConfigError("--uvloop: uvloop is not installed (pip install uvloop)") from None
        if config.impl != "aio":
            raise ConfigError("--uvloop: only applies to --impl aio")
