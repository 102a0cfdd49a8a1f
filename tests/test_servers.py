"""The lab servers over the wire: every RPC on the three implementations (the Python sync and aio servers
and the grpc-go reference server), TLS and compression, lab fields, bad input, limits, multi-process serving,
health, reflection, SIGTERM, parent death and the fault knobs.

Servers run as real `grpclab serve` subprocesses (tests/conftest.py); the matrix shares one server per
(impl, security, compression) combination across all the tests that use it. Where grpc-go legitimately
behaves differently (no deflate, a compressed request's replies, gzip bytes), the test says so per impl.
Without the Go binary every go parameter is skipped, with the reason in the summary (tests/server_impls.py).
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from server_impls import IMPLS, PYTHON_IMPLS, fixture_param, impls, param

from bench.load.channels import open_channel
from bench.run.server_process import ServerProcess
from protos import (
    chat_pb2,
    chat_pb2_grpc,
    greet_pb2,
    greet_pb2_grpc,
    lab_pb2,
    lab_pb2_grpc,
    number_stream_pb2,
    number_stream_pb2_grpc,
    sum_stream_pb2,
    sum_stream_pb2_grpc,
)
from servers import payloads

# Every test here starts processes (servers, generators, the CLI): not part of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

T = 10.0  # deadline of every call that is expected to succeed
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
pytestmark = pytest.mark.slow  # every test here starts servers
SECURITY = ("plaintext", "tls", "mtls")
COMPRESSIONS = ("none", "gzip")
RPCS = ("SayHello", "GetNumbers", "CalculateSum", "Chat")
TUTORIAL_SERVICES = ("greet.Greeter", "number_stream.NumberService", "sum_stream.SumService", "chat.ChatService")
# full method name -> (client streaming, server streaming)
METHODS = {
    "/greet.Greeter/SayHello": (False, False),
    "/number_stream.NumberService/GetNumbers": (False, True),
    "/sum_stream.SumService/CalculateSum": (True, False),
    "/chat.ChatService/Chat": (True, True),
}


# --- calling the four RPCs --------------------------------------------------------------------------------


def say_hello(channel: grpc.Channel, timeout: float = T, **fields) -> greet_pb2.HelloReply:
    return greet_pb2_grpc.GreeterStub(channel).SayHello(greet_pb2.HelloRequest(**fields), timeout=timeout)


def get_numbers(channel: grpc.Channel, timeout: float = T, **fields) -> list[number_stream_pb2.NumberResponse]:
    stub = number_stream_pb2_grpc.NumberServiceStub(channel)
    return list(stub.GetNumbers(number_stream_pb2.NumberRequest(**fields), timeout=timeout))


def calculate_sum(channel: grpc.Channel, requests: list[dict], timeout: float = T) -> sum_stream_pb2.SumResponse:
    stub = sum_stream_pb2_grpc.SumServiceStub(channel)
    return stub.CalculateSum(iter([sum_stream_pb2.NumberRequest(**r) for r in requests]), timeout=timeout)


def chat(channel: grpc.Channel, requests: list[dict], timeout: float = T) -> list[chat_pb2.ChatResponse]:
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    return list(stub.Chat(iter([chat_pb2.ChatRequest(**r) for r in requests]), timeout=timeout))


def stats(channel: grpc.Channel) -> lab_pb2.StatsReply:
    return lab_pb2_grpc.ControlStub(channel).Stats(lab_pb2.StatsRequest(), timeout=T)


def cpu_seconds(reply: lab_pb2.StatsReply) -> float:
    return reply.cpu_user_seconds + reply.cpu_system_seconds


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status code the call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


class Requests:
    """A request stream the test writes to while the call runs; ends on close(), or after 10 s without input."""

    _END = object()

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()

    def put(self, message: str, **fields) -> None:
        self._queue.put(chat_pb2.ChatRequest(message=message, **fields))

    def close(self) -> None:
        self._queue.put(self._END)

    def __iter__(self) -> Iterator[chat_pb2.ChatRequest]:
        while True:
            try:
                item = self._queue.get(timeout=10)
            except queue.Empty:
                return
            if item is self._END:
                return
            yield item


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- the matrix: one server per (impl, security, compression) ---------------------------------------------


@dataclass
class Lab:
    srv: ServerProcess
    impl: str
    security: str
    compression: str
    client_tls: Path | None  # what a well-configured client of this server uses
    channel: grpc.Channel

    def new_channel(self, target: str | None = None) -> grpc.Channel:
        return open_channel(target or self.srv.target, tls_dir=self.client_tls, compression=self.compression)


MATRIX = [fixture_param(p) for p in itertools.product(IMPLS, SECURITY, COMPRESSIONS)]


@pytest.fixture(scope="module", params=MATRIX)
def lab(request, server_pool, lab_certs, ca_only_dir) -> Iterator[Lab]:
    impl, security, compression = request.param
    args = ["--impl", impl, "--compression", compression]
    if security != "plaintext":
        args += ["--tls", str(lab_certs.dir)]
    if security == "mtls":
        args.append("--mtls")
    client_tls = {"plaintext": None, "tls": ca_only_dir, "mtls": lab_certs.dir}[security]
    with server_pool() as servers:
        srv = servers(*args)
        channel = open_channel(srv.target, tls_dir=client_tls, compression=compression)
        try:
            yield Lab(srv, impl, security, compression, client_tls, channel)
        finally:
            channel.close()


def test_ready_line_describes_the_server(lab: Lab) -> None:
    ready = lab.srv.ready
    assert ready["impl"] == lab.impl
    assert ready["tls"] is (lab.security != "plaintext")
    assert ready["mtls"] is (lab.security == "mtls")
    assert ready["compression"] == lab.compression
    assert ready["host"] == "127.0.0.1"
    assert ready["pids"] == [ready["pid"]] == [lab.srv.proc.pid]
    assert ready["processes"] == 1 and ready["faults_injected"] is False
    if lab.impl == "go":
        # The same keys, with grpc-go's version for grpcio's, and no thread pool to size.
        assert ready["grpc_go"] == "1.85.0" and "grpcio" not in ready
        assert ready["workers"] is None
        # GOMAXPROCS follows the CPUs the process may run on (this server is not pinned).
        assert ready["gomaxprocs"] == len(os.sched_getaffinity(lab.srv.proc.pid))
    else:
        assert ready["grpcio"] == grpc.__version__


def test_say_hello(lab: Lab) -> None:
    for name in ("world", "", "wörld ✓", "x" * 10_000):
        reply = say_hello(lab.channel, name=name)
        assert reply.message == f"Hello, {name}!"
        # A tutorial client sets no lab field and gets none back.
        assert reply.payload == b"" and reply.payload_gzip_level == 0


def test_get_numbers(lab: Lab) -> None:
    for limit in (10, 0, 1, 1000, -5):
        assert [r.number for r in get_numbers(lab.channel, limit=limit)] == list(range(limit))


def test_calculate_sum(lab: Lab) -> None:
    cases = [([1, 2, 3, 4, 5], 15), ([], 0), ([-7, 3], -4), ([INT32_MAX], INT32_MAX), ([INT32_MIN], INT32_MIN)]
    for numbers, total in cases:
        assert calculate_sum(lab.channel, [{"number": n} for n in numbers]).sum == total
    many = list(range(1, 2001))
    assert calculate_sum(lab.channel, [{"number": n} for n in many]).sum == sum(many)


def test_chat(lab: Lab) -> None:
    messages = ["Hello", "How are you?", "Goodbye"]
    assert [r.message for r in chat(lab.channel, [{"message": m} for m in messages])] == [
        f"You said: {m}" for m in messages
    ]
    assert chat(lab.channel, []) == []


def test_chat_replies_to_each_message_as_it_comes(lab: Lab) -> None:
    # Ping-pong: the next request is only sent after the reply to the previous one arrived.
    requests = Requests()
    call = chat_pb2_grpc.ChatServiceStub(lab.channel).Chat(iter(requests), timeout=T)
    try:
        for i in range(5):
            requests.put(f"ping {i}")
            assert next(call).message == f"You said: ping {i}"
    finally:
        requests.close()
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_control_stats(lab: Lab) -> None:
    control = lab_pb2_grpc.ControlStub(lab.channel)
    health = health_pb2_grpc.HealthStub(lab.channel)
    control.Reset(lab_pb2.ResetRequest(), timeout=T)
    for _ in range(3):
        say_hello(lab.channel, name="n")
    calculate_sum(lab.channel, [{"number": 1}])
    assert code_of(lambda: say_hello(lab.channel, payload_gzip_level=10)) == grpc.StatusCode.INVALID_ARGUMENT
    health.Check(health_pb2.HealthCheckRequest(service=""), timeout=T)
    reply = control.Stats(lab_pb2.StatsRequest(), timeout=T)
    assert reply.pid == lab.srv.ready["pid"]
    assert reply.impl == lab.impl
    # Every finished RPC counts, of any service and with any status: the Reset, the 5 tutorial RPCs (the failed one
    # included) and the health check. The Stats call that asks is still running.
    assert reply.rpcs_served == 1 + 5 + 1
    assert 0 < reply.seconds_since_reset < 30
    # CPU and memory as the kernel reports them for that process
    process = psutil.Process(reply.pid)
    cpu, rss = process.cpu_times(), process.memory_info().rss
    assert reply.cpu_user_seconds > 0 and abs(reply.cpu_user_seconds - cpu.user) < 0.2, (reply, cpu)
    assert abs(reply.cpu_system_seconds - cpu.system) < 0.2, (reply, cpu)
    assert 0.8 < reply.rss_bytes / rss < 1.25, (reply.rss_bytes, rss)
    before = control.Reset(lab_pb2.ResetRequest(), timeout=T)
    assert before.rpcs_served == 1 + 5 + 1 + 1  # ... and the Stats call, now finished
    assert control.Stats(lab_pb2.StatsRequest(), timeout=T).rpcs_served == 1  # the Reset call


def test_health_reports_serving(lab: Lab) -> None:
    health = health_pb2_grpc.HealthStub(lab.channel)
    for service in ("", *TUTORIAL_SERVICES, "lab.Control"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=T)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    unknown = code_of(lambda: health.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=T))
    assert unknown == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_services(lab: Lab) -> None:
    database = ProtoReflectionDescriptorDatabase(lab.channel)
    services = set(database.get_services())
    assert set(TUTORIAL_SERVICES) <= services
    assert {"lab.Control", "grpc.health.v1.Health"} <= services
    pool = descriptor_pool.DescriptorPool(database)
    for full_name, (client_streaming, server_streaming) in METHODS.items():
        service, name = full_name.strip("/").split("/")
        method = pool.FindServiceByName(service).methods_by_name[name]
        assert (method.client_streaming, method.server_streaming) == (client_streaming, server_streaming)
    assert pool.FindMessageTypeByName("greet.HelloRequest").fields_by_name["name"].number == 1


def test_wrong_client_security_is_refused(lab: Lab, lab_certs, ca_only_dir) -> None:
    target = lab.srv.target
    wrong = {
        "plaintext": [open_channel(target, tls_dir=lab_certs.dir)],  # TLS client, plaintext server
        "tls": [open_channel(target)],  # plaintext client, TLS server
        "mtls": [open_channel(target), open_channel(target, tls_dir=ca_only_dir)],  # no client certificate
    }[lab.security]
    for channel in wrong:
        with channel:
            assert code_of(lambda ch=channel: say_hello(ch, name="x", timeout=5)) == grpc.StatusCode.UNAVAILABLE
    assert say_hello(lab.channel, name="still").message == "Hello, still!"


# --- compression on the wire ------------------------------------------------------------------------------


class CountingProxy:
    """A TCP forwarder on 127.0.0.1 counting the bytes each way: what gRPC really puts on the wire."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.to_server = 0
        self.to_client = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self._upstream, timeout=5)
            self._sockets += [client, upstream]
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(src, dst, up), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        src.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self._lock:
                if up:
                    self.to_server += len(data)
                else:
                    self.to_client += len(data)
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self._sockets:
            sock.close()


