"""`grpclab worker --driver-port N`: the lab as a gRPC benchmark worker (grpc.testing.WorkerService).

A driver of gRPC's benchmark protocol runs the lab's servers and its Python generator through it: the lab's
own (bench.remote.driver), and by the same wire contract gRPC's qps_json_driver or a grpc/test-infra LoadTest
(no run with those has been made yet):

* **RunServer**: the first message is a ServerConfig; the lab's sync, aio or Go server starts
  (bench.remote.server_side) and the first reply carries its port. Each Mark is answered with the stats
  since the last reset. A second setup replaces the server. When the stream ends, however it ends (the
  driver half-closes, cancels, disconnects or dies), the server is stopped and its port freed.
* **RunClient**: the same for a ClientConfig and the lab's generator (bench.remote.client_side).
* **CoreCount**: the CPUs this worker may use (its affinity mask).
* **QuitWorker**: answers, then stops whatever runs and exits 0.

Beside WorkerService, on the same port, the lab's own ``grpclab.WorkerFacts`` (protos/grpclab/facts.proto):
**System** answers this machine's `grpclab system` facts, judged for the CPUs the driver names, for the
run's manifest. A foreign worker does not serve it; that is how the lab's driver tells the two apart.

A config the lab cannot run gets a status with one line naming the field (bench.remote.configs), never a
crashed worker. The worker binds ``--host`` (default 127.0.0.1; on a real network give the host's own
address, never the wildcard by default), and its servers bind the same address.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc

from protos.grpc.testing import control_pb2, worker_service_pb2_grpc
from protos.grpclab import facts_pb2, facts_pb2_grpc
from servers.stop_signals import StopSignals

from .client_side import LabClient
from .configs import Refused, client_plan, server_plan
from .server_side import LabServer

WORKER_KIND = "grpclab"
QUIT_GRACE_S = 1.0


class Worker(worker_service_pb2_grpc.WorkerServiceServicer):
    def __init__(self, host: str, certs_dir: Path | None, stop: StopSignals) -> None:
        self.host = host
        self.certs_dir = certs_dir
        self.quit = threading.Event()
        self._stop_signals = stop  # QuitWorker wakes the main thread through it, as SIGTERM does
        self._lock = threading.Lock()
        self._running: set[LabServer | LabClient] = set()

    def _cores(self, cpus: tuple[int, ...]) -> int:
        return len(cpus) or len(os.sched_getaffinity(0))

    def _track(self, thing: LabServer | LabClient) -> None:
        with self._lock:
            if self.quit.is_set():
                raise Refused(grpc.StatusCode.UNAVAILABLE, "the worker is quitting")
            self._running.add(thing)

    def _stop(self, thing: LabServer | LabClient | None) -> None:
        """Stop ``thing`` (idempotent, from any thread: the stream's handler, its done-callback, QuitWorker)."""
        if thing is None:
            return
        with self._lock:
            self._running.discard(thing)
        thing.stop()

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for thing in running:
            self._stop(thing)

    def _serve_stream(self, request_iterator, context, start, status) -> Iterator:
        """The RunServer/RunClient loop: a setup starts a thing (replacing the last), a mark asks its status.

        Whatever ends the stream (the driver half-closes, cancels or dies, a refused config, QuitWorker), the
        thing is stopped: by this loop's ``finally`` and, should the handler be stuck, the RPC's done-callback.
        """
        current: list[LabServer | LabClient | None] = [None]

        def ended() -> None:
            # gRPC runs this on its own thread, which must not wait seconds for processes to exit
            threading.Thread(target=self._stop, args=(current[0],), name="grpclab-worker-stop", daemon=True).start()

        context.add_callback(ended)
        try:
            for index, args in enumerate(request_iterator):
                which = args.WhichOneof("argtype")
                if which == "setup":
                    self._stop(current[0])
                    current[0] = None
                    thing = start(args.setup)
                    current[0] = thing
                    self._track(thing)
                    thing.start()
                    yield status(thing, None)
                elif which == "mark":
                    if current[0] is None:
                        raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "a mark before any setup")
                    yield status(current[0], args.mark)
                else:
                    raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"message {index}: neither setup nor mark")
        except Refused as exc:
            self._stop(current[0])
            context.abort(exc.code, exc.message)
        except grpc.RpcError:
            pass  # the driver went away (cancelled, disconnected): nobody to answer
        except Exception as exc:  # noqa: BLE001 - a bug or a broken host: the driver gets a status, the worker lives
            self._stop(current[0])
            context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        finally:
            self._stop(current[0])

    def RunServer(self, request_iterator, context) -> Iterator[control_pb2.ServerStatus]:  # noqa: N802
        def start(setup: control_pb2.ServerConfig) -> LabServer:
            return LabServer(server_plan(setup, certs_dir=self.certs_dir), self.host, self.certs_dir)

        def status(server: LabServer, mark: control_pb2.Mark | None) -> control_pb2.ServerStatus:
            return server.status(reset=mark is None or mark.reset, cores=self._cores(server.plan.cpus))

        yield from self._serve_stream(request_iterator, context, start, status)

    def RunClient(self, request_iterator, context) -> Iterator[control_pb2.ClientStatus]:  # noqa: N802
        def start(setup: control_pb2.ClientConfig) -> LabClient:
            return LabClient(client_plan(setup, certs_dir=self.certs_dir))

        def status(client: LabClient, mark: control_pb2.Mark | None) -> control_pb2.ClientStatus:
            if mark is None:
                return control_pb2.ClientStatus(stats=client.stats(mark=False, reset=False))
            return control_pb2.ClientStatus(stats=client.stats(mark=True, reset=mark.reset))

        yield from self._serve_stream(request_iterator, context, start, status)

    def CoreCount(self, request, context) -> control_pb2.CoreResponse:  # noqa: N802
        return control_pb2.CoreResponse(cores=len(os.sched_getaffinity(0)))

    def QuitWorker(self, request, context) -> control_pb2.Void:  # noqa: N802
        self.stop_taking_work()
        self._stop_signals.request()
        return control_pb2.Void()

    def stop_taking_work(self) -> None:
        with self._lock:
            self.quit.set()  # under the lock: no setup starts anything after this


