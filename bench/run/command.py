"""`grpclab run`: a spec (or a run to resume) in, a run directory and a summary table out."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from rich.console import Console

from ..analysis import findings, results, summary
from ..spec import SpecError, filter_cells, load_spec, parse_spec, with_settings
from . import hosts as run_hosts
from . import measure, placement, progress
from .executor import Side, execute
from .manifest import Manifest, ResultsError
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
    hosts: str | None = None,
) -> int:
    """`grpclab run`; ``hosts``: --hosts (a QPS_WORKERS-style list or @FILE): drive the cells over those workers."""
    console = progress.console()
    overrides = {
        "duration": duration,
        "repetitions": repetitions,
        "server_cpus": server_cpus,
        "loadgen_cpus": loadgen_cpus,
        "cpu_latency_hold": cpu_latency_hold,
        "calibrate": calibrate,
    }
    with ExitStack() as stack:  # the workers the lab starts for this run (--hosts netns:...) live as long as it
        if resume is not None:
            store = RunStore.open(resume)
            manifest = store.manifest
            if manifest.merge is not None:
                # its shards were measured apart (their own machines, workers or pods): what is missing belongs to them
                shards = len(manifest.merge.shards)
                raise ResultsError(
                    f"--resume: {resume} is a merge of {shards} shards (grpclab merge), not one run; "
                    "resume the shard that is missing repetitions and merge again"
                )
            spec = parse_spec(manifest.spec_source, manifest.spec_path)
            given = {k: v for k, v in overrides.items() if v is not None}
            spec = with_settings(spec, **{**asdict(manifest.settings), **given})
            plan = manifest.plan
            workers = run_hosts.from_flag(hosts) if hosts else recorded_workers(manifest)
            if hosts and recorded_workers(manifest) is None:
                # half a run on this machine and half over workers would be two runs in one table
                raise run_hosts.HostsError(f"--hosts: {resume} was measured on this machine; resume it without --hosts")
            store.write_tables()  # a harness killed between a cell file and the tables left them stale
            workers = stack.enter_context(run_hosts.started(workers or (), spec.settings, store.dir.name)) or None
            where = placement.for_settings(spec.settings, store.dir.name, workers)
            where.check()
            if workers:
                store.record(placement=where.describe())  # where the rest is measured (--hosts may name new ones)
        else:
            spec = with_settings(load_spec(spec_path), **overrides)
            cells = filter_cells(spec.cells, filter_expr) if filter_expr else spec.cells
            if not cells:
                raise SpecError(f"--filter: {filter_expr!r} selects no cell of {spec.name}")
            plan = Plan.make(cells, spec.settings)
            run_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{spec.name}"
            workers = run_hosts.from_flag(hosts) if hosts else spec_workers(spec.source)
            workers = stack.enter_context(run_hosts.started(workers or (), spec.settings, run_id)) or None
            where = placement.for_settings(spec.settings, run_id, workers)
            where.check()  # before anything is written
            manifest = Manifest.new(spec, plan, filter_expr, where.describe())
            store = RunStore.create(out or RESULTS_ROOT / run_id, manifest)
        cells = [cell for cell, _ in plan.steps]
        if isinstance(where, placement.DrivenPlacement):
            warnings = [f"{line} (its repetitions fail; the other cells run)" for line in where.problems(cells)]
            workers = where.describe().workers or ()
            server_at, loadgen_at = f"server worker {workers[0].address}", f"client workers {workers[1].address}"
            loadgen_at += "".join(f", {worker.address}" for worker in workers[2:])
        else:
            warnings = [placement.link_warning(where, cells), measure.go_warning(cells)]
            server_at, loadgen_at = "server", "load generator"
        for warning in warnings:
            if warning:
                console.print(f"warning: {warning}", soft_wrap=True, markup=False)
        console.print(
            f"run {store.dir}: {len(plan.steps)} repetitions of {store.manifest.cells} cells, "
            f"{server_at} on CPU {_cpus(spec.settings.server_cpus)}, "
            f"{loadgen_at} on CPU {_cpus(spec.settings.loadgen_cpus)}"
        )
        try:
            execute(
                [Side(store)],
                plan,
                spec.settings,
                progress.Reporter(console),
                placement=where,
                notice=lambda text: console.print(text, soft_wrap=True, markup=False, highlight=False),
            )
        except KeyboardInterrupt:
            resume_with = f"grpclab run --resume {store.dir}"
            console.print(f"\ninterrupted: finished repetitions are kept; continue with: {resume_with}")
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


def spec_workers(source: dict) -> tuple[run_hosts.WorkerAddress, ...] | None:
    """The workers a spec's [hosts] table names, or None (run on this machine)."""
    return run_hosts.from_table(source["hosts"]) if "hosts" in source else None


def recorded_workers(manifest: Manifest) -> tuple[run_hosts.WorkerAddress, ...] | None:
    """The workers a run was driven over (to resume it over the same), or None for a local run."""
    workers = manifest.placement.workers
    if not workers:
        return None
    return tuple(run_hosts.WorkerAddress(worker.address, worker.role) for worker in workers)


def _cpus(cpus: tuple[int, ...]) -> str:
    return ",".join(map(str, cpus))
