"""What does Python cost per RPC? Each Python cell against the grpc-go reference cell with the same other axes.

    from bench import results
    from bench.analysis import reference
    found = reference.ratios(results.load(run_dir), results.read_manifest(run_dir))
    print(reference.to_markdown(found))     # the table and the answer in words; to_html for the report

``python -m bench.analysis.reference RUN_DIR`` prints the same markdown.

Pairing is bench.analysis.findings.pairs (the one matching rule: every axis but ``impl`` equal where it applies, so a
sync cell of any thread count meets the Go cell, whose ``workers`` is 0), without its one-use rule: every Python cell
gets its ratio, two sync cells with different thread counts both against the one Go cell.

The ratios are of medians over each cell's successful repetitions:

- **server CPU per RPC**, Python / Go: what the server spends per RPC does not depend on who set the pace, so it is
  always compared;
- **RPC/s**, Python / Go: only when no load generator was saturated in either cell (``loadgen_saturated`` in no
  repetition); otherwise the faster server's RPC/s is the client's limit, and the row says so instead.

The Go server's CPU busy is shown too. Where the Go server was not the limit (not ``server_saturated``, >= 90 % of its
CPUs busy, in every repetition: findings.CellStats.server_limited, the rule findings' headline follows), its RPC/s is
what the load generator drove, not what Go can serve: an RPC/s ratio there is an upper bound of Python over Go (Go
could serve more), and only CPU per RPC compares fairly; the answer says so in words, with Go's busy.
"""

from __future__ import annotations

import argparse
import html
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..run.manifest import Manifest
from ..spec import ALLOWED, AXES
from ..spec.cell import applies
from . import findings, results, stability, table

PYTHON_IMPLS = ("sync", "aio")
REFERENCE = "go"
CPU = findings.CPU
RPS = findings.RPS
BUSY = findings.SERVER_UTIL
SHOWN: table.Shown = (
    ("python_cpu", "Python srv CPU us/RPC", "{:,.0f}"),
    ("go_cpu", "Go srv CPU us/RPC", "{:,.1f}"),
    ("cpu_ratio", "CPU Python/Go", "{:.2f}x"),
    ("python_rps", "RPC/s Python", "{:,.0f}"),
    ("go_rps", "RPC/s Go", "{:,.0f}"),
    ("rps_ratio", "RPC/s Python/Go", "{:.2f}x"),
    ("python_busy", "Python srv busy", "{:.0%}"),
    ("go_busy", "Go srv busy", "{:.0%}"),
)
TITLE = "What Python costs per RPC: each Python cell against the grpc-go reference"


@dataclass(frozen=True)
class Ratio:
    """One Python cell and the Go cell with the same other axes."""

    python: findings.CellStats
    go: findings.CellStats
    noise_cv: dict[str, float] = field(default_factory=dict, compare=False)  # the run's calibrated noise, if any

    @property
    def impl(self) -> str:
        return str(self.python.axes["impl"])

    @property
    def cpu_ratio(self) -> float:
        """Python's server CPU per RPC over Go's (NaN when either is missing or Go's is 0)."""
        return _over(self.python.median(CPU), self.go.median(CPU))

    @property
    def cpu_ratio_range(self) -> tuple[float, float]:
        """The ratio's spread: Python's lowest over Go's highest .. Python's highest over Go's lowest."""
        return _over(self.python.low(CPU), self.go.high(CPU)), _over(self.python.high(CPU), self.go.low(CPU))

    @property
    def generator_saturated(self) -> bool:
        return self.python.generator_limited or self.go.generator_limited

    @property
    def rps_ratio(self) -> float:
        """Python's RPC/s over Go's; NaN when a generator was saturated in either cell (then it is the client's)."""
        return math.nan if self.generator_saturated else _over(self.python.median(RPS), self.go.median(RPS))

    @property
    def go_not_the_limit(self) -> bool:
        """The Go server was not saturated in every repetition: its RPC/s is not its capacity."""
        return not self.go.server_limited


