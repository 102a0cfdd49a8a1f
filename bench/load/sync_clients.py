"""The Python generator's sync clients: the same load as the aio client, through gRPC Python's blocking API.

``client = "sync-threads"``: blocking stub calls, each from its own thread, one thread per RPC in flight
(``concurrency`` threads in closed loop; in open loop a pool of up to ``concurrency`` threads takes the
scheduled calls). ``client = "sync-future"``: ``.future()`` calls made and collected by one application
thread, gRPC's own threads completing them; grpcio has ``.future()`` on unary-unary and stream-unary
callables only, so these cells are unary and client_stream (bench.spec.cell.check_cell refuses the rest).

The rules are the aio client's (bench.load.worker): an RPC counts when its intended start falls in the
window; in open loop latency is measured from the intended start and a call sent late (every slot busy)
keeps it; every counted RPC is waited for after the window, bounded by its deadline; replies are checked
(bench.load.workload); streams record per-message times. A call's end is when the application thread
has its reply, as for the aio client. ``channel = "per-call"`` opens a channel for every RPC and closes it
when the RPC is over.

The worker protocol (one JSON object per line, bench.load.worker) is the same; only the loop differs.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc

from protos import chat_pb2, greet_pb2, number_stream_pb2, sum_stream_pb2

from . import histogram
from .channels import open_channel
from .job import LoadJob
from .workload import ReplyClock, ReplyMismatch, Timings, Workload

NS = 1_000_000_000
CLOSE_WAIT_S = 60.0
FUTURE_RPCS = ("unary", "client_stream")  # the callables grpcio gives a .future()


# -- one RPC through the blocking API ------------------------------------------------------------------


def _requests(workload: Workload, make: Callable[..., object]) -> Iterator[object]:
    """A client stream's messages, each built when gRPC asks for it (as the aio client writes them)."""
    for i in range(workload.messages):
        yield make(number=i, **workload.request_fields())


def _check_sum(reply: sum_stream_pb2.SumResponse, messages: int) -> None:
    expected = messages * (messages - 1) // 2
    if reply.sum != expected:
        raise ReplyMismatch(f"sum {reply.sum}, expected {expected}")


def blocking_call(workload: Workload, stub, timeout: float) -> Timings | None:
    """One RPC with the blocking API; raises grpc.RpcError or ReplyMismatch on failure."""
    rpc = workload.rpc
    if rpc == "unary":
        workload.check(stub.SayHello(greet_pb2.HelloRequest(name="lab", **workload.request_fields()), timeout=timeout))
        return None
    if rpc == "server_stream":
        count = 0
        request = number_stream_pb2.NumberRequest(limit=workload.messages, **workload.request_fields())
        clock = ReplyClock()
        for reply in stub.GetNumbers(request, timeout=timeout):
            clock.reply()
            workload.check(reply)
            count += 1
        if count != workload.messages:
            raise ReplyMismatch(f"{count} stream messages, asked {workload.messages}")
        return clock.timings()
    if rpc == "client_stream":
        reply = stub.CalculateSum(_requests(workload, sum_stream_pb2.NumberRequest), timeout=timeout)
        workload.check(reply)
        _check_sum(reply, workload.messages)
        return None
    return _bidi(workload, stub, timeout)


def _bidi(workload: Workload, stub, timeout: float) -> Timings:
    # Ping-pong, as the aio client does: the request iterator (read by gRPC's own thread) hands over one
    # message at a time, and the next is put only after the reply to the previous one was read.
    outbox: queue.SimpleQueue = queue.SimpleQueue()

    def requests() -> Iterator[chat_pb2.ChatRequest]:
        while (message := outbox.get()) is not None:
            yield message

    call = stub.Chat(requests(), timeout=timeout)
    rtts: list[int] = []
    try:
        for i in range(workload.messages):
            sent = time.monotonic_ns()
            outbox.put(chat_pb2.ChatRequest(message=str(i), **workload.request_fields()))
            reply = next(call, None)
            if reply is None:
                raise ReplyMismatch(f"stream ended after {i} of {workload.messages} replies")
            rtts.append(time.monotonic_ns() - sent)
            workload.check(reply)
        outbox.put(None)  # done writing
        # Reading past the last reply ends on an OK status and raises grpc.RpcError otherwise.
        if next(call, None) is not None:
            raise ReplyMismatch(f"more than {workload.messages} replies")
    finally:
        outbox.put(None)
        if call.is_active():
            call.cancel()  # a failed check: end the RPC (and gRPC's thread reading our requests)
    return Timings(gaps_ns=rtts)


