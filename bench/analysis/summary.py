"""The terminal summary of a run: the per-cell table (bench.analysis.table), then what needs saying, and last the
run's findings (bench.analysis.findings) in their compact form.

What needs saying includes the machine the run measured on (``machine_lines``, also in the report): its
/dev/cpu_dma_latency hold, the warnings of its system facts, and its calibration (floor and noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console
from rich.markup import escape

from . import findings, stability, table

if TYPE_CHECKING:
    from ..run.manifest import Manifest


def saturation_warning(saturated: int, cells: int) -> str:
    """The one wording of 'some cells measured the client', for the terminal summary and the report."""
    return (
        f"in {saturated} of {cells} cells the load generator was >= 90 % busy: "
        "their RPC/s and latency may be the client's limit, not the server's"
    )


def unstable_warning(unstable: int, cells: int) -> str:
    """The one wording of 'some cells spread too much', for the terminal summary and the report."""
    return (
        f"{unstable} of {cells} cells are unstable: the coefficient of variation of their repetitions exceeds "
        f"max({stability.NOISE_FACTOR:g} x this machine's noise, {stability.MIN_CV:.0%}) in the metric named; "
        "their medians may move between runs (more repetitions, longer windows or a quieter machine help)"
    )


@dataclass(frozen=True)
class MachineLine:
    kind: str  # "warning" | "note"
    text: str


def noise_cv(manifest: Manifest | None) -> dict[str, float] | None:
    """The run's calibrated noise (metric -> CV), what the unstable rule compares with; None: not calibrated."""
    calibration = getattr(manifest, "calibration", None)
    return calibration.noise_cv if calibration is not None else None


def machine_lines(manifest: Manifest) -> list[MachineLine]:
    """The hold, the machine's warnings and the calibration of a run (nothing for a run that recorded none)."""
    out: list[MachineLine] = []
    hold = manifest.cpu_latency_hold
    if hold is not None:
        text = hold.describe().removeprefix("warning: ")
        if hold.held:
            text = f"/dev/cpu_dma_latency held at {hold.requested_us} us for the whole run: idle CPUs polled"
        out.append(MachineLine("warning" if hold.warns else "note", f"cpu_latency_hold: {text}"))
    if manifest.system is not None:
        for check in manifest.system.warnings():
            effect = f" -> {check.effect}" if check.effect else ""
            out.append(MachineLine("warning", f"machine: {check.name}: {check.value}{effect}"))
        if not manifest.system.warnings():
            out.append(MachineLine("note", "machine: no warnings (grpclab system's checks, taken as the run began)"))
    if manifest.calibration is not None:
        out += [MachineLine("note", line) for line in manifest.calibration.lines()]
    elif manifest.system is not None:
        out.append(MachineLine("note", "calibration: not measured (settings.calibrate = false)"))
    return out


def render(df: pd.DataFrame, console: Console | None = None, title: str = "", manifest: Manifest | None = None) -> None:
    console = console or Console()
    cells = table.build(df, noise_cv(manifest))
    console.print(table.to_rich(cells, title))
    if cells.fixed:
        console.print(f"same in every cell: {cells.fixed_text()}", highlight=False)
    if cells.saturated_cells:
        console.print(
            f"[yellow]warning: {saturation_warning(cells.saturated_cells, len(cells.rows))} "
            '(try loadgen = "ghz", or give the generator more CPUs).[/yellow]'
        )
    if cells.unstable_cells:
        console.print(f"[magenta]warning: {escape(unstable_warning(cells.unstable_cells, len(cells.rows)))}.[/magenta]")
    if cells.failed_cells:
        console.print(
            f"[red]{cells.failed_cells} cells had failed repetitions: see the `error` column of cells.csv.[/red]"
        )
    for line in machine_lines(manifest) if manifest is not None else ():
        text = escape(line.text)
        console.print(f"[yellow]warning: {text}[/yellow]" if line.kind == "warning" else text, soft_wrap=True)


def render_findings(document: findings.Document, console: Console | None = None) -> None:
    """The findings, compact: label, study and headline per finding, the legend, the machine's line."""
    console = console or Console()
    console.print()
    console.print(findings.to_rich(document.findings, document.note))
