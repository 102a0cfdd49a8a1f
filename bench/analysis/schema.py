"""The one tidy schema every result row has: runner writes it; report, notebooks and compare read it.

One row per cell x repetition. Axis columns come from bench.spec.Cell; every
other column is declared here with its type, unit and meaning, and this table
is also what the README's metric reference is generated from
(``python -m bench.analysis.schema``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..spec import AXES, DEFAULTS
from ..spec.cell import LATER_AXES

# The row format. A column added later carries the format it appeared in (``since``); rows written
# in an older format are completed on reading (:func:`complete`): a later axis takes its default
# (that is what was measured), a later metric is blank. Bump FORMAT when adding columns.
FORMAT = 2
SCHEMA_PREFIX = "grpclab.cell/"
SCHEMA_VERSION = f"{SCHEMA_PREFIX}{FORMAT}"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str" | "int" | "float" | "bool"
    unit: str
    meaning: str
    since: int = 1  # the row format that added this column


_AXIS_KINDS = {
    "workers": "int",
    "processes": "int",
    "payload_size": "int",
    "concurrency": "int",
    "connections": "int",
    "stream_messages": "int",
    "rate": "float",
}

IDENTITY = (
    Column("run_id", "str", "", "run directory name"),
    Column("cell_key", "str", "", "stable id of the cell's axis values"),
    Column("repetition", "int", "", "repetition number, 0-based"),
    Column("order", "int", "", "position in the run's shuffled execution order"),
    Column("started_at", "str", "ISO 8601", "when this repetition started (UTC)"),
)
AXIS_COLUMNS = tuple(
    Column(
        axis,
        _AXIS_KINDS.get(axis, "str"),
        "B" if axis == "payload_size" else "",
        "axis value (see spec)",
        since=FORMAT if axis in LATER_AXES else 1,
    )
    for axis in AXES
)
METRICS = (
    Column("server_cpus", "str", "", "CPUs the server was pinned to"),
    Column("loadgen_cpus", "str", "", "CPUs the load generator was pinned to"),
    Column("loadgen_processes", "int", "", "load-generator processes actually used"),
    Column("duration_s", "float", "s", "length of the measured window"),
    Column("rpcs", "int", "", "RPCs whose (intended) start fell in the window"),
    Column("rpcs_ok", "int", "", "of those, finished with OK and a correct reply"),
    Column("errors", "int", "", "of those, failed (any status, or a wrong reply: DATA_LOSS)"),
    Column("errors_by_code", "str", "JSON", "failed RPCs by status code name"),
    Column("rps", "float", "RPC/s", "rpcs_ok / duration_s"),
    Column("offered_rps", "float", "RPC/s", "open loop: the offered rate; closed loop: empty"),
    Column("lat_mean_ms", "float", "ms", "per-call latency, mean (open loop: from intended send time)"),
    Column("lat_p50_ms", "float", "ms", "per-call latency, median"),
    Column("lat_p90_ms", "float", "ms", "per-call latency, 90th percentile"),
    Column("lat_p99_ms", "float", "ms", "per-call latency, 99th percentile"),
    Column("lat_p999_ms", "float", "ms", "per-call latency, 99.9th percentile"),
    Column("lat_max_ms", "float", "ms", "per-call latency, maximum"),
    Column(
        "msg_p50_ms",
        "float",
        "ms",
        "streams: median per-message time (server stream: gap between messages; bidi: message round trip)",
    ),
    Column("msg_p99_ms", "float", "ms", "streams: 99th percentile per-message time"),
    Column("first_msg_p50_ms", "float", "ms", "server stream: median time to first message"),
    Column("first_msg_p99_ms", "float", "ms", "server stream: 99th percentile time to first message"),
    Column("send_lag_p99_ms", "float", "ms", "open loop: how late the generator sent, 99th percentile"),
    Column("server_cpu_s", "float", "s", "server CPU (user+system, all server processes) in the window"),
    Column("server_cpu_util", "float", "fraction", "server_cpu_s / (duration_s x server CPUs)"),
    Column("server_cpu_us_per_rpc", "float", "us", "server CPU per OK RPC"),
    Column("loadgen_cpu_s", "float", "s", "load-generator CPU in the window, all its processes"),
    Column("loadgen_cpu_util", "float", "fraction", "loadgen_cpu_s / (duration_s x load-generator CPUs)"),
    Column("loadgen_cpu_us_per_rpc", "float", "us", "load-generator CPU per OK RPC"),
    Column("server_rss_mb", "float", "MiB", "server resident memory at the window's end, all processes"),
    Column("wire_tx_bytes_per_rpc", "float", "B", "TCP bytes the server sent and had acked, per OK RPC (kernel)"),
    Column("wire_rx_bytes_per_rpc", "float", "B", "TCP bytes the server received, per OK RPC (kernel)"),
    Column("wire_bytes_per_rpc", "float", "B", "wire_tx + wire_rx per OK RPC"),
    Column("payload_ratio", "float", "x", "request payload size / its compressed size under the cell's compression"),
    Column("overhead_s", "float", "s", "harness time of this repetition beyond warm-up + window"),
    Column(
        "loadgen_saturated",
        "bool",
        "",
        "load generator >= 90 % busy (on a CPU or in its run queue): the numbers may be the client's limit",
    ),
    Column("server_saturated", "bool", "", "server >= 90 % of its CPUs busy"),
    Column("failed", "bool", "", "the repetition did not produce measurements (see error)"),
    Column("error", "str", "", "why it failed"),
    Column("notes", "str", "", "caveats recorded for this row, '; '-separated"),
)
HISTOGRAMS = (
    Column("hdr_call", "str", "HdrHistogram/us", "per-call latency histogram, base64"),
    Column("hdr_msg", "str", "HdrHistogram/us", "per-message histogram, base64"),
    Column("hdr_first", "str", "HdrHistogram/us", "time-to-first-message histogram, base64"),
    Column("hdr_lag", "str", "HdrHistogram/us", "open-loop send-lag histogram, base64"),
)
COLUMNS = IDENTITY + AXIS_COLUMNS + METRICS + HISTOGRAMS
NAMES = tuple(c.name for c in COLUMNS)
BY_NAME = {c.name: c for c in COLUMNS}
CSV_NAMES = tuple(c.name for c in COLUMNS if c not in HISTOGRAMS)  # histograms stay in parquet


def empty_row() -> dict:
    """A row with every column present: NaN for numbers, '' for text, False for flags."""
    blank = {"str": "", "int": 0, "float": float("nan"), "bool": False}
    return {c.name: blank[c.kind] for c in COLUMNS}


def format_of(schema_name: object) -> int | None:
    """The row format a cell file's "schema" names (None: not a grpclab cell file, or a newer format)."""
    if not isinstance(schema_name, str) or not schema_name.startswith(SCHEMA_PREFIX):
        return None
    number = schema_name.removeprefix(SCHEMA_PREFIX)
    return int(number) if number.isdigit() and 1 <= int(number) <= FORMAT else None


def missing_columns(present: Iterable[str], written_in: int = FORMAT) -> list[str]:
    """Columns a row written in format ``written_in`` must have and does not."""
    have = set(present)
    return [c.name for c in COLUMNS if c.since <= written_in and c.name not in have]


def later_defaults(present: Iterable[str]) -> dict[str, object]:
    """Values for the columns added after a row was written: the axis default, else blank."""
    have = set(present)
    blank = empty_row()
    return {c.name: DEFAULTS.get(c.name, blank[c.name]) for c in COLUMNS if c.since > 1 and c.name not in have}


def complete(row: dict) -> dict:
    """A row of any readable format, with every current column (see FORMAT)."""
    return {**later_defaults(row), **row}


def markdown_table() -> str:
    lines = ["| column | unit | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.unit} | {c.meaning} |" for c in IDENTITY + METRICS + HISTOGRAMS]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
