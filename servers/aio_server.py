"""The four services on grpc.aio: thin async adapters around servers.logic.

The logic is CPU-only, so it runs inline on the event loop; only the injected
wait (a test knob) is awaited instead of slept.
"""

from __future__ import annotations

import asyncio

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


async def _begin(state: logic.LabState, context: grpc.aio.ServicerContext) -> None:
    wait = state.rpc_started()
    # Counted when gRPC ends the RPC, however it ends (OK, error, cancel, deadline).
    context.add_done_callback(lambda _: state.rpc_finished())
    if wait:
        await asyncio.sleep(wait)


class Greeter(greet_pb2_grpc.GreeterServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    async def SayHello(self, request, context):  # noqa: N802 - gRPC method name
        try:
            await _begin(self.state, context)
            return logic.say_hello(request)
        except logic.RpcAbort as exc:
            await context.abort(exc.code, exc.details)


class NumberService(number_stream_pb2_grpc.NumberServiceServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    async def GetNumbers(self, request, context):  # noqa: N802
        try:
            await _begin(self.state, context)
            for response in logic.get_numbers(request):
                yield response
        except logic.RpcAbort as exc:
            await context.abort(exc.code, exc.details)


class SumService(sum_stream_pb2_grpc.SumServiceServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    async def CalculateSum(self, request_iterator, context):  # noqa: N802
        try:
            await _begin(self.state, context)
            acc = logic.SumAccumulator()
            async for request in request_iterator:
                acc.add(request)
            return acc.result()
        except logic.RpcAbort as exc:
            await context.abort(exc.code, exc.details)


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    async def Chat(self, request_iterator, context):  # noqa: N802
        try:
            await _begin(self.state, context)
            async for request in request_iterator:
                yield logic.chat_reply(request)
        except logic.RpcAbort as exc:
            await context.abort(exc.code, exc.details)


class Control(lab_pb2_grpc.ControlServicer):
    def __init__(self, state: logic.LabState) -> None:
        self.state = state

    async def Stats(self, request, context):  # noqa: N802
        return self.state.stats()

    async def Reset(self, request, context):  # noqa: N802
        return self.state.reset()


async def build(config: ServerConfig, state: logic.LabState) -> tuple[grpc.aio.Server, int]:
    """Create, bind and start the server; returns it with the bound port."""
    server = grpc.aio.server(
        options=config.channel_options(),
        compression=config.grpc_compression(),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    greet_pb2_grpc.add_GreeterServicer_to_server(Greeter(state), server)
    number_stream_pb2_grpc.add_NumberServiceServicer_to_server(NumberService(state), server)
    sum_stream_pb2_grpc.add_SumServiceServicer_to_server(SumService(state), server)
    chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatService(state), server)
    lab_pb2_grpc.add_ControlServicer_to_server(Control(state), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server)
    port = add_port(server, config)
    await server.start()
    for name in ("", *logic.SERVICE_NAMES, logic.CONTROL_SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
