"""The workload studies: RPC kinds against unary, messages per stream, RPCs in flight, connections, open-loop
arrivals, gRPC's BenchmarkService against the tutorial services, and the handler work against none."""

from __future__ import annotations

from .engine import CPU, P99, CellStats, Finding, Run, headline_metric
from .pairwise import AxisStudy, axis_findings
from .servers import _pool_headline
from .words import _RPC_NAMES, _number, _plural, _work_phrase


def _per_message(a: CellStats, b: CellStats) -> tuple[str, dict[str, float]]:
    """Server CPU per message: a streaming call's CPU over its messages (a unary call is one)."""
    per = [c.median(CPU) / int(c.axes["stream_messages"]) for c in (a, b)]
    words = f" ({_number(CPU, per[0])} and {_number(CPU, per[1])} us of server CPU per message)"
    return words, {"server_cpu_per_message_us": per[1], "reference_server_cpu_per_message_us": per[0]}


RPC = AxisStudy(
    "rpc", "rpc", metric=lambda a, b: CPU, name=lambda v: _RPC_NAMES.get(str(v), str(v)), extra=_per_message
)
STREAM_MESSAGES = AxisStudy(
    "stream_messages",
    "stream_messages",
    metric=lambda a, b: CPU,
    name=lambda v: f"{_plural(int(v), 'message')} per call",
    extra=_per_message,
    where=lambda c: c.axes["rpc"] != "unary",
)
CONCURRENCY = AxisStudy(
    "concurrency",
    "concurrency",
    metric=lambda a, b: headline_metric([a, b]),
    name=lambda v: f"{v} in flight",
    where=lambda c: c.axes["mode"] == "closed",
)
CONNECTIONS = AxisStudy(
    "connections",
    "connections",
    metric=lambda a, b: headline_metric([a, b]),
    name=lambda v: _plural(int(v), "connection"),
)
ARRIVAL = AxisStudy(
    "arrival",
    "arrival",
    metric=lambda a, b: P99,
    name=lambda v: f"{v} arrivals",
    rps_quoted=False,
    where=lambda c: c.axes["mode"] == "open",
)
SERVICE = AxisStudy(
    "service",
    "service",
    metric=lambda a, b: headline_metric([a, b]),
    name=lambda v: "gRPC's BenchmarkService" if v == "benchmark" else "the tutorial services",
)
HANDLER_WORK = tuple(
    AxisStudy(
        "handler_work",
        axis,
        metric=lambda a, b: _pool_headline([a, b]),  # the work sets the pace
        name=lambda v, axis=axis: (
            _work_phrase({"handler_wait_ms": 0, "handler_block_ms": 0, "handler_cpu_us": 0} | {axis: v})
            or "no handler work"
        ),
        reference=zero,
    )
    for axis, zero in (("handler_wait_ms", 0.0), ("handler_block_ms", 0.0), ("handler_cpu_us", 0))
)


def rpc(run: Run) -> list[Finding]:
    """Each streaming RPC kind against unary: server CPU per call, and per message."""
    return axis_findings(run, RPC)


def stream_messages(run: Run) -> list[Finding]:
    """Longer streams against the baseline's: server CPU per call, and per message."""
    return axis_findings(run, STREAM_MESSAGES)


def concurrency(run: Run) -> list[Finding]:
    """More or fewer RPCs in flight (closed loop) against the baseline's: the headline metric decides."""
    return axis_findings(run, CONCURRENCY)


def connections(run: Run) -> list[Finding]:
    """The load spread over more channels against the baseline's: the headline metric decides."""
    return axis_findings(run, CONNECTIONS)


def arrival(run: Run) -> list[Finding]:
    """Open loop, the same offered rate: Poisson arrivals against evenly spaced ones, by p99."""
    return axis_findings(run, ARRIVAL)


def service(run: Run) -> list[Finding]:
    """gRPC's BenchmarkService against the tutorial services, on the same server and load."""
    return axis_findings(run, SERVICE)


def handler_work(run: Run) -> list[Finding]:
    """Handlers that wait, block or burn CPU against handlers that do nothing, on the same server: RPC/s decides
    (the work sets the pace) unless a generator was saturated."""
    return [finding for spec in HANDLER_WORK for finding in axis_findings(run, spec)]
