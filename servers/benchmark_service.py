"""grpc.testing.BenchmarkService, gRPC's own benchmark service, for the sync and the aio server.

Served only with ``grpclab serve --benchmark-service`` (the lab's worker starts its servers so, since a
driver of any gRPC language asks for this service); the lab's default servers do not register it.

Every reply carries ``response_size`` zero bytes (PayloadType COMPRESSABLE, the only type), as gRPC's
workers send. Semantics per method (benchmark_service.proto):

* UnaryCall: one reply;
* StreamingCall: one reply per request (ping-pong) until the client half-closes;
* StreamingFromClient: reads every request, then one reply sized by the last request;
* StreamingFromServer: replies repeatedly until the call ends (the client cancels it, or its deadline);
* StreamingBothWays: replies repeatedly, sized by the first request, while reading the client's requests
  on the side, until the client half-closes or the call ends.

The two open-ended streams also end after ``MAX_STREAM_SECONDS``, so no call streams forever.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc

from protos.grpc.testing import benchmark_service_pb2, benchmark_service_pb2_grpc, messages_pb2

from .logic import MAX_RESPONSE_SIZE, RpcAbort

SERVICE_NAME = benchmark_service_pb2.DESCRIPTOR.services_by_name["BenchmarkService"].full_name
MAX_STREAM_SECONDS = 3600.0


@functools.lru_cache(maxsize=16)
def _reply(size: int, kind: int) -> messages_pb2.SimpleResponse:
    """The reply for a request's (response_size, response_type), checked and built once per pair."""
    if kind != messages_pb2.COMPRESSABLE:
        raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"response_type {kind}: only COMPRESSABLE (0) is served")
    if not 0 <= size <= MAX_RESPONSE_SIZE:
        raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"response_size {size}: must be 0..{MAX_RESPONSE_SIZE}")
    return messages_pb2.SimpleResponse(payload=messages_pb2.Payload(type=kind, body=bytes(size)))


def reply_for(request: messages_pb2.SimpleRequest) -> messages_pb2.SimpleResponse:
    return _reply(request.response_size, request.response_type)


class BenchmarkService(benchmark_service_pb2_grpc.BenchmarkServiceServicer):
    """The thread-pool server's servicer."""

    def UnaryCall(self, request, context):  # noqa: N802 - gRPC method name
        try:
            return reply_for(request)
        except RpcAbort as exc:
            context.abort(exc.code, exc.details)

    def StreamingCall(self, request_iterator, context):  # noqa: N802
        try:
            for request in request_iterator:
                yield reply_for(request)
        except RpcAbort as exc:
            context.abort(exc.code, exc.details)

    def StreamingFromClient(self, request_iterator, context):  # noqa: N802
        last = None
        for request in request_iterator:
            last = request
        try:
            return reply_for(last or messages_pb2.SimpleRequest())
        except RpcAbort as exc:
            context.abort(exc.code, exc.details)

    def StreamingFromServer(self, request, context):  # noqa: N802
        try:
            reply = reply_for(request)
        except RpcAbort as exc:
            context.abort(exc.code, exc.details)
        yield from _repeat(reply, context.is_active)

    def StreamingBothWays(self, request_iterator, context):  # noqa: N802
        try:
            first = next(request_iterator, None)
            if first is None:
                return
            reply = reply_for(first)
        except RpcAbort as exc:
            context.abort(exc.code, exc.details)
        client_done = threading.Event()

        def drain() -> None:
            try:
                for _ in request_iterator:
                    pass
            except grpc.RpcError:
                pass  # the call ended
            finally:
                client_done.set()

        threading.Thread(target=drain, name="grpclab-both-ways", daemon=True).start()
        yield from _repeat(reply, lambda: context.is_active() and not client_done.is_set())


def _repeat(reply: messages_pb2.SimpleResponse, go_on) -> Iterator[messages_pb2.SimpleResponse]:
    end = time.monotonic() + MAX_STREAM_SECONDS
    while go_on() and time.monotonic() < end:
        yield reply


class AioBenchmarkService(benchmark_service_pb2_grpc.BenchmarkServiceServicer):
    """The grpc.aio server's servicer."""

    async def UnaryCall(self, request, context):  # noqa: N802
        try:
            return reply_for(request)
        except RpcAbort as exc:
            await context.abort(exc.code, exc.details)

    async def StreamingCall(self, request_iterator, context):  # noqa: N802
        try:
            async for request in request_iterator:
                yield reply_for(request)
        except RpcAbort as exc:
            await context.abort(exc.code, exc.details)

    async def StreamingFromClient(self, request_iterator, context):  # noqa: N802
        last = None
        async for request in request_iterator:
            last = request
        try:
            return reply_for(last or messages_pb2.SimpleRequest())
        except RpcAbort as exc:
            await context.abort(exc.code, exc.details)

    async def StreamingFromServer(self, request, context):  # noqa: N802
        try:
            reply = reply_for(request)
        except RpcAbort as exc:
            await context.abort(exc.code, exc.details)
        async for item in _arepeat(reply, lambda: not context.done()):
            yield item

    async def StreamingBothWays(self, request_iterator, context):  # noqa: N802
        iterator = request_iterator.__aiter__()
        try:
            first = await anext(iterator, None)
            if first is None:
                return
            reply = reply_for(first)
        except RpcAbort as exc:
            await context.abort(exc.code, exc.details)

        async def drain() -> None:
            async for _ in iterator:
                pass

        drained = asyncio.ensure_future(drain())
        try:
            async for item in _arepeat(reply, lambda: not drained.done() and not context.done()):
                yield item
        finally:
            drained.cancel()


async def _arepeat(reply: messages_pb2.SimpleResponse, go_on) -> AsyncIterator[messages_pb2.SimpleResponse]:
    end = time.monotonic() + MAX_STREAM_SECONDS
    while go_on() and time.monotonic() < end:
        yield reply


def add_to_server(server: grpc.Server | grpc.aio.Server, aio: bool) -> None:
    servicer = AioBenchmarkService() if aio else BenchmarkService()
    benchmark_service_pb2_grpc.add_BenchmarkServiceServicer_to_server(servicer, server)
