"""One benchmark cell: the axes a spec sweeps, their allowed values and defaults, and the value checks.

A Cell is one configuration (one row's axis columns). Every problem with a value is one
SpecError line naming the key path, so the CLI can print it, exit 2 and write nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields

from . import compression
from .compression import Compression
from .link import Link


class SpecError(Exception):
    """One-line, user-facing message naming the key path / file."""


@dataclass(frozen=True)
class Cell:
    """One benchmark configuration; field order = column order in results."""

    impl: str  # "sync" | "aio" | "go" (the grpc-go reference server, servers/go)
    rpc: str  # "unary" | "server_stream" | "client_stream" | "bidi"
    workers: int  # sync thread-pool size; 0 for aio and go (they have no pool to size)
    processes: int  # server processes sharing one port
    payload_size: int  # bytes of request and reply payload, uncompressed
    payload_kind: str  # "random" | "text" | "zeros" | "records" (lab.Records, servers/records.py)
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
    # Work each handler does per message (lab.Work, servers/work.py); later axes, format 2; 0: none.
    handler_wait_ms: float = 0.0  # a wait the handler yields during (a database call)
    handler_block_ms: float = 0.0  # a blocking call that does not yield (holds aio's event loop)
    handler_cpu_us: int = 0  # pure-Python CPU work holding the GIL
    # The Python generator's client side (issue 18), later axes, format 2; see CLIENT_RULES below.
    client: str = "aio"  # "aio" | "sync-threads" | "sync-future": the gRPC Python client API the load goes through
    channel: str = "reuse"  # "reuse": channels open for the whole cell | "per-call": a new channel for every RPC
    channel_options: str = "default"  # a client channel options preset (servers.config.CHANNEL_PRESETS)
    server_options: str = "default"  # a server options preset (servers.config.SERVER_PRESETS, max-streams-N)
    event_loop: str = "asyncio"  # "asyncio" | "uvloop": the loop of the aio server and of the aio client
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
        parts += [
            f"{axis}={_key_text(getattr(self, axis))}" for axis in LATER_AXES if getattr(self, axis) != DEFAULTS[axis]
        ]
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
            if axis == "workers" and not applies(axis, data) and is_int(data[axis]) and data[axis] == 0:
                values[axis] = 0  # already normalized (aio and go rows carry 0)
            else:
                values[axis] = AXIS_PARSERS[axis](data[axis], f"cell.{axis}")
        if values["mode"] == "open" and values["rate"] <= 0:
            raise SpecError(f"cell.rate: open mode needs rate > 0, got {show(data['rate'])}")
        check_combination(values, "cell")
        return normalize(values)


AXES: tuple[str, ...] = tuple(f.name for f in fields(Cell))
# Axes added after results format 1 (grpclab.cell/1), in the order they were added. Rows and keys
# written before an axis existed mean its DEFAULTS value (Cell.from_dict, Cell.key,
# bench.analysis.schema.complete). A new axis goes at the end of Cell, gets a default, and is listed here.
LATER_AXES: tuple[str, ...] = (
    "link",
    "handler_wait_ms",
    "handler_block_ms",
    "handler_cpu_us",
    "client",
    "channel",
    "channel_options",
    "server_options",
    "event_loop",
    "service",
)

ALLOWED: dict[str, tuple[str, ...]] = {
    "impl": ("sync", "aio", "go"),
    "rpc": ("unary", "server_stream", "client_stream", "bidi"),
    "payload_kind": ("random", "text", "zeros", "records"),
    "compression": compression.VALUES,
    "tls": ("off", "on", "mtls"),
    "mode": ("closed", "open"),
    "arrival": ("constant", "poisson"),
    "loadgen": ("python", "ghz"),
    "client": ("aio", "sync-threads", "sync-future"),
    "channel": ("reuse", "per-call"),
    "event_loop": ("asyncio", "uvloop"),
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
    "handler_wait_ms": 0.0,
    "handler_block_ms": 0.0,
    "handler_cpu_us": 0,
    "client": "aio",
    "channel": "reuse",
    "channel_options": "default",
    "server_options": "default",
    "event_loop": "asyncio",
    "service": "tutorial",
}

CLIENT_RULES = """How the client-side axes combine with the others (INAPPLICABLE holds them, check_cell the errors):

* ghz is its own client (grpc-go, one channel per connection for the whole cell): in a ghz cell `client`
  and `channel` take their defaults, as aio's `workers` does (ghz cells with other values are the same
  cell), and `event_loop` applies to the aio server only. `channel_options` applies where ghz has a flag
  (keepalive: --keepalive; the row notes what it leaves out), `server_options` always.
* `channel = "per-call"` opens a channel (TCP connection, HTTP/2 setup, TLS handshake) for every RPC and
  closes it after: `connections` does not apply and is 1.
* `event_loop` applies to each end that runs an asyncio loop: the aio server and the aio client. A cell with
  neither (a sync server driven by a sync client or ghz) has `asyncio`.
