"""The tutorial's four services, written once for both server models.

Everything here is plain, synchronous, CPU-only code working on messages: the
sync thread-pool servicers and the grpc.aio servicers are thin adapters around
it (sleeping, aborting and iterating the way their model wants). Keeping the
logic single means a sync-vs-aio comparison measures the server model, not two
implementations.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import psutil

from protos import chat_pb2, greet_pb2, lab_pb2, number_stream_pb2, sum_stream_pb2

from . import calls, payloads
from .faults import Faults

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
# Upper bound on a reply payload a request may ask for (the default message limit is larger).
MAX_RESPONSE_SIZE = 32 * 1024 * 1024

SERVICE_NAMES = (
    greet_pb2.DESCRIPTOR.services_by_name["Greeter"].full_name,
    number_stream_pb2.DESCRIPTOR.services_by_name["NumberService"].full_name,
    sum_stream_pb2.DESCRIPTOR.services_by_name["SumService"].full_name,
    chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name,
)
CONTROL_SERVICE_NAME = lab_pb2.DESCRIPTOR.services_by_name["Control"].full_name


class RpcAbort(Exception):
    """Raised by the logic to end an RPC with a status; each adapter turns it into context.abort."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class LabState:
    """What lab.Control reports for one server process: its CPU, RSS and the RPCs it finished.

    Nothing here runs per RPC. ``rpcs_served`` is gRPC core's own count of the calls the server finished
    (servers.calls: any service, any status, cancellations and deadlines included; the Stats call that
    asks is still running, so it is not in it), minus the count at the last Reset. The faults are the
    test-only knobs: the adapters read them once, when the server is built.
    """

    def __init__(
        self, impl: str, faults: Faults | None = None, finished_calls: Callable[[], int] | None = None
    ) -> None:
        self.impl = impl
        self.faults = faults or Faults()
        self._finished_calls = finished_calls or calls.finished_calls
        self._lock = threading.Lock()
        self._offset = 0
        self._reset_at = time.monotonic()
        self._process = psutil.Process()

    def _reply(self, finished: int, now: float) -> lab_pb2.StatsReply:
        cpu = os.times()
        with self._lock:
            served, since = finished - self._offset, now - self._reset_at
        return lab_pb2.StatsReply(
            pid=os.getpid(),
            impl=self.impl,
            cpu_user_seconds=cpu.user,
            cpu_system_seconds=cpu.system,
            rss_bytes=self._process.memory_info().rss,
            rpcs_served=served,
            seconds_since_reset=since,
        )

    def stats(self) -> lab_pb2.StatsReply:
        return self._reply(self._finished_calls(), time.monotonic())

    def reset(self) -> lab_pb2.StatsReply:
        """Start counting from now; returns the counters as they were (the Reset call counts once it ends)."""
        finished, now = self._finished_calls(), time.monotonic()
        before = self._reply(finished, now)
        with self._lock:
            self._offset = finished
            self._reset_at = now
        return before


def _read_payload(data: bytes, level: int) -> bytes:
    """A request payload's body; only compressed ones cost work (a raw body is used as it is)."""
    if not level:
        return data
    try:
        return payloads.decode(data, level)
    except payloads.PayloadError as exc:
        raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


class ReplyPayload:
    """The payload a call's replies carry, built from the request's response_* fields."""

    def __init__(self, size: int, kind_value: int, level: int) -> None:
        kind = payloads.PROTO_TO_KIND.get(kind_value)
        if kind is None:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown response_kind {kind_value}")
        if size > MAX_RESPONSE_SIZE:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"response_size {size} > {MAX_RESPONSE_SIZE}")
        try:
            payloads.check_level(level)
        except payloads.PayloadError as exc:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        self.level = level
        self._body = payloads.make(kind, size)
        # A tutorial request asks for no payload: its replies set no lab field at all (cheapest to build).
        self.empty = not size and not level

    @classmethod
    def for_request(cls, request) -> ReplyPayload:
        return _reply_payload(request.response_size, request.response_kind, request.payload_gzip_level)

    def next(self) -> bytes:
        """Encode once per message: app-level gzip CPU is paid per reply, as a real server would."""
        return payloads.encode(self._body, self.level) if self.level else self._body


# Checked and built once per distinct (size, kind, level), not per message: the lab's own per-RPC cost must
# stay out of what it measures (issue 19). Small, because each entry keeps a body alive (up to 32 MiB);
# a rejected request raises and is never cached.
@functools.lru_cache(maxsize=16)
def _reply_payload(size: int, kind_value: int, level: int) -> ReplyPayload:
    return ReplyPayload(size, kind_value, level)


def say_hello(request: greet_pb2.HelloRequest) -> greet_pb2.HelloReply:
    level = request.payload_gzip_level
    _read_payload(request.payload, level)
    reply = _reply_payload(request.response_size, request.response_kind, level)
    if reply.empty:
        return greet_pb2.HelloReply(message=f"Hello, {request.name}!")
    return greet_pb2.HelloReply(message=f"Hello, {request.name}!", payload=reply.next(), payload_gzip_level=level)


def get_numbers(request: number_stream_pb2.NumberRequest) -> Iterator[number_stream_pb2.NumberResponse]:
    level = request.payload_gzip_level
    _read_payload(request.payload, level)
    reply = _reply_payload(request.response_size, request.response_kind, level)
    response = number_stream_pb2.NumberResponse
    if reply.empty:
        for i in range(request.limit):
            yield response(number=i)
    else:
        for i in range(request.limit):
            yield response(number=i, payload=reply.next(), payload_gzip_level=level)


class SumAccumulator:
    """CalculateSum's state across the request stream; the reply payload follows the first request."""

    def __init__(self) -> None:
        self.total = 0
        self._reply: ReplyPayload | None = None

    def add(self, request: sum_stream_pb2.NumberRequest) -> None:
        _read_payload(request.payload, request.payload_gzip_level)
        if self._reply is None:
            self._reply = ReplyPayload.for_request(request)
        self.total += request.number
        # The tutorial's reply field is int32: say so instead of failing to serialize.
        if not INT32_MIN <= self.total <= INT32_MAX:
            raise RpcAbort(grpc.StatusCode.OUT_OF_RANGE, "sum does not fit the int32 'sum' field")

    def result(self) -> sum_stream_pb2.SumResponse:
        reply = self._reply or _reply_payload(0, lab_pb2.PAYLOAD_KIND_ZEROS, 0)
        if reply.empty:
            return sum_stream_pb2.SumResponse(sum=self.total)
        return sum_stream_pb2.SumResponse(sum=self.total, payload=reply.next(), payload_gzip_level=reply.level)


def chat_reply(request: chat_pb2.ChatRequest) -> chat_pb2.ChatResponse:
    level = request.payload_gzip_level
    _read_payload(request.payload, level)
    reply = _reply_payload(request.response_size, request.response_kind, level)
    if reply.empty:
        return chat_pb2.ChatResponse(message=f"You said: {request.message}")
    return chat_pb2.ChatResponse(message=f"You said: {request.message}", payload=reply.next(), payload_gzip_level=level)
