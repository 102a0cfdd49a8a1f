"""The one place where a lab cell becomes gRPC's ServerConfig / ClientConfig, and back.

Driver side (:func:`server_config`, :func:`client_config`): what the lab's driver sends a worker for a
cell (bench.remote.driver). Worker side (:func:`server_plan`, :func:`client_plan`): what
the lab's worker starts for a config any driver sent, or a :class:`Refused` with the gRPC status to
answer (INVALID_ARGUMENT for a value that cannot be right, UNIMPLEMENTED for one the lab does not do,
FAILED_PRECONDITION for what the worker was not started with). A setting the lab cannot honour is never
silently dropped: a field is either mapped or must be at its default.

How the fields map (the README's "Past one machine" has the table):

ServerConfig                  the lab's server (`grpclab serve`)
  server_type SYNC_SERVER      impl sync;  ASYNC_SERVER: impl aio;  OTHER_SERVER: other_server_api
                               "grpclab-sync", "grpclab-aio" or "grpclab-go";  ASYNC_GENERIC_SERVER and
                               CALLBACK_SERVER: refused (UNIMPLEMENTED)
  async_server_threads         --workers (sync; 0: the lab's default, 10)
  server_processes             --processes (0: 1)
  core_list                    the CPUs it is pinned to (taskset); empty: the worker's own CPUs
  security_params              TLS with the worker's --certs; cred_type "mtls" (the lab's): mutual TLS
  channel_args                 grpc.default_compression_algorithm 0/1/2 -> --compression none/deflate/gzip
  payload_config               simple_params or none (a proto server sizes replies per request)
  port                         --port (0: a free one)

ClientConfig                  the lab's Python generator (bench.load, driven by Marks: bench.remote.generator)
  server_targets               exactly one target
  client_type SYNC/ASYNC_CLIENT  service benchmark (grpc.testing.BenchmarkService);
                               OTHER_CLIENT + other_client_api "grpclab": the tutorial's four services;
                               CALLBACK_CLIENT: refused (UNIMPLEMENTED)
  rpc_type                     UNARY unary, STREAMING bidi (ping-pong), STREAMING_FROM_SERVER server_stream,
                               STREAMING_FROM_CLIENT client_stream; STREAMING_BOTH_WAYS: refused
  client_channels              connections
  outstanding_rpcs_per_channel concurrency = channels x this (or the exact total in grpclab.concurrency)
  load_params                  closed_loop: closed;  poisson.offered_load: open, that rate, Poisson arrivals
  payload_config               simple_params with req_size == resp_size: payload_size
  messages_per_stream          stream_messages (a benchmark ping-pong stream: round trips per stream, 0 = never
                               restarted)
  histogram_params             the log buckets of the latencies answered (default 1 %, 60 s)
  core_list                    the generator processes' CPUs;  client_processes: how many processes (0: 1)
  security_params              as for the server (server_host_override must be empty: the lab's certificates)
  channel_args                 grpc.default_compression_algorithm (gRPC compression), and the lab's own
                               "grpclab.*" arguments for what gRPC's messages cannot say: payload_kind,
                               compression (app-gzip-N), concurrency, arrival (constant), seed,
                               rpc_timeout_ms, max_seconds (the bound on the whole load)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from protos.grpc.testing import control_pb2, payloads_pb2, stats_pb2

from ..load.job import LoadJob
from ..spec import Cell, Settings
from ..spec.compression import Compression
from . import loghist

LAB_CLIENT_API = "grpclab"
LAB_SERVER_APIS = {"grpclab-sync": "sync", "grpclab-aio": "aio", "grpclab-go": "go"}
COMPRESSION_ARG = "grpc.default_compression_algorithm"  # gRPC core's channel argument (compression_types.h)
ALGORITHMS = {0: "none", 1: "deflate", 2: "gzip"}
ARG_PAYLOAD_KIND = "grpclab.payload_kind"
ARG_COMPRESSION = "grpclab.compression"
ARG_CONCURRENCY = "grpclab.concurrency"
ARG_ARRIVAL = "grpclab.arrival"
ARG_SEED = "grpclab.seed"
ARG_RPC_TIMEOUT_MS = "grpclab.rpc_timeout_ms"
ARG_MAX_SECONDS = "grpclab.max_seconds"
LAB_ARGS = (
    ARG_PAYLOAD_KIND,
    ARG_COMPRESSION,
    ARG_CONCURRENCY,
    ARG_ARRIVAL,
    ARG_SEED,
    ARG_RPC_TIMEOUT_MS,
    ARG_MAX_SECONDS,
)
DEFAULT_RPC_TIMEOUT_S = 60.0
DEFAULT_MAX_SECONDS = 3600  # a driver that does not bound the load: an hour, then the generator stops
MTLS = "mtls"  # SecurityParams.cred_type of the lab's mutual TLS

RPC_TYPES = {
    "unary": control_pb2.UNARY,
    "bidi": control_pb2.STREAMING,
    "server_stream": control_pb2.STREAMING_FROM_SERVER,
    "client_stream": control_pb2.STREAMING_FROM_CLIENT,
}
RPCS = {value: name for name, value in RPC_TYPES.items()}


class Refused(Exception):
    """A config the lab's worker will not run: the gRPC status code and one line naming the field."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Inexpressible(ValueError):
    """A cell that gRPC's configs cannot express (one line naming the axis)."""