class Facts(facts_pb2_grpc.WorkerFactsServicer):
    """grpclab.WorkerFacts: this machine's `grpclab system` facts (bench.machine.system.collect)."""

    def System(self, request: facts_pb2.FactsRequest, context) -> facts_pb2.FactsReply:  # noqa: N802
        from ..machine.system import collect

        available = os.sched_getaffinity(0)
        pinning = tuple(request.pinning) or tuple(sorted(available))
        missing = sorted(set(pinning) - available)
        if missing:
            have = ",".join(map(str, sorted(available)))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"pinning: CPU {missing[0]} is not this worker's ({have})")
        try:
            facts = collect(pinning=pinning)
        except Exception as exc:  # noqa: BLE001 - an unreadable /proc or /sys is the driver's note, not a dead worker
            context.abort(grpc.StatusCode.INTERNAL, f"grpclab system: {type(exc).__name__}: {exc}")
        from ..machine.environment import versions

        known = {name: version for name, version in versions().items() if version is not None}
        return facts_pb2.FactsReply(worker=WORKER_KIND, facts_json=json.dumps(facts.to_json()), versions=known)


def serve(driver_port: int, host: str = "127.0.0.1", certs_dir: Path | None = None) -> int:
    """Serve the worker until QuitWorker, SIGTERM or SIGINT; prints one ready line (JSON) on stdout."""
    if certs_dir is not None:
        from servers import certs

        certs.load(certs_dir)  # a missing or broken set is a usage error now, not at the first TLS cell
    # the handlers first: a SIGTERM from the moment the worker has anything to stop stops it
    stop = StopSignals()  # not a threading.Event: setting one from a handler can deadlock (servers.stop_signals)
    worker = Worker(host, certs_dir, stop)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpclab-worker"))
    worker_service_pb2_grpc.add_WorkerServiceServicer_to_server(worker, server)
    facts_pb2_grpc.add_WorkerFactsServicer_to_server(Facts(), server)
    address = f"[{host}]:{driver_port}" if ":" in host else f"{host}:{driver_port}"
    from servers.transport import BindError

    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise BindError(f"cannot bind {address}: port in use or address unavailable ({exc})") from None
    server.start()
    sys.stdout.write(json.dumps({"event": "ready", "worker": WORKER_KIND, "host": host, "driver_port": port}) + "\n")
    sys.stdout.flush()
    stop.wait()
    worker.stop_taking_work()
    worker.stop_all()
    server.stop(QUIT_GRACE_S).wait(QUIT_GRACE_S + 1)
    worker.stop_all()  # a stream that a setup was racing with the quit
    return 0
