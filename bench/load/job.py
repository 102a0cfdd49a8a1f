"""What crosses the boundary between the harness and a load generator: the job, its result, its failure.

A :class:`LoadJob` is everything a generator needs to put one cell's load on a server: built once per
repetition by the harness, split into per-process shares by the Python generator, sent as one JSON line
to each worker process (``to_json``/``from_json``) and turned into ghz's arguments. Both generators
answer with a :class:`LoadResult`, so rows from either have the same columns and histograms.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from hdrh.histogram import HdrHistogram

from ..spec import Cell, Settings
from ..spec.compression import Compression

MIN_RPC_TIMEOUT_S = 1.0


class LoadError(RuntimeError):
    """The load generator failed for this cell (message says how)."""


@dataclass(frozen=True)
class LoadJob:
    """One cell's load, as the generators see it (a worker process gets its share)."""

    target: str  # host:port of the server
    rpc: str  # "unary" | "server_stream" | "client_stream" | "bidi"
    payload_size: int
    payload_kind: str
    compression: Compression
    stream_messages: int
    concurrency: int  # RPCs in flight (closed loop) / cap on RPCs in flight (open loop)
    connections: int
    mode: str  # "closed" | "open"
    rate: float  # offered RPC/s (open loop)
    arrival: str  # "constant" | "poisson"
    warmup: float  # seconds of load before the measured window
    duration: float  # the measured window, seconds
    rpc_timeout: float  # deadline of every RPC, seconds
    tls: str = "off"  # "off" | "on" | "mtls"
    tls_dir: str | None = None  # the client's certificates (ca.crt, and client.crt/.key for mTLS)
    seed: int = 0  # open-loop Poisson arrivals
    connect_timeout: float = 10.0
    # handler work asked for in every request message (lab.Work), us; all 0: the field is not sent
    handler_wait_us: int = 0
    handler_block_us: int = 0
    handler_cpu_us: int = 0
    # The client side (bench.spec.cell CLIENT_RULES): which gRPC Python API, a channel per RPC or reused
    # channels, the channel options preset, and the aio client's event loop.
    client: str = "aio"  # "aio" | "sync-threads" | "sync-future"
    channel: str = "reuse"  # "reuse" | "per-call"
    channel_options: str = "default"
    event_loop: str = "asyncio"  # "asyncio" | "uvloop" (aio client only)
    service: str = "tutorial"  # "tutorial" | "benchmark" (grpc.testing.BenchmarkService: bench.load.benchmark_workload)

    @classmethod
    def for_cell(cls, cell: Cell, *, target: str, tls_dir: Path | None, settings: Settings, repetition: int) -> LoadJob:
        """The job of one repetition: RPCs get what is left of the cell's time limit after warm-up and window."""
        return cls(
            target=target,
            rpc=cell.rpc,
            payload_size=cell.payload_size,
            payload_kind=cell.payload_kind,
            compression=Compression.parse(cell.compression),
            stream_messages=cell.stream_messages,
            concurrency=cell.concurrency,
            connections=cell.connections,
            mode=cell.mode,
            rate=cell.rate,
            arrival=cell.arrival,
            warmup=settings.warmup,
            duration=settings.duration,
            rpc_timeout=max(MIN_RPC_TIMEOUT_S, settings.cell_timeout - settings.warmup - settings.duration),
            tls=cell.tls,
            tls_dir=str(tls_dir) if cell.tls != "off" and tls_dir is not None else None,
            seed=settings.seed * 1000 + repetition,
            handler_wait_us=round(cell.handler_wait_ms * 1000),
            handler_block_us=round(cell.handler_block_ms * 1000),
            handler_cpu_us=cell.handler_cpu_us,
            client=cell.client,
            channel=cell.channel,
            channel_options=cell.channel_options,
            event_loop=cell.event_loop if cell.client == "aio" else "asyncio",
            service=cell.service,
        )

    def share(self, index: int, parts: int) -> LoadJob:
        """Process ``index`` of ``parts``: its connections, RPCs in flight and rate, and a seed of its own."""
        return replace(
            self,
            # per-call: every RPC opens its own channel, so there are no connections to split
            connections=split(self.connections, parts)[index] if self.channel == "reuse" else 1,
            concurrency=split(self.concurrency, parts)[index],
            rate=self.rate / parts,
            seed=self.seed * 1000 + index,
        )

    def to_json(self) -> dict:
        return {**asdict(self), "compression": self.compression.value}

    @classmethod
    def from_json(cls, data: dict) -> LoadJob:
        """The job a worker reads; ValueError naming the keys when the parent sent another shape."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing, unknown = sorted(required - data.keys()), sorted(data.keys() - names)
        if missing or unknown:
            raise ValueError(f"load job: missing {missing}, unknown {unknown}")
        return cls(**{**data, "compression": Compression.parse(data["compression"])})


def split(total: int, parts: int) -> list[int]:
    """Spread ``total`` over ``parts`` as evenly as possible (earlier parts get the remainder)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@dataclass
class LoadResult:
    """What a generator measured in the window, all its processes together."""

    loadgen: str  # "python" | "ghz"
    processes: int
    window_s: float
    ok: int
    errors: dict[str, int]  # failed RPCs by status code name
    cpu_s: float  # generator CPU seconds spent in the measured window, all processes
    hists: dict[str, HdrHistogram]  # "call", "msg", "first", "lag" (microseconds)
    notes: list[str] = field(default_factory=list)
    # seconds the generator's event loop was running or waiting for a CPU, all processes (None: unknown)
    busy_s: float | None = None
    # connect + first call on a fresh channel before the warm-up, ms (median over processes; None: not measured)
    time_to_first_rpc_ms: float | None = None

    @property
    def rpcs(self) -> int:
        return self.ok + sum(self.errors.values())
