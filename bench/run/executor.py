"""The one executor: a plan's steps, measured on one or more sides, each side into its own run directory.

A plain `grpclab run` is one side. `grpclab regress` has two (base and head), the gate study three
(A, A', B): every step of the plan is measured on every side back to back, one server at a time, the
order of the sides within a step a seeded coin flip (drawn for every step, so it does not depend on
what a resumed run already has). Drift of the machine over the run then hits every side alike.
Steps a side's store already holds are skipped (``grpclab run --resume``).

The executor owns what every run needs: the placement check, one certificates directory (removed
afterwards), SIGTERM turned into KeyboardInterrupt (the one handler: :func:`sigterm_interrupts`),
and each side's lifecycle: its store is marked running, then finished as ``complete``,
``interrupted`` (Ctrl-C, SIGTERM) or ``failed`` (anything else), with its end time.

It also owns the machine's state while it measures (issue 11):

* **the hold**: /dev/cpu_dma_latency held at 0 us from before the first measurement to the end, however
  it ends (``settings.cpu_latency_hold``, default true; bench.machine.cpu_latency: the kernel drops the
  request with the descriptor, so even SIGKILL of the harness leaves none behind). Where it cannot be
  held, one warning line and the run goes on;
* **the record**: the machine's facts (bench.machine.system.collect, with the run's pinning, taken while
  holding) and the hold's state, in every side's manifest;
* **the calibration**: the machine's floor and noise, measured before the first step
  (``settings.calibrate``, bench.run.calibration) and recorded in every side's manifest; a resumed run
  keeps the one it has. Each row's notes then say when its p50 is near the floor.

A run over gRPC benchmark workers (a :class:`~bench.run.placement.DrivenPlacement`) goes through the same
steps: its repetitions and its calibration's are driven over the workers (bench.run.measure hands them to
the placement); the hold and ``system`` are the driver's machine's, each worker's facts are the
placement's, and the floor is not measured again with the hold (it would hold the driver, not the workers).
"""

from __future__ import annotations

import random
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..machine import cpu_latency
from ..machine.cpu_latency import HoldState
from ..machine.system import SystemFacts
from ..spec import Cell, Settings
from . import calibration
from . import placement as placements
from .calibration import Calibration
from .measure import Context, ServerCode, measure
from .placement import DrivenPlacement, Placement
from .plan import Plan
from .store import RunStore

# Harness time per repetition beyond warm-up + window (server start, connect, teardown), for estimates.
OVERHEAD_PER_REPETITION_S = 1.0


@dataclass
class Side:
    """One side of a run: where its rows go and which server code and environment it runs."""

    store: RunStore
    name: str = "run"
    server: ServerCode = ServerCode()
    cell_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # cell key -> extra server env


@dataclass(frozen=True)
class Step:
    """Progress: ``row`` is None when the step starts, the measured row when it is done."""

    done: int  # steps finished so far
    total: int  # steps this execution measures
    side: str
    cell: Cell
    repetition: int
    row: dict | None = None


Progress = Callable[[Step], None]
Notice = Callable[[str], None]  # one line for the person running it (the hold, machine warnings, calibration)


def _print(text: str) -> None:
    print(text, flush=True)


def schedule(sides: Sequence[Side], plan: Plan, seed: int) -> list[tuple[int, Cell, int, Side]]:
    """(order, cell, repetition, side) of every step still to measure, sides in a seeded order per step."""
    rng = random.Random(seed)
    done = {id(side): side.store.done() for side in sides}
    todo = []
    for order, (cell, rep) in enumerate(plan.steps):
        shuffled = list(sides)
        rng.shuffle(shuffled)  # drawn for every step (and a no-op for one side)
        todo += [(order, cell, rep, side) for side in shuffled if (cell.key(), rep) not in done[id(side)]]
    return todo


def execute(
    sides: Sequence[Side],
    plan: Plan,
    settings: Settings,
    progress: Progress,
    placement: Placement | DrivenPlacement | None = None,
    notice: Notice = _print,
) -> int:
    """Measure every step of ``plan`` not yet in each side's store; returns the number of steps measured."""
    placement = placement or placements.for_settings(settings, sides[0].store.dir.name if sides else None)
    placement.check()
    todo = schedule(sides, plan, settings.seed)
    with sigterm_interrupts(), certificates() as certs_dir, cpu_latency_hold(settings) as hold:
        for side in sides:
            side.store.begin()
        try:
            if todo:
                _record_machine(sides, placement, hold, notice)
                if settings.calibrate:
                    _calibrate(sides, plan, settings, placement, certs_dir, hold, notice)
            for k, (order, cell, rep, side) in enumerate(todo):
                progress(Step(k, len(todo), side.name, cell, rep))
                server = side.server
                extra = side.cell_env.get(cell.key())
                if extra:
                    server = replace(server, env={**server.env, **extra})
                ctx = Context(
                    side.store.dir.name, settings, certs_dir, placement, server, side.store.manifest.calibration
                )
                row = measure(cell, rep, order, ctx)
                side.store.add_row(row)
                progress(Step(k + 1, len(todo), side.name, cell, rep, row))
        except KeyboardInterrupt:
            _finish(sides, "interrupted")
            raise
        except BaseException:
            _finish(sides, "failed")
            raise
        # measure() stops its own server whatever happens; server_process.stop_all() would also end
        # servers that someone else in this process started (a test's).
        _finish(sides, "complete")
    return len(todo)