# -- driver side: a cell as configs --------------------------------------------------------------------


def _security(cell: Cell) -> control_pb2.SecurityParams | None:
    if cell.tls == "off":
        return None
    return control_pb2.SecurityParams(use_test_ca=True, cred_type=MTLS if cell.tls == "mtls" else "ssl")


def _arg(name: str, value: str | int) -> control_pb2.ChannelArg:
    if isinstance(value, str):
        return control_pb2.ChannelArg(name=name, str_value=value)
    return control_pb2.ChannelArg(name=name, int_value=value)


def _grpc_compression_args(cell: Cell) -> list[control_pb2.ChannelArg]:
    algorithm = Compression.parse(cell.compression).grpc
    if algorithm == "none":
        return []
    return [_arg(COMPRESSION_ARG, {v: k for k, v in ALGORITHMS.items()}[algorithm])]


# Axes a worker's configs carry nothing for: at any other value than this the cell would silently run as another.
UNCARRIED_AXES: dict[str, object] = {
    "client": "aio",  # the worker's generator is the aio client (SYNC_CLIENT asks only for BenchmarkService)
    "channel": "reuse",  # gRPC's client_channels stay open for the whole run
    "channel_options": "default",
    "server_options": "default",
    "event_loop": "asyncio",
    "handler_wait_ms": 0.0,  # handler work rides in lab.Work on each request; a worker's job sends none
    "handler_block_ms": 0.0,
    "handler_cpu_us": 0,
}


def uncarried(cell: Cell) -> str | None:
    """Why ``cell`` cannot be sent to a worker as gRPC's configs (one line naming the axis), or None."""
    for axis, value in UNCARRIED_AXES.items():
        if getattr(cell, axis) != value:
            return f"{axis}={getattr(cell, axis)}: a worker's configs cannot carry it (only {axis}={value} runs)"
    return None


def _server_type(cell: Cell) -> tuple[int, str]:
    if cell.impl == "sync":
        return control_pb2.SYNC_SERVER, ""
    if cell.impl == "aio":
        return control_pb2.ASYNC_SERVER, ""
    return control_pb2.OTHER_SERVER, {impl: api for api, impl in LAB_SERVER_APIS.items()}[cell.impl]


def server_config(cell: Cell, settings: Settings) -> control_pb2.ServerConfig:
    """What the lab's driver asks a worker's server to be for ``cell``."""
    server_type, other_api = _server_type(cell)
    config = control_pb2.ServerConfig(
        server_type=server_type,
        other_server_api=other_api,
        async_server_threads=cell.workers if cell.impl == "sync" else 0,
        server_processes=cell.processes,
        core_list=settings.server_cpus,
        channel_args=_grpc_compression_args(cell),
        payload_config=payloads_pb2.PayloadConfig(
            simple_params=payloads_pb2.SimpleProtoParams(req_size=cell.payload_size, resp_size=cell.payload_size)
        ),
    )
    security = _security(cell)
    if security is not None:
        config.security_params.CopyFrom(security)
    return config


