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

from ..spec import Cell, Settings
from . import placement as placements
from .measure import Context, ServerCode, measure
from .placement import Placement
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
    placement: Placement | None = None,
) -> int:
    """Measure every step of ``plan`` not yet in each side's store; returns the number of steps measured."""
    placement = placement or placements.for_settings(settings, sides[0].store.dir.name if sides else None)
    placement.check()
    todo = schedule(sides, plan, settings.seed)
    with sigterm_interrupts(), certificates() as certs_dir:
        for side in sides:
            side.store.begin()
        try:
            for k, (order, cell, rep, side) in enumerate(todo):
                progress(Step(k, len(todo), side.name, cell, rep))
                server = side.server
                extra = side.cell_env.get(cell.key())
                if extra:
                    server = replace(server, env={**server.env, **extra})
                ctx = Context(side.store.dir.name, settings, certs_dir, placement, server)
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
    """About how long ``steps`` steps on ``sides`` sides take to measure."""
    return steps * sides * (settings.warmup + settings.duration + OVERHEAD_PER_REPETITION_S)


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