def estimate_seconds(steps: int, sides: int, settings: Settings) -> float:
    """About how long ``steps`` steps on ``sides`` sides take to measure (and the calibration, for two generators)."""
    extra = calibration.repetitions(("python", "ghz"), not settings.cpu_latency_hold) if settings.calibrate else 0
    return (steps * sides + extra) * (settings.warmup + settings.duration + OVERHEAD_PER_REPETITION_S)


@contextmanager
def cpu_latency_hold(settings: Settings) -> Iterator[HoldState]:
    """/dev/cpu_dma_latency held at 0 us for the block (settings.cpu_latency_hold), or what is held without us."""
    if not settings.cpu_latency_hold:
        yield HoldState.not_requested("turned off (settings.cpu_latency_hold = false, or --no-cpu-latency-hold)")
        return
    with cpu_latency.hold(0) as state:
        yield state


def machine_facts(pinning: Sequence[int]) -> SystemFacts:
    """The machine's state now, judged for the run's CPUs (grpclab system's facts and checks)."""
    from ..machine.system import collect

    return collect(pinning=pinning)


def _record_machine(
    sides: Sequence[Side], placement: Placement | DrivenPlacement, hold: HoldState, notice: Notice
) -> None:
    where = placement.describe()
    facts = machine_facts(tuple(dict.fromkeys((*where.server_cpus, *where.loadgen_cpus))))
    notice(hold.describe())
    machine = "machine"
    if where.workers is not None:
        # Over workers this machine only drives: the hold and `system` are its own, each worker's machine is in
        # the placement's facts (taken before the run), and its warnings are the ones that bear on the numbers.
        machine = "driver's machine"
        notice("the cpu_latency hold is this (the driver's) machine's; the workers' machines keep their own")
        for worker in where.workers:
            for check in worker.system.warnings() if worker.system is not None else []:
                notice(f"warning: {worker.role} worker {worker.address}: {check.name}: {check.value}")
    for check in facts.warnings():
        notice(f"warning: {machine}: {check.name}: {check.value}")
    for side in sides:
        before = side.store.manifest.cpu_latency_hold
        if before is not None and before.regime() != hold.regime():
            notice(
                f"warning: {side.store.dir}: its earlier repetitions were measured with {before.regime()}, these "
                f"with {hold.regime()}: the two do not compare (the manifest keeps the latest)"
            )
        side.store.record(system=facts, cpu_latency_hold=hold)


def _calibrate(
    sides: Sequence[Side],
    plan: Plan,
    settings: Settings,
    placement: Placement | DrivenPlacement,
    certs_dir: Path,
    hold: HoldState,
    notice: Notice,
) -> None:
    """Measure the floor and noise for the sides that have none yet (a resumed run keeps its own)."""
    missing = [side for side in sides if side.store.manifest.calibration is None]
    if not missing:
        return
    generators = sorted({cell.loadgen for cell, _ in plan.steps})
    run_id = missing[0].store.dir.name
    hold_off = hold.polling is not True
    # Compare with a hold only when the run was told not to hold: a hold that failed would fail again. Not over
    # workers: the hold would be the driver's, not their machines'.
    compare = hold_off and not hold.requested and not isinstance(placement, DrivenPlacement)
    reps = calibration.repetitions(generators, compare)
    notice(
        f"calibrating: floor with {', '.join(generators)}, noise over {calibration.NOISE_WINDOWS} repetitions "
        f"(~{reps * (settings.warmup + settings.duration + OVERHEAD_PER_REPETITION_S):.0f} s; settings.calibrate)"
    )

    def measure_one(cell: Cell, repetition: int) -> dict:
        return measure(cell, repetition, -1, Context(run_id, settings, certs_dir, placement))

    result: Calibration = calibration.calibrate(
        generators,
        measure_one,
        settings_window=(settings.warmup, settings.duration),
        hold_off=hold_off,
        with_hold=(lambda: cpu_latency.hold(0)) if compare else None,
        notice=notice,
    )
    for failure in result.failures.items():
        notice(f"warning: calibration: not measured: {failure[0]}: {failure[1]}")
    for side in missing:
        side.store.record(calibration=result)


def _finish(sides: Sequence[Side], status: str) -> None:
    for side in sides:
        side.store.finish(status)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt, so `finally` clauses clean up as on Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def certificates() -> Iterator[Path]:
    """A fresh CA, server and client certificate set for the run's TLS cells; removed afterwards."""
    from servers import certs

    certs_dir = Path(tempfile.mkdtemp(prefix="grpclab-certs-"))
    try:
        certs.generate(certs_dir)
        yield certs_dir
    finally:
        shutil.rmtree(certs_dir, ignore_errors=True)
