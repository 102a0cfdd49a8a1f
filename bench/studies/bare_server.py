"""A server written like the tutorial's, the baseline of the overhead benchmark (bench.studies.overhead).

`grpc.server(futures.ThreadPoolExecutor(max_workers=10))` or a plain `grpc.aio.server()`, serving the tutorial's
four services and nothing else: no health, no reflection, no counters, no fault knobs, no lab.Control. Of the
lab's request fields it honours only what the benchmark's load needs: the reply carries the message text (the
tutorial's) and, when the request asks for one (`response_size`, `response_kind`), the payload, raw. It never
checks request payloads nor app-gzip levels: the overhead benchmark sends neither.

It prints the same kind of ready line as `grpclab serve`, so bench.run.server_process starts it the same way:

    python -m bench.studies.bare_server --impl sync|aio --port 0 [--tls DIR] [--exit-with-parent]

SIGTERM/SIGINT stop it gracefully (exit 0). It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from concurrent import futures
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
from servers import payloads
from servers.stop_signals import StopSignals

HOST = "127.0.0.1"
WORKERS = 10  # the tutorial's thread pool
GRACE_S = 1.0


def _payload(request) -> bytes:
    """The reply payload the request asks for (cached bytes); none for a tutorial request."""
    if not request.response_size:
        return b""
    return payloads.make(payloads.PROTO_TO_KIND[request.response_kind], request.response_size)


# --- sync -------------------------------------------------------------------------------------------


class Greeter(greet_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):  # noqa: N802 - gRPC method name
        return greet_pb2.HelloReply(message=f"Hello, {request.name}!", payload=_payload(request))


class NumberService(number_stream_pb2_grpc.NumberServiceServicer):
    def GetNumbers(self, request, context):  # noqa: N802
        payload = _payload(request)
        for i in range(request.limit):
            yield number_stream_pb2.NumberResponse(number=i, payload=payload)


class SumService(sum_stream_pb2_grpc.SumServiceServicer):
    def CalculateSum(self, request_iterator, context):  # noqa: N802
        total, payload = 0, b""
        for request in request_iterator:
            total += request.number
            payload = _payload(request)
        return sum_stream_pb2.SumResponse(sum=total, payload=payload)


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def Chat(self, request_iterator, context):  # noqa: N802
        for request in request_iterator:
            yield chat_pb2.ChatResponse(message=f"You said: {request.message}", payload=_payload(request))


# --- aio --------------------------------------------------------------------------------------------


class AioGreeter(greet_pb2_grpc.GreeterServicer):
    async def SayHello(self, request, context):  # noqa: N802
        return greet_pb2.HelloReply(message=f"Hello, {request.name}!", payload=_payload(request))


class AioNumberService(number_stream_pb2_grpc.NumberServiceServicer):
    async def GetNumbers(self, request, context):  # noqa: N802
        payload = _payload(request)
        for i in range(request.limit):
            yield number_stream_pb2.NumberResponse(number=i, payload=payload)


class AioSumService(sum_stream_pb2_grpc.SumServiceServicer):
    async def CalculateSum(self, request_iterator, context):  # noqa: N802
        total, payload = 0, b""
        async for request in request_iterator:
            total += request.number
            payload = _payload(request)
        return sum_stream_pb2.SumResponse(sum=total, payload=payload)


class AioChatService(chat_pb2_grpc.ChatServiceServicer):
    async def Chat(self, request_iterator, context):  # noqa: N802
        async for request in request_iterator:
            yield chat_pb2.ChatResponse(message=f"You said: {request.message}", payload=_payload(request))


# --- serving ----------------------------------------------------------------------------------------


def _add_services(server, greeter, numbers, sums, chat) -> None:
    greet_pb2_grpc.add_GreeterServicer_to_server(greeter, server)
    number_stream_pb2_grpc.add_NumberServiceServicer_to_server(numbers, server)
    sum_stream_pb2_grpc.add_SumServiceServicer_to_server(sums, server)
    chat_pb2_grpc.add_ChatServiceServicer_to_server(chat, server)


def _add_port(server, port: int, tls_dir: Path | None) -> int:
    address = f"{HOST}:{port}"
    if tls_dir is None:
        return server.add_insecure_port(address)
    key, cert = (tls_dir / "server.key").read_bytes(), (tls_dir / "server.crt").read_bytes()
    return server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))


def _ready(impl: str, port: int, tls: bool) -> None:
    line = {"event": "ready", "impl": impl, "bare": True, "host": HOST, "port": port, "pid": os.getpid()}
    line.update(pids=[os.getpid()], tls=tls, workers=WORKERS if impl == "sync" else None, grpcio=grpc.__version__)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def serve_sync(port: int, tls_dir: Path | None) -> int:
    stop = StopSignals()  # not a threading.Event: setting one from a handler can deadlock (servers.stop_signals)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS))
    _add_services(server, Greeter(), NumberService(), SumService(), ChatService())
    bound = _add_port(server, port, tls_dir)
    server.start()
    _ready("sync", bound, tls_dir is not None)
    stop.wait()
    server.stop(GRACE_S).wait(GRACE_S + 1)
    return 0


async def serve_aio(port: int, tls_dir: Path | None) -> int:
    stop = StopSignals()  # not loop.add_signal_handler: a SIGTERM after asyncio.run returns would kill the exit
    server = grpc.aio.server()
    _add_services(server, AioGreeter(), AioNumberService(), AioSumService(), AioChatService())
    bound = _add_port(server, port, tls_dir)
    await server.start()
    _ready("aio", bound, tls_dir is not None)
    await stop.wait_async()
    await server.stop(GRACE_S)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.studies.bare_server", description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("sync", "aio"), required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls", type=Path, default=None, help="directory with server.crt and server.key")
    parser.add_argument("--exit-with-parent", action="store_true", help="SIGTERM when the starting process dies")
    args = parser.parse_args(argv)
    if args.tls is not None and not (args.tls / "server.key").is_file():
        parser.error(f"--tls {args.tls}: no server.key there (run: grpclab certs {args.tls})")
    if args.exit_with_parent:
        from servers.serve import exit_with_parent

        exit_with_parent(os.getppid())
    if args.impl == "sync":
        return serve_sync(args.port, args.tls)
    return asyncio.run(serve_aio(args.port, args.tls))


if __name__ == "__main__":
    sys.exit(main())
