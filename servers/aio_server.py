"""The four services on grpc.aio: thin async adapters around servers.logic.

The logic is CPU-only, so it runs inline on the event loop. Of the handler work a request may ask for
(servers.work), the wait is awaited; CPU work and a blocking call hold the loop, as they would in a real
handler. The injected wait of a test knob is awaited too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protos import (
    chat_pb2_grpc,
    greet_pb2_grpc,
    lab_pb2_grpc,
    number_stream_pb2_grpc,
    sum_stream_pb2_grpc,
)

from . import benchmark_service, logic
from .config import ServerConfig
from .faults import Faults
from .transport import add_port, enable_reflection, served_names

# The servicers call the logic directly: nothing runs per RPC that a tutorial server would not run, apart
# from turning the logic's RpcAbort into a status and one presence check per message for the handler work a
# request may ask for. The RPCs served are counted by gRPC core (servers.calls).


class Greeter(greet_pb2_grpc.GreeterServicer):
    async def SayHello(self, request, context):  # noqa: N802 - gRPC method name
        try:
            work = logic.work_for(request)
            if work is not None:
                await work.on_loop()
            return logic.say_hello(request)
        except logic.RpcAbort as exc:
            await context.abort(exc.code, exc.details)


class NumberService(number_stream_pb2_grpc.NumberServiceServicer):
    async def GetNumbers(self, request, context):  # noqa: N802
        try:
            work = logic.work_for(request)
            for response in logic.get_numbers(request):
                if work is not None:  # the one request's work, before each reply
                    await work.on_loop()
                yield response
        except logic.RpcAbort as exc:
            await context.abort(exc.code, exc.details)


class SumService(sum_stream_pb2_grpc.SumServiceServicer):
    async def CalculateSum(self, request_iterator, context):  # noqa: N802
        try:
            acc = logic.SumAccumulator()
            async for request in request_iterator:
                work = logic.work_for(request)
                if work is not None:
                    await work.on_loop()
                acc.add(request)
            return acc.result()
        except logic.RpcAbort as exc:
            await context.abort(exc.code, exc.details)


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    async def Chat(self, request_iterator, context):  # noqa: N802
        try:
            async for request in request_iterator:
                work = logic.work_for(request)
                if work is not None:
                    await work.on_loop()
                yield logic.chat_reply(request)
        except logic.RpcAbort as exc:
            await context.abort(exc.code, exc.details)


def with_faults(method: Callable, faults: Faults, streams_replies: bool) -> Callable:
    """``method`` preceded by the injected faults: burn CPU on the loop, then await the delay or stall.

    Wrapped at build time and only when a knob is set, so a server without faults pays nothing per RPC.
    """
    if streams_replies:

        @functools.wraps(method)
        async def faulty_stream(request_or_iterator, context):
            wait = faults.on_rpc_start()
            if wait:
                await asyncio.sleep(wait)
            async for reply in method(request_or_iterator, context):
                yield reply

        return faulty_stream

    @functools.wraps(method)
    async def faulty(request_or_iterator, context):
        wait = faults.on_rpc_start()
        if wait:
            await asyncio.sleep(wait)
        return await method(request_or_iterator, context)

    return faulty


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
    greeter, numbers, sums, chat = Greeter(), NumberService(), SumService(), ChatService()
    if state.faults.active:
        methods = ((greeter, "SayHello", False), (numbers, "GetNumbers", True), (sums, "CalculateSum", False))
        for servicer, name, streams_replies in (*methods, (chat, "Chat", True)):
            setattr(servicer, name, with_faults(getattr(servicer, name), state.faults, streams_replies))
    greet_pb2_grpc.add_GreeterServicer_to_server(greeter, server)
    number_stream_pb2_grpc.add_NumberServiceServicer_to_server(numbers, server)
    sum_stream_pb2_grpc.add_SumServiceServicer_to_server(sums, server)
    chat_pb2_grpc.add_ChatServiceServicer_to_server(chat, server)
    lab_pb2_grpc.add_ControlServicer_to_server(Control(state), server)
    if config.benchmark_service:
        benchmark_service.add_to_server(server, aio=True)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, config)
    port = add_port(server, config)
    await server.start()
    for name in ("", *served_names(config)):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
