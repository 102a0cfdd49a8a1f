"""What one RPC of a ``service = "benchmark"`` cell does: gRPC's own grpc.testing.BenchmarkService.

The cell's rpc axis maps onto BenchmarkService methods as gRPC's benchmark clients use them, so the
lab's generator, grpc-go's worker and gRPC's C++ driver measure the same thing:

* ``unary`` -> UnaryCall: one RPC is one call;
* ``bidi`` -> StreamingCall, ping-pong (gRPC's rpc_type STREAMING): each in-flight slot keeps a stream
  open and **one RPC is one round trip** (one request, its reply), as gRPC's clients count it; the stream
  is finished and a new one started after ``stream_messages`` round trips (messages_per_stream);
* ``server_stream`` -> StreamingFromServer: one RPC is one call that reads ``stream_messages`` replies
  and then cancels the call (the server streams until the call ends); first-message and gap times;
* ``client_stream`` -> StreamingFromClient: one RPC is one call of ``stream_messages`` requests.

Requests and replies carry ``payload_size`` zero bytes (PayloadType COMPRESSABLE); reply sizes are
checked. gRPC compression (grpc-gzip, grpc-deflate) applies on the channel; the lab's app-gzip levels
and payload kinds have no BenchmarkService equivalent (bench.spec.cell refuses those cells).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from protos.grpc.testing import benchmark_service_pb2_grpc, messages_pb2

from ..spec.compression import Compression
from .workload import ReplyClock, ReplyMismatch, Timings

RPCS = ("unary", "server_stream", "client_stream", "bidi")


@dataclass
class _PingPong:
    """One slot's open StreamingCall."""

    stub: object
    call: grpc.aio.StreamStreamCall
    round_trips: int = 0


class BenchmarkWorkload:
    """The requests and checks of a BenchmarkService cell; one instance per load-generator process."""

    def __init__(self, rpc: str, payload_size: int, compression: Compression, stream_messages: int) -> None:
        if rpc not in RPCS:
            raise ValueError(f"unknown rpc {rpc!r}")
        if compression.app_level:
            raise ValueError(f"compression {compression.value}: BenchmarkService payloads carry no gzip level")
        self.rpc = rpc
        self.size = payload_size
        self.messages = stream_messages if rpc != "unary" else 1
        self.request = messages_pb2.SimpleRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_size=payload_size,
            payload=messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=bytes(payload_size)),
        )
        self._streams: dict[asyncio.Task, _PingPong] = {}

    @classmethod
    def for_job(cls, job) -> BenchmarkWorkload:
        return cls(job.rpc, job.payload_size, job.compression, job.stream_messages)

    def stub(self, channel: grpc.aio.Channel) -> benchmark_service_pb2_grpc.BenchmarkServiceStub:
        return benchmark_service_pb2_grpc.BenchmarkServiceStub(channel)

    def _check(self, reply: messages_pb2.SimpleResponse) -> None:
        if len(reply.payload.body) != self.size:
            raise ReplyMismatch(f"reply payload {len(reply.payload.body)} B, asked {self.size} B")

    async def call(self, stub, timeout: float) -> Timings | None:
        """One RPC; raises grpc.aio.AioRpcError or ReplyMismatch on failure."""
        if self.rpc == "unary":
            self._check(await stub.UnaryCall(self.request, timeout=timeout))
            return None
        if self.rpc == "bidi":
            await self._round_trip(stub, timeout)
            return None
        if self.rpc == "server_stream":
            return await self._from_server(stub, timeout)
        return await self._from_client(stub, timeout)

    async def _round_trip(self, stub, timeout: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        slot = self._streams.get(task)
        if slot is None or slot.stub is not stub:
            # No deadline on the stream: it lives for many round trips; each round trip gets ``timeout``.
            slot = self._streams[task] = _PingPong(stub, stub.StreamingCall())
            task.add_done_callback(self._forget)
        try:
            await asyncio.wait_for(slot.call.write(self.request), timeout)
            reply = await asyncio.wait_for(slot.call.read(), timeout)
        except TimeoutError:
            self._end(task)
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details=f"no reply on the ping-pong stream within {timeout:g} s",
            ) from None
        except BaseException:
            self._end(task)
            raise
        if reply is grpc.aio.EOF:
            self._end(task)
            raise ReplyMismatch("the server ended the ping-pong stream")
        self._check(reply)
        slot.round_trips += 1
        if slot.round_trips >= self.messages:
            del self._streams[task]
            await slot.call.done_writing()
            if await slot.call.read() is not grpc.aio.EOF:
                raise ReplyMismatch("a reply after the client half-closed a ping-pong stream")

    def _end(self, task: asyncio.Task) -> None:
        slot = self._streams.pop(task, None)
        if slot is not None:
            slot.call.cancel()

    def _forget(self, task: asyncio.Task) -> None:
        self._end(task)  # the slot's task ended (the load is over): cancel its open stream

    async def _from_server(self, stub, timeout: float) -> Timings:
        clock = ReplyClock()
        call = stub.StreamingFromServer(self.request, timeout=timeout)
        try:
            for _ in range(self.messages):
                reply = await call.read()
                if reply is grpc.aio.EOF:  # (a failed call raises AioRpcError from read() instead)
                    raise ReplyMismatch("the server ended StreamingFromServer early")
                clock.reply()
                self._check(reply)
        finally:
            call.cancel()  # the server streams until the call ends
        return clock.timings()

    async def _from_client(self, stub, timeout: float) -> None:
        call = stub.StreamingFromClient(timeout=timeout)
        for _ in range(self.messages):
            await call.write(self.request)
        await call.done_writing()
        self._check(await call)
        return None
