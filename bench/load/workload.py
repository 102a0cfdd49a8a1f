"""What one RPC of a cell does on the client: build requests, call, check replies, time messages.

The client pays the same app-level gzip cost a real client would: every request
payload is compressed and every reply payload decompressed, per message. Reply
sizes are checked, so a server that skips work shows up as DATA_LOSS errors.
A records cell sends and expects lab.Records (servers.records) instead of bytes;
its replies are checked by record count and last record.

These are the aio client's calls; the sync clients (bench.load.sync_clients) build
and check the same messages through ``request_fields`` and ``check``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc

from protos import (
    chat_pb2,
    chat_pb2_grpc,
    greet_pb2,
    greet_pb2_grpc,
    lab_pb2,
    number_stream_pb2,
    number_stream_pb2_grpc,
    sum_stream_pb2,
    sum_stream_pb2_grpc,
)
from servers import payloads, records

from ..spec.compression import Compression
from .job import LoadJob

RPCS = ("unary", "server_stream", "client_stream", "bidi")


class ReplyMismatch(Exception):
    """The server's reply did not carry what was asked for."""


@dataclass
class Timings:
    """Per-message times of one streaming call, in ns (monotonic clock)."""

    first_ns: int | None = None  # server stream: time to first message
    gaps_ns: list[int] | None = None  # server stream: between messages; bidi: per-message round trips


class ReplyClock:
    """Times a server stream's replies as they arrive: the first one from the call's start, then the gaps.

    Made just before the call starts; ``reply()`` is called once per reply, right after it arrived.
    """

    __slots__ = ("_start", "_last", "_first_ns", "_gaps_ns")

    def __init__(self) -> None:
        self._start = self._last = time.monotonic_ns()
        self._first_ns: int | None = None
        self._gaps_ns: list[int] = []

    def reply(self) -> None:
        now = time.monotonic_ns()
        if self._first_ns is None:
            self._first_ns = now - self._start
        else:
            self._gaps_ns.append(now - self._last)
        self._last = now

    def timings(self) -> Timings:
        return Timings(first_ns=self._first_ns, gaps_ns=self._gaps_ns)


