"""The lab as a driver of gRPC's benchmark protocol: one cell repetition over workers -> one lab row.

:func:`run_repetition` does what gRPC's qps_json_driver does for one scenario with one server worker and one
or more client workers, and fills the same row as the local harness (bench.run.measure.fill_metrics);
:func:`run_scenario` is its one-client form:

1. RunServer on the server worker with the cell's ServerConfig (bench.remote.configs.server_config); the
   first status carries the port, the target is the server worker's host and that port;
2. RunClient on each client worker with its share of the cell's load (:func:`split_load`) aimed at that
   target; the load starts;
3. after ``settings.warmup``, Mark(reset) on all of them (the warm-up is discarded), after
   ``settings.duration`` Mark on all: the window's stats;
4. every stream is half-closed, which makes the workers stop what they started, and drained.

The row's window is the clients' ``time_elapsed`` (the longest); their counts and CPU are summed and their
histograms merged (:func:`merge_results`); the server's CPU and wire bytes are rescaled from the server's own
period to the window, as the local harness rescales its samples. From a lab worker the row gets the
generator's HDR histograms, busy time and unfinished RPCs exactly (core_stats ``grpclab.*``); from another
language's worker the latencies come from gRPC's log-bucket histogram (bench.remote.loghist.to_hdr) and the
measures it does not report stay empty. A failure (a refused config, a worker that dies: its error names the
worker) is a row with ``failed`` set and the error, never an exception, like bench.run.measure. Every wait on
a worker is bounded: each stream's deadline is the cell's time limit plus ``STREAM_MARGIN_S``.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import grpc

from protos.grpc.testing import control_pb2, stats_pb2, worker_service_pb2_grpc

from ..analysis import schema
from ..load import histogram
from ..load.job import LoadResult
from ..run import sampling
from ..run.measure import fill_metrics
from ..spec import Cell, Settings
from . import configs, loghist
from .client_side import HISTS

STREAM_MARGIN_S = 60.0  # beyond the cell's time limit: how long a stream may stay open
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class WorkerFailed(Exception):
    """A worker's stream ended with an error or early (the message names the worker and what it said)."""


class _Stream:
    """One RunServer/RunClient call: send() a message, recv() the next status, close() half-closes and drains."""

    def __init__(self, method, timeout: float, label: str = "worker") -> None:
        self._requests: queue.Queue = queue.Queue()
        self._call = method(iter(self._requests.get, None), timeout=timeout)
        self._closed = False
        self.label = label  # e.g. "client worker 10.0.0.2:10000", for the row's error

    def send(self, message) -> None:
        self._requests.put(message)

    def recv(self):
        try:
            return next(self._call)
        except grpc.RpcError as exc:
            raise WorkerFailed(f"{self.label}: {exc.code().name}: {exc.details()}") from None
        except StopIteration:
            raise WorkerFailed(f"{self.label}: ended the stream without an answer") from None

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


def _target_host(worker: str) -> str:
    """The host part of a worker's address as a target names it (an IPv6 host keeps its brackets)."""
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
    return run_repetition(
        cell, settings, server_worker, [client_worker], run_id=run_id, repetition=repetition, order=order
    )


@dataclass(frozen=True)
class ClientShare:
    """What one client worker puts on the server: its part of the cell's channels, RPCs in flight and rate."""

    connections: int
    concurrency: int
    rate: float