* `channel_options = "single-threaded-unary-stream"` is read by grpcio's sync channel for unary-stream calls
  only: elsewhere it is `default`.
* Spec errors: `client = "sync-future"` with `rpc` server_stream or bidi (grpcio has .future() only on
  unary-unary and stream-unary callables); `payload_kind = "records"` with `app-gzip-N` (app-level gzip
  compresses the bytes payload, which records cells leave empty; grpc-gzip compresses whole messages and
  does apply).
"""

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


def _key_text(value: object) -> str:
    return fmt_number(value) if isinstance(value, float) else str(value)


# Per message, as the servers bound it (servers/work.py): larger values would only fail every RPC.
MAX_HANDLER_MS = 10_000.0
MAX_HANDLER_CPU_US = 1_000_000


def _handler_ms(value: object, path: str) -> float:
    """Milliseconds >= 0, sent as whole microseconds (lab.Work)."""
    if not is_number(value) or value < 0:
        raise SpecError(f"{path}: expected a number of milliseconds >= 0, got {show(value)}")
    if value > MAX_HANDLER_MS:
        raise SpecError(
            f"{path}: {show(value)} ms is more than the servers' limit of {MAX_HANDLER_MS:g} ms per message"
        )
    if abs(value * 1000 - round(value * 1000)) > 1e-6:
        raise SpecError(f"{path}: {show(value)} ms is finer than the 1 us the servers are told (lab.Work)")
    return float(value)


def _handler_cpu_us(value: object, path: str) -> int:
    if not is_int(value) or value < 0:
        raise SpecError(f"{path}: expected a whole number of microseconds >= 0, got {show(value)}")
    if value > MAX_HANDLER_CPU_US:
        raise SpecError(f"{path}: {value} us is more than the servers' limit of {MAX_HANDLER_CPU_US} us per message")
    return value


def _preset(kind: str) -> Callable[[object, str], str]:
    def parse(value: object, path: str) -> str:
        from servers import config  # the presets are defined once, with the servers

        try:
            (config.channel_preset if kind == "channel" else config.server_preset)(value)
        except ValueError as exc:
            raise SpecError(f"{path}: {exc}") from None
        return value

    return parse


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
    "handler_wait_ms": _handler_ms,
    "handler_block_ms": _handler_ms,
    "handler_cpu_us": _handler_cpu_us,
    "channel_options": _preset("channel"),
    "server_options": _preset("server"),
}


@dataclass(frozen=True)
class Inapplicable:
    """Where an axis (or some of its values) means nothing, and the value such cells carry instead.

    ``where``: conditions, any of which makes the axis not apply; each maps axes to the values under which it holds
    (every axis named must have one of its values: {"impl": {"sync", "go"}, "loadgen": {"ghz"}} is "a sync or Go
    server driven by ghz"). ``only``: the axis's values the rule fixes (None: every value); a rule with ``only`` never
    makes a normalized cell's axis inapplicable (its value there is the fixed one), it only sends those values home.
    """

    value: object
    where: tuple[Mapping[str, frozenset[str]], ...]
    only: frozenset[str] | None = None

    @property
    def deciders(self) -> frozenset[str]:
        """The axes whose values decide whether this one applies."""
        return frozenset(axis for condition in self.where for axis in condition)

    def holds(self, values: Mapping[str, object]) -> bool:
        """Whether ``values`` (a cell's axes, or a row) meet a condition, whatever the axis's own value."""
        return any(all(str(values[axis]) in allowed for axis, allowed in c.items()) for c in self.where)


def _other_than(axis: str, *values: str) -> frozenset[str]:
    return frozenset(ALLOWED[axis]) - set(values)


_SYNC_CLIENTS = _other_than("client", "aio")
_NO_LOOP_SERVER = _other_than("impl", "aio")

# Axes that mean something for some cells only (with CLIENT_RULES for the client side): the one rule for "does this
# axis apply". normalize() gives those cells the fixed value, in this order (a rule may read an axis fixed by an
# earlier one: ghz fixes channel before per-call fixes connections), and the analysis matches like with like by it
# (bench.analysis.findings, bench.analysis.figures.select, bench.analysis.reference).
INAPPLICABLE: dict[str, Inapplicable] = {
    "workers": Inapplicable(0, ({"impl": frozenset({"aio", "go"})},)),  # aio and go have no thread pool to size
    "stream_messages": Inapplicable(1, ({"rpc": frozenset({"unary"})},)),
    "rate": Inapplicable(0.0, ({"mode": frozenset({"closed"})},)),
    "arrival": Inapplicable("constant", ({"mode": frozenset({"closed"})},)),
    # ghz is its own client (grpc-go, one channel per connection for the whole cell)
    "client": Inapplicable(DEFAULTS["client"], ({"loadgen": frozenset({"ghz"})},)),
    "channel": Inapplicable(DEFAULTS["channel"], ({"loadgen": frozenset({"ghz"})},)),
    # a channel per RPC: no connections to spread the load over
    "connections": Inapplicable(1, ({"channel": frozenset({"per-call"})},)),
    # no asyncio loop at either end: a sync or Go server driven by ghz or by a sync client
    "event_loop": Inapplicable(
        DEFAULTS["event_loop"],
        ({"impl": _NO_LOOP_SERVER, "loadgen": frozenset({"ghz"})}, {"impl": _NO_LOOP_SERVER, "client": _SYNC_CLIENTS}),
    ),
    # grpcio's sync channel reads this option on unary-stream calls only
    "channel_options": Inapplicable(
        DEFAULTS["channel_options"],
        (
            {"loadgen": frozenset({"ghz"})},
            {"client": frozenset({"aio"})},
            {"rpc": _other_than("rpc", "server_stream")},
        ),
        only=frozenset({"single-threaded-unary-stream"}),
    ),
    "payload_kind": Inapplicable("zeros", ({"service": frozenset({"benchmark"})},)),  # BenchmarkService: zero bytes
}
# The Go server runs one process (a goroutine per RPC, GOMAXPROCS = the server CPUs); grpclab serve refuses more.
GO_PROCESSES = 1


def applies(axis: str, values: Mapping[str, object]) -> bool:
    """Whether a cell's value of ``axis`` means anything (the workers of a sync cell, not of an aio or go cell).

    ``values``: a cell's axes or a row, with at least ``axis`` and the axes that decide it (INAPPLICABLE)."""
    rule = INAPPLICABLE.get(axis)
    if rule is None or not rule.holds(values):
        return True
    return rule.only is not None and str(values[axis]) not in rule.only


def deciders() -> dict[str, frozenset[str]]:
    """axis -> the axes that decide whether it applies (workers -> impl, event_loop -> impl, loadgen, client ...)."""
    return {axis: rule.deciders for axis, rule in INAPPLICABLE.items()}


def check_combination(values: Mapping[str, object], path: str) -> None:
    """Values that are each allowed but cannot go together; ``path`` prefixes the key named ('axes', 'include[2]')."""
    if values["impl"] == "go" and values["processes"] != GO_PROCESSES:
        raise SpecError(
            f"{path}.processes: {values['processes']} with impl 'go': the Go server runs one process "
            f"(GOMAXPROCS follows the server CPUs); exclude these cells or use processes = 1"
        )


def normalize(values: dict[str, object]) -> Cell:
    """Fix fields a cell ignores (INAPPLICABLE), so cells that would measure the same thing compare equal."""
    # A row written before the later axes existed has their defaults.
    values = {**{axis: DEFAULTS[axis] for axis in LATER_AXES if axis not in values}, **values}
    for axis, rule in INAPPLICABLE.items():  # in order: a rule reads the axes fixed before it
        if not applies(axis, values):
            values = values | {axis: rule.value}
    return Cell(**values)


def check_cell(cell: Cell, path: str) -> None:
    """SpecError for a cell no generator can run as asked (CLIENT_RULES); ``path``: where the spec made it."""
    if cell.client == "sync-future" and cell.rpc in ("server_stream", "bidi"):
        raise SpecError(
            f"{path}: client 'sync-future' cannot make {cell.rpc} calls: grpcio has .future() only for unary and "
            'client_stream (exclude them: [[exclude]] client = "sync-future", rpc = ["server_stream", "bidi"])'
        )
    if cell.payload_kind == "records" and compression.Compression.parse(cell.compression).is_app_gzip:
        raise SpecError(
            f"{path}: payload_kind 'records' with {cell.compression}: app-level gzip compresses the bytes payload, "
            "which records cells leave empty; use none, grpc-gzip or grpc-deflate for records"
        )
    problem = combination_problem(cell)
    if problem:
        raise SpecError(f"{path}: {problem} (exclude such cells)")


def combination_problem(cell: Cell) -> str | None:
    """Why a cell's axis values cannot run together on gRPC's BenchmarkService (one line), or None."""
    if cell.service == "benchmark":
        if Compression.parse(cell.compression).app_level:
            why = "BenchmarkService payloads carry no gzip level"
            return f"service=benchmark with compression={cell.compression}: {why}"
        if cell.impl == "go":
            return "service=benchmark with impl=go: the Go reference server does not serve BenchmarkService"
        if cell.loadgen != "python" or cell.client != "aio":
            return "service=benchmark: only the Python generator's aio client speaks BenchmarkService"
        if cell.rpc == "bidi" and cell.mode == "open":
            return "service=benchmark with rpc=bidi and mode=open: a ping-pong stream carries one round trip at a time"
        if cell.handler_wait_ms or cell.handler_block_ms or cell.handler_cpu_us:
            return "service=benchmark with handler work: BenchmarkService requests carry no lab.Work"
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