class Workload:
    """The requests and checks of one cell; one instance per load-generator process."""

    def __init__(
        self,
        rpc: str,
        payload_size: int,
        payload_kind: str,
        compression: Compression,
        stream_messages: int,
        seed: int = 0,
        work: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        if rpc not in RPCS:
            raise ValueError(f"unknown rpc {rpc!r}")
        self.rpc = rpc
        self.compression = compression
        self.size = payload_size
        self.level = compression.app_level
        self.messages = stream_messages if rpc != "unary" else 1
        # records: the message is built once per size (servers.records), the bytes payload stays empty
        self.records = records.build(payload_size) if payload_kind == records.KIND else None
        if self.records is not None and self.level:
            raise ValueError("records cells have no bytes payload for app-level gzip")
        self.raw = payloads.make(payload_kind, payload_size, seed) if self.records is None else b""
        self.kind = payloads.KIND_TO_PROTO[payload_kind] if self.records is None else records.PROTO_KIND
        # (wait, block, cpu) us of handler work per message; none: the field is left out, as before it existed
        wait_us, block_us, cpu_us = work
        self.work = lab_pb2.Work(wait_us=wait_us, block_us=block_us, cpu_us=cpu_us) if any(work) else None

    @classmethod
    def for_job(cls, job: LoadJob) -> Workload:
        # Payload seed left at 0: the same bytes in every repetition (and in ghz's data file).
        work = (job.handler_wait_us, job.handler_block_us, job.handler_cpu_us)
        return cls(job.rpc, job.payload_size, job.payload_kind, job.compression, job.stream_messages, work=work)

    def request_fields(self) -> dict:
        """The lab's fields of every request message (what the server reads to build and check its reply, and the
        work its handler does for the message)."""
        if self.records is not None:
            fields = {"response_size": self.size, "response_kind": self.kind}
            if self.records.count:  # copied into each request message, encoded per message
                fields["records"] = self.records.message
        else:
            fields = {
                "payload": payloads.encode(self.raw, self.level),  # compressed per message: real client CPU
                "payload_gzip_level": self.level,
                "response_size": self.size,
                "response_kind": self.kind,
            }
        if self.work is not None:
            fields["work"] = self.work
        return fields

    def check(self, reply) -> None:
        """ReplyMismatch unless ``reply`` carries the payload asked for (bytes size and level, or records)."""
        if self.records is not None:
            got = reply.records.records
            if reply.payload or len(got) != self.records.count or (got and got[-1] != self.records.last):
                raise ReplyMismatch(
                    f"reply with {len(got)} records and {len(reply.payload)} B of payload, "
                    f"asked {self.records.count} records ({self.records.size} B) and no payload"
                )
            return
        try:
            body = payloads.decode(reply.payload, reply.payload_gzip_level)
        except payloads.PayloadError as exc:
            raise ReplyMismatch(str(exc)) from None
        if len(body) != self.size or reply.payload_gzip_level != self.level:
            raise ReplyMismatch(
                f"reply payload {len(body)} B at level {reply.payload_gzip_level}, "
                f"asked {self.size} B at level {self.level}"
            )

    def stub(self, channel: grpc.aio.Channel):
        return {
            "unary": greet_pb2_grpc.GreeterStub,
            "server_stream": number_stream_pb2_grpc.NumberServiceStub,
            "client_stream": sum_stream_pb2_grpc.SumServiceStub,
            "bidi": chat_pb2_grpc.ChatServiceStub,
        }[self.rpc](channel)

    async def call(self, stub, timeout: float) -> Timings | None:
        """One RPC; raises grpc.aio.AioRpcError or ReplyMismatch on failure."""
        if self.rpc == "unary":
            reply = await stub.SayHello(greet_pb2.HelloRequest(name="lab", **self.request_fields()), timeout=timeout)
            self.check(reply)
            return None
        if self.rpc == "server_stream":
            return await self._server_stream(stub, timeout)
        if self.rpc == "client_stream":
            return await self._client_stream(stub, timeout)
        return await self._bidi(stub, timeout)

    async def _server_stream(self, stub, timeout: float) -> Timings:
        count = 0
        clock = ReplyClock()
        call = stub.GetNumbers(
            number_stream_pb2.NumberRequest(limit=self.messages, **self.request_fields()), timeout=timeout
        )
        async for reply in call:
            clock.reply()
            self.check(reply)
            count += 1
        if count != self.messages:
            raise ReplyMismatch(f"{count} stream messages, asked {self.messages}")
        return clock.timings()

    async def _client_stream(self, stub, timeout: float) -> None:
        call = stub.CalculateSum(timeout=timeout)
        for i in range(self.messages):
            await call.write(sum_stream_pb2.NumberRequest(number=i, **self.request_fields()))
        await call.done_writing()
        reply = await call
        self.check(reply)
        expected = self.messages * (self.messages - 1) // 2
        if reply.sum != expected:
            raise ReplyMismatch(f"sum {reply.sum}, expected {expected}")
        return None

    async def _bidi(self, stub, timeout: float) -> Timings:
        # Ping-pong: each message waits for its reply, so every gap is one message round trip.
        call = stub.Chat(timeout=timeout)
        rtts: list[int] = []
        for i in range(self.messages):
            sent = time.monotonic_ns()
            await call.write(chat_pb2.ChatRequest(message=str(i), **self.request_fields()))
            reply = await call.read()
            if reply is grpc.aio.EOF:
                raise ReplyMismatch(f"stream ended after {i} of {self.messages} replies")
            rtts.append(time.monotonic_ns() - sent)
            self.check(reply)
        await call.done_writing()
        # Reading past the last reply yields EOF on an OK status and raises AioRpcError otherwise.
        if await call.read() is not grpc.aio.EOF:
            raise ReplyMismatch(f"more than {self.messages} replies")
        return Timings(gaps_ns=rtts)


def for_job(job: LoadJob):
    """The workload of a job: the tutorial's services (:class:`Workload`) or gRPC's BenchmarkService."""
    if job.service == "benchmark":
        from .benchmark_workload import BenchmarkWorkload

        return BenchmarkWorkload.for_job(job)
    return Workload.for_job(job)
