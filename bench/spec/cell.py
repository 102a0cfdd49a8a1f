"""One benchmark cell: the axes a spec sweeps, their allowed values and defaults, and the value checks.

A Cell is one configuration (one row's axis columns). Every problem with a value is one
SpecError line naming the key path, so the CLI can print it, exit 2 and write nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields

from . import compression
from .compression import Compression
from .link import Link


class SpecError(Exception):
    """One-line, user-facing message naming the key path / file."""


@dataclass(frozen=True)
class Cell:
    """One benchmark configuration; field order = column order in results."""

    impl: str  # "sync" | "aio"
    rpc: str  # "unary" | "server_stream" | "client_stream" | "bidi"
    workers: int  # sync thread-pool size; 0 for aio (aio ignores it)
    processes: int  # server processes sharing one port
    payload_size: int  # bytes of request and reply payload, uncompressed
    payload_kind: str  # "random" | "text" | "zeros"
    compression: str  # "none" | "grpc-gzip" | "grpc-deflate" | "app-gzip-1" ... "app-gzip-9" (bench.spec.compression)
    tls: str  # "off" | "on" | "mtls"
    concurrency: int  # RPCs in flight (closed loop) / cap on in-flight RPCs (open loop)
    connections: int  # channels
    stream_messages: int  # messages per streaming call; 1 for unary
    mode: str  # "closed" | "open"
    rate: float  # offered RPC/s for open loop; 0.0 for closed
    arrival: str  # "constant" | "poisson"; "constant" for closed
    loadgen: str  # "python" | "ghz"
    link: str = "loopback"  # "loopback" | "veth" | "veth-<rate>" (bench.spec.link); later axis, format 2
    # "tutorial" (the four services with the lab's fields) | "benchmark" (gRPC's grpc.testing.BenchmarkService,
    # bench.load.benchmark_workload); later axis, format 2
    service: str = "tutorial"

    def key(self) -> str:
        """Stable, unique, human-readable id.

        e.g. 'sync/unary/w4/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python'
        """
        # Fields that normalization fixes keep their slot (w0, m1) so every key has
        # the same shape; rate and arrival only mean something in open mode.
        mode = self.mode if self.mode == "closed" else f"open-r{fmt_number(self.rate)}-{self.arrival}"
        parts = [
            self.impl,
            self.rpc,
            f"w{self.workers}",
            f"p{self.processes}",
            f"{self.payload_size}B",
            self.payload_kind,
            self.compression,
            f"tls-{self.tls}",
            f"c{self.concurrency}",
            f"n{self.connections}",
            f"m{self.stream_messages}",
            mode,
            self.loadgen,
        ]
        # Axes added after the first results format appear only away from their default, so every
        # key written before they existed still names the same cell (resume, compare).
        parts += [f"{axis}={getattr(self, axis)}" for axis in LATER_AXES if getattr(self, axis) != DEFAULTS[axis]]
        return "/".join(parts)

    def to_dict(self) -> dict:
        """Field -> value, in column order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Cell:
        """Validate and normalize a field -> value mapping (e.g. a results row); errors name 'cell.FIELD'."""
        # A row written before an axis existed measured that axis's default.
        data = {**{axis: DEFAULTS[axis] for axis in LATER_AXES}, **data}
        missing = [axis for axis in AXES if axis not in data]
        if missing:
            raise SpecError(f"cell: missing {', '.join(missing)}")
        values = {}
        for axis in AXES:
            if axis == "workers" and data["impl"] == "aio" and is_int(data[axis]) and data[axis] == 0:
                values[axis] = 0  # already normalized
            else:
                values[axis] = AXIS_PARSERS[axis](data[axis], f"cell.{axis}")
        if values["mode"] == "open" and values["rate"] <= 0:
            raise SpecError(f"cell.rate: open mode needs rate > 0, got {show(data['rate'])}")
        return normalize(values)


AXES: tuple[str, ...] = tuple(f.name for f in fields(Cell))
# Axes added after results format 1 (grpclab.cell/1), in the order they were added. Rows and keys
# written before an axis existed mean its DEFAULTS value (Cell.from_dict, Cell.key,
# bench.analysis.schema.complete). A new axis goes at the end of Cell, gets a default, and is listed here.
LATER_AXES: tuple[str, ...] = ("link", "service")

ALLOWED: dict[str, tuple[str, ...]] = {
    "impl": ("sync", "aio"),
    "rpc": ("unary", "server_stream", "client_stream", "bidi"),
    "payload_kind": ("random", "text", "zeros"),
    "compression": compression.VALUES,
    "tls": ("off", "on", "mtls"),
    "mode": ("closed", "open"),
    "arrival": ("constant", "poisson"),
    "loadgen": ("python", "ghz"),
    "service": ("tutorial", "benchmark"),
}

