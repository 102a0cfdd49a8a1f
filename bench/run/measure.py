"""One repetition of one cell -> one row.

Ask the run's placement where the cell runs, start its server there (healthy, or the row says why),
put the cell's load on it from the generators' place (warm-up discarded), sample the server's CPU
and wire bytes at the measured window's edges, stop the server, and fill the row. A failure of one
repetition is a row with ``failed`` set, never an exception.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from servers import go_server

from ..analysis import schema
from ..load import histogram
from ..load.job import LoadError, LoadJob, LoadResult
from ..load.python_load import PythonLoad
from ..spec import Cell, Settings
from ..spec.compression import Compression
from . import sampling
from .netns import NetnsError
from .placement import DrivenPlacement, LoadgenHost, Placement, ServerLaunch
from .server_process import ServerStartError

if TYPE_CHECKING:
    from ..load.ghz import GhzLoad
    from .calibration import Calibration

SATURATED = 0.9  # fraction of the pinned CPUs busy
GO_NOTE = "go: workers axis does not apply; GOMAXPROCS follows the server CPUs"


@dataclass(frozen=True)
class ServerCode:
    """Which server code a side runs and with what (grpclab regress: the base's worktree and venv)."""

    env: Mapping[str, str] = field(default_factory=dict)  # extra environment (test-only fault knobs)
    code_dir: Path | None = None  # serve this source tree's code
    python: str | None = None  # ... with this interpreter and its packages (default: the harness's)


@dataclass(frozen=True)
class Context:
    run_id: str
    settings: Settings
    certs_dir: Path
    placement: Placement | DrivenPlacement
    server: ServerCode = ServerCode()
    calibration: Calibration | None = None  # the run's floor: rows near it say so in their notes


def server_args(cell: Cell, certs_dir: Path) -> list[str]:
    """`grpclab serve` arguments of the cell's server (the placement adds where it listens)."""
    args = ["--impl", cell.impl, "--processes", str(cell.processes)]
    if cell.impl == "sync":
        args += ["--workers", str(cell.workers)]
    if cell.tls != "off":
        args += ["--tls", str(certs_dir)] + (["--mtls"] if cell.tls == "mtls" else [])
    args += Compression.parse(cell.compression).server_args()
    if cell.server_options != "default":
        args += ["--options", cell.server_options]
    if cell.event_loop == "uvloop" and cell.impl == "aio":
        args.append("--uvloop")
    if cell.service == "benchmark":
        args.append("--benchmark-service")
    return args


def impl_notes(cell: Cell) -> list[str]:
    """What a row of this server model says about the axes it ignores."""
    if cell.impl == "aio":
        return ["aio: workers axis does not apply"]
    if cell.impl == "go":
        return [GO_NOTE]
    return []


def missing_server(cell: Cell, code: ServerCode) -> str | None:
    """Why the cell's server cannot start here (the Go server not built), in one line; None when it can.

    Only said for the harness's own interpreter and tree: another side's code (grpclab regress) finds its own.
    """
    if cell.impl != "go" or code.python is not None or code.code_dir is not None:
        return None
    if code.env.get(go_server.ENV_BINARY) is not None:
        return None  # the server's environment names a build; the server itself says if it is missing
    return None if go_server.find_binary() is not None else go_server.missing_text()


def go_warning(cells: Iterable[Cell]) -> str | None:
    """One line for the start of a run whose go cells will fail here (they fail in their rows; the rest run)."""
    keys = {cell.key() for cell in cells if cell.impl == "go"}
    if not keys or go_server.find_binary() is not None:
        return None
    return f"{len(keys)} go cells will fail ({go_server.missing_text()}); the other cells run"


def client_notes(cell: Cell) -> list[str]:
    """What the client-side and options axes did in this cell (bench.spec.cell CLIENT_RULES), for the row."""
    notes = []
    if cell.event_loop == "uvloop":
        ends = ["server"] if cell.impl == "aio" else []
        ends += ["client"] if cell.loadgen == "python" and cell.client == "aio" else []
        notes.append(f"uvloop: {ends[0]} only (the other end runs no asyncio loop)" if len(ends) == 1 else "")
    if cell.channel == "per-call":
        notes.append(
            "per-call: a channel per RPC, opened and closed inside each call's latency; wire bytes not measured "
            "(the server's connections close within the window, and only open ones can be read)"
        )
    if cell.loadgen == "ghz":
        if cell.channel_options == "keepalive":
            notes.append("ghz: keepalive time only (--keepalive); timeout and permit-without-calls are grpc-go's")
    if cell.impl == "go" and cell.server_options != "default":
        from servers.go_server import option_flags

        missing = option_flags(cell.server_options)[1]
        if missing:
            notes.append(f"go server: no grpc-go equivalent of {', '.join(missing)} (not applied)")
    return [note for note in notes if note]


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def make_load(cell: Cell, job: LoadJob, settings: Settings, host: LoadgenHost) -> PythonLoad | GhzLoad:
    if cell.loadgen == "ghz":
        from ..load.ghz import GhzLoad

        return GhzLoad(job, host)
    return PythonLoad(job, settings.loadgen_processes, host)


def measure(cell: Cell, repetition: int, order: int, ctx: Context) -> dict:
    """Run one repetition of one cell and return its row (failed rows included)."""
    if isinstance(ctx.placement, DrivenPlacement):
        return ctx.placement.measure(cell, repetition, order, ctx)  # over workers: they start what runs
    settings = ctx.settings
    where = ctx.placement.describe()
    row = schema.empty_row()
    row.update(cell.to_dict())
    row.update(
        run_id=ctx.run_id,
        cell_key=cell.key(),
        repetition=repetition,
        order=order,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        server_cpus=",".join(map(str, where.server_cpus)),
        loadgen_cpus=",".join(map(str, where.loadgen_cpus)),
    )
    notes = impl_notes(cell) + client_notes(cell)
    missing = missing_server(cell, ctx.server)
    if missing:
        row.update(failed=True, error=missing, notes="; ".join(notes))
        return row
    began = time.monotonic()
    tls_dir = ctx.certs_dir if cell.tls != "off" else None
    launch = ServerLaunch(
        tuple(server_args(cell, ctx.certs_dir)), tls_dir, ctx.server.env, ctx.server.code_dir, ctx.server.python
    )
    server_exit = 0
    try:
        with ctx.placement.cell(cell) as site:
            cpus = (len(site.server.cpus), len(site.loadgen.cpus))
            server = site.server.start(launch)
            try:
                job = LoadJob.for_cell(
                    cell, target=server.target, tls_dir=tls_dir, settings=settings, repetition=repetition
                )
                load = make_load(cell, job, settings, site.loadgen)
                try:
                    lo, hi = load.start()
                    _sleep_until(lo)
                    before = server.sample()
                    _sleep_until(hi)
                    after = server.sample()
                    result = load.result()
                    notes += site.notes()
                finally:
                    load.close()
            finally:
                server_exit = server.stop()
    except (ServerStartError, LoadError, NetnsError) as exc:
        row.update(failed=True, error=str(exc), notes="; ".join(notes))
        return row
    except Exception as exc:  # noqa: BLE001 - one broken repetition must not end the run; its row says why
        row.update(failed=True, error=f"{type(exc).__name__}: {exc}", notes="; ".join(notes))
        return row
    if server_exit != 0:
        notes.append(f"server exited with code {server_exit}")
    if cell.channel == "per-call":
        before = replace(before, tx_bytes=None, rx_bytes=None)  # see client_notes: not measurable
    fill_metrics(row, result, before, after, cpus, notes)
    floor_note = ctx.calibration.floor_note(cell.loadgen, row["lat_p50_ms"]) if ctx.calibration else None
    if floor_note:
        notes.append(floor_note)
    row["overhead_s"] = time.monotonic() - began - settings.warmup - settings.duration
    row["notes"] = "; ".join(notes + result.notes)
    return row


def fill_metrics(
    row: dict,
    result: LoadResult,
    before: sampling.Sample,
    after: sampling.Sample,
    cpus: tuple[int, int],
    notes: list[str],
) -> None:
    """The row's measurements; ``cpus``: how many CPUs the server and the generators had."""
    server_cpus, loadgen_cpus = cpus
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
    if result.time_to_first_rpc_ms is not None:
        row["time_to_first_rpc_ms"] = result.time_to_first_rpc_ms
    msg = histogram.summary_ms(result.hists["msg"])
    first = histogram.summary_ms(result.hists["first"])
    row.update(
        msg_p50_ms=msg["p50"], msg_p99_ms=msg["p99"], first_msg_p50_ms=first["p50"], first_msg_p99_ms=first["p99"]
    )
    # Counters are read a little after each edge of the window, and not equally late: rescale each
    # difference from the interval between its two readings to the window, so per-RPC values divide
    # the traffic and CPU of the window by its RPCs.
    cpu_scale = _scale(duration, before.cpu_at, after.cpu_at)
    wire_scale = _scale(duration, before.wire_at, after.wire_at)
    server_cpu = (after.cpu_s - before.cpu_s) * cpu_scale
    row.update(
        server_cpu_s=server_cpu,
        server_cpu_util=server_cpu / (duration * server_cpus),
        server_cpu_us_per_rpc=per_rpc(server_cpu * 1e6),
        loadgen_cpu_s=result.cpu_s,
        loadgen_cpu_util=result.cpu_s / (duration * loadgen_cpus),
        loadgen_cpu_us_per_rpc=per_rpc(result.cpu_s * 1e6),
        server_rss_mb=after.rss_bytes / 2**20,
    )
    if row.get("channel") == "per-call":
        pass  # said in the notes already (client_notes)
    elif before.tx_bytes is None or after.tx_bytes is None:
        notes.append("wire bytes unavailable (sock_diag could not read the server's TCP counters)")
    else:
        tx = (after.tx_bytes - before.tx_bytes) * wire_scale
        rx = (after.rx_bytes - before.rx_bytes) * wire_scale
        row.update(
            wire_tx_bytes_per_rpc=per_rpc(tx), wire_rx_bytes_per_rpc=per_rpc(rx), wire_bytes_per_rpc=per_rpc(tx + rx)
        )
    # Busy = running or runnable: a generator starved by another process on its CPU uses
    # less CPU than it wants, yet it is just as much the limit.
    busy_util = result.busy_s / (duration * loadgen_cpus) if result.busy_s is not None else 0.0
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