def test_compression_on_the_wire(lab: Lab) -> None:
    size = 512 * 1024
    zeros = payloads.make("zeros", size)
    proxy = CountingProxy(lab.srv.port)
    try:
        with lab.new_channel(f"127.0.0.1:{proxy.port}") as channel:
            reply = say_hello(channel, name="z", payload=zeros, response_size=size)
            assert reply.payload == zeros
    finally:
        proxy.close()
    # The reply (server --compression) and the request (client channel compression) are both 512 KiB of
    # zeros: gzip shrinks each to about 1 KiB; the TLS handshake and HTTP/2 framing add a few KiB.
    if lab.compression == "gzip":
        assert proxy.to_client < 64 * 1024 and proxy.to_server < 64 * 1024, (proxy.to_client, proxy.to_server)
    else:
        assert proxy.to_client > size and proxy.to_server > size, (proxy.to_client, proxy.to_server)


# --- lab fields: payloads and app-level gzip --------------------------------------------------------------

# (reply payload kind, response_size, payload_gzip_level)
PAYLOAD_CASES = [
    ("zeros", 0, 0),
    ("text", 1, 0),
    ("random", 1000, 0),
    ("zeros", 1, 1),
    ("text", 100_000, 1),
    ("text", 100_000, 6),
    ("zeros", 100_000, 9),
    ("random", 5000, 9),
]


