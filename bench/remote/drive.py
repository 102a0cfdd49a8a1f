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
names it), and the run goes on: each repetition first asks every worker for its cores, so the next ones
fail within ``PROBE_TIMEOUT_S`` even when a host vanished without resetting its connections, and every
wait on a worker is bounded (the cell's time limit plus bench.remote.driver.STREAM_MARGIN_S).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from protos.grpc.testing import control_pb2, worker_service_pb2_grpc
from protos.grpclab import facts_pb2, facts_pb2_grpc

from ..load.job import LoadJob
from ..machine.system import SystemFacts
from ..run.hosts import CLIENT, SERVER, WorkerAddress
from ..run.manifest import PlacementInfo, WorkerInfo
from ..run.measure import server_args
from ..run.placement import RunError
from ..spec import Cell, Settings, SpecError
from ..spec.cell import check_cell
from . import configs, driver

if TYPE_CHECKING:
    from ..run.measure import Context

KIND = "workers"
REACH_TIMEOUT_S = 10.0  # a worker's CoreCount; a worker that does not answer this fast is not there
# Before each repetition: a worker that went away fails the repetition this fast, whether its host resets the
# connection (a dead process) or has vanished (no answer at all), instead of after a stream's deadline.
PROBE_TIMEOUT_S = 5.0
FACTS_TIMEOUT_S = 30.0  # grpclab system samples steal time and runs systemd-detect-virt
FOREIGN_NOTE = "not a lab worker (no grpclab.WorkerFacts): its machine's facts are not recorded"
# A closed loop whose RPC/s x mean latency is below this share of its RPCs in flight had some of them stalled
STALLED_SHARE = 0.7


# The check of cell_problem starts nothing: the certificates' place is only compared, never read, and the target
# is a placeholder (a driver fills the server's address in).
_CERTS = Path("/certs")
_CHECK_TARGET = "server:1"


def cell_problem(cell: Cell, settings: Settings) -> str | None:
    """Why a lab worker would not run ``cell`` as the lab's own run does (one line naming the axis), or None.

    What bench.spec refuses (check_cell) and what gRPC's configs cannot say (bench.remote.configs: ghz, the other
    client models, per-call channels, option presets, handler work...), then the worker's own conversion run
    backwards: configs the worker would refuse (configs.Refused, e.g. a records payload), or a server or load
    different from the lab's run of the cell, which also catches what no rule names yet and cannot drift from
    what the worker does.
    """
    try:
        check_cell(cell, "cell")
        server = configs.server_config(cell, settings)
        client = configs.client_config(cell, settings, [_CHECK_TARGET])
        cpus = set(settings.server_cpus) | set(settings.loadgen_cpus)
        server_plan = configs.server_plan(server, certs_dir=_CERTS, available=cpus)
        client_plan = configs.client_plan(client, certs_dir=_CERTS, available=cpus)
    except (SpecError, configs.Inexpressible) as exc:
        return str(exc).removeprefix("cell: ")
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


def sort_out(
    cells: Sequence[Cell], settings: Settings, *more: Callable[[Cell], str | None]
) -> tuple[list[Cell], list[tuple[Cell, str]]]:
    """The cells a lab worker runs as the lab's own run does, and (cell, why) for each of the others: cell_problem,
    then each of ``more`` (a caller's own rules: its workers, its pods) in order, the first problem found."""
    kept: list[Cell] = []
    refused: list[tuple[Cell, str]] = []
    for cell in cells:
        problem = cell_problem(cell, settings)
        for rule in more:
            problem = problem or rule(cell)
        if problem is None:
            kept.append(cell)
        else:
            refused.append((cell, problem))
    return kept, refused


def open_streams_problem(cell: Cell, clients: int) -> str | None:
    """What a client that keeps its ping-pong streams open for the whole run does to ``cell``, or None.

    The lab's sync server holds one of its threads per open stream. The lab's generator ends each stream after
    ``stream_messages`` round trips, so streams beyond the threads wait their turn (queueing, which its latencies
    show). A client that ignores messages_per_stream (grpc-go's worker) never ends one: streams beyond the threads
    never get a reply. Measured here: 4 threads under 8 such streams gave a p50 of 0.19 ms where 8 in flight at
    20,888 messages/s mean 0.38 (Little's law): half the streams were silent.
    """
    if cell.rpc != "bidi" or cell.impl != "sync":
        return None
    streams = sum(share.concurrency for share in driver.split_load(cell, clients))
    if cell.workers >= streams:
        return None
    return (
        f"workers={cell.workers}: the sync server holds a thread per open ping-pong stream, so {streams - cell.workers}"
        f" of the {streams} would never get a reply; give it workers >= {streams}"
    )


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

    def _unreachable(self, timeout: float = PROBE_TIMEOUT_S) -> tuple[str, str] | None:
        """(the first worker of the run that does not answer its CoreCount now, why), or None."""
        for worker in self.workers:
            with grpc.insecure_channel(worker.address) as channel:
                try:
                    stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
                    stub.CoreCount(control_pb2.CoreRequest(), timeout=timeout)
                except grpc.RpcError as exc:
                    name = f"{worker.role} worker {worker.address}"
                    return name, f"{name} does not answer: {exc.code().name}: {exc.details()}"
        return None

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
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:  # the run's CPUs are not that worker's
                    key = "server_cpus" if worker.role == SERVER else "loadgen_cpus"
                    raise RunError(
                        f"settings.{key}: {worker.role} worker {worker.address}: {exc.details()} "
                        f"(override with --{key.replace('_', '-')})"
                    ) from None
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
        _, refused = sort_out(list({cell.key(): cell for cell in cells}.values()), self.settings, self.pairing_problem)
        return [f"cell {cell.key()} cannot run over workers: {problem}" for cell, problem in refused]

    def pairing_problem(self, cell: Cell) -> str | None:
        """Why ``cell`` cannot run on these workers together, or None: a foreign client's streams on a sync server
        with too few threads (:func:`open_streams_problem`; the lab's generator ends its streams, grpc-go's does
        not, and counts no failed RPCs)."""
        if self._found is None:
            return None
        server = next(w for w in self._found if w.role == SERVER)
        foreign = [w.address for w in self._found if w.role == CLIENT and w.kind == "foreign"]
        if server.kind == "foreign" or not foreign:
            return None
        problem = open_streams_problem(cell, len(self.clients))
        if problem is None:
            return None
        return f"client worker {foreign[0]} is foreign: it keeps its streams open for the whole run; {problem}"

    def measure(self, cell: Cell, repetition: int, order: int, context: Context) -> dict:
        """One repetition over the workers -> its row (bench.run.measure.measure's contract: failures are rows)."""
        problem = cell_problem(cell, context.settings) or self.pairing_problem(cell)
        gone = None if problem else self._unreachable()
        error = f"cannot run over workers: {problem}" if problem else (gone[1] if gone else None)
        if error:
            row = driver.new_row(cell, context.settings, context.run_id, repetition, order)
            row.update(failed=True, error=error)
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
        if row["failed"]:
            # a worker that went away shows first in what other workers then said (a generator that could not
            # connect, a stream reset): name it
            gone = self._unreachable()
            if gone and not row["error"].startswith(gone[0]):
                row["error"] = f"{gone[1]}; then {row['error']}"
        notes = [row["notes"], *self.foreign_notes(cell), self.stall_note(cell, row)]
        floor = context.calibration.floor_note(cell.loadgen, row["lat_p50_ms"]) if context.calibration else None
        if floor and not row["failed"]:
            notes.append(floor)
        row["notes"] = "; ".join(filter(None, notes))
        return row

    def stall_note(self, cell: Cell, row: dict) -> str | None:
        """A closed loop's RPCs in flight that got no answer, when a foreign client ran the load, or None.

        A foreign client counts no failed RPCs (grpc-go's), so an RPC or stream that never gets a reply leaves no
        trace but a shortfall: in a closed loop every slot always has an RPC out, and Little's law says RPC/s x
        mean latency is how many were out and answered on average. The lab's clients count their failures, and
        their time between calls would blur this; grpc-go's client has next to none (in the interop table its p50s
        are 90-99 % of RPCs in flight / RPC/s).
        """
        foreign = any(w.role == CLIENT and w.kind == "foreign" for w in self._found or ())
        if not foreign or row["failed"] or cell.mode != "closed" or not row["rps"] > 0:
            return None
        answered = row["rps"] * row["lat_mean_ms"] / 1000
        if not answered < STALLED_SHARE * cell.concurrency:
            return None
        return (
            f"only {answered:.1f} of the {cell.concurrency} RPCs in flight were answered on average (RPC/s x mean "
            "latency, Little's law): the others stalled, and the foreign client counts no failed RPCs"
        )

    def foreign_notes(self, cell: Cell) -> list[str]:
        """What a row must say when a foreign worker ran its server or load: the cell's labels are not what ran."""
        notes = []
        for worker in self._found or ():
            if worker.kind == "foreign" and worker.role == SERVER:
                notes.append(f"server worker {worker.address} is foreign: it ran its own server, not impl={cell.impl}")
            elif worker.kind == "foreign":
                notes.append(f"client worker {worker.address} is foreign: it ran its own load generator")
        return notes
