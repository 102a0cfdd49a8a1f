"""A run's placement over gRPC benchmark workers: `grpclab run SPEC --hosts SERVER,CLIENT[,CLIENT...]`.

The executor runs a driven run as any other (plan, resume, per-cell files, repetitions, interleaving,
progress, calibration, findings); only the repetition itself differs. Where a local placement hands
bench.run.measure a :class:`~bench.run.placement.Site` to start processes in, this placement measures the
repetition itself: bench.remote.driver.run_repetition sends the cell's configs to the workers and reads
their marks (bench.run.measure.measure asks it to, see :class:`~bench.run.placement.DrivenPlacement`).

Before anything is written, :meth:`WorkersPlacement.check` asks every worker for its cores (a worker that
does not answer within ``REACH_TIMEOUT_S`` stops the run with one line) and, on the lab's workers, for
their `grpclab system` facts (grpclab.WorkerFacts); :meth:`describe` then gives the manifest each worker's
address, role, kind and facts. A foreign worker (another language's) answers UNIMPLEMENTED to the facts
question: it is recorded with no facts and a note saying so.

Once the run measures, a worker that dies makes the repetitions it was part of failed rows (the error
names it), and the run goes on: the next repetitions fail fast on a refused connection, and every wait on
a worker is bounded (the cell's time limit plus bench.remote.driver.STREAM_MARGIN_S).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from protos.grpc.testing import control_pb2, worker_service_pb2_grpc
from protos.grpclab import facts_pb2, facts_pb2_grpc

from ..machine.system import SystemFacts
from ..run.hosts import CLIENT, SERVER, WorkerAddress
from ..run.manifest import PlacementInfo, WorkerInfo
from ..run.placement import RunError
from ..spec import Cell, Settings, SpecError
from ..spec.cell import check_cell
from . import configs, driver

if TYPE_CHECKING:
    from ..run.measure import Context

KIND = "workers"
REACH_TIMEOUT_S = 10.0  # a worker's CoreCount; a worker that does not answer this fast is not there
FACTS_TIMEOUT_S = 30.0  # grpclab system samples steal time and runs systemd-detect-virt
FOREIGN_NOTE = "not a lab worker (no grpclab.WorkerFacts): its machine's facts are not recorded"


def cell_problem(cell: Cell, settings: Settings) -> str | None:
    """Why ``cell`` cannot run over workers (one line naming the axis), or None.

    What bench.spec refuses (check_cell), what gRPC's configs cannot say (bench.remote.configs) and what the
    lab's worker does not run: ghz, the other client models, per-call channels, option presets, handler work.
    """
    try:
        check_cell(cell, "cell")
        configs.server_config(cell, settings)
        configs.client_config(cell, settings, ["check:0"])
    except (SpecError, configs.Inexpressible) as exc:
        return str(exc).removeprefix("cell: ")
    return None


@dataclass
class WorkersPlacement:
    """One server worker and one or more client workers, somewhere; the settings' CPUs are each worker's."""

    workers: tuple[WorkerAddress, ...]
    settings: Settings
    _found: tuple[WorkerInfo, ...] | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        return next(w.address for w in self.workers if w.role == SERVER)

    @property
    def clients(self) -> list[str]:
        return [w.address for w in self.workers if w.role == CLIENT]

    def check(self) -> None:
        """Every worker answers (RunError naming the first that does not); the lab's workers say their facts."""
        if self._found is None:
            self._found = tuple(self._ask(worker) for worker in self.workers)

    def _ask(self, worker: WorkerAddress) -> WorkerInfo:
        pinning = self.settings.server_cpus if worker.role == SERVER else self.settings.loadgen_cpus
        with grpc.insecure_channel(worker.address) as channel:
            try:
                cores = (
                    worker_service_pb2_grpc.WorkerServiceStub(channel)
                    .CoreCount(control_pb2.CoreRequest(), timeout=REACH_TIMEOUT_S)
                    .cores
                )
            except grpc.RpcError as exc:
                raise RunError(
                    f"--hosts: {worker.role} worker {worker.address} does not answer ({exc.code().name}: "
                    f"{exc.details()}); start it there with: grpclab worker --driver-port PORT --host HOST"
                ) from None
            try:
                reply = facts_pb2_grpc.WorkerFactsStub(channel).System(
                    facts_pb2.FactsRequest(pinning=pinning), timeout=FACTS_TIMEOUT_S
                )
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return WorkerInfo(worker.address, worker.role, "foreign", cores, None, note=FOREIGN_NOTE)
                note = f"grpclab system facts not recorded: {exc.code().name}: {exc.details()}"
                return WorkerInfo(worker.address, worker.role, "grpclab", cores, None, note=note)
        facts = SystemFacts.from_json(json.loads(reply.facts_json))
        return WorkerInfo(worker.address, worker.role, reply.worker or "grpclab", cores, facts, dict(reply.versions))

    def describe(self) -> PlacementInfo:
        found = self._found or tuple(WorkerInfo(w.address, w.role, "unknown", note="not asked") for w in self.workers)
        return PlacementInfo(
            kind=KIND,
            server_cpus=tuple(self.settings.server_cpus),
            loadgen_cpus=tuple(self.settings.loadgen_cpus),
            workers=found,
        )

    def problems(self, cells: Sequence[Cell]) -> list[str]:
        """One line per cell of ``cells`` that cannot run over workers (they fail in their rows; the rest run)."""
        lines = []
        for key, cell in {cell.key(): cell for cell in cells}.items():
            problem = cell_problem(cell, self.settings)
            if problem:
                lines.append(f"cell {key} cannot run over workers: {problem}")
        return lines

    def measure(self, cell: Cell, repetition: int, order: int, context: Context) -> dict:
        """One repetition over the workers -> its row (bench.run.measure.measure's contract: failures are rows)."""
        problem = cell_problem(cell, context.settings)
        if problem:
            row = driver.new_row(cell, context.settings, context.run_id, repetition, order)
            row.update(failed=True, error=f"cannot run over workers: {problem}")
            return row
        row = driver.run_repetition(
            cell,
            context.settings,
            self.server,
            self.clients,
            run_id=context.run_id,
            repetition=repetition,
            order=order,
        )
        floor = context.calibration.floor_note(cell.loadgen, row["lat_p50_ms"]) if context.calibration else None
        if floor and not row["failed"]:
            row["notes"] = "; ".join(filter(None, (row["notes"], floor)))
        return row
