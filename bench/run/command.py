"""`grpclab run`: a spec (or a run to resume) in, a run directory and a summary table out."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from rich.console import Console

from ..analysis import findings, results, summary
from ..spec import SpecError, filter_cells, load_spec, parse_spec, with_settings
from . import placement, progress
from .executor import Side, execute
from .manifest import Manifest
from .plan import Plan
from .store import RunStore

RESULTS_ROOT = Path("results")


def run(
    *,
    spec_path: str,
    out: Path | None,
    resume: Path | None,
    filter_expr: str | None,
    duration: float | None,
    repetitions: int | None,
    server_cpus: tuple[int, ...] | None,
    loadgen_cpus: tuple[int, ...] | None,
    cpu_latency_hold: bool | None = None,
    calibrate: bool | None = None,
) -> int:
    console = progress.console()
    overrides = {
        "duration": duration,
        "repetitions": repetitions,
        "server_cpus": server_cpus,
        "loadgen_cpus": loadgen_cpus,
        "cpu_latency_hold": cpu_latency_hold,
        "calibrate": calibrate,
    }
    if resume is not None:
        store = RunStore.open(resume)
        manifest = store.manifest
        spec = parse_spec(manifest.spec_source, manifest.spec_path)
        given = {k: v for k, v in overrides.items() if v is not None}
        spec = with_settings(spec, **{**asdict(manifest.settings), **given})
        plan = manifest.plan
        store.write_tables()  # a harness killed between a cell file and the tables left them stale
    else:
        spec = with_settings(load_spec(spec_path), **overrides)
        cells = filter_cells(spec.cells, filter_expr) if filter_expr else spec.cells
        if not cells:
            raise SpecError(f"--filter: {filter_expr!r} selects no cell of {spec.name}")
        plan = Plan.make(cells, spec.settings)
        where = placement.for_settings(spec.settings)
        where.check()  # before anything is written
        run_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{spec.name}"
        manifest = Manifest.new(spec, plan, filter_expr, where.describe())
        store = RunStore.create(out or RESULTS_ROOT / run_id, manifest)
    warning = placement.link_warning(placement.for_settings(spec.settings), [cell for cell, _ in plan.steps])
    if warning:
        console.print(f"warning: {warning}", soft_wrap=True, markup=False)
    console.print(
        f"run {store.dir}: {len(plan.steps)} repetitions of {store.manifest.cells} cells, "
        f"server on CPU {_cpus(spec.settings.server_cpus)}, load generator on CPU "
        f"{_cpus(spec.settings.loadgen_cpus)}"
    )
    try:
        execute(
            [Side(store)],
            plan,
            spec.settings,
            progress.Reporter(console),
            notice=lambda text: console.print(text, soft_wrap=True, markup=False, highlight=False),
        )
    except KeyboardInterrupt:
        console.print(f"\ninterrupted: finished repetitions are kept; continue with: grpclab run --resume {store.dir}")
        return 130
    finish(store.dir, console, store.manifest)
    return 0


def finish(run_dir: Path, console: Console, manifest: Manifest | None = None) -> findings.Document:
    """The end of a run: its summary table and warnings, its findings written to RUN_DIR/findings.json, and those
    findings, compact, last."""
    summary.render(results.load(run_dir), console, title=f"{run_dir} (medians over repetitions)", manifest=manifest)
    document = findings.analyse(run_dir)
    findings.write(run_dir / findings.FILE_NAME, document.findings, document.run_id, document.note)
    console.print(f"results: {run_dir}/cells.parquet, cells.csv, manifest.json, {findings.FILE_NAME}")
    summary.render_findings(document, console)
    return document


def _cpus(cpus: tuple[int, ...]) -> str:
    return ",".join(map(str, cpus))
