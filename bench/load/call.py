"""`grpclab call`: the tutorial's four client calls against a running server."""

from __future__ import annotations

import sys
from pathlib import Path

import grpc

from protos import (
    chat_pb2,
    chat_pb2_grpc,
    greet_pb2,
    greet_pb2_grpc,
    number_stream_pb2,
    number_stream_pb2_grpc,
    sum_stream_pb2,
    sum_stream_pb2_grpc,
)

from .channels import open_channel


def run_calls(target: str, tls_dir: Path | None = None, compression: str = "none", timeout: float = 10.0) -> int:
    """Make the four calls, printing what the tutorial's clients print; on an RPC error print CODE: details."""
    with open_channel(target, tls_dir=tls_dir, compression=compression) as channel:
        try:
            reply = greet_pb2_grpc.GreeterStub(channel).SayHello(greet_pb2.HelloRequest(name="world"), timeout=timeout)
            print("Greeter client received: " + reply.message)

            numbers = number_stream_pb2_grpc.NumberServiceStub(channel).GetNumbers(
                number_stream_pb2.NumberRequest(limit=10), timeout=timeout
            )
            for response in numbers:
                print("Received number: ", response.number)

            requests = (sum_stream_pb2.NumberRequest(number=n) for n in [1, 2, 3, 4, 5])
            total = sum_stream_pb2_grpc.SumServiceStub(channel).CalculateSum(requests, timeout=timeout)
            print("Sum: ", total.sum)

            messages = (chat_pb2.ChatRequest(message=m) for m in ["Hello", "How are you?", "Goodbye"])
            for response in chat_pb2_grpc.ChatServiceStub(channel).Chat(messages, timeout=timeout):
                print("Received: ", response.message)
        except grpc.RpcError as exc:
            print(f"{exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    return 0