def client_config(
    cell: Cell, settings: Settings, targets: Sequence[str] = (), repetition: int = 0
) -> control_pb2.ClientConfig:
    """What the lab's driver asks a worker's client (load generator) to do for ``cell``; Inexpressible if it cannot.

    The RPC deadline and the seed are the local generator's (bench.load.job.LoadJob.for_cell).
    """
    problem = uncarried(cell)
    if problem:
        raise Inexpressible(problem)
    if cell.link != "loopback":
        raise Inexpressible(f"link={cell.link}: a worker's network is the hosts' own; the link axis does not apply")
    if cell.loadgen != "python":
        raise Inexpressible(f"loadgen={cell.loadgen}: a worker runs the lab's Python generator")
    benchmark = cell.service == "benchmark"
    if benchmark and cell.mode == "open" and cell.arrival != "poisson":
        raise Inexpressible("arrival=constant: gRPC's open loop is Poisson; use arrival=poisson for service=benchmark")
    per_channel, rest = divmod(cell.concurrency, cell.connections)
    if benchmark and (rest or not per_channel):
        raise Inexpressible(
            f"concurrency={cell.concurrency} over connections={cell.connections}: gRPC's configs give RPCs per channel"
        )
    local = LoadJob.for_cell(cell, target="", tls_dir=None, settings=settings, repetition=repetition)
    args = _grpc_compression_args(cell)
    args += [
        _arg(ARG_CONCURRENCY, cell.concurrency),
        _arg(ARG_SEED, local.seed),
        _arg(ARG_RPC_TIMEOUT_MS, round(1000 * local.rpc_timeout)),
        _arg(ARG_MAX_SECONDS, math.ceil(settings.cell_timeout)),
    ]
    if not benchmark:
        args += [_arg(ARG_PAYLOAD_KIND, cell.payload_kind), _arg(ARG_COMPRESSION, cell.compression)]
    if cell.mode == "open" and cell.arrival == "constant":
        args.append(_arg(ARG_ARRIVAL, "constant"))
    config = control_pb2.ClientConfig(
        server_targets=list(targets),
        client_type=control_pb2.ASYNC_CLIENT if benchmark else control_pb2.OTHER_CLIENT,
        other_client_api="" if benchmark else LAB_CLIENT_API,
        outstanding_rpcs_per_channel=max(1, per_channel),
        client_channels=cell.connections,
        rpc_type=RPC_TYPES[cell.rpc],
        payload_config=payloads_pb2.PayloadConfig(
            simple_params=payloads_pb2.SimpleProtoParams(req_size=cell.payload_size, resp_size=cell.payload_size)
        ),
        histogram_params=stats_pb2.HistogramParams(
            resolution=loghist.DEFAULT_RESOLUTION, max_possible=loghist.DEFAULT_MAX_POSSIBLE
        ),
        core_list=settings.loadgen_cpus,
        messages_per_stream=cell.stream_messages if cell.rpc != "unary" else 0,
        client_processes=settings.loadgen_processes,
        channel_args=args,
    )
    if cell.mode == "open":
        config.load_params.poisson.offered_load = cell.rate
    else:
        config.load_params.closed_loop.SetInParent()
    security = _security(cell)
    if security is not None:
        config.security_params.CopyFrom(security)
    return config


# -- worker side: a config as what runs ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServerPlan:
    """The `grpclab serve` a ServerConfig asks for (the worker adds --host and its certificates)."""

    impl: str
    workers: int
    processes: int
    tls: str  # "off" | "on" | "mtls"
    compression: str  # "none" | "gzip" | "deflate"
    cpus: tuple[int, ...]  # empty: the worker's own
    port: int

    def args(self, certs_dir: Path | None) -> list[str]:
        args = ["--impl", self.impl, "--processes", str(self.processes), "--compression", self.compression]
        args += ["--port", str(self.port)]
        if self.impl == "sync":
            args += ["--workers", str(self.workers)]
        if self.impl != "go":
            args.append("--benchmark-service")
        if self.tls != "off":
            args += ["--tls", str(certs_dir)] + (["--mtls"] if self.tls == "mtls" else [])
        return args