def split_load(cell: Cell, workers: int) -> list[ClientShare]:
    """The cell's load over at most ``workers`` client workers, as evenly as gRPC's configs allow.

    Each worker needs a channel and an RPC in flight of its own, so a cell uses no more workers than it has
    channels (a one-channel cell runs on the first client worker alone: its load is the cell's, not more).
    BenchmarkService configs say RPCs per channel, so there each worker gets whole channels at the cell's
    RPCs per channel. An open loop's rate is split as the RPCs in flight are (Poisson streams add up to one).
    """
    used = max(1, min(workers, cell.connections, cell.concurrency))
    channels = [cell.connections // used + (i < cell.connections % used) for i in range(used)]
    if cell.service == "benchmark":
        per_channel = cell.concurrency // cell.connections
        in_flight = [n * per_channel for n in channels]
    else:
        in_flight = [cell.concurrency // used + (i < cell.concurrency % used) for i in range(used)]
    return [ClientShare(n, c, cell.rate * c / cell.concurrency) for n, c in zip(channels, in_flight, strict=True)]


def _client_configs(
    cell: Cell, settings: Settings, target: str, repetition: int, workers: int
) -> list[control_pb2.ClientConfig]:
    """The ClientConfig of each client worker the cell uses (each with a seed of its own)."""
    result = []
    for index, share in enumerate(split_load(cell, workers)):
        part = replace(cell, connections=share.connections, concurrency=share.concurrency, rate=share.rate)
        config = configs.client_config(part, settings, [target], repetition)
        for arg in config.channel_args:
            if arg.name == configs.ARG_SEED:
                arg.int_value += index  # the same seed would draw the same arrivals and payloads on every worker
        result.append(config)
    return result


def run_repetition(
    cell: Cell,
    settings: Settings,
    server_worker: str,
    client_workers: Sequence[str],
    *,
    run_id: str = "driver",
    repetition: int = 0,
    order: int = 0,
) -> dict:
    """One repetition of ``cell`` over one server worker and one or more client workers (host:port each).

    The cell's load is split over the client workers (:func:`split_load`); their window stats are summed, their
    histograms merged and their CPU added up, so the row is the cell's as one generator would have measured it.
    """
    row = new_row(cell, settings, run_id, repetition, order)
    used = len(split_load(cell, len(client_workers)))
    clients_used = list(client_workers[:used])
    clients_text = f"client{'s' if used > 1 else ''} {', '.join(clients_used)}"
    notes: list[str] = [f"driven over workers: server {server_worker}, {clients_text}"]
    if used < len(client_workers):
        notes.append(f"{cell.connections} channel(s): {used} of the {len(client_workers)} client workers load it")
    if cell.impl == "aio":
        notes.append("aio: workers axis does not apply")
    began = time.monotonic()
    try:
        server_config = configs.server_config(cell, settings)
        # the client configs are checked before anything starts (a cell gRPC's configs cannot say), the whole
        # cell's first: its error names the cell's values, not a share's
        configs.client_config(cell, settings, ["check:0"], repetition)
        _client_configs(cell, settings, "check:0", repetition, used)
        with _channels(server_worker, *clients_used) as (server_stub, *client_stubs):
            timeout = settings.cell_timeout + STREAM_MARGIN_S
            server = _Stream(server_stub.RunServer, timeout, f"server worker {server_worker}")
            clients: list[_Stream] = []
            try:
                status = server.exchange(control_pb2.ServerArgs(setup=server_config))
                target = f"{_target_host(server_worker)}:{status.port}"
                client_configs = _client_configs(cell, settings, target, repetition, used)
                for address, stub, config in zip(clients_used, client_stubs, client_configs, strict=True):
                    clients.append(_Stream(stub.RunClient, timeout, f"client worker {address}"))
                    clients[-1].exchange(control_pb2.ClientArgs(setup=config))
                time.sleep(settings.warmup)
                window_from = time.monotonic()
                _mark_all(server, clients, reset=True)
                # from the reset mark, not from its answer: a client answers once its warm-up RPCs are done
                _sleep_until(window_from + settings.duration)
                server_status, client_statuses = _mark_all(server, clients, reset=False)
                server_cores = status.cores
            finally:
                for client in clients:
                    client.close()
                server.close()
    except configs.Inexpressible as exc:
        row.update(failed=True, error=str(exc), notes="; ".join(notes))
        return row
    except WorkerFailed as exc:
        row.update(failed=True, error=str(exc), notes="; ".join(notes))
        return row
    except grpc.RpcError as exc:
        row.update(failed=True, error=f"worker: {exc.code().name}: {exc.details()}", notes="; ".join(notes))
        return row
    except Exception as exc:  # noqa: BLE001 - one broken repetition must not end the run; its row says why
        row.update(failed=True, error=f"{type(exc).__name__}: {exc}", notes="; ".join(notes))
        return row
    results = [
        load_result(client.stats, config.histogram_params)
        for client, config in zip(client_statuses, client_configs, strict=True)
    ]
    result = merge_results(results)
    before, after = server_samples(server_status.stats)
    client_cpus = sum(
        int(_metrics(client.stats).get("grpclab.cpus", 0)) or len(settings.loadgen_cpus) for client in client_statuses
    )
    fill_metrics(row, result, before, after, (server_cores, client_cpus), notes)
    row["overhead_s"] = time.monotonic() - began - settings.warmup - settings.duration
    row["notes"] = "; ".join(notes + result.notes)
    return row


def new_row(cell: Cell, settings: Settings, run_id: str, repetition: int, order: int) -> dict:
    """A row of ``cell`` with what is known before it is measured (the measurements empty)."""
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
    return row


def merge_results(results: Sequence[LoadResult]) -> LoadResult:
    """Several client workers' window results as one: counts and CPU summed, histograms merged.

    The window is the longest of theirs (the marks reach them within a few hundred microseconds of each other;
    a shorter one would overstate RPC/s). Busy time is known only when every worker reported it.
    """
    if len(results) == 1:
        return results[0]
    errors: dict[str, int] = {}
    for result in results:
        for code, count in result.errors.items():
            errors[code] = errors.get(code, 0) + count
    hists = {}
    for name in results[0].hists:
        total = histogram.new()
        for result in results:
            total.add(result.hists[name])
        hists[name] = total
    busy = [result.busy_s for result in results]
    return LoadResult(
        loadgen=results[0].loadgen,
        processes=sum(result.processes for result in results),
        window_s=max(result.window_s for result in results),
        ok=sum(result.ok for result in results),
        errors=errors,
        cpu_s=sum(result.cpu_s for result in results),
        hists=hists,
        notes=list(dict.fromkeys(note for result in results for note in result.notes)),
        busy_s=sum(b for b in busy if b is not None) if all(b is not None for b in busy) else None,
    )


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _mark_all(server: _Stream, clients: Sequence[_Stream], *, reset: bool):
    """Mark the server and every client at (nearly) the same moment; the server's status and the clients'."""
    # A client's answer waits for its period's RPCs to finish; the server answers at once. Every mark is
    # sent before any answer is read, so the periods start and end within a few hundred microseconds.
    server.send(control_pb2.ServerArgs(mark=control_pb2.Mark(reset=reset)))
    for client in clients:
        client.send(control_pb2.ClientArgs(mark=control_pb2.Mark(reset=reset)))
    return server.recv(), [client.recv() for client in clients]


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