def start_future(workload: Workload, stub, timeout: float) -> grpc.Future:
    """Start one RPC with ``.future()`` (unary or client_stream); ``finish_future`` checks its reply."""
    if workload.rpc == "unary":
        return stub.SayHello.future(greet_pb2.HelloRequest(name="lab", **workload.request_fields()), timeout=timeout)
    if workload.rpc == "client_stream":
        return stub.CalculateSum.future(_requests(workload, sum_stream_pb2.NumberRequest), timeout=timeout)
    raise ValueError(f"grpcio has no .future() for {workload.rpc} calls (only {', '.join(FUTURE_RPCS)})")


def finish_future(workload: Workload, future: grpc.Future) -> None:
    """Raise grpc.RpcError or ReplyMismatch unless the finished call's reply is right."""
    reply = future.result()
    workload.check(reply)
    if workload.rpc == "client_stream":
        _check_sum(reply, workload.messages)


# -- channels -------------------------------------------------------------------------------------------


class Channels:
    """Where a client's RPCs go: reused channels (one per connection), or a new channel per RPC."""

    def __init__(self, job: LoadJob, workload: Workload) -> None:
        self.job = job
        self.workload = workload
        self.per_call = job.channel == "per-call"
        self._open: list[grpc.Channel] = []
        self.stubs: list = []
        self._next = 0
        self._lock = threading.Lock()

    def new(self) -> grpc.Channel:
        job = self.job
        return open_channel(
            job.target, tls_dir=job.tls_dir, compression=job.compression.grpc, preset=job.channel_options
        )

    def connect(self) -> None:
        """Open and connect the reused channels (per-call: one, only to check the server is there)."""
        self._open = [self.new() for _ in range(self.job.connections)]
        deadline = time.monotonic() + self.job.connect_timeout
        for channel in self._open:
            grpc.channel_ready_future(channel).result(timeout=max(0.0, deadline - time.monotonic()))
        if self.per_call:
            self.close()
        else:
            self.stubs = [self.workload.stub(channel) for channel in self._open]

    def take(self) -> tuple[object, grpc.Channel | None]:
        """A stub for the next RPC, and the channel to close after it (per-call) or None (reused)."""
        if self.per_call:
            channel = self.new()
            return self.workload.stub(channel), channel
        with self._lock:
            stub = self.stubs[self._next % len(self.stubs)]
            self._next += 1
        return stub, None

    def close(self) -> None:
        for channel in self._open:
            channel.close()
        self._open = []


def time_to_first_rpc_ms(job: LoadJob, workload: Workload, channels: Channels) -> float | None:
    """Connect + first call on a fresh channel, ms: channel creation, TCP, HTTP/2 (and TLS) setup, the first RPC.

    Measured after the generator's own channels are connected, so process start-up and gRPC's one-time
    initialisation are not in it. None when the call failed (the load then shows why).
    """
    began = time.perf_counter_ns()
    channel = channels.new()
    try:
        stub = workload.stub(channel)
        if job.client == "sync-future":
            finish_future(workload, start_future(workload, stub, job.rpc_timeout))
        else:
            blocking_call(workload, stub, job.rpc_timeout)
        return (time.perf_counter_ns() - began) / 1e6
    except (grpc.RpcError, ReplyMismatch):
        return None
    finally:
        channel.close()


# -- the loops ------------------------------------------------------------------------------------------