def _fields(kind: str, size: int, level: int) -> dict:
    """Lab request fields: a real (app-gzipped) request body and the reply payload wanted."""
    body = payloads.encode(payloads.make("text", 3000, seed=7), level)
    return {
        "payload": body,
        "payload_gzip_level": level,
        "response_size": size,
        "response_kind": payloads.KIND_TO_PROTO[kind],
    }


# gzip header byte 8 (XFL) as zlib and Go's compress/gzip both write it: 2 at level 9, 4 at level 1, else 0
GZIP_XFL = {1: 4, 9: 2}


def _check_payload(reply, kind: str, size: int, level: int, impl: str) -> bytes:
    """Check one reply's payload; returns it decoded."""
    assert reply.payload_gzip_level == level
    body = payloads.decode(reply.payload, level)
    assert len(body) == size
    if kind == "random" and impl == "go":
        # grpc-go's "random" is Go's own deterministic stream (ChaCha8), not Python's: just as incompressible.
        assert size < 1000 or len(zlib.compress(body, 9)) > size
    else:
        # text (and zeros): the very bytes the Python servers send, so compression figures compare like with like
        assert body == payloads.make(kind, size)
    if level == 0:
        assert reply.payload == body
    elif kind != "random" and size >= 1000:
        assert len(reply.payload) < size // 3  # really compressed at the request's level
    if level and impl != "go":
        assert reply.payload == zlib.compress(body, level, wbits=31)
    elif level:
        # Go's deflate is its own implementation: other bytes than zlib's at the same level, same gzip format.
        assert reply.payload[:3] == b"\x1f\x8b\x08" and reply.payload[8] == GZIP_XFL.get(level, 0)
    return body


@pytest.mark.parametrize("rpc", RPCS)
def test_payload_echo(lab: Lab, rpc: str) -> None:
    bodies: dict[str, bytes] = {}
    for kind, size, level in PAYLOAD_CASES:
        fields = _fields(kind, size, level)
        if rpc == "SayHello":
            replies = [say_hello(lab.channel, name="p", **fields)]
            assert replies[0].message == "Hello, p!"
        elif rpc == "GetNumbers":
            replies = get_numbers(lab.channel, limit=3, **fields)
            assert [r.number for r in replies] == [0, 1, 2]
        elif rpc == "CalculateSum":
            # The reply payload follows the first request; every request carries a body to decode.
            rest = {"payload": fields["payload"], "payload_gzip_level": level}
            replies = [calculate_sum(lab.channel, [{"number": 1, **fields}, {"number": 2, **rest}])]
            assert replies[0].sum == 3
        else:
            replies = chat(lab.channel, [{"message": "a", **fields}, {"message": "b", **fields}])
            assert [r.message for r in replies] == ["You said: a", "You said: b"]
        for reply in replies:
            body = _check_payload(reply, kind, size, level, lab.impl)
            # Every body is a prefix of the same longer body (the Python generator's property, kept by Go).
            longest = bodies.get(kind, b"")
            assert body[: len(longest)] == longest[: len(body)]
            bodies[kind] = max(longest, body, key=len)


