"""`grpclab scenarios SPEC`: a spec's cells as a ``grpc.testing.Scenarios`` JSON document, what gRPC's own
``qps_json_driver --scenarios_file`` (and a LoadTest's ``scenariosJSON``) runs.

One Scenario per cell, named by its cell key, with the configs bench.remote.configs makes for the lab's own
driver (server_targets left empty: a driver fills them from its workers), one server, ``num_clients`` clients,
and the spec's warm-up and window. The document is protobuf's proto3 JSON mapping with the .proto field names
(snake_case), as upstream's scenario files are written.

A cell is left out, with one line naming it, when a worker could not run it as the lab's own run does: the
lab's driver refuses it (bench.remote.drive.cell_problem: gRPC's configs cannot say it), the lab's worker
would refuse the configs (configs.Refused), or the worker would start a different server or load than the
lab's run of the cell. The last two are the worker's own conversion run backwards, so they cannot drift from
what the worker does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from google.protobuf import json_format

from protos.grpc.testing import control_pb2

from ..load.job import LoadJob
from ..run.measure import server_args
from ..spec import Cell, Settings
from . import configs, drive

# Where the worker's certificates would be: only compared, never read (the check starts nothing).
_CERTS = Path("/certs")
_CHECK_TARGET = "server:1"  # a placeholder target: a driver fills server_targets from its workers


class ScenarioError(Exception):
    """No cell of the spec can run on a worker (one line): exit 2."""


@dataclass(frozen=True)
class Scenarios:
    """The document, the cells in it, and one line per cell left out."""

    message: control_pb2.Scenarios
    cells: tuple[Cell, ...]
    left_out: tuple[str, ...]  # "CELL_KEY: why", one per cell left out
    notes: tuple[str, ...]  # e.g. seconds rounded up to whole ones


def _options(args: Sequence[str]) -> dict[str, str]:
    """`grpclab serve` arguments as option -> value ("" for a flag)."""
    out: dict[str, str] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            follows = args[i + 1] if i + 1 < len(args) else "--"
            out[arg] = "" if follows.startswith("--") else follows
    return out


def _server_differences(cell: Cell, plan: configs.ServerPlan) -> list[str]:
    worker = _options(plan.args(_CERTS))
    lab = _options(server_args(cell, _CERTS))
    # The port is the worker's choice; the worker always serves BenchmarkService beside the tutorial's services.
    for options in (worker, lab):
        options.pop("--port", None)
        options.pop("--benchmark-service", None)
        options.setdefault("--compression", "none")
    return sorted(
        f"{name} {lab.get(name, '(unset)')}" for name in set(worker) | set(lab) if worker.get(name) != lab.get(name)
    )


def worker_problem(cell: Cell, settings: Settings) -> str | None:
    """Why a worker (the lab's, from gRPC's configs) would not run ``cell`` as the lab's run does; None: it would.

    First what the lab's driver refuses (bench.remote.drive.cell_problem), then the worker's conversion run
    backwards, which also catches what a worker would refuse or run differently that no rule names yet.
    """
    problem = drive.cell_problem(cell, settings)
    if problem is not None:
        return problem
    try:
        server = configs.server_config(cell, settings)
        client = configs.client_config(cell, settings, [_CHECK_TARGET])
        cpus = set(settings.server_cpus) | set(settings.loadgen_cpus)
        server_plan = configs.server_plan(server, certs_dir=_CERTS, available=cpus)
        client_plan = configs.client_plan(client, certs_dir=_CERTS, available=cpus)
    except configs.Inexpressible as exc:
        return str(exc)
    except configs.Refused as exc:
        return f"a worker refuses its configs: {exc.message}"
    differences = _server_differences(cell, server_plan)
    if differences:
        return f"gRPC's ServerConfig cannot say the server's {', '.join(differences)}"
    local = LoadJob.for_cell(cell, target=_CHECK_TARGET, tls_dir=_CERTS, settings=settings, repetition=0)
    # Only the window may differ: a driver's marks cut it, so the worker's job is bounded by the cell's time limit.
    expected = replace(local, warmup=0.0, duration=client_plan.job.duration)
    if client_plan.job != expected:
        differing = [
            f"{f.name}={getattr(local, f.name)}"
            for f in fields(LoadJob)
            if getattr(client_plan.job, f.name) != getattr(expected, f.name)
        ]
        return f"gRPC's ClientConfig cannot say the load's {', '.join(differing)}"
    return None


def whole_seconds(seconds: float) -> int:
    """A Scenario's seconds are whole: rounded up, so the window is never shorter than the spec's."""
    return max(1, math.ceil(seconds - 1e-9))


def scenario(cell: Cell, settings: Settings, num_clients: int = 1) -> control_pb2.Scenario:
    """The Scenario of one cell (call worker_problem first; this raises Inexpressible for what configs cannot say)."""
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
    kept: list[Cell] = []
    left_out: list[str] = []
    for cell in cells:
        problem = worker_problem(cell, settings)
        if problem is None:
            kept.append(cell)
        else:
            left_out.append(f"{cell.key()}: {problem}")
    if not kept:
        raise ScenarioError(f"no cell can run on a worker ({len(left_out)} left out, the first {left_out[0]})")
    notes = [
        f"settings.{name} {value:g} s is {whole_seconds(value)} s in the Scenarios (whole seconds)"
        for name, value in (("warmup", settings.warmup), ("duration", settings.duration))
        if whole_seconds(value) != value
    ]
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
