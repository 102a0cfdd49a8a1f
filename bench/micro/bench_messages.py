"""Protobuf cost per payload size: serializing and parsing the unary request (what every RPC pays twice)."""

from __future__ import annotations

import pytest

from protos import greet_pb2, lab_pb2
from servers import payloads

SIZES = [0, 1024, 64 * 1024, 1024 * 1024]


def request(size: int) -> greet_pb2.HelloRequest:
    return greet_pb2.HelloRequest(
        name="lab",
        payload=payloads.make("text", size),
        payload_gzip_level=0,
        response_size=size,
        response_kind=lab_pb2.PAYLOAD_KIND_TEXT,
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
def test_serialize(benchmark, size):
    benchmark.group = "protobuf serialize HelloRequest"
    message = request(size)
    data = benchmark(message.SerializeToString)
    assert len(data) >= size


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}B")
def test_parse(benchmark, size):
    benchmark.group = "protobuf parse HelloRequest"
    data = request(size).SerializeToString()
    message = benchmark(greet_pb2.HelloRequest.FromString, data)
    assert len(message.payload) == size