def _valid_gzip() -> bytes:
    return payloads.encode(payloads.make("text", 5000), 6)


# field overrides that make a request invalid, whatever the RPC
INVALID_FIELDS = {
    "not gzip": {"payload": b"definitely not gzip data", "payload_gzip_level": 6},
    "truncated gzip": {"payload": _valid_gzip()[:-20], "payload_gzip_level": 6},
    "gzip level 10": {"payload": b"", "payload_gzip_level": 10},
    "unknown response_kind": {"response_kind": 99},
    "response_size > 32 MiB": {"response_size": 32 * 1024 * 1024 + 1},
    "work.wait_us > 10 s": {"work": lab_pb2.Work(wait_us=10_000_001)},
    "work.block_us > 10 s": {"work": lab_pb2.Work(block_us=10_000_001)},
    "work.cpu_us > 1 s": {"work": lab_pb2.Work(cpu_us=1_000_001)},
}


@pytest.mark.parametrize("rpc", RPCS)
def test_invalid_lab_fields_are_invalid_argument(lab: Lab, rpc: str) -> None:
    for what, bad in INVALID_FIELDS.items():
        if rpc == "SayHello":
            code = code_of(lambda b=bad: say_hello(lab.channel, name="x", **b))
        elif rpc == "GetNumbers":
            code = code_of(lambda b=bad: get_numbers(lab.channel, limit=3, **b))
        elif rpc == "CalculateSum":
            # A bad body comes mid-stream; the reply's response_* fields are only read from the first request.
            first = "response_size" in bad or "response_kind" in bad
            requests = [{"number": 1, **bad}, {"number": 2}] if first else [{"number": 1}, {"number": 2, **bad}]
            code = code_of(lambda r=requests: calculate_sum(lab.channel, r))
        else:
            requests = Requests()
            call = chat_pb2_grpc.ChatServiceStub(lab.channel).Chat(iter(requests), timeout=T)
            try:
                requests.put("fine")
                assert next(call).message == "You said: fine"
                requests.put("bad", **bad)
                code = code_of(lambda c=call: list(c))
            finally:
                requests.close()
        assert code == grpc.StatusCode.INVALID_ARGUMENT, what
    assert say_hello(lab.channel, name="after").message == "Hello, after!"


# --- bad input on a server of its own ---------------------------------------------------------------------

GARBAGE = (b"\xff" * 16, b"\x0a\x05ab", bytes(range(256)))


def _garbage_call(channel: grpc.Channel, method: str, data: bytes) -> None:
    client_streaming, server_streaming = METHODS.get(method, (False, False))
    kwargs = {"request_serializer": None, "response_deserializer": None}  # raw bytes both ways
    if not client_streaming and not server_streaming:
        channel.unary_unary(method, **kwargs)(data, timeout=T)
    elif not client_streaming:
        list(channel.unary_stream(method, **kwargs)(data, timeout=T))
    elif not server_streaming:
        channel.stream_unary(method, **kwargs)(iter([data]), timeout=T)
    else:
        list(channel.stream_stream(method, **kwargs)(iter([data]), timeout=T))


@pytest.mark.parametrize("impl", impls())
def test_garbage_bytes_are_an_error_not_a_crash(server, impl: str) -> None:
    srv = server("--impl", impl)
    methods = [*METHODS, "/lab.Control/Stats"]
    with open_channel(srv.target) as channel:
        for method, data, _ in itertools.product(methods, GARBAGE, range(4)):
            code = code_of(lambda m=method, d=data: _garbage_call(channel, m, d))
            assert code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INVALID_ARGUMENT), (
                method,
                data,
                code,
            )
        assert say_hello(channel, name="after").message == "Hello, after!"
        assert calculate_sum(channel, [{"number": 2}, {"number": 3}]).sum == 5
        assert stats(channel).pid == srv.ready["pid"]
    # ...and it still shuts down cleanly.
    started = time.monotonic()
    code = srv.stop(server.stop_timeout)
    elapsed = time.monotonic() - started
    assert code == 0 and elapsed < server.grace + 3, f"exit code {code} after {elapsed:.1f} s"


@pytest.mark.parametrize("impl", impls())
def test_message_over_the_size_limit(server, impl: str) -> None:
    srv = server("--impl", impl, "--max-message-bytes", str(1024 * 1024))
    big = bytes(2 * 1024 * 1024)
    with open_channel(srv.target) as channel:  # the client allows 64 MiB: the server's limit is what is hit
        calls = {
            "unary request": lambda: say_hello(channel, name="big", payload=big),
            "unary reply": lambda: say_hello(channel, name="big", response_size=len(big)),
            "client stream": lambda: calculate_sum(channel, [{"number": 1}, {"number": 2, "payload": big}]),
            "bidi stream": lambda: chat(channel, [{"message": "a"}, {"message": "b", "payload": big}]),
            "server stream": lambda: get_numbers(channel, limit=2, response_size=len(big)),
        }
        for what, call in calls.items():
            assert code_of(call) == grpc.StatusCode.RESOURCE_EXHAUSTED, what
        half = bytes(512 * 1024)
        assert say_hello(channel, name="fits", payload=half, response_size=len(half)).payload == half


