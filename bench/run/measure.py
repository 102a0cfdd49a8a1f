"""One repetition of one cell -> one row.

Start the cell's server pinned to the server CPUs, wait for its ready line and
health, put the cell's load on it from the load-generator CPUs (warm-up
discarded), sample server CPU and wire bytes at the measured window's edges,
stop the server, and fill the row. A failure of one repetition is a row with
``failed`` set, never an exception.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..analysis import schema
from ..load import histogram
from ..load.channels import channel_credentials
from ..load.job import LoadError, LoadJob, LoadResult
from ..load.python_load import PythonLoad
from ..spec import Cell, Settings
from ..spec.compression import Compression
from . import sampling, server_process

HEALTH_TIMEOUT_S = 20.0
SATURATED = 0.9  # fraction of the pinned CPUs busy


@dataclass
class Context:
    run_id: str
    settings: Settings
    certs_dir: Path
    server_env: dict[str, str] = field(default_factory=dict)  # test-only fault knobs
    server_code_dir: Path | None = None  # serve this source tree's code (grpclab regress: the base's worktree)
    server_python: str | None = None  # ... with this interpreter and its packages (default: the harness's)


def server_args(cell: Cell, certs_dir: Path) -> list[str]:
    args = ["--impl", cell.impl, "--port", "0", "--processes", str(cell.processes), "--exit-with-parent"]
    if cell.impl == "sync":
        args += ["--workers", str(cell.workers)]
    if cell.tls != "off":
        args += ["--tls", str(certs_dir)] + (["--mtls"] if cell.tls == "mtls" else [])
    args += Compression.parse(cell.compression).server_args()
    return args


def wait_healthy(target: str, tls_dir: Path | None, timeout: float = HEALTH_TIMEOUT_S) -> None:
    creds = channel_credentials(tls_dir) if tls_dir else None
    channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
    deadline = time.monotonic() + timeout
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                if time.monotonic() > deadline:
                    raise LoadError(f"server not healthy: {exc.code().name}") from None
            if time.monotonic() > deadline:
                raise LoadError("server not healthy: not SERVING")
            time.sleep(0.05)
    finally:
        channel.close()


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def make_load(cell: Cell, job: LoadJob, settings: Settings):
    if cell.loadgen == "ghz":
        from ..load.ghz import GhzLoad

        return GhzLoad(job, list(settings.loadgen_cpus))
    return PythonLoad(job, settings.loadgen_processes, list(settings.loadgen_cpus))


def measure(cell: Cell, repetition: int, order: int, ctx: Context) -> dict:
    """Run one repetition of one cell and return its row (failed rows included)."""
    settings = ctx.settings
    row = schema.empty_row()
    row.update(cell.to_dict())
    row.update(
        run_id=ctx.run_id,
        cell_key=cell.key(),
        repetition=repetition,
        order=order,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        server_cpus=",".join(map(str, settings.server_cpus)),
        loadgen_cpus=",".join(map(str, settings.loadgen_cpus)),
    )
    notes: list[str] = []
    if cell.impl == "aio":
        notes.append("aio: workers axis does not apply")
    began = time.monotonic()
    server = load = None
    try:
        server = server_process.start(
            server_args(cell, ctx.certs_dir),
            env=ctx.server_env,
            cpus=list(settings.server_cpus),
            code_dir=ctx.server_code_dir,
            python=ctx.server_python,
        )
        wait_healthy(server.target, ctx.certs_dir if cell.tls != "off" else None)
        job = LoadJob.for_cell(
            cell, target=server.target, tls_dir=ctx.certs_dir, settings=settings, repetition=repetition
        )
        load = make_load(cell, job, settings)
        lo, hi = load.start()
        _sleep_until(lo)
        before = sampling.take(server.pids, server.port)
        _sleep_until(hi)
        after = sampling.take(server.pids, server.port)
        result = load.result()
    except (server_process.ServerStartError, LoadError) as exc:
        row.update(failed=True, error=str(exc), notes="; ".join(notes))
        return row
    except Exception as exc:  # noqa: BLE001 - one broken repetition must not end the run; its row says why
        row.update(failed=True, error=f"{type(exc).__name__}: {exc}", notes="; ".join(notes))
        return row
    finally:
        if load is not None:
            load.close()
        if server is not None:
            code = server.stop()
            if code != 0 and not row["failed"]:
                notes.append(f"server exited with code {code}")
    fill_metrics(row, result, before, after, settings, notes)
    row["overhead_s"] = time.monotonic() - began - settings.warmup - settings.duration
    row["notes"] = "; ".join(notes + result.notes)
    return row


def fill_metrics(
    row: dict, result: LoadResult, before: sampling.Sample, after: sampling.Sample, settings: Settings, notes: list[str]
) -> None:
    duration = result.window_s
    ok = result.ok
    per_rpc = (lambda x: x / ok) if ok else (lambda x: float("nan"))
    row.update(
        loadgen_processes=result.processes,
        duration_s=duration,
        rpcs=result.rpcs,
        rpcs_ok=ok,
        errors=sum(result.errors.values()),
        errors_by_code=_json(result.errors),
        rps=ok / duration,
        payload_ratio=Compression.parse(row["compression"]).payload_ratio(row["payload_kind"], row["payload_size"]),
    )
    if row["mode"] == "open":
        row["offered_rps"] = row["rate"]
        row["send_lag_p99_ms"] = histogram.summary_ms(result.hists["lag"])["p99"]
    call = histogram.summary_ms(result.hists["call"])
    for stat in ("mean", "p50", "p90", "p99", "p999", "max"):
        row[f"lat_{stat}_ms"] = call[stat]
    msg = histogram.summary_ms(result.hists["msg"])
    first = histogram.summary_ms(result.hists["first"])
    row.update(
        msg_p50_ms=msg["p50"], msg_p99_ms=msg["p99"], first_msg_p50_ms=first["p50"], first_msg_p99_ms=first["p99"]
    )
    # Counters are read a little after each edge of the window, and not equally late (ss is
    # a subprocess): rescale each difference from the interval between its two readings to
    # the window, so per-RPC values divide the traffic and CPU of the window by its RPCs.
    cpu_scale = _scale(duration, before.cpu_at, after.cpu_at)
    wire_scale = _scale(duration, before.wire_at, after.wire_at)
    server_cpu = (after.cpu_s - before.cpu_s) * cpu_scale
    row.update(
        server_cpu_s=server_cpu,
        server_cpu_util=server_cpu / (duration * len(settings.server_cpus)),
        server_cpu_us_per_rpc=per_rpc(server_cpu * 1e6),
        loadgen_cpu_s=result.cpu_s,
        loadgen_cpu_util=result.cpu_s / (duration * len(settings.loadgen_cpus)),
        loadgen_cpu_us_per_rpc=per_rpc(result.cpu_s * 1e6),
        server_rss_mb=after.rss_bytes / 2**20,
    )
    if before.tx_bytes is None or after.tx_bytes is None:
        notes.append("wire bytes unavailable (no ss)")
    else:
        tx = (after.tx_bytes - before.tx_bytes) * wire_scale
        rx = (after.rx_bytes - before.rx_bytes) * wire_scale
        row.update(
            wire_tx_bytes_per_rpc=per_rpc(tx), wire_rx_bytes_per_rpc=per_rpc(rx), wire_bytes_per_rpc=per_rpc(tx + rx)
        )
    # Busy = running or runnable: a generator starved by another process on its CPU uses
    # less CPU than it wants, yet it is just as much the limit.
    busy_util = result.busy_s / (duration * len(settings.loadgen_cpus)) if result.busy_s is not None else 0.0
    row["loadgen_saturated"] = bool(max(row["loadgen_cpu_util"], busy_util) >= SATURATED)
    row["server_saturated"] = bool(row["server_cpu_util"] >= SATURATED)
    if row["loadgen_saturated"]:
        notes.append("load generator saturated: throughput and latency may be the client's limit, not the server's")
    elif row["mode"] == "closed" and row["concurrency"] == 1 and ok:
        # Nothing overlaps with one RPC in flight: however idle the generator looks, its own time
        # per call is in every round trip (README, cross-check: Python's is ~0.1 ms more than ghz's).
        notes.append(
            f"one RPC in flight: every round trip includes the load generator's own "
            f"{row['loadgen_cpu_us_per_rpc']:.0f} us of CPU per call, so latency is not the server's alone"
        )
    for name in ("call", "msg", "first", "lag"):
        hist = result.hists.get(name)
        row[f"hdr_{name}"] = histogram.encode(hist) if hist is not None and hist.get_total_count() else ""


def _scale(window_s: float, first_at: float, second_at: float) -> float:
    """window / the interval between two readings (1.0 when the readings carry no times)."""
    interval = second_at - first_at
    return window_s / interval if interval > 0 and first_at > 0 else 1.0


def _json(value: dict) -> str:
    return json.dumps(value, sort_keys=True)