class Outcome:
    """Records one finished RPC into the window's Recorder; thread-safe (sync-threads record from many)."""

    def __init__(self, rec) -> None:
        self.rec = rec
        self._lock = threading.Lock()

    def ok(self, intended_ns: int, timings: Timings | None) -> None:
        done = time.monotonic_ns()
        if self.rec.counts(intended_ns):
            with self._lock:
                self.rec.success(intended_ns, done, timings)

    def failed(self, intended_ns: int, code: str) -> None:
        if self.rec.counts(intended_ns):
            with self._lock:
                self.rec.failure(code)


def _code(exc: grpc.RpcError) -> str:
    code = exc.code() if isinstance(exc, grpc.Call) else None
    return code.name if code is not None else "UNKNOWN"


def _one_blocking(job: LoadJob, workload: Workload, channels: Channels, intended_ns: int, out: Outcome) -> None:
    stub, channel = channels.take()
    try:
        timings = blocking_call(workload, stub, job.rpc_timeout)
    except grpc.RpcError as exc:
        out.failed(intended_ns, _code(exc))
        return
    except ReplyMismatch:
        out.failed(intended_ns, "DATA_LOSS")
        return
    finally:
        if channel is not None:
            channel.close()
    out.ok(intended_ns, timings)


def _schedule(job: LoadJob, start_ns: int, end_ns: int) -> Iterator[int]:
    """Open loop: the intended start of every RPC before ``end_ns`` (constant or Poisson gaps)."""
    rng = random.Random(job.seed)
    intended = start_ns
    while intended < end_ns:
        yield intended
        gap = rng.expovariate(job.rate) if job.arrival == "poisson" else 1.0 / job.rate
        intended += int(gap * NS)


def _sleep_until(moment_ns: int) -> None:
    delay = moment_ns - time.monotonic_ns()
    if delay > 0:
        time.sleep(delay / NS)