@pytest.fixture(scope="module", params=impls())
def plain(request, server_pool) -> Iterator[ServerProcess]:
    """A plaintext server of each model, shared by the tests below that leave it as they found it."""
    with server_pool() as servers:
        yield servers("--impl", request.param)


def assert_deadline_exceeded(error: grpc.RpcError, impl: str) -> None:
    if impl == "go" and error.code() == grpc.StatusCode.CANCELLED:
        # grpc-go ends an RPC at its deadline with RST_STREAM(CANCEL); when that frame reaches gRPC core's client
        # before the client's own deadline timer fires, core reports CANCELLED ("deadline exceeded is best
        # effort over HTTP/2"). grpc-go's own client re-checks its deadline there; core's does not.
        assert "RST_STREAM with error code 8" in error.debug_error_string(), error
    else:
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error


def test_deadline_shorter_than_a_slow_stream(plain: ServerProcess) -> None:
    with open_channel(plain.target) as channel:
        stub = number_stream_pb2_grpc.NumberServiceStub(channel)
        received = 0
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            for response in stub.GetNumbers(number_stream_pb2.NumberRequest(limit=INT32_MAX), timeout=0.2):
                assert response.number == received
                received += 1
        elapsed = time.monotonic() - started
        assert_deadline_exceeded(info.value, plain.ready["impl"])
        assert received > 0 and 0.15 < elapsed < 2.0
        # The server stops producing the abandoned stream: its CPU time stays flat.
        before = stats(channel)
        time.sleep(0.5)
        after = stats(channel)
        burnt = cpu_seconds(after) - cpu_seconds(before)
        assert burnt < 0.25
        assert say_hello(channel, name="after", timeout=1).message == "Hello, after!"


def test_cancelled_and_expired_rpcs_are_counted(plain: ServerProcess) -> None:
    impl = plain.ready["impl"]
    with open_channel(plain.target) as channel:
        lab_pb2_grpc.ControlStub(channel).Reset(lab_pb2.ResetRequest(), timeout=T)
        expired = number_stream_pb2_grpc.NumberServiceStub(channel).GetNumbers(
            number_stream_pb2.NumberRequest(limit=INT32_MAX), timeout=0.2
        )
        with pytest.raises(grpc.RpcError) as info:
            list(expired)
        assert_deadline_exceeded(info.value, impl)
        requests = Requests()
        cancelled = chat_pb2_grpc.ChatServiceStub(channel).Chat(iter(requests), timeout=T)
        requests.put("then cancelled")
        assert next(cancelled).message == "You said: then cancelled"
        cancelled.cancel()  # mid-stream, the request stream still open
        requests.close()
        unknown = code_of(lambda: _garbage_call(channel, "/no.Such/Method", b""))
        assert unknown == grpc.StatusCode.UNIMPLEMENTED
        # gRPC core counts a call to an unknown method (channelz calls_failed); grpc-go refuses it before any
        # handler, where the Go server counts (servers/go/registrar.go), so it is not in Go's count.
        counted = 2 + (impl != "go")
        # The server ends the expired and the cancelled call on its own time: poll, knowing that each earlier
        # Stats call counts too.
        for polls in range(200):
            want = counted + 1 + polls  # those RPCs, the Reset and the earlier Stats calls
            served = stats(channel).rpcs_served
            if served == want:
                break
            assert served < want, (served, want)
            time.sleep(0.02)
        assert served == want, (served, want)


def test_calculate_sum_overflowing_int32_is_out_of_range(plain: ServerProcess) -> None:
    with open_channel(plain.target) as channel:
        for numbers in ([INT32_MAX, 1], [INT32_MIN, -1], [INT32_MAX, INT32_MAX, INT32_MAX], [1] * 10 + [INT32_MAX]):
            code = code_of(lambda n=numbers: calculate_sum(channel, [{"number": x} for x in n]))
            assert code == grpc.StatusCode.OUT_OF_RANGE, numbers
        assert calculate_sum(channel, [{"number": INT32_MAX - 1}, {"number": 1}]).sum == INT32_MAX
        assert calculate_sum(channel, [{"number": INT32_MIN + 1}, {"number": -1}]).sum == INT32_MIN


