"""The lab as a driver of gRPC's benchmark protocol: one cell repetition over two workers -> one lab row.

:func:`run_scenario` does what gRPC's qps_json_driver does for one scenario with one server and one client
worker, and fills the same row as the local harness (bench.run.measure.fill_metrics):

1. RunServer on the server worker with the cell's ServerConfig (bench.remote.configs.server_config); the
   first status carries the port, the target is the server worker's host and that port;
2. RunClient on the client worker with the cell's ClientConfig aimed at that target; the load starts;
3. after ``settings.warmup``, Mark(reset) on both (the warm-up is discarded), after ``settings.duration``
   Mark on both: the window's stats;
4. both streams are half-closed, which makes the workers stop what they started, and drained.

The row's window is the client's ``time_elapsed``; the server's CPU and wire bytes are rescaled from the
server's own period to it, as the local harness rescales its samples. From a lab worker the row gets the
generator's HDR histograms, busy time and unfinished RPCs exactly (core_stats ``grpclab.*``); from another
language's worker the latencies come from gRPC's log-bucket histogram (bench.remote.loghist.to_hdr) and the
measures it does not report stay empty. A failure is a row with ``failed`` set and the error, never an
exception, like bench.run.measure.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import grpc

from protos.grpc.testing import control_pb2, stats_pb2, worker_service_pb2_grpc

from ..analysis import schema
from ..load.job import LoadResult
from ..run import sampling
from ..run.measure import fill_metrics
from ..spec import Cell, Settings
from . import configs, loghist
from .client_side import HISTS

STREAM_MARGIN_S = 60.0  # beyond the cell's time limit: how long a stream may stay open
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class _Stream:
    """One RunServer/RunClient call: send() a message, recv() the next status, close() half-closes and drains."""

    def __init__(self, method, timeout: float) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._call = method(iter(self._requests.get, None), timeout=timeout)
        self._closed = False

    def send(self, message) -> None:
        self._requests.put(message)

    def recv(self):
        return next(self._call)

    def exchange(self, message):
        self.send(message)
        return self.recv()

    def close(self) -> None:
        """Half-close and wait until the worker ends the stream (it has then stopped what it started)."""
        if self._closed:
            return
        self._closed = True
        self._requests.put(None)
        try:
            for _ in self._call:
                pass
        except grpc.RpcError:
            pass

    def cancel(self) -> None:
        self._call.cancel()


def _host(worker: str) -> str:
    host, _, _ = worker.rpartition(":")
    return host


def _metrics(stats) -> dict[str, object]:
    out: dict[str, object] = {}
    for metric in stats.core_stats.metrics:
        which = metric.WhichOneof("value")
        out[metric.name] = metric.count if which == "count" else metric.histogram
    return out


def load_result(stats: stats_pb2.ClientStats, params: stats_pb2.HistogramParams) -> LoadResult:
    """A client worker's window stats as the lab's LoadResult (exact from a lab worker; see the module doc)."""
    metrics = _metrics(stats)
    ok = sum(r.count for r in stats.request_results if r.status_code == 0)
    if not stats.request_results:
        ok = int(stats.latencies.count)  # grpc-go's worker answers no request_results: its latencies are its OK RPCs
    errors: dict[str, int] = {}
    for result in stats.request_results:
        if result.status_code != 0:
            name = CODE_NAMES.get(result.status_code, f"CODE_{result.status_code}")
            errors[name] = errors.get(name, 0) + result.count
    if f"grpclab.hist.{HISTS[0]}" in metrics:
        hists = {
            name: loghist.hdr_from_buckets((b.start, b.count) for b in metrics[f"grpclab.hist.{name}"].buckets)
            for name in HISTS
        }
        notes = []
    else:
        latencies = loghist.LogHistogram.from_proto(stats.latencies, params.resolution, params.max_possible)
        hists = {name: loghist.to_hdr(latencies) if name == "call" else loghist.hdr.new() for name in HISTS}
        notes = ["latencies from gRPC's log-bucket histogram (a foreign worker): within its resolution"]
    unfinished = metrics.get("grpclab.unfinished", 0)
    if unfinished:
        notes.append(f"{unfinished} RPCs of the window were still in flight when the client's mark gave up")
    busy = metrics.get("grpclab.busy_us")
    return LoadResult(
        loadgen="python",
        processes=int(metrics.get("grpclab.processes", 1)),
        window_s=stats.time_elapsed,
        ok=ok,
        errors=errors,
        cpu_s=stats.time_user + stats.time_system,
        hists=hists,
        notes=notes,
        busy_s=busy / 1e6 if isinstance(busy, int) else None,
    )


def server_samples(stats: stats_pb2.ServerStats) -> tuple[sampling.Sample, sampling.Sample]:
    """The server's period as the two samples fill_metrics reads (their times span the server's period)."""
    metrics = _metrics(stats)
    tx, rx = metrics.get("grpclab.wire_tx_bytes"), metrics.get("grpclab.wire_rx_bytes")
    wire = (0, 0) if tx is not None and rx is not None else (None, None)
    start = 1.0  # any positive time: fill_metrics rescales by the interval between the two samples
    before = sampling.Sample(0.0, 0, wire[0], wire[1], cpu_at=start, wire_at=start)
    end = start + stats.time_elapsed
    after = sampling.Sample(
        stats.time_user + stats.time_system,
        int(metrics.get("grpclab.rss_bytes", 0)),
        tx,
        rx,
        cpu_at=end,
        wire_at=end,
    )
    return before, after


def run_scenario(
    cell: Cell,
    settings: Settings,
    server_worker: str,
    client_worker: str,
    *,
    run_id: str = "driver",
    repetition: int = 0,
    order: int = 0,
) -> dict:
    """One repetition of ``cell``, its server on ``server_worker`` and its load from ``client_worker`` (host:port)."""
    row = schema.empty_row()
    row.update(cell.to_dict())
    row.update(
        run_id=run_id,
        cell_key=cell.key(),
        repetition=repetition,
        order=order,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        server_cpus=",".join(map(str, settings.server_cpus)),
        loadgen_cpus=",".join(map(str, settings.loadgen_cpus)),
    )
    notes: list[str] = [f"driven over workers: server {server_worker}, client {client_worker}"]
    if cell.impl == "aio":
        notes.append("aio: workers axis does not apply")
    began = time.monotonic()
    try:
        server_config = configs.server_config(cell, settings)
        # the client config is checked before anything starts (a cell gRPC's configs cannot say)
        configs.client_config(cell, settings, ["check:0"], repetition)
        with _channels(server_worker, client_worker) as (server_stub, client_stub):
            timeout = settings.cell_timeout + STREAM_MARGIN_S
            server = _Stream(server_stub.RunServer, timeout)
            client: _Stream | None = None
            try:
                status = server.exchange(control_pb2.ServerArgs(setup=server_config))
                target = f"{_host(server_worker)}:{status.port}"
                client_config = configs.client_config(cell, settings, [target], repetition)
                client = _Stream(client_stub.RunClient, timeout)
                client.exchange(control_pb2.ClientArgs(setup=client_config))
                time.sleep(settings.warmup)
                window_from = time.monotonic()
                _mark_both(server, client, reset=True)
                # from the reset mark, not from its answer: the client answers once its warm-up RPCs are done
                _sleep_until(window_from + settings.duration)
                server_status, client_status = _mark_both(server, client, reset=False)
                server_cores = status.cores
            finally:
                if client is not None:
                    client.close()
                server.close()
    except configs.Inexpressible as exc:
        row.update(failed=True, error=str(exc), notes="; ".join(notes))
        return row
    except grpc.RpcError as exc:
        row.update(failed=True, error=f"worker: {exc.code().name}: {exc.details()}", notes="; ".join(notes))
        return row
    except Exception as exc:  # noqa: BLE001 - one broken repetition must not end the run; its row says why
        row.update(failed=True, error=f"{type(exc).__name__}: {exc}", notes="; ".join(notes))
        return row
    result = load_result(client_status.stats, client_config.histogram_params)
    before, after = server_samples(server_status.stats)
    client_cpus = int(_metrics(client_status.stats).get("grpclab.cpus", 0)) or len(settings.loadgen_cpus)
    fill_metrics(row, result, before, after, (server_cores, client_cpus), notes)
    row["overhead_s"] = time.monotonic() - began - settings.warmup - settings.duration
    row["notes"] = "; ".join(notes + result.notes)
    return row


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _mark_both(server: _Stream, client: _Stream, *, reset: bool):
    """Mark the server and the client at (nearly) the same moment; their statuses."""
    # The client's answer waits for its period's RPCs to finish; the server answers at once. Both marks are
    # sent before either answer is read, so the two periods start and end within a few hundred microseconds.
    server.send(control_pb2.ServerArgs(mark=control_pb2.Mark(reset=reset)))
    client.send(control_pb2.ClientArgs(mark=control_pb2.Mark(reset=reset)))
    return server.recv(), client.recv()


@contextmanager
def _channels(*workers: str) -> Iterator[list[worker_service_pb2_grpc.WorkerServiceStub]]:
    channels = [grpc.insecure_channel(worker) for worker in workers]
    try:
        yield [worker_service_pb2_grpc.WorkerServiceStub(ch) for ch in channels]
    finally:
        for ch in channels:
            ch.close()


def quit_worker(worker: str, timeout: float = 10.0) -> None:
    """Ask a worker to stop everything and exit."""
    with grpc.insecure_channel(worker) as channel:
        worker_service_pb2_grpc.WorkerServiceStub(channel).QuitWorker(control_pb2.Void(), timeout=timeout)


def core_count(worker: str, timeout: float = 10.0) -> int:
    with grpc.insecure_channel(worker) as channel:
        stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
        return stub.CoreCount(control_pb2.CoreRequest(), timeout=timeout).cores