def _over(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan


def _spec_order(axes: dict[str, object]) -> tuple:
    """The setting in spec order (enumerated axes by their allowed order), then the server: sync before aio."""
    setting = [a for a in AXES if a not in ("impl", "workers")]
    return tuple(
        ALLOWED[a].index(axes[a]) if a in ALLOWED and axes[a] in ALLOWED[a] else axes[a]
        for a in (*setting, "impl", "workers")
    )


def ratios(df: pd.DataFrame, manifest: Manifest) -> list[Ratio]:
    """Every Python cell that has a Go cell with the same other axes, in spec order (sync before aio per setting)."""
    run = findings.run_of(df, manifest)
    noise = dict(run.calibration.noise_cv)
    found = [
        Ratio(python=py, go=go, noise_cv=noise)
        for impl in PYTHON_IMPLS
        for go, py in findings.pairs(run, "impl", REFERENCE, impl, one_to_one=False)
    ]
    return sorted(found, key=lambda r: _spec_order(r.python.axes))


# -- the table: bench.analysis.table's model, one row per Python cell ------------------------------------------------


def _varying(found: Sequence[Ratio]) -> list[str]:
    axes = [a for a in AXES if len({str(r.python.axes[a]) for r in found}) > 1]
    if "workers" in axes and not any(applies("workers", r.python.axes) for r in found):
        axes.remove("workers")
    return ["impl", *(a for a in axes if a != "impl")]


def _label(ratio: Ratio, axis: str) -> str:
    if not applies(axis, ratio.python.axes):
        return "-"  # the workers of an aio cell
    return table.value_text(axis, ratio.python.axes[axis])


def to_table(found: Sequence[Ratio]) -> table.CellTable:
    """One row per Python cell: its axes that vary, then SHOWN; flags say why an RPC/s ratio is left out, and which
    of the two cells failed repetitions or varied beyond the summary table's unstable rule."""
    axes = _varying(found)
    rows = []
    for r in found:
        py, go = r.python, r.go
        values = (
            py.median(CPU),
            go.median(CPU),
            r.cpu_ratio,
            py.median(RPS),
            go.median(RPS),
            r.rps_ratio,
            py.median(BUSY),
            go.median(BUSY),
        )
        flags = []
        saturated = [name for name, cell in (("Python", py), ("Go", go)) if cell.generator_limited]
        if saturated:
            text = f"gen-saturated ({' and '.join(saturated)} cell): RPC/s not compared"
            flags.append(table.Flag("saturated", text))
        failed = py.failed + go.failed
        if failed:
            flags.append(table.Flag("failed", f"{failed} failed", "failed repetitions are left out of the medians"))
        for name, cell in (("Python", py), ("Go", go)):  # the summary table's rule (bench.analysis.stability)
            spread = stability.unstable(cell.samples, r.noise_cv)
            if spread:
                why = "; ".join(s.text() for s in spread)
                flags.append(table.Flag("unstable", f"unstable ({name} cell: {why})", why))
        labels = tuple(_label(r, a) for a in axes)
        reps = min(py.repetitions, go.repetitions)
        rows.append(table.CellRow(py.key, labels, reps, values, tuple(flags)))
    shared = [a for a in AXES if a not in axes and found and applies(a, found[0].python.axes)]
    fixed = table.fixed_axes(found[0].python.axes, shared) if found else ()
    return table.CellTable(tuple(axes), tuple(rows), fixed, shown=SHOWN)


# -- the answer in words --------------------------------------------------------------------------------------------


def _server(ratio: Ratio, found: Sequence[Ratio]) -> str:
    if ratio.impl == "sync" and len({r.python.axes["workers"] for r in found if r.impl == "sync"}) > 1:
        threads = int(ratio.python.axes["workers"])
        return f"sync ({threads} thread{'s' if threads != 1 else ''})"
    return ratio.impl


_RPC_WORDS = {"server_stream": "server streaming", "client_stream": "client streaming", "bidi": "bidi"}


def _setting(axes: dict[str, object], varying: Sequence[str]) -> str:
    """'unary, 0 B', '10-message server streaming, 64 KiB, driven by ghz': the compared cells' setting in words."""
    rpc = str(axes["rpc"])
    words = [rpc if rpc == "unary" else f"{axes['stream_messages']}-message {_RPC_WORDS.get(rpc, rpc)}"]
    words.append(table.fmt_size(int(axes["payload_size"])))
    for axis in varying:
        if axis == "loadgen":
            words.append(f"driven by {'the Python generator' if axes[axis] == 'python' else axes[axis]}")
        elif axis not in ("impl", "workers", "rpc", "payload_size", "stream_messages"):
            words.append(f"{axis} {table.value_text(axis, axes[axis])}")
    return ", ".join(words)


def _us(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _x(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


@dataclass(frozen=True)
class Answer:
    lead: str
    items: tuple[str, ...]  # one per setting: each Python server's ratio, with both medians
    notes: tuple[str, ...]  # the extremes, RPC/s where it compares, Go's distance from saturation


def answer(found: Sequence[Ratio]) -> Answer | None:
    """The question "what does Python cost me, per RPC kind and payload?" answered with the run's numbers."""
    usable = [r for r in found if math.isfinite(r.cpu_ratio)]
    if not usable:
        return None
    varying = _varying(usable)
    settings: dict[str, list[Ratio]] = {}
    for r in usable:
        settings.setdefault(_setting(r.python.axes, varying), []).append(r)
    items = []
    for where, group in settings.items():
        parts = [
            f"{_server(r, usable)} {_x(r.cpu_ratio)} ({_us(r.python.median(CPU))} vs {_us(r.go.median(CPU))} us)"
            for r in group
        ]
        items.append(f"{where}: {', '.join(parts)}")
    lead = (
        "What Python costs per RPC: server CPU per RPC of each Python server over the grpc-go server's, "
        "same cell otherwise (medians)"
    )
    low = min(usable, key=lambda r: r.cpu_ratio)
    high = max(usable, key=lambda r: r.cpu_ratio)
    notes = []
    if len(usable) > 1:
        notes.append(
            f"From {_x(low.cpu_ratio)} ({_server(low, usable)}, {_setting(low.python.axes, varying)}) to "
            f"{_x(high.cpu_ratio)} ({_server(high, usable)}, {_setting(high.python.axes, varying)})."
        )
    compared = [r for r in usable if math.isfinite(r.rps_ratio)]
    if compared:
        slow = min(compared, key=lambda r: r.rps_ratio)
        fast = max(compared, key=lambda r: r.rps_ratio)
        ends = [(slow, " ")] if slow is fast else [(slow, " from "), (fast, " to ")]
        text = "".join(
            f"{lead}{_x(r.rps_ratio)} ({_server(r, usable)}, {_setting(r.python.axes, varying)})" for r, lead in ends
        )
        notes.append(
            f"RPC/s, Python over Go, where no load generator was saturated ({len(compared)} of {len(usable)} "
            f"pairs):{text} of Go's."
        )
    left_out = len(usable) - len(compared)
    if left_out:
        notes.append(
            f"RPC/s is not compared in {left_out} of {len(usable)} pairs: a load generator was saturated there, so "
            "the faster server's RPC/s is the client's limit."
        )
    idle = sorted({r.go.key: r.go.median(BUSY) for r in usable if r.go_not_the_limit}.values())
    if idle:
        go_cells = len({r.go.key for r in usable})
        span = f"{idle[0]:.0%}" if idle[0] == idle[-1] else f"{idle[0]:.0%}-{idle[-1]:.0%}"
        if len(idle) == go_cells:
            where = "its one cell" if go_cells == 1 else f"all {go_cells} of its cells"
        else:
            where = f"{len(idle)} of its {go_cells} cells"
        notes.append(
            f"The Go server was not the limit in {where} ({span} of its CPU busy, median): "
            "there its RPC/s is what the load generator drove, not what Go can serve, so RPC/s Python/Go is an "
            "upper bound (Go could serve more), and only CPU per RPC compares fairly."
        )
    return Answer(lead, tuple(items), tuple(notes))


def answer_markdown(found: Sequence[Ratio]) -> str:
    said = answer(found)
    if said is None:
        return ""
    return "\n".join([f"{said.lead}:", "", *(f"- {item}" for item in said.items), "", *said.notes]) + "\n"


def answer_html(found: Sequence[Ratio]) -> str:
    said = answer(found)
    if said is None:
        return ""
    items = "".join(f"<li>{html.escape(item)}</li>" for item in said.items)
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in said.notes)
    return f"<p>{html.escape(said.lead)}:</p><ul>{items}</ul>{notes}"


def to_markdown(found: Sequence[Ratio]) -> str:
    """The answer in words, then the table (what the README quotes and `python -m bench.analysis.reference` prints)."""
    if not found:
        return "No Python cell has a Go cell with the same other axes.\n"
    return answer_markdown(found) + "\n" + table.to_markdown(to_table(found))


def to_html(found: Sequence[Ratio]) -> str:
    return answer_html(found) + table.to_html(to_table(found))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis.reference", description=TITLE)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        found = ratios(results.load(args.run_dir), results.read_manifest(args.run_dir))
    except results.ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(to_markdown(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