@pytest.mark.parametrize("together", [False, True], ids=["one-after-another", "all-open-at-once"])
@pytest.mark.parametrize("impl", impls())
def test_cancelled_bidi_streams_leak_no_worker(server, impl: str, together: bool) -> None:
    srv = server("--impl", impl, "--workers", "2")
    with open_channel(srv.target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        open_calls = []
        try:
            for i in range(20):
                requests = Requests()
                call = stub.Chat(iter(requests), timeout=5)
                open_calls.append((call, requests))
                requests.put(f"m{i}")
                if not together:
                    # Mid-way: one reply in, the request stream still open.
                    assert next(call).message == f"You said: m{i}"
                    call.cancel()
            if together:
                time.sleep(0.3)  # the first streams got their workers; the rest wait for one
                for call, _ in open_calls:
                    call.cancel()
        finally:
            for _, requests in open_calls:
                requests.close()
        for call, _ in open_calls:
            assert call.code() == grpc.StatusCode.CANCELLED
        started = time.monotonic()
        assert say_hello(channel, name="next", timeout=1).message == "Hello, next!"
        assert time.monotonic() - started < 1
        assert chat(channel, [{"message": "again"}], timeout=1)[0].message == "You said: again"


# --- several processes, one port --------------------------------------------------------------------------


@pytest.mark.parametrize("impl", impls(*PYTHON_IMPLS))  # go: one process (test_go_refuses_processes_2)
def test_processes_2_answer_on_one_port(server, impl: str) -> None:
    srv = server("--impl", impl, "--processes", "2")
    pids = srv.pids
    assert len(pids) == 2 and len(set(pids)) == 2
    assert srv.proc.pid not in pids  # the launcher only forwards signals
    assert srv.ready["processes"] == 2 and srv.ready["pid"] == srv.proc.pid
    seen: set[int] = set()
    for _ in range(60):  # SO_REUSEPORT hashes each new connection to one of the processes
        with open_channel(srv.target) as channel:  # a local subchannel pool: a new TCP connection
            seen.add(stats(channel).pid)
            assert say_hello(channel, name="p").message == "Hello, p!"
        if seen == set(pids):
            break
    assert seen == set(pids)


# --- SIGTERM with streams open ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "impl, processes", [param(impl, n) for impl in IMPLS for n in (1, 2) if (impl, n) != ("go", 2)]
)
def test_sigterm_with_open_streams_exits_0(server, impl: str, processes: int) -> None:
    srv = server("--impl", impl, "--processes", str(processes))
    everyone = {srv.proc.pid, *srv.pids}
    channels = [open_channel(srv.target) for _ in range(6)]  # own connections: streams on both processes
    streams = []
    try:
        for i, channel in enumerate(channels):
            requests = Requests()
            call = chat_pb2_grpc.ChatServiceStub(channel).Chat(iter(requests), timeout=30)
            streams.append((call, requests))
            requests.put(f"open {i}")
            assert next(call).message == f"You said: open {i}"  # the stream is open on the server
        started = time.monotonic()
        code = srv.stop(server.stop_timeout)
        elapsed = time.monotonic() - started
        assert code == 0, f"exit code {code}"
        assert elapsed < server.grace + 3, f"took {elapsed:.1f} s to stop"
        assert [pid for pid in everyone if alive(pid)] == []
        for call, _ in streams:  # the streams ended with the server, none is left hanging
            assert call.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    finally:
        for _, requests in streams:
            requests.close()
        for channel in channels:
            channel.close()


@pytest.mark.parametrize("impl, processes", [param(impl, n) for impl in PYTHON_IMPLS for n in (1, 2)])
def test_back_to_back_sigterms_stop_the_server_gracefully(server, impl: str, processes: int) -> None:
    """A harness can signal a server twice (two threads stopping it at once). A handler that set a threading.Event
    deadlocked when the second signal came while the first held the Event's lock: the server ignored SIGTERM from
    then on and lived until SIGKILL (exit -9). Python's exit also puts back SIGTERM's default action, which killed
    a server signalled again on its way out (exit -15). So: 0.3 s of SIGTERMs back to back, then a clean exit 0."""
    srv = server("--impl", impl, "--processes", str(processes))
    everyone = {srv.proc.pid, *srv.pids}
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < 0.3 and srv.proc.poll() is None:  # not reaped: the pid is still ours
        os.kill(srv.proc.pid, signal.SIGTERM)
        sent += 1
    code = srv.stop(server.stop_timeout)
    elapsed = time.monotonic() - started
    assert sent > 100, f"only {sent} signals sent"  # back to back, not one
    assert code == 0, f"exit code {code} after {sent} SIGTERMs"
    assert elapsed < 0.3 + server.grace + 3, f"took {elapsed:.1f} s to stop"
    assert [pid for pid in everyone if alive(pid)] == []


# --- fault knobs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", impls())
def test_inject_delay(server, impl: str) -> None:
    srv = server("--impl", impl, env={"GRPCLAB_INJECT_DELAY_US": "50000"})
    assert srv.ready["faults_injected"] is True
    with open_channel(srv.target) as channel:
        say_hello(channel, name="warm-up")
        for _ in range(5):
            started = time.monotonic()
            assert say_hello(channel, name="slow").message == "Hello, slow!"
            assert 0.050 <= time.monotonic() - started < 1.0


@pytest.mark.parametrize("impl", impls())
def test_inject_cpu(server, impl: str) -> None:
    cpu_us, calls = 40_000, 10
    srv = server("--impl", impl, env={"GRPCLAB_INJECT_CPU_US": str(cpu_us)})
    assert srv.ready["faults_injected"] is True
    with open_channel(srv.target) as channel:
        say_hello(channel, name="warm-up")
        before = stats(channel)
        for _ in range(calls):
            say_hello(channel, name="busy")
        after = stats(channel)
    burnt = cpu_seconds(after) - cpu_seconds(before)
    expected = calls * cpu_us / 1e6
    assert abs(burnt - expected) <= 0.25 * expected, f"{burnt:.3f} s CPU for {expected:.3f} s injected"