def _refuse(field: str, value: object, why: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> Refused:
    return Refused(code, f"{field}: {value!r}: {why}" if value is not None else f"{field}: {why}")


def _cpus(field: str, core_list: Sequence[int], available: set[int]) -> tuple[int, ...]:
    cpus = tuple(core_list)
    missing = sorted(set(cpus) - available)
    if missing:
        have = ",".join(map(str, sorted(available)))
        raise _refuse(field, list(cpus), f"CPU {missing[0]} is not available to this worker (it has {have})")
    if len(set(cpus)) != len(cpus):
        raise _refuse(field, list(cpus), "a CPU is listed twice")
    return cpus


def _tls(security: control_pb2.SecurityParams | None, certs_dir: Path | None, side: str) -> str:
    if security is None:
        return "off"
    if security.cred_type not in ("", "ssl", "tls", MTLS):
        raise _refuse(f"{side}.security_params.cred_type", security.cred_type, "the lab's worker does ssl or mtls",
                      grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    if certs_dir is None:
        raise Refused(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{side}.security_params: TLS asked, but this worker has no certificates (start it with --certs DIR)",
        )
    return "mtls" if security.cred_type == MTLS else "on"


def _compression_arg(arg: control_pb2.ChannelArg, side: str) -> str:
    value = arg.int_value if arg.WhichOneof("value") == "int_value" else arg.str_value
    if value not in ALGORITHMS:
        raise _refuse(f"{side}.channel_args[{arg.name}]", value, "expected 0 (none), 1 (deflate) or 2 (gzip)")
    return ALGORITHMS[value]


def _zero(config, side: str, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if value:
            raise _refuse(f"{side}.{name}", value, "not supported by the lab's worker", grpc.StatusCode.UNIMPLEMENTED)


def server_plan(
    config: control_pb2.ServerConfig, *, certs_dir: Path | None, available: set[int] | None = None
) -> ServerPlan:
    """The lab server a ServerConfig asks for; Refused (with its status) when the lab's worker cannot run it."""
    available = available if available is not None else os.sched_getaffinity(0)
    kind = config.server_type
    if kind == control_pb2.SYNC_SERVER:
        impl = "sync"
    elif kind == control_pb2.ASYNC_SERVER:
        impl = "aio"
    elif kind == control_pb2.OTHER_SERVER:
        impl = LAB_SERVER_APIS.get(config.other_server_api, "")
        if not impl:
            known = ", ".join(LAB_SERVER_APIS)
            raise _refuse("server_config.other_server_api", config.other_server_api, f"the lab's servers are {known}")
    elif kind == control_pb2.ASYNC_GENERIC_SERVER:
        raise _refuse("server_config.server_type", "ASYNC_GENERIC_SERVER", "the lab has no byte-buffer generic server",
                      grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    elif kind == control_pb2.CALLBACK_SERVER:
        raise _refuse("server_config.server_type", "CALLBACK_SERVER", "gRPC-Python has no callback API; "
                      "use SYNC_SERVER or ASYNC_SERVER", grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    else:
        raise _refuse("server_config.server_type", kind, "unknown server type")
    _zero(config, "server_config", ("core_limit", "threads_per_cq", "resource_quota_size"))
    which = config.payload_config.WhichOneof("payload") if config.HasField("payload_config") else None
    if which not in (None, "simple_params"):
        raise _refuse("server_config.payload_config", which, "the lab's servers are proto servers (simple_params)",
                      grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    if not 0 <= config.port <= 65535:
        raise _refuse("server_config.port", config.port, "must be 0..65535")
    if config.async_server_threads < 0 or config.server_processes < 0:
        raise _refuse("server_config", None, "async_server_threads and server_processes must be >= 0")
    compression = "none"
    for arg in config.channel_args:
        if arg.name != COMPRESSION_ARG:
            raise _refuse(f"server_config.channel_args[{arg.name}]", None, "not supported by the lab's worker",
                          grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
        compression = _compression_arg(arg, "server_config")
    from servers.config import DEFAULT_WORKERS

    return ServerPlan(
        impl=impl,
        workers=config.async_server_threads or DEFAULT_WORKERS,
        processes=config.server_processes or 1,
        tls=_tls(config.security_params if config.HasField("security_params") else None, certs_dir, "server_config"),
        compression=compression,
        cpus=_cpus("server_config.core_list", config.core_list, available),
        port=config.port,
    )


@dataclass(frozen=True)
class ClientPlan:
    """What the lab's generator runs for a ClientConfig: its job, processes, CPUs and answer's histogram."""

    job: LoadJob  # duration: the bound on the whole load (max_seconds)
    processes: int
    cpus: tuple[int, ...]
    resolution: float
    max_possible: float


def _lab_args(config: control_pb2.ClientConfig) -> tuple[dict[str, str | int], str]:
    found: dict[str, str | int] = {}
    compression = "none"
    for arg in config.channel_args:
        if arg.name == COMPRESSION_ARG:
            compression = _compression_arg(arg, "client_config")
        elif arg.name in LAB_ARGS:
            found[arg.name] = arg.int_value if arg.WhichOneof("value") == "int_value" else arg.str_value
        else:
            raise _refuse(f"client_config.channel_args[{arg.name}]", None, "not supported by the lab's worker",
                          grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    return found, compression


def _positive(field: str, value: object) -> int:
    if not isinstance(value, int) or value < 1:
        raise _refuse(field, value, "must be a positive integer")
    return value


def client_plan(
    config: control_pb2.ClientConfig, *, certs_dir: Path | None, available: set[int] | None = None
) -> ClientPlan:
    """What the lab's generator runs for a ClientConfig; Refused (with its status) when it cannot."""
    available = available if available is not None else os.sched_getaffinity(0)
    if not config.server_targets:
        raise _refuse("client_config.server_targets", None, "at least one target is needed")
    if len(config.server_targets) > 1:
        raise _refuse("client_config.server_targets", list(config.server_targets),
                      "the lab's generator loads one server", grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    if config.client_type in (control_pb2.SYNC_CLIENT, control_pb2.ASYNC_CLIENT):
        service = "benchmark"
    elif config.client_type == control_pb2.OTHER_CLIENT and config.other_client_api == LAB_CLIENT_API:
        service = "tutorial"
    elif config.client_type == control_pb2.OTHER_CLIENT:
        raise _refuse("client_config.other_client_api", config.other_client_api, f"the lab's is {LAB_CLIENT_API!r}")
    elif config.client_type == control_pb2.CALLBACK_CLIENT:
        raise _refuse("client_config.client_type", "CALLBACK_CLIENT", "gRPC-Python has no callback API",
                      grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    else:
        raise _refuse("client_config.client_type", config.client_type, "unknown client type")
    _zero(config, "client_config", ("core_limit", "threads_per_cq", "use_coalesce_api",
                                    "median_latency_collection_interval_millis"))  # fmt: skip
    if config.rpc_type not in RPCS:
        if config.rpc_type == control_pb2.STREAMING_BOTH_WAYS:
            raise _refuse("client_config.rpc_type", "STREAMING_BOTH_WAYS", "the lab's generator has no such workload",
                          grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
        raise _refuse("client_config.rpc_type", config.rpc_type, "unknown rpc type")
    rpc = RPCS[config.rpc_type]
    args, grpc_compression = _lab_args(config)
    connections = _positive("client_config.client_channels", config.client_channels)
    per_channel = _positive("client_config.outstanding_rpcs_per_channel", config.outstanding_rpcs_per_channel)
    concurrency = _positive(
        f"client_config.channel_args[{ARG_CONCURRENCY}]", args.get(ARG_CONCURRENCY, per_channel * connections)
    )

    which = config.load_params.WhichOneof("load") if config.HasField("load_params") else None
    if which == "closed_loop":
        mode, rate, arrival = "closed", 0.0, "constant"
    elif which == "poisson":
        rate = config.load_params.poisson.offered_load
        if not (math.isfinite(rate) and rate > 0):
            raise _refuse("client_config.load_params.poisson.offered_load", rate, "must be > 0 (RPC/s)")
        mode, arrival = "open", "poisson"
        if args.get(ARG_ARRIVAL, "poisson") == "constant":
            arrival = "constant"
        elif ARG_ARRIVAL in args and args[ARG_ARRIVAL] != "poisson":
            raise _refuse(f"client_config.channel_args[{ARG_ARRIVAL}]", args[ARG_ARRIVAL], "constant or poisson")
    else:
        raise _refuse("client_config.load_params", None, "neither closed_loop nor poisson is set")
    if service == "benchmark" and rpc == "bidi" and mode == "open":
        raise _refuse("client_config.load_params", "poisson", "a ping-pong stream carries one round trip at a time; "
                      "the lab's generator runs STREAMING closed loop only", grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip

    payload = config.payload_config.WhichOneof("payload") if config.HasField("payload_config") else None
    if payload not in (None, "simple_params"):
        raise _refuse("client_config.payload_config", payload, "the lab's generator sends protobuf messages",
                      grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    sizes = config.payload_config.simple_params
    if sizes.req_size != sizes.resp_size or sizes.req_size < 0:
        raise _refuse("client_config.payload_config.simple_params", (sizes.req_size, sizes.resp_size),
                      "the lab's cells send and ask for one size (req_size == resp_size)",
                      grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    messages = config.messages_per_stream
    if messages < 0:
        raise _refuse("client_config.messages_per_stream", messages, "must be >= 0")
    if rpc == "unary":
        messages = 1
    elif messages == 0:
        if not (service == "benchmark" and rpc == "bidi"):
            raise _refuse("client_config.messages_per_stream", 0, f"rpc {rpc} needs the messages per call")
        messages = 2**31 - 1  # a ping-pong stream never restarted

    if service == "tutorial":
        try:
            compression = Compression.parse(str(args.get(ARG_COMPRESSION, "none")))
        except ValueError as exc:
            raise _refuse(
                f"client_config.channel_args[{ARG_COMPRESSION}]", args.get(ARG_COMPRESSION), str(exc)
            ) from None
        if grpc_compression != "none" and compression.grpc != grpc_compression:
            raise _refuse(f"client_config.channel_args[{COMPRESSION_ARG}]", grpc_compression,
                          f"disagrees with {ARG_COMPRESSION} {compression.value}")  # fmt: skip
        kind = str(args.get(ARG_PAYLOAD_KIND, "text"))
        from servers import payloads

        if kind not in payloads.KIND_TO_PROTO:
            raise _refuse(
                f"client_config.channel_args[{ARG_PAYLOAD_KIND}]", kind, f"one of {', '.join(payloads.KIND_TO_PROTO)}"
            )
    else:
        for name in (ARG_PAYLOAD_KIND, ARG_COMPRESSION):
            if name in args:
                raise _refuse(f"client_config.channel_args[{name}]", args[name], "not for BenchmarkService clients")
        compression = Compression.parse(
            {"none": "none", "gzip": "grpc-gzip", "deflate": "grpc-deflate"}[grpc_compression]
        )
        kind = "zeros"

    security = config.security_params if config.HasField("security_params") else None
    if security is not None and security.server_host_override:
        raise _refuse("client_config.security_params.server_host_override", security.server_host_override,
                      "the lab's certificates name localhost, 127.0.0.1, ::1 and 198.18.0.1; leave it empty",
                      grpc.StatusCode.UNIMPLEMENTED)  # fmt: skip
    tls = _tls(security, certs_dir, "client_config")
    timeout_ms = _positive(
        f"client_config.channel_args[{ARG_RPC_TIMEOUT_MS}]",
        args.get(ARG_RPC_TIMEOUT_MS, round(DEFAULT_RPC_TIMEOUT_S * 1000)),
    )
    max_seconds = _positive(
        f"client_config.channel_args[{ARG_MAX_SECONDS}]", args.get(ARG_MAX_SECONDS, DEFAULT_MAX_SECONDS)
    )
    seed = args.get(ARG_SEED, 0)
    if not isinstance(seed, int) or seed < 0:
        raise _refuse(f"client_config.channel_args[{ARG_SEED}]", seed, "must be an integer >= 0")
    params = config.histogram_params
    resolution = params.resolution or loghist.DEFAULT_RESOLUTION
    max_possible = params.max_possible or loghist.DEFAULT_MAX_POSSIBLE
    try:
        loghist.check_params(resolution, max_possible)
    except ValueError as exc:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"client_config.{exc}") from None
    if config.client_processes < 0:
        raise _refuse("client_config.client_processes", config.client_processes, "must be >= 0")
    job = LoadJob(
        target=config.server_targets[0],
        rpc=rpc,
        payload_size=sizes.req_size,
        payload_kind=kind,
        compression=compression,
        stream_messages=messages,
        concurrency=concurrency,
        connections=connections,
        mode=mode,
        rate=rate,
        arrival=arrival,
        warmup=0.0,
        duration=float(max_seconds),
        rpc_timeout=timeout_ms / 1000.0,
        tls=tls,
        tls_dir=str(certs_dir) if tls != "off" else None,
        seed=seed,
        service=service,
    )
    return ClientPlan(
        job=job,
        processes=config.client_processes or 1,
        cpus=_cpus("client_config.core_list", config.core_list, available),
        resolution=resolution,
        max_possible=max_possible,
    )
