"""The `compression` axis, interpreted in one place.

Axis values:

* ``none``: payloads sent raw, no gRPC compression;
* ``grpc-gzip``, ``grpc-deflate``: gRPC's own message compression. The server is started with it as its
  default (it compresses every reply), and the client compresses its requests with it (the Python
  generator's channels; ghz's ``-e``, which knows gzip only). gRPC core uses zlib's default level, 6,
  and gRPC Python has no knob for another;
* ``app-gzip-N`` (N = 1..9): the lab's application-level gzip. The client gzips each request payload at
  zlib level N and says so in the request (``payload_gzip_level``); the server decompresses it and gzips
  its reply payload at the same level. The server needs no flag for it.

Everything else (spec checks, server arguments, both generators, the payload ratio in the rows, the
figures) asks a :class:`Compression` instead of reading the string.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

GRPC_ZLIB_LEVEL = 6  # what gRPC core's gzip and deflate compress at
APP_GZIP_PREFIX = "app-gzip-"
APP_LEVELS = tuple(range(1, 10))
# gRPC's own algorithms: axis value -> the name `grpclab serve --compression` and the channels take
# (servers.config.COMPRESSIONS).
_GRPC = {"none": "none", "grpc-gzip": "gzip", "grpc-deflate": "deflate"}
VALUES: tuple[str, ...] = (*_GRPC, *(f"{APP_GZIP_PREFIX}{level}" for level in APP_LEVELS))
ALLOWED_TEXT = "none, grpc-gzip, grpc-deflate, app-gzip-1..9"


@dataclass(frozen=True)
class Compression:
    """One value of the compression axis and what it means for the server, the generators and the rows."""

    value: str  # the axis value, e.g. "app-gzip-6"
    grpc: str  # gRPC message compression: "none", "gzip" or "deflate"
    app_level: int  # zlib level the application gzips each payload at; 0: payloads travel raw

    @staticmethod
    def parse(value: str) -> Compression:
        """The axis value's meaning; ValueError (naming the allowed values) for anything else."""
        return _parse(value)

    @property
    def is_app_gzip(self) -> bool:
        return self.app_level > 0

    @property
    def zlib_level(self) -> int:
        """The zlib level the payload bytes go through on the wire (0: not compressed)."""
        return self.app_level or (GRPC_ZLIB_LEVEL if self.grpc != "none" else 0)

    def server_args(self) -> list[str]:
        """`grpclab serve` arguments: gRPC's algorithm as the server's default; app-gzip needs none."""
        return ["--compression", self.grpc] if self.grpc != "none" else []

    def ghz_flags(self) -> list[str] | None:
        """ghz's flags for the requests it sends; None when ghz cannot send this compression."""
        if self.grpc == "deflate":
            return None  # ghz's -e compresses with gzip only
        return ["-e"] if self.grpc == "gzip" else []  # app-gzip: the payload in the data file is compressed

    def payload_ratio(self, payload_kind: str, payload_size: int) -> float:
        """Uncompressed / compressed size of the cell's request payload (1.0 when nothing compresses it).

        It depends on the cell alone (payloads are deterministic), so it is computed once per row
        by the harness, not by the load generators.
        """
        return _payload_ratio(self.zlib_level, payload_kind, payload_size)


@functools.cache
def _parse(value: str) -> Compression:
    if value in _GRPC:
        return Compression(value, _GRPC[value], 0)
    if isinstance(value, str) and value.startswith(APP_GZIP_PREFIX):
        level = value[len(APP_GZIP_PREFIX) :]
        if level.isdigit() and int(level) in APP_LEVELS:
            return Compression(value, "none", int(level))
    raise ValueError(f"unknown compression {value!r}; allowed: {ALLOWED_TEXT}")


@functools.lru_cache(maxsize=64)
def _payload_ratio(level: int, payload_kind: str, payload_size: int) -> float:
    from servers import payloads, records

    if payload_kind == records.KIND:  # the serialized Records message is what gRPC's gzip compresses
        raw = records.build(payload_size).message.SerializeToString()
    else:
        raw = payloads.make(payload_kind, payload_size)
    if not raw or not level:
        return 1.0
    return len(raw) / len(payloads.encode(raw, level))