def test_no_fault_knob_by_default(plain: ServerProcess) -> None:
    assert plain.ready["faults_injected"] is False
    with open_channel(plain.target) as channel:
        say_hello(channel, name="warm-up")
        fastest = float("inf")
        for _ in range(5):
            started = time.monotonic()
            say_hello(channel, name="fast")
            fastest = min(fastest, time.monotonic() - started)
        assert fastest < 0.050  # no injected 50 ms delay


@pytest.mark.parametrize("impl", impls())
def test_inject_stall(server, impl: str) -> None:
    stall_s = 0.4
    srv = server("--impl", impl, env={"GRPCLAB_INJECT_STALL": f"3:{int(stall_s * 1000)}"})
    assert srv.ready["faults_injected"] is True
    with open_channel(srv.target) as channel:
        took = []
        for i in range(4):  # the 3rd tutorial RPC starts the stall; the 4th starts after it ended
            started = time.monotonic()
            assert say_hello(channel, name=str(i)).message == f"Hello, {i}!"
            took.append(time.monotonic() - started)
    fast = min(took[1], took[3])
    assert took[2] >= stall_s and took[2] - fast >= 0.9 * stall_s, took
    assert max(took[1], took[3]) < stall_s / 2, took


# --- handler work (lab.Work, the handler_* axes) -----------------------------------------------------------

WORK_MESSAGES = 4


def _timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


@pytest.mark.parametrize("rpc", RPCS)
def test_handler_work_is_done_for_every_message(plain: ServerProcess, rpc: str) -> None:
    """A wait of 25 ms per message: a call of 4 messages takes at least 100 ms (each reply of a server stream, each
    received message of a client stream or bidi stream), a unary call at least 25 ms; the same call without work is
    far quicker (the same server and channel, so any fixed cost is in both)."""
    wait_s = 0.025
    work = {"work": lab_pb2.Work(wait_us=int(wait_s * 1e6))}
    with open_channel(plain.target) as channel:

        def call(fields: dict) -> None:
            if rpc == "SayHello":
                assert say_hello(channel, name="w", **fields).message == "Hello, w!"
            elif rpc == "GetNumbers":
                assert [r.number for r in get_numbers(channel, limit=WORK_MESSAGES, **fields)] == [0, 1, 2, 3]
            elif rpc == "CalculateSum":
                assert calculate_sum(channel, [{"number": 1, **fields}] * WORK_MESSAGES).sum == WORK_MESSAGES
            else:
                assert len(chat(channel, [{"message": "w", **fields}] * WORK_MESSAGES)) == WORK_MESSAGES

        call({})  # connected and warm
        messages = 1 if rpc == "SayHello" else WORK_MESSAGES
        bare = min(_timed(lambda: call({})) for _ in range(3))
        worked = min(_timed(lambda: call(work)) for _ in range(3))
        assert worked >= messages * wait_s, (worked, messages)
        assert worked - bare >= 0.9 * messages * wait_s, (bare, worked)
        # All-zero work is no work (what the lab's generator never sends, but a client may).
        assert _timed(lambda: call({"work": lab_pb2.Work()})) < worked - 0.5 * messages * wait_s


@pytest.mark.parametrize("kind", ["wait_us", "block_us"])
def test_a_blocking_handler_holds_only_the_aio_event_loop(plain: ServerProcess, kind: str) -> None:
    """Four unary calls at once, each asking its handler for 150 ms. A wait overlaps on every server; a blocking
    call overlaps on the sync server (4+ pool threads) and the Go server (the runtime moves other goroutines off a
    thread stuck in a system call), but aio's time.sleep holds its one event loop: the four take turns."""
    impl, calls, each_s = plain.ready["impl"], 4, 0.15
    with open_channel(plain.target) as channel, futures.ThreadPoolExecutor(calls) as pool:
        say_hello(channel, name="warm-up")
        request = greet_pb2.HelloRequest(name="b", work=lab_pb2.Work(**{kind: int(each_s * 1e6)}))
        stub = greet_pb2_grpc.GreeterStub(channel)
        started = time.monotonic()
        replies = list(pool.map(lambda _: stub.SayHello(request, timeout=T), range(calls)))
        took = time.monotonic() - started
    assert [r.message for r in replies] == ["Hello, b!"] * calls
    if impl == "aio" and kind == "block_us":
        assert took >= calls * each_s, took
    else:
        assert each_s <= took < 2 * each_s, took


@pytest.mark.parametrize("rpc", ["SayHello", "Chat"])
def test_handler_cpu_work_is_server_cpu(plain: ServerProcess, rpc: str) -> None:
    """10 messages x 20 ms of handler CPU: the server's CPU time grows by 0.2 s (+-25 %, as for the fault knob)."""
    cpu_us, messages = 20_000, 10
    fields = {"work": lab_pb2.Work(cpu_us=cpu_us)}
    with open_channel(plain.target) as channel:
        say_hello(channel, name="warm-up")
        before = stats(channel)
        if rpc == "SayHello":
            for _ in range(messages):
                say_hello(channel, name="busy", **fields)
        else:
            chat(channel, [{"message": "busy", **fields}] * messages)
        after = stats(channel)
    burnt = cpu_seconds(after) - cpu_seconds(before)
    expected = messages * cpu_us / 1e6
    assert abs(burnt - expected) <= 0.25 * expected, f"{burnt:.3f} s CPU for {expected:.3f} s asked"


