"""The four services on grpc.server with a ThreadPoolExecutor: thin adapters around servers.logic."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protos import (
    chat_pb2_grpc,
    greet_pb2_grpc,
    lab_pb2_grpc,
    number_stream_pb2_grpc,
    sum_stream_pb2_grpc,
)

from . import logic
from .config import ServerConfig
from .transport import add_port, enable_reflection

T = TypeVar("T")


def _begin(state: logic.LabState, context: grpc.ServicerContext) -> None:
    wait = state.rpc_started()
    # Counted when gRPC ends the RPC, however it ends (OK, error, cancel, deadline): a
    # generator's `finally` would not run for a stream the client abandoned.
    if not context.add_callback(state.rpc_finished):
        state.rpc_finished()
    if wait:
        time.sleep(wait)


def _unary(state: logic.LabState, context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    _begin(state, context)
    try:
        return fn()
    except logic.RpcAbort as exc:
        context.abort(exc.code, exc.details)


def _streaming(state: logic.LabState, context: grpc.ServicerContext, gen: Callable[[], Iterator[T]]) -> Iterator[T]:
    _begin(state, context)
    try:
        yield from gen()
    except logic.RpcAbort as exc:
        context.abort(exc.code, exc.details)


class Greeter(greet_pb2_grpc.GreeterServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    def SayHello(self, request, context):  # noqa: N802 - gRPC method name
        return _unary(self.state, context, lambda: logic.say_hello(request))


class NumberService(number_stream_pb2_grpc.NumberServiceServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    def GetNumbers(self, request, context):  # noqa: N802
        return _streaming(self.state, context, lambda: logic.get_numbers(request))


class SumService(sum_stream_pb2_grpc.SumServiceServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    def CalculateSum(self, request_iterator, context):  # noqa: N802
        def run():
            acc = logic.SumAccumulator()
            for request in request_iterator:
                acc.add(request)
            return acc.result()

        return _unary(self.state, context, run)


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    def Chat(self, request_iterator, context):  # noqa: N802
        return _streaming(self.state, context, lambda: map(logic.chat_reply, request_iterator))


class Control(lab_pb2_grpc.ControlServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    def Stats(self, request, context):  # noqa: N802
        return self.state.stats()

    def Reset(self, request, context):  # noqa: N802
        return self.state.reset()


def build(config: ServerConfig, state: logic.LabState) -> tuple[grpc.Server, int]:
    """Create, bind and start the server; returns it with the bound port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="grpclab-worker"),
        options=config.channel_options(),
        compression=config.grpc_compression(),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    greet_pb2_grpc.add_GreeterServicer_to_server(Greeter(state), server)
    number_stream_pb2_grpc.add_NumberServiceServicer_to_server(NumberService(state), server)
    sum_stream_pb2_grpc.add_SumServiceServicer_to_server(SumService(state), server)
    chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatService(state), server)
    lab_pb2_grpc.add_ControlServicer_to_server(Control(state), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server)
    port = add_port(server, config)
    server.start()
    for name in ("", *logic.SERVICE_NAMES, logic.CONTROL_SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
