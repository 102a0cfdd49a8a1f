"""grpc.testing.BenchmarkService on the lab's servers (servers/benchmark_service.py) and the `service` axis.

The service is served only with `grpclab serve --benchmark-service` (what the lab's worker starts); a default
server answers UNIMPLEMENTED, so the lab's own servers stay as lean as before.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from bench.analysis import results
from bench.spec import DEFAULTS, Cell, SpecError, parse_spec
from bench.spec.cell import LATER_AXES
from protos.grpc.testing import benchmark_service_pb2_grpc, messages_pb2
from servers.config import ConfigError, ServerConfig, validate

T = 10.0
DATA = Path(__file__).resolve().parent / "data"


def _request(size: int, response_size: int | None = None) -> messages_pb2.SimpleRequest:
    return messages_pb2.SimpleRequest(
        response_size=size if response_size is None else response_size,
        payload=messages_pb2.Payload(body=bytes(size)),
    )


# -- fast: the axis ----------------------------------------------------------------------------------------


def test_service_is_a_later_axis_that_shows_in_keys_only_away_from_the_tutorial() -> None:
    assert "service" in LATER_AXES and DEFAULTS["service"] == "tutorial"
    cell = Cell(**DEFAULTS)
    assert "service" not in cell.key()
    assert replace(cell, service="benchmark").key() == cell.key() + "/service=benchmark"


@pytest.mark.parametrize("run", ["sample-run-v1", "sample-run"])
def test_runs_written_before_the_axis_read_as_the_tutorial_with_their_keys(run: str) -> None:
    df = results.load(DATA / run)
    assert (df["service"] == "tutorial").all()
    for _, row in df.drop_duplicates("cell_key").iterrows():
        assert Cell.from_dict(row.to_dict()).key() == row["cell_key"]


def test_benchmark_cells_are_zero_bytes_and_impossible_combinations_are_refused() -> None:
    spec = parse_spec({"name": "x", "axes": {"service": ["benchmark"], "payload_kind": ["text"]}})
    assert {c.payload_kind for c in spec.cells} == {"zeros"}  # BenchmarkService payloads are zeros
    for axes, needle in (
        ({"compression": ["app-gzip-6"]}, "carry no gzip level"),
        ({"loadgen": ["ghz"]}, "only the Python generator"),
        ({"rpc": ["bidi"], "mode": ["open"], "rate": [100]}, "one round trip at a time"),
    ):
        with pytest.raises(SpecError, match=needle):
            parse_spec({"name": "x", "axes": {"service": ["benchmark"], **axes}})
    # ... which an exclude can take out of a product
    spec = parse_spec(
        {
            "name": "x",
            "axes": {"service": ["tutorial", "benchmark"], "compression": ["none", "app-gzip-1"]},
            "exclude": [{"service": "benchmark", "compression": "app-gzip-1"}],
        }
    )
    assert len(spec.cells) == 3


def test_the_go_reference_server_has_no_benchmark_service() -> None:
    with pytest.raises(ConfigError, match="--benchmark-service: the Go reference server"):
        validate(ServerConfig(impl="go", benchmark_service=True))


# -- slow: the servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sync", "aio"])
def stub(request, server_pool):
    with server_pool() as servers:
        srv = servers("--impl", request.param, "--benchmark-service")
        with grpc.insecure_channel(srv.target) as channel:
            yield benchmark_service_pb2_grpc.BenchmarkServiceStub(channel)


@pytest.mark.slow
def test_unary_call_replies_with_response_size_zero_bytes(stub) -> None:
    reply = stub.UnaryCall(_request(100, 3000), timeout=T)
    assert reply.payload.body == bytes(3000) and reply.payload.type == messages_pb2.COMPRESSABLE
    assert stub.UnaryCall(messages_pb2.SimpleRequest(), timeout=T).payload.body == b""


@pytest.mark.slow
def test_streaming_call_is_ping_pong(stub) -> None:
    sent = threading.Semaphore(0)
    replies: list[int] = []

    def requests():
        for size in (1, 20, 300):
            yield _request(size)
            sent.release()
            if not sent.acquire(timeout=T):  # the reply to this request comes before the next request is sent
                return

    call = stub.StreamingCall(requests(), timeout=T)
    for reply in call:
        replies.append(len(reply.payload.body))
        sent.release()
    assert replies == [1, 20, 300]


@pytest.mark.slow
def test_streaming_from_client_replies_once_sized_by_the_last_request(stub) -> None:
    reply = stub.StreamingFromClient(iter([_request(5), _request(7, 11)]), timeout=T)
    assert len(reply.payload.body) == 11


@pytest.mark.slow
def test_streaming_from_server_streams_until_the_client_cancels(stub) -> None:
    call = stub.StreamingFromServer(_request(10, 64), timeout=T)
    got = [len(next(call).payload.body) for _ in range(200)]
    call.cancel()
    assert got == [64] * 200
    with pytest.raises(grpc.RpcError) as caught:
        next(call)
    assert caught.value.code() == grpc.StatusCode.CANCELLED


@pytest.mark.slow
def test_streaming_both_ways_sends_without_waiting_and_ends_when_the_client_half_closes(stub) -> None:
    release = threading.Event()

    def requests():
        yield _request(0, 32)
        release.wait(T)  # the client sends nothing more until it has replies: the server does not wait for it

    call = stub.StreamingBothWays(requests(), timeout=T)
    got = [len(next(call).payload.body) for _ in range(50)]
    release.set()  # half-close
    rest = sum(1 for _ in call)  # the server ends the call once the client half-closed
    assert got == [32] * 50 and rest >= 0
    assert call.code() == grpc.StatusCode.OK


@pytest.mark.slow
def test_bad_requests_are_invalid_argument(stub) -> None:
    for request in (
        messages_pb2.SimpleRequest(response_size=-1),
        messages_pb2.SimpleRequest(response_size=64 * 1024 * 1024),
        messages_pb2.SimpleRequest(response_type=7),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.UnaryCall(request, timeout=T)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "response_" in caught.value.details()


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["sync", "aio"])
def test_a_default_server_does_not_serve_it(server, impl: str) -> None:
    srv = server("--impl", impl)
    with grpc.insecure_channel(srv.target) as channel:
        stub = benchmark_service_pb2_grpc.BenchmarkServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.UnaryCall(_request(1), timeout=T)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