# Value of an axis that a spec does not list.
DEFAULTS: dict[str, object] = {
    "impl": "sync",
    "rpc": "unary",
    "workers": 4,
    "processes": 1,
    "payload_size": 0,
    "payload_kind": "text",
    "compression": "none",
    "tls": "off",
    "concurrency": 8,
    "connections": 1,
    "stream_messages": 10,
    "mode": "closed",
    "rate": 0.0,
    "arrival": "constant",
    "loadgen": "python",
    "link": "loopback",
    "service": "tutorial",
}

# The servers accept 64 MiB messages; 16 MiB leaves room for framing and for
# app-gzip growing incompressible payloads, and is already far past typical RPCs.
MAX_PAYLOAD_SIZE = 16 * 1024 * 1024
_SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 * 1024}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([A-Za-z]*)\s*")


# -- value checks ------------------------------------------------------


def show(value: object) -> str:
    """A value as the user wrote it in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def fmt_number(value: float) -> str:
    # repr round-trips, so distinct rates always give distinct keys.
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _allowed_text(axis: str) -> str:
    if axis == "compression":
        return compression.ALLOWED_TEXT
    return ", ".join(ALLOWED[axis])


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not a count


def is_number(value: object) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _choice(axis: str) -> Callable[[object, str], str]:
    def parse(value: object, path: str) -> str:
        if not isinstance(value, str) or value not in ALLOWED[axis]:
            raise SpecError(f"{path}: unknown value {show(value)}; allowed: {_allowed_text(axis)}")
        return value

    return parse


def positive_int(value: object, path: str) -> int:
    if not is_int(value) or value < 1:
        raise SpecError(f"{path}: expected a positive integer, got {show(value)}")
    return value


def _size(value: object, path: str) -> int:
    size = None
    if is_int(value):
        size = value
    elif isinstance(value, str):
        match = _SIZE_RE.fullmatch(value)
        if match and match[2] in ("", *_SIZE_UNITS):
            size = int(match[1]) * _SIZE_UNITS.get(match[2], 1)
    if size is None or size < 0:
        raise SpecError(
            f"{path}: expected a size in bytes (integer >= 0 or a string with unit B, KiB or MiB "
            f"like '64KiB'), got {show(value)}"
        )
    if size > MAX_PAYLOAD_SIZE:
        raise SpecError(f"{path}: {show(value)} is larger than the lab's limit of 16MiB")
    return size


def _link(value: object, path: str) -> str:
    try:
        return Link.parse(value).value
    except ValueError as exc:
        raise SpecError(f"{path}: {exc}") from None


def _rate(value: object, path: str) -> float:
    if not is_number(value) or value < 0:
        raise SpecError(f"{path}: expected a number >= 0 (RPC/s), got {show(value)}")
    return float(value)


AXIS_PARSERS: dict[str, Callable[[object, str], object]] = {axis: _choice(axis) for axis in ALLOWED} | {
    "workers": positive_int,
    "processes": positive_int,
    "payload_size": _size,
    "concurrency": positive_int,
    "connections": positive_int,
    "stream_messages": positive_int,
    "rate": _rate,
    "link": _link,
}


def normalize(values: dict[str, object]) -> Cell:
    """Fix fields a cell ignores, so cells that would measure the same thing compare equal."""
    if values["impl"] == "aio":
        values = values | {"workers": 0}
    if values["rpc"] == "unary":
        values = values | {"stream_messages": 1}
    if values["mode"] == "closed":
        values = values | {"rate": 0.0, "arrival": "constant"}
    if values.get("service") == "benchmark":
        values = values | {"payload_kind": "zeros"}  # BenchmarkService payloads are zero bytes
    return Cell(**values)


def combination_problem(cell: Cell) -> str | None:
    """Why a cell's axis values cannot run together (one line), or None."""
    if cell.service == "benchmark":
        if Compression.parse(cell.compression).app_level:
            why = "BenchmarkService payloads carry no gzip level"
            return f"service=benchmark with compression={cell.compression}: {why}"
        if cell.loadgen != "python":
            return f"service=benchmark with loadgen={cell.loadgen}: only the Python generator speaks BenchmarkService"
        if cell.rpc == "bidi" and cell.mode == "open":
            return "service=benchmark with rpc=bidi and mode=open: a ping-pong stream carries one round trip at a time"
    return None


def check_keys(table: dict, allowed: Iterable[str], prefix: str, what: str = "key") -> None:
    allowed = tuple(allowed)
    for key in table:
        if key not in allowed:
            path = f"{prefix}.{key}" if prefix else key
            label = "axes" if what == "axis" else "allowed"
            raise SpecError(f"{path}: unknown {what}; {label}: {', '.join(allowed)}")


def matches(cell: Cell, table: dict[str, list]) -> bool:
    return all(getattr(cell, axis) in values for axis, values in table.items())
