"""`grpclab run`'s executor: every step of a plan not yet in the store, in order, one row each.

Ctrl-C or SIGTERM stops the server and the load, keeps every finished row and
tells how to resume.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..spec import Cell, Settings
from . import placement
from .measure import Context, ServerCode, measure
from .plan import Plan
from .store import RunStore


def check_cpus(settings: Settings) -> None:
    placement.for_settings(settings).check()


Progress = Callable[[int, int, Cell, int, dict | None], None]


def execute(
    store: RunStore, plan: Plan, settings: Settings, progress: Progress, server_env: dict[str, str] | None = None
) -> int:
    """Run every step of ``plan`` not yet in ``store``; returns the number of steps run."""
    check_cpus(settings)
    done = store.done()
    todo = [(i, cell, rep) for i, (cell, rep) in enumerate(plan.steps) if (cell.key(), rep) not in done]
    certs_dir = Path(tempfile.mkdtemp(prefix="grpclab-certs-"))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        from servers import certs

        certs.generate(certs_dir)
        ctx = Context(
            run_id=store.dir.name,
            settings=settings,
            certs_dir=certs_dir,
            placement=placement.for_settings(settings),
            server=ServerCode(env=server_env or {}),
        )
        for k, (order, cell, rep) in enumerate(todo):
            progress(k, len(todo), cell, rep, None)
            row = measure(cell, rep, order, ctx)
            store.add_row(row)
            progress(k + 1, len(todo), cell, rep, row)
    finally:
        signal.signal(signal.SIGTERM, previous)
        # measure() stops its own server whatever happens; stop_all() would also end servers
        # started by others in this process.
        shutil.rmtree(certs_dir, ignore_errors=True)
    return len(todo)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
