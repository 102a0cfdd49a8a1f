"""The benchmark protocol's wire contract and the one conversion between gRPC's configs and the lab's cells.

Fast tier: no process. The worker itself (RunServer, RunClient, the protocol's edges, a driven run against the
lab's own) is in tests/test_remote_worker.py.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from bench.cli import build_parser
from bench.load import histogram
from bench.load.job import LoadJob
from bench.remote import configs, loghist
from bench.remote.configs import Inexpressible, Refused, client_config, client_plan, server_config, server_plan
from bench.run.measure import server_args
from bench.spec import DEFAULTS, Cell, Settings
from bench.spec.cell import normalize
from protos.grpc.core import stats_pb2 as core_stats_pb2
from protos.grpc.testing import control_pb2, payloads_pb2, stats_pb2

CPUS = {0, 1}
CERTS = Path("/certs")
SETTINGS = Settings(duration=2.0, warmup=0.5, server_cpus=(0,), loadgen_cpus=(1,))


def _cell(**axes: object) -> Cell:
    return normalize({**DEFAULTS, "payload_size": 1024, **axes})


BASE = _cell()

# -- the wire contract: upstream's numbers (grpc/grpc-proto grpc/testing/*.proto, grpc/core/stats.proto) --------

UPSTREAM_FIELDS = {
    control_pb2.ClientConfig: {
        "server_targets": 1, "client_type": 2, "security_params": 3, "outstanding_rpcs_per_channel": 4,
        "client_channels": 5, "async_client_threads": 7, "rpc_type": 8, "load_params": 10, "payload_config": 11,
        "histogram_params": 12, "core_list": 13, "core_limit": 14, "other_client_api": 15, "channel_args": 16,
        "threads_per_cq": 17, "messages_per_stream": 18, "use_coalesce_api": 19,
        "median_latency_collection_interval_millis": 20, "client_processes": 21,
    },
    control_pb2.ServerConfig: {
        "server_type": 1, "security_params": 2, "port": 4, "async_server_threads": 7, "core_limit": 8,
        "payload_config": 9, "core_list": 10, "other_server_api": 11, "threads_per_cq": 12, "server_processes": 21,
        "resource_quota_size": 1001, "channel_args": 1002,
    },
    control_pb2.SecurityParams: {"use_test_ca": 1, "server_host_override": 2, "cred_type": 3},
    control_pb2.ChannelArg: {"name": 1, "str_value": 2, "int_value": 3},
    control_pb2.LoadParams: {"closed_loop": 1, "poisson": 2},
    control_pb2.PoissonParams: {"offered_load": 1},
    control_pb2.ClientArgs: {"setup": 1, "mark": 2},
    control_pb2.ServerArgs: {"setup": 1, "mark": 2},
    control_pb2.Mark: {"reset": 1},
    control_pb2.ClientStatus: {"stats": 1},
    control_pb2.ServerStatus: {"stats": 1, "port": 2, "cores": 3},
    control_pb2.CoreResponse: {"cores": 1},
    control_pb2.Scenario: {
        "name": 1, "client_config": 2, "num_clients": 3, "server_config": 4, "num_servers": 5, "warmup_seconds": 6,
        "benchmark_seconds": 7, "spawn_local_worker_count": 8,
    },
    stats_pb2.ServerStats: {
        "time_elapsed": 1, "time_user": 2, "time_system": 3, "total_cpu_time": 4, "idle_cpu_time": 5,
        "cq_poll_count": 6, "core_stats": 7,
    },
    stats_pb2.ClientStats: {
        "latencies": 1, "time_elapsed": 2, "time_user": 3, "time_system": 4, "request_results": 5,
        "cq_poll_count": 6, "core_stats": 7,
    },
    stats_pb2.HistogramParams: {"resolution": 1, "max_possible": 2},
    stats_pb2.HistogramData: {
        "bucket": 1, "min_seen": 2, "max_seen": 3, "sum": 4, "sum_of_squares": 5, "count": 6,
    },
    stats_pb2.RequestResultCount: {"status_code": 1, "count": 2},
    payloads_pb2.PayloadConfig: {"bytebuf_params": 1, "simple_params": 2, "complex_params": 3},
    payloads_pb2.SimpleProtoParams: {"req_size": 1, "resp_size": 2},
    core_stats_pb2.Metric: {"name": 1, "count": 10, "histogram": 11},
    core_stats_pb2.Bucket: {"start": 1, "count": 2},
}  # fmt: skip
UPSTREAM_ENUMS = {
    "ClientType": {"SYNC_CLIENT": 0, "ASYNC_CLIENT": 1, "OTHER_CLIENT": 2, "CALLBACK_CLIENT": 3},
    "ServerType": {
        "SYNC_SERVER": 0, "ASYNC_SERVER": 1, "ASYNC_GENERIC_SERVER": 2, "OTHER_SERVER": 3, "CALLBACK_SERVER": 4,
    },
    "RpcType": {
        "UNARY": 0, "STREAMING": 1, "STREAMING_FROM_CLIENT": 2, "STREAMING_FROM_SERVER": 3, "STREAMING_BOTH_WAYS": 4,
    },
}  # fmt: skip


@pytest.mark.parametrize("message", list(UPSTREAM_FIELDS), ids=lambda m: m.DESCRIPTOR.full_name)
def test_every_field_has_upstreams_name_and_number(message) -> None:
    declared = {f.name: f.number for f in message.DESCRIPTOR.fields}
    assert declared == UPSTREAM_FIELDS[message]


def test_enums_have_upstreams_values_and_services_their_paths() -> None:
    for name, values in UPSTREAM_ENUMS.items():
        enum = control_pb2.DESCRIPTOR.enum_types_by_name[name]
        assert {v.name: v.number for v in enum.values} == values
    from protos.grpc.testing import worker_service_pb2

    service = worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"]
    assert service.full_name == "grpc.testing.WorkerService"
    methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
    assert methods == {
        "RunServer": ("grpc.testing.ServerArgs", "grpc.testing.ServerStatus"),
        "RunClient": ("grpc.testing.ClientArgs", "grpc.testing.ClientStatus"),
        "CoreCount": ("grpc.testing.CoreRequest", "grpc.testing.CoreResponse"),
        "QuitWorker": ("grpc.testing.Void", "grpc.testing.Void"),
    }


# -- a cell as configs, and back: the worker runs what the lab's own run would --------------------------------


def _serve_namespace(args: list[str]) -> dict:
    parsed = vars(build_parser().parse_args(["serve", *args]))
    return {k: v for k, v in parsed.items() if k not in ("func", "port", "benchmark_service", "host")}


CELLS = [
    BASE,
    _cell(service="benchmark"),
    _cell(impl="aio", workers=0, rpc="server_stream", stream_messages=10),
    _cell(workers=4, processes=2, compression="grpc-gzip", payload_size=65536),
    _cell(rpc="bidi", stream_messages=5, compression="app-gzip-6", concurrency=8, connections=2),
    _cell(mode="open", rate=500.0, arrival="poisson", concurrency=16),
    _cell(mode="open", rate=250.0, arrival="constant", tls="mtls"),
    _cell(service="benchmark", rpc="bidi", stream_messages=4, tls="on"),
]


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.key())
def test_a_cells_server_config_starts_the_server_the_lab_starts(cell: Cell) -> None:
    plan = server_plan(server_config(cell, SETTINGS), certs_dir=CERTS, available=CPUS)
    assert plan.cpus == SETTINGS.server_cpus
    assert "--benchmark-service" in plan.args(CERTS)  # beside the tutorial's services, whatever the client calls
    assert _serve_namespace(plan.args(CERTS)) == _serve_namespace(server_args(cell, CERTS))


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.key())
def test_a_cells_client_config_runs_the_load_the_lab_runs(cell: Cell) -> None:
    config = client_config(cell, SETTINGS, ["10.0.0.1:1234"], repetition=2)
    plan = client_plan(config, certs_dir=CERTS, available=CPUS)
    local = LoadJob.for_cell(cell, target="10.0.0.1:1234", tls_dir=CERTS, settings=SETTINGS, repetition=2)
    # Only the window differs: a driver's marks set it, so the worker's job is bounded by the cell's time limit.
    assert plan.job == replace(local, warmup=0.0, duration=float(math.ceil(SETTINGS.cell_timeout)))
    assert plan.cpus == SETTINGS.loadgen_cpus and plan.processes == SETTINGS.loadgen_processes


def test_a_foreign_drivers_plain_configs_run_with_the_lab_defaults() -> None:
    """What qps_json_driver sends for a Python scenario: no lab channel args, unset fields at their defaults."""
    config = control_pb2.ClientConfig(
        server_targets=["127.0.0.1:5000"],
        client_type=control_pb2.ASYNC_CLIENT,
        outstanding_rpcs_per_channel=10,
        client_channels=2,
        rpc_type=control_pb2.UNARY,
        load_params=control_pb2.LoadParams(closed_loop=control_pb2.ClosedLoopParams()),
        payload_config=payloads_pb2.PayloadConfig(simple_params=payloads_pb2.SimpleProtoParams()),
    )
    plan = client_plan(config, certs_dir=None, available=CPUS)
    job = plan.job
    assert (job.service, job.rpc, job.concurrency, job.connections) == ("benchmark", "unary", 20, 2)
    assert job.payload_size == 0
    assert (job.mode, job.tls, job.compression.value, plan.processes, plan.cpus) == ("closed", "off", "none", 1, ())
    assert (plan.resolution, plan.max_possible) == (loghist.DEFAULT_RESOLUTION, loghist.DEFAULT_MAX_POSSIBLE)
    server = server_plan(control_pb2.ServerConfig(server_type=control_pb2.ASYNC_SERVER), certs_dir=None, available=CPUS)
    assert (server.impl, server.processes, server.port, server.tls, server.cpus) == ("aio", 1, 0, "off", ())


def test_cells_grpcs_configs_cannot_say_are_refused_before_anything_starts() -> None:
    for cell, needle in (
        (_cell(link="veth"), "link=veth"),
        (_cell(loadgen="ghz"), "loadgen=ghz"),
        (_cell(service="benchmark", mode="open", rate=10.0), "arrival=constant"),
        (_cell(service="benchmark", concurrency=3, connections=2), "per channel"),
    ):
        with pytest.raises(Inexpressible, match=needle):
            client_config(cell, SETTINGS, ["x:1"])


# -- what the worker refuses, and with which status --------------------------------------------------------------


def _client(**fields) -> control_pb2.ClientConfig:
    config = client_config(BASE, SETTINGS, ["127.0.0.1:1"])
    for name, value in fields.items():
        if isinstance(value, list):
            config.ClearField(name)
            getattr(config, name).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(config, name).CopyFrom(value)
        else:
            setattr(config, name, value)
    return config


INVALID, UNIMPLEMENTED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED
SERVER_REFUSALS = [
    (control_pb2.ServerConfig(server_type=99), INVALID, "server_config.server_type: 99: unknown server type"),
    (control_pb2.ServerConfig(server_type=control_pb2.ASYNC_GENERIC_SERVER), UNIMPLEMENTED, "generic server"),
    (control_pb2.ServerConfig(server_type=control_pb2.CALLBACK_SERVER), UNIMPLEMENTED, "no callback API"),
    (control_pb2.ServerConfig(server_type=control_pb2.OTHER_SERVER, other_server_api="netty"), INVALID, "'netty'"),
    (control_pb2.ServerConfig(core_limit=2), UNIMPLEMENTED, "server_config.core_limit"),
    (control_pb2.ServerConfig(core_list=[7]), INVALID, "CPU 7 is not available"),
    (control_pb2.ServerConfig(port=70000), INVALID, "server_config.port"),
    (control_pb2.ServerConfig(channel_args=[control_pb2.ChannelArg(name="grpc.x", int_value=1)]), UNIMPLEMENTED,
     "channel_args[grpc.x]"),
    (control_pb2.ServerConfig(channel_args=[control_pb2.ChannelArg(name=configs.COMPRESSION_ARG, int_value=5)]),
     INVALID, "expected 0 (none)"),
    (control_pb2.ServerConfig(payload_config=payloads_pb2.PayloadConfig(
        bytebuf_params=payloads_pb2.ByteBufferParams())), UNIMPLEMENTED, "proto servers"),
    (control_pb2.ServerConfig(security_params=control_pb2.SecurityParams(use_test_ca=True)),
     grpc.StatusCode.FAILED_PRECONDITION, "no certificates"),
]  # fmt: skip
CLIENT_REFUSALS = [
    (_client(rpc_type=control_pb2.STREAMING_BOTH_WAYS), UNIMPLEMENTED, "STREAMING_BOTH_WAYS"),
    (_client(rpc_type=42), INVALID, "unknown rpc type"),
    (_client(client_type=control_pb2.CALLBACK_CLIENT), UNIMPLEMENTED, "no callback API"),
    (_client(client_type=9), INVALID, "unknown client type"),
    (_client(other_client_api="other"), INVALID, "other_client_api"),
    (_client(load_params=control_pb2.LoadParams()), INVALID, "neither closed_loop nor poisson"),
    (_client(load_params=control_pb2.LoadParams(poisson=control_pb2.PoissonParams(offered_load=0))), INVALID,
     "offered_load: 0.0: must be > 0"),
    (_client(server_targets=[]), INVALID, "at least one target"),
    (_client(server_targets=["a:1", "b:1"]), UNIMPLEMENTED, "one server"),
    (_client(client_channels=0), INVALID, "client_channels"),
    (_client(payload_config=payloads_pb2.PayloadConfig(
        simple_params=payloads_pb2.SimpleProtoParams(req_size=10, resp_size=20))), UNIMPLEMENTED, "req_size =="),
    (_client(use_coalesce_api=True), UNIMPLEMENTED, "use_coalesce_api"),
    (_client(core_list=[0, 0]), INVALID, "listed twice"),
    (_client(histogram_params=stats_pb2.HistogramParams(resolution=2.0)), INVALID, "resolution"),
    (_client(security_params=control_pb2.SecurityParams(cred_type="alts")), UNIMPLEMENTED, "ssl or mtls"),
]  # fmt: skip


@pytest.mark.parametrize(("config", "code", "needle"), SERVER_REFUSALS)
def test_server_configs_the_lab_cannot_run_are_refused_with_a_status_naming_the_field(config, code, needle) -> None:
    with pytest.raises(Refused) as refused:
        server_plan(config, certs_dir=None, available=CPUS)
    assert refused.value.code == code and needle in refused.value.message
    assert "\n" not in refused.value.message


@pytest.mark.parametrize(("config", "code", "needle"), CLIENT_REFUSALS)
def test_client_configs_the_lab_cannot_run_are_refused_with_a_status_naming_the_field(config, code, needle) -> None:
    with pytest.raises(Refused) as refused:
        client_plan(config, certs_dir=None, available=CPUS)
    assert refused.value.code == code and needle in refused.value.message
    assert refused.value.message.startswith("client_config") and "\n" not in refused.value.message


def test_a_benchmark_ping_pong_is_closed_loop_only() -> None:
    config = client_config(_cell(service="benchmark", rpc="bidi", stream_messages=3),
                           SETTINGS, ["x:1"])  # fmt: skip
    config.load_params.poisson.offered_load = 100.0
    with pytest.raises(Refused) as refused:
        client_plan(config, certs_dir=None, available=CPUS)
    assert refused.value.code == UNIMPLEMENTED


def _hdr(values_us: list[int]):
    hist = histogram.new()
    for value in values_us:
        hist.record_value(value)
    return hist


def test_loghist_round_trip_keeps_counts_and_percentiles_within_resolution() -> None:
    call = _hdr([50, 120, 120, 980, 980, 4000, 4000, 4000, 70_000])
    log = loghist.from_hdr(call)
    again = loghist.LogHistogram.from_proto(log.to_proto())
    assert again.count == 9 and again.buckets == log.buckets
    assert again.min_seen == 50_000 and math.isclose(again.max_seen, call.get_max_value() * 1000)
    assert abs(again.percentile(50) - 980_000) <= 980_000 * 0.01  # gRPC's own reading: within the value's bucket
    # at a bucket's very end gRPC reads midway to the next values: 4 of 8 below is between 980 us and 4 ms
    eight = loghist.from_hdr(_hdr([50, 120, 120, 980, 4000, 4000, 4000, 70_000]))
    assert 990_000 < eight.percentile(50) < 3_960_000
    assert histogram.encode(loghist.hdr_from_buckets(loghist.hdr_buckets(call))) == histogram.encode(call)
    with pytest.raises(ValueError, match="buckets"):
        loghist.LogHistogram.from_proto(log.to_proto(), resolution=0.02)
