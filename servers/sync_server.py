"""The four services on grpc.server with a ThreadPoolExecutor: thin adapters around servers.logic."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent import futures

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
# request may ask for (servers.work: here all of it, wait included, on the pool thread). The RPCs served are
# counted by gRPC core (servers.calls).


class Greeter(greet_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):  # noqa: N802 - gRPC method name
        try:
            work = logic.work_for(request)
            if work is not None:
                work.on_thread()
            return logic.say_hello(request)
        except logic.RpcAbort as exc:
            context.abort(exc.code, exc.details)


class NumberService(number_stream_pb2_grpc.NumberServiceServicer):
    def GetNumbers(self, request, context):  # noqa: N802
        try:
            work = logic.work_for(request)
            if work is None:
                yield from logic.get_numbers(request)
            else:
                for reply in logic.get_numbers(request):  # the one request's work, before each reply
                    work.on_thread()
                    yield reply
        except logic.RpcAbort as exc:
            context.abort(exc.code, exc.details)


class SumService(sum_stream_pb2_grpc.SumServiceServicer):
    def CalculateSum(self, request_iterator, context):  # noqa: N802
        try:
            acc = logic.SumAccumulator()
            for request in request_iterator:
                work = logic.work_for(request)
                if work is not None:
                    work.on_thread()
                acc.add(request)
            return acc.result()
        except logic.RpcAbort as exc:
            context.abort(exc.code, exc.details)


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def Chat(self, request_iterator, context):  # noqa: N802
        try:
            for request in request_iterator:
                work = logic.work_for(request)
                if work is not None:
                    work.on_thread()
                yield logic.chat_reply(request)
        except logic.RpcAbort as exc:
            context.abort(exc.code, exc.details)


def with_faults(method: Callable, faults: Faults) -> Callable:
    """``method`` preceded by the injected faults: burn CPU, then sleep (delay, stall) on the worker thread.

    Wrapped at build time and only when a knob is set, so a server without faults pays nothing per RPC.
    For a streaming method the faults come before its generator is created, i.e. before the first reply.
    """

    @functools.wraps(method)
    def faulty(request_or_iterator, context):
        wait = faults.on_rpc_start()
        if wait:
            time.sleep(wait)
        return method(request_or_iterator, context)

    return faulty


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
    greeter, numbers, sums, chat = Greeter(), NumberService(), SumService(), ChatService()
    if state.faults.active:
        for servicer, name in ((greeter, "SayHello"), (numbers, "GetNumbers"), (sums, "CalculateSum"), (chat, "Chat")):
            setattr(servicer, name, with_faults(getattr(servicer, name), state.faults))
    greet_pb2_grpc.add_GreeterServicer_to_server(greeter, server)
    number_stream_pb2_grpc.add_NumberServiceServicer_to_server(numbers, server)
    sum_stream_pb2_grpc.add_SumServiceServicer_to_server(sums, server)
    chat_pb2_grpc.add_ChatServiceServicer_to_server(chat, server)
    lab_pb2_grpc.add_ControlServicer_to_server(Control(state), server)
    if config.benchmark_service:
        benchmark_service.add_to_server(server, aio=False)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, config)
    port = add_port(server, config)
    server.start()
    for name in ("", *served_names(config)):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port
