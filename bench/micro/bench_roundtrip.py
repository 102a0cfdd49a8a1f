"""One unary RPC, round trip, against each server model: a `grpclab serve` subprocess, a blocking client here.

A latency number of the whole stack (client stub, HTTP/2, server model, servicer) without the load
generator; each server is started once per module through bench.run.server_process, like the harness does.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from bench.run.server_process import running
from protos import greet_pb2, greet_pb2_grpc, lab_pb2
from servers import payloads

IMPLS = ["sync", "aio"]
SIZES = [0, 1024]


@pytest.fixture(scope="module", params=IMPLS)
def stub(request) -> Iterator[tuple[str, greet_pb2_grpc.GreeterStub]]:
    with running(["--impl", request.param, "--port", "0", "--grace", "1", "--exit-with-parent"]) as server:
        with grpc.insecure_channel(server.target) as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            yield request.param, greet_pb2_grpc.GreeterStub(channel)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
def test_unary_round_trip(benchmark, stub, size):
    _, greeter = stub
    benchmark.group = f"unary round trip {size}B"
    req = greet_pb2.HelloRequest(
        name="lab", payload=payloads.make("text", size), response_size=size, response_kind=lab_pb2.PAYLOAD_KIND_TEXT
    )
    reply = benchmark(greeter.SayHello, req, timeout=10)
    assert len(reply.payload) == size
