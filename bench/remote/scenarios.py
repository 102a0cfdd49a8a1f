"""`grpclab scenarios SPEC`: a spec's cells as a ``grpc.testing.Scenarios`` JSON document, what gRPC's own
``qps_json_driver --scenarios_file`` (and a LoadTest's ``scenariosJSON``) runs.

One Scenario per cell, named by its cell key, with the configs bench.remote.configs makes for the lab's own
driver (server_targets left empty: a driver fills them from its workers), one server, ``num_clients`` clients,
and the spec's warm-up and window. The document is protobuf's proto3 JSON mapping with the .proto field names
(snake_case), as upstream's scenario files are written.

A cell is left out, with one line naming it, when a worker could not run it as the lab's own run does
(bench.remote.drive.cell_problem, the same rule `grpclab run --hosts` applies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format

from protos.grpc.testing import control_pb2

from ..spec import Cell, Settings
from . import configs, drive


class ScenarioError(Exception):
    """No cell of the spec can run on a worker (one line): exit 2."""


@dataclass(frozen=True)
class Scenarios:
    """The document, the cells in it, and one line per cell left out."""

    message: control_pb2.Scenarios
    cells: tuple[Cell, ...]
    left_out: tuple[str, ...]  # "CELL_KEY: why", one per cell left out
    notes: tuple[str, ...]  # e.g. seconds rounded up to whole ones


def whole_seconds(seconds: float) -> int:
    """A Scenario's seconds are whole: rounded up, so the window is never shorter than the spec's."""
    return max(1, math.ceil(seconds - 1e-9))


def scenario(cell: Cell, settings: Settings, num_clients: int = 1) -> control_pb2.Scenario:
    """The Scenario of one cell (drive.cell_problem says first whether it can run; else this raises Inexpressible)."""
    return control_pb2.Scenario(
        name=cell.key(),
        server_config=configs.server_config(cell, settings),
        client_config=configs.client_config(cell, settings),
        num_servers=1,
        num_clients=num_clients,
        warmup_seconds=whole_seconds(settings.warmup),
        benchmark_seconds=whole_seconds(settings.duration),
    )


def build(cells: Sequence[Cell], settings: Settings, num_clients: int = 1) -> Scenarios:
    """The cells a worker can run as Scenarios; ScenarioError when none can."""
    if num_clients < 1:
        raise ScenarioError(f"--clients: must be >= 1, got {num_clients}")
    kept, refused = drive.sort_out(cells, settings)
    left_out = [f"{cell.key()}: {problem}" for cell, problem in refused]
    if not kept:
        raise ScenarioError(f"no cell can run on a worker ({len(left_out)} left out, the first {left_out[0]})")
    notes = [
        f"settings.{name} {value:g} s is {whole_seconds(value)} s in the Scenarios (whole seconds)"
        for name, value in (("warmup", settings.warmup), ("duration", settings.duration))
        if whole_seconds(value) != value
    ]
    # the Scenarios say messages_per_stream, but a client worker that ignores it (grpc-go's) never ends a stream
    for cell in kept:
        problem = drive.open_streams_problem(cell, num_clients)
        if problem:
            notes.append(f"{cell.key()}: with a client worker that ignores messages_per_stream (grpc-go's), {problem}")
    message = control_pb2.Scenarios(scenarios=[scenario(cell, settings, num_clients) for cell in kept])
    return Scenarios(message, tuple(kept), tuple(left_out), tuple(notes))


def to_json(message: control_pb2.Scenarios | control_pb2.Scenario) -> str:
    """Proto3 JSON with the .proto field names, as upstream's scenario files (and qps_json_driver) read them.

    Fields at their zero value are written too (SYNC_SERVER, UNARY, ...), as upstream's files write them: a reader
    sees every setting instead of having to know proto3's defaults.
    """
    return (
        json_format.MessageToJson(
            message, preserving_proto_field_name=True, indent=2, always_print_fields_with_no_presence=True
        )
        + "\n"
    )


def from_json(text: str) -> control_pb2.Scenarios:
    """A Scenarios document back into the message (json_format.ParseError on a field the protos do not have)."""
    return json_format.Parse(text, control_pb2.Scenarios())


def main(spec_path: str, out: Path | None, num_clients: int = 1, filter_expr: str | None = None) -> int:
    """`grpclab scenarios`: the JSON to ``out`` (or stdout); each cell left out, and each rounding, on stderr."""
    import sys

    from ..spec import SpecError, filter_cells, load_spec

    spec = load_spec(spec_path)
    cells = filter_cells(spec.cells, filter_expr) if filter_expr else spec.cells
    if not cells:
        raise SpecError(f"--filter: {filter_expr!r} selects no cell of {spec.name}")
    document = build(cells, spec.settings, num_clients)
    for line in document.left_out:
        print(f"left out {line}", file=sys.stderr)
    for line in document.notes:
        print(f"note: {line}", file=sys.stderr)
    text = to_json(document.message)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        print(f"{len(document.cells)} scenarios in {out} ({len(document.left_out)} cells left out)", file=sys.stderr)
    return 0