def run_threads(job: LoadJob, workload: Workload, channels: Channels, start_ns: int, end_ns: int, rec) -> None:
    """sync-threads: blocking calls, one thread per RPC in flight."""
    out = Outcome(rec)
    if job.mode == "open":
        slots = threading.BoundedSemaphore(job.concurrency)

        def guarded(intended: int) -> None:
            try:
                _one_blocking(job, workload, channels, intended, out)
            finally:
                slots.release()

        with futures.ThreadPoolExecutor(max_workers=job.concurrency, thread_name_prefix="grpclab-client") as pool:
            for intended in _schedule(job, start_ns, end_ns):
                _sleep_until(intended)
                slots.acquire()  # every thread busy: send late, keep the intended start
                if rec.counts(intended):
                    histogram.record_ns(rec.lag, max(0, time.monotonic_ns() - intended))
                pool.submit(guarded, intended)
        return

    def closed() -> None:
        while (start := time.monotonic_ns()) < end_ns:
            _one_blocking(job, workload, channels, start, out)

    _sleep_until(start_ns)
    threads = [threading.Thread(target=closed, name=f"grpclab-client-{i}", daemon=True) for i in range(job.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_futures(job: LoadJob, workload: Workload, channels: Channels, start_ns: int, end_ns: int, rec) -> None:
    """sync-future: ``.future()`` calls from this thread; completions come back through a queue."""
    out = Outcome(rec)
    done: queue.SimpleQueue = queue.SimpleQueue()
    in_flight = 0

    def launch(intended: int) -> None:
        nonlocal in_flight
        stub, channel = channels.take()
        future = start_future(workload, stub, job.rpc_timeout)
        in_flight += 1
        future.add_done_callback(lambda f: done.put((intended, f, channel)))

    def collect(timeout: float | None) -> bool:
        nonlocal in_flight
        try:
            intended, future, channel = done.get(timeout=timeout)
        except queue.Empty:
            return False
        in_flight -= 1
        try:
            finish_future(workload, future)
        except grpc.RpcError as exc:
            out.failed(intended, _code(exc))
        except ReplyMismatch:
            out.failed(intended, "DATA_LOSS")
        else:
            out.ok(intended, None)
        finally:
            if channel is not None:
                channel.close()
        return True

    if job.mode == "open":
        for intended in _schedule(job, start_ns, end_ns):
            while True:  # collect completions until the send time, or a slot frees when all are busy
                wait_ns = intended - time.monotonic_ns()
                if in_flight >= job.concurrency:
                    collect(None)
                elif wait_ns <= 0 or not collect(wait_ns / NS):
                    break
            if rec.counts(intended):
                histogram.record_ns(rec.lag, max(0, time.monotonic_ns() - intended))
            launch(intended)
    else:
        _sleep_until(start_ns)
        for _ in range(job.concurrency):
            if (now := time.monotonic_ns()) < end_ns:
                launch(now)
        while in_flight:
            collect(None)
            if in_flight < job.concurrency and (now := time.monotonic_ns()) < end_ns:
                launch(now)
    while in_flight:  # every counted RPC is waited for (each is bounded by its deadline)
        collect(None)


# -- the process ----------------------------------------------------------------------------------------


def busy_s(cpus: frozenset[int] | None = None) -> float | None:
    """Seconds the CPUs this process may run on were not idle (/proc/stat), whoever used them.

    The aio client's busy time is its event loop thread's run + run-queue time. A sync client works on many
    threads (its own and gRPC's) that queue behind each other on the generator's CPU, so summing theirs would
    count one busy CPU several times over; the CPUs' own busy time says the same thing once: when they are
    >= 90 % busy, by the generator or by a neighbour, the generator is the limit. Every generator process of
    a cell is pinned to the same CPUs, so the parent takes the largest reading, not the sum.
    """
    cpus = cpus if cpus is not None else frozenset(os.sched_getaffinity(0))
    total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *ticks = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                    values = [int(t) for t in ticks[:8]]  # user nice system idle iowait irq softirq steal
                    total += sum(values) - values[3] - values[4]
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


class EdgeSampler(threading.Thread):
    """Reads process CPU and busy time at the window's edges, on a thread of its own (the others are busy)."""

    def __init__(self, lo_ns: int, hi_ns: int) -> None:
        super().__init__(name="grpclab-cpu", daemon=True)
        self.edges = (lo_ns, hi_ns)
        self.readings: list[tuple[float, float | None, int]] = []

    def run(self) -> None:
        for edge in self.edges:
            _sleep_until(edge)
            self.readings.append((time.process_time(), busy_s(), time.monotonic_ns()))


def run(job: LoadJob, read_line: Callable[[], str]) -> dict:
    """One worker's cell with a sync client: connect, report ready, load from the start line, report the result."""
    from .worker import Recorder, emit, result_message  # the aio client's recorder and result message

    workload = Workload.for_job(job)
    if job.client == "sync-future" and job.rpc not in FUTURE_RPCS:
        raise ValueError(f"client sync-future: grpcio has no .future() for {job.rpc} (only {', '.join(FUTURE_RPCS)})")
    channels = Channels(job, workload)
    try:
        channels.connect()
        first_ms = time_to_first_rpc_ms(job, workload, channels)
        emit({"event": "ready"})
        start_ns = int(float(json.loads(read_line())["start"]) * NS)
        lo = start_ns + int(job.warmup * NS)
        hi = lo + int(job.duration * NS)
        rec = Recorder(lo, hi)
        sampler = EdgeSampler(lo, hi)
        sampler.start()
        (run_futures if job.client == "sync-future" else run_threads)(job, workload, channels, start_ns, hi, rec)
        sampler.join()
        (cpu_lo, busy_lo, at_lo), (cpu_hi, busy_hi, at_hi) = sampler.readings
        scale = (hi - lo) / (at_hi - at_lo) if at_hi > at_lo else 1.0
        result = result_message(
            rec,
            cpu_s=(cpu_hi - cpu_lo) * scale,
            busy_s=(busy_hi - busy_lo) * scale if busy_lo is not None and busy_hi is not None else None,
            time_to_first_rpc_ms=first_ms,
        )
        emit(result)
        # Keep the connections until the runner has read the server's TCP counters (bench.load.worker).
        waiter = threading.Thread(target=read_line, daemon=True)
        waiter.start()
        waiter.join(CLOSE_WAIT_S)
        return result
    finally:
        channels.close()
