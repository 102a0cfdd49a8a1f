"""One options object decides a server: what `grpclab serve` parses and what both server models read.

It also defines, once, the named option presets of the ``server_options`` and ``channel_options`` axes:
gRPC core channel arguments that the servers (`grpclab serve --options PRESET`) and the Python load
generator's channels (bench.load.channels) apply. The Go server and ghz translate what they have an
equivalent for (servers/go_server.py, bench/load/ghz.py); a row says what they left out.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import grpc.experimental

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

ChannelArgs = tuple[tuple[str, int], ...]

# Keepalive pings every second: aggressive on purpose, so that pings happen inside a benchmark window of a
# few seconds (a production setting of 30 s - 2 min would never fire in one and could not show any cost).
KEEPALIVE_TIME_MS = 1000
KEEPALIVE_TIMEOUT_MS = 5000
# The channel arguments gRPC core reads (grpc/include/grpc/impl/channel_arg_names.h). grpc.experimental's
# SingleThreadedUnaryStream is read by grpcio's sync channel itself (grpc._channel), not by core, and only
# for unary-stream calls; the server never reads it (grpc.server passes unknown arguments to core unused).
SINGLE_THREADED_UNARY_STREAM = grpc.experimental.ChannelOptions.SingleThreadedUnaryStream  # public, documented
CHANNEL_PRESETS: dict[str, ChannelArgs] = {
    "default": (),
    # The client pings every second, also without calls (max_pings_without_data 0: no cap on pings before
    # data). A server that does not allow that (gRPC core's default allows one ping per 5 min without data)
    # answers with GOAWAY too_many_pings once the connection idles: pair it with server_options keepalive.
    "keepalive": (
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ),
    # Sync clients only: a unary-stream call's replies are read on the calling thread instead of a helper.
    "single-threaded-unary-stream": ((SINGLE_THREADED_UNARY_STREAM, 1),),
}
SERVER_PRESETS: dict[str, ChannelArgs] = {
    "default": (),
    # The server pings idle connections every second, and accepts client pings as often as every 0.5 s,
    # without calls and without strikes (max_ping_strikes 0: never GOAWAY for pinging too often).
    "keepalive": (
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
        ("grpc.http2.max_ping_strikes", 0),
    ),
}
# max-streams-N: grpc.max_concurrent_streams = N, HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS: at most N
# streams (RPCs) in flight per connection; further calls wait in the client for a free stream.
MAX_STREAMS_PREFIX = "max-streams-"
_MAX_STREAMS_RE = re.compile(rf"{MAX_STREAMS_PREFIX}([1-9][0-9]{{0,9}})")
MAX_STREAMS_LIMIT = 2**31 - 1
CHANNEL_PRESETS_TEXT = ", ".join(CHANNEL_PRESETS)
SERVER_PRESETS_TEXT = f"{', '.join(SERVER_PRESETS)}, {MAX_STREAMS_PREFIX}<N> (N >= 1)"


def channel_preset(name: object) -> ChannelArgs:
    """The channel arguments of a ``channel_options`` preset; ValueError naming the presets otherwise."""
    if isinstance(name, str) and name in CHANNEL_PRESETS:
        return CHANNEL_PRESETS[name]
    hint = " (a server preset: use server_options)" if isinstance(name, str) and _is_server_only(name) else ""
    raise ValueError(f"unknown channel options preset {name!r}{hint}; allowed: {CHANNEL_PRESETS_TEXT}")


def server_preset(name: object) -> ChannelArgs:
    """The server's channel arguments of a ``server_options`` preset; ValueError naming the presets otherwise."""
    if isinstance(name, str):
        if name in SERVER_PRESETS:
            return SERVER_PRESETS[name]
        match = _MAX_STREAMS_RE.fullmatch(name)
        if match and int(match[1]) <= MAX_STREAMS_LIMIT:
            return (("grpc.max_concurrent_streams", int(match[1])),)
    hint = ""
    if name == "single-threaded-unary-stream":
        hint = " (grpcio reads it in the sync client channel only, never in a server: use channel_options)"
    raise ValueError(f"unknown server options preset {name!r}{hint}; allowed: {SERVER_PRESETS_TEXT}")


def _is_server_only(name: str) -> bool:
    return name.startswith(MAX_STREAMS_PREFIX)


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
    options: str = "default"  # a server options preset (SERVER_PRESETS, max-streams-N)
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
            *server_preset(self.options),
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
    try:
        server_preset(config.options)
    except ValueError as exc:
        raise ConfigError(f"--options: {exc}") from None
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
