"""Progress of a run on the console: a live bar on a terminal, one line per measured step in CI logs."""

from __future__ import annotations

import sys
import time

from rich.console import Console

from .executor import Step


def row_text(row: dict) -> str:
    """One measured repetition in a few words (the same for `grpclab run`, regress and the gate study)."""
    if row["failed"]:
        return f"FAILED: {row['error']}"
    text = f"{row['rps']:,.0f} RPC/s, p99 {row['lat_p99_ms']:.2f} ms, server {row['server_cpu_us_per_rpc']:,.0f} us/RPC"
    return text + (" (generator saturated)" if row["loadgen_saturated"] else "")


class Reporter:
    """Called with every executor Step. ``sides``: name the side on each line (more than one side)."""

    def __init__(self, console: Console, sides: bool = False) -> None:
        self.console = console
        self.sides = sides
        self.started = time.monotonic()
        self.progress = None
        self.task = None
        if console.is_terminal and sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )

    def __call__(self, step: Step) -> None:
        where = f"{step.side} {step.cell.key()}" if self.sides else step.cell.key()
        if self.progress is not None:
            if self.task is None:
                self.progress.start()
                self.task = self.progress.add_task("", total=step.total)
            text = where if step.row is None else f"last: {row_text(step.row)}"
            self.progress.update(self.task, completed=step.done, description=text)
            if step.done == step.total:
                self.progress.stop()
        elif step.row is not None:
            elapsed = time.monotonic() - self.started
            eta = elapsed / step.done * (step.total - step.done)
            self.console.print(
                f"[{step.done}/{step.total}] {where} r{step.repetition}: {row_text(step.row)} (eta {eta:.0f} s)",
                highlight=False,
                soft_wrap=True,
            )


def console() -> Console:
    """The console runs print to: CI logs and pipes get a width at which tables stay readable."""
    out = Console()
    return out if out.is_terminal else Console(width=220)