def test_handler_work_beyond_the_bounds_names_the_field(plain: ServerProcess) -> None:
    """The same INVALID_ARGUMENT details from every server (servers/work.py, servers/go/work.go)."""
    with open_channel(plain.target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            say_hello(channel, name="x", work=lab_pb2.Work(wait_us=1, cpu_us=1_000_001))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "work.cpu_us 1000001 > 1000000"


# --- compression the Python servers and grpc-go handle differently ----------------------------------------


def test_deflate_requests(plain: ServerProcess) -> None:
    impl = plain.ready["impl"]
    with open_channel(plain.target, compression="deflate") as channel:
        if impl == "go":
            # grpc-go has no deflate decompressor: a deflate request is UNIMPLEMENTED, as grpc-go answers it
            # (gRPC core accepts it). The lab's grpc-deflate cells do not apply to impl go.
            with pytest.raises(grpc.RpcError) as info:
                say_hello(channel, name="d", payload=bytes(1000))
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "deflate" in info.value.details()
        else:
            assert say_hello(channel, name="d", payload=bytes(1000)).message == "Hello, d!"


@pytest.mark.parametrize("server_compression, client_compression", [("gzip", "none"), ("none", "gzip")])
@pytest.mark.parametrize("impl", impls())
def test_reply_compression(server, impl: str, server_compression: str, client_compression: str) -> None:
    size = 512 * 1024
    srv = server("--impl", impl, "--compression", server_compression)
    proxy = CountingProxy(srv.port)
    try:
        with open_channel(f"127.0.0.1:{proxy.port}", compression=client_compression) as channel:
            assert say_hello(channel, name="z", payload=bytes(size), response_size=size).payload == bytes(size)
    finally:
        proxy.close()
    request_compressed = proxy.to_server < 64 * 1024
    reply_compressed = proxy.to_client < 64 * 1024
    assert request_compressed is (client_compression == "gzip"), proxy.to_server
    if server_compression == "gzip":
        assert reply_compressed, proxy.to_client  # every server compresses its replies when told to
    elif impl == "go":
        # grpc-go answers a gzip request with gzip replies whatever the server's default; gRPC core does not
        assert reply_compressed, proxy.to_client
    else:
        assert not reply_compressed, proxy.to_client


# --- limits -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", impls())
def test_max_concurrent_rpcs(server, impl: str) -> None:
    srv = server("--impl", impl, "--max-concurrent-rpcs", "2")
    with open_channel(srv.target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        held = []
        try:
            for i in range(2):  # two streams in their handlers: the limit is reached
                requests = Requests()
                call = stub.Chat(iter(requests), timeout=T)
                held.append((call, requests))
                requests.put(f"hold {i}")
                assert next(call).message == f"You said: hold {i}"
            for _ in range(3):
                assert code_of(lambda: say_hello(channel, name="over")) == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            for call, requests in held:
                requests.close()
                assert list(call) == []
        # The slots are free again once the server has ended the two streams (it may take a moment).
        deadline = time.monotonic() + 5
        while True:
            try:
                assert say_hello(channel, name="under").message == "Hello, under!"
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                time.sleep(0.05)


# --- grpc-go specifics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", impls("go"))
def test_go_gomaxprocs_follows_the_pinned_cpus(server, impl: str) -> None:
    cpu = min(os.sched_getaffinity(0))
    srv = server("--impl", impl, cpus=[cpu])
    # Go sizes GOMAXPROCS from the affinity mask it starts with; taskset pinned it before the exec.
    assert srv.ready["gomaxprocs"] == 1
    assert os.sched_getaffinity(srv.proc.pid) == {cpu}
    with open_channel(srv.target) as channel:
        assert say_hello(channel, name="pinned").message == "Hello, pinned!"


@pytest.mark.parametrize("impl", impls())
def test_sigkill_of_the_parent_stops_the_server(impl: str) -> None:
    # A stand-in harness starts the server as the runner does (--exit-with-parent), then is SIGKILLed.
    harness_code = (
        "import sys, time\n"
        "from bench.run import server_process\n"
        f"srv = server_process.start(['--impl', '{impl}', '--port', '0', '--grace', '0.5', '--exit-with-parent'])\n"
        "print(srv.proc.pid, srv.port, flush=True)\n"
        "time.sleep(60)\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", harness_code], stdout=subprocess.PIPE, text=True)
    server_pid = None
    try:
        line = harness.stdout.readline()
        assert line, "the stand-in harness did not start a server"
        server_pid, port = map(int, line.split())
        if impl == "go":  # grpclab serve exec'd the Go binary: the pid the harness knows is the Go server
            assert Path(psutil.Process(server_pid).exe()).name == "grpclab-go-server"
        with open_channel(f"127.0.0.1:{port}") as channel:
            assert say_hello(channel, name="alive").message == "Hello, alive!"
        harness.kill()
        harness.wait(10)
        deadline = time.monotonic() + 10
        while alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(server_pid), "the server outlived its SIGKILLed parent"
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(10)
        harness.stdout.close()
        if server_pid is not None and alive(server_pid):
            psutil.Process(server_pid).kill()  # the server this test started (through its stand-in harness)


# --- the fixture's own safety net -------------------------------------------------------------------------


def test_server_fixture_reports_a_server_that_died(server_pool) -> None:
    with pytest.raises(pytest.fail.Exception, match="died during the test with exit code -9"):
        with server_pool() as servers:
            srv = servers("--impl", "sync")
            srv.proc.kill()  # our own child
            srv.proc.wait(10)
