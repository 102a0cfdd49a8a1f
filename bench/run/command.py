"""`grpclab run`: a spec (or a run to resume) in, a run directory and a summary table out."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from ..analysis import results, summary
from ..spec import Cell, Settings, SpecError, filter_cells, load_spec, parse_spec, with_settings
from .executor import check_cpus, execute
from .manifest import new_manifest
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
    server_env: dict[str, str] | None = None,
) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=220)  # CI logs and pipes: wide enough that the summary table stays readable
    overrides = {
        "duration": duration,
        "repetitions": repetitions,
        "server_cpus": server_cpus,
        "loadgen_cpus": loadgen_cpus,
    }
    if resume is not None:
        store = RunStore.open(resume)
        manifest = store.manifest
        spec = parse_spec(manifest["spec_source"], manifest.get("spec_path"))
        spec = with_settings(spec, **{**manifest["settings"], **{k: v for k, v in overrides.items() if v}})
        plan = Plan.from_json(manifest["plan"])
        store.write_tables()  # a harness killed between a cell file and the tables left them stale
    else:
        spec = with_settings(load_spec(spec_path), **overrides)
        cells = filter_cells(spec.cells, filter_expr) if filter_expr else spec.cells
        if not cells:
            raise SpecError(f"--filter: {filter_expr!r} selects no cell of {spec.name}")
        plan = Plan.make(cells, spec.settings)
        check_cpus(spec.settings)  # before anything is written
        run_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{spec.name}"
        store = RunStore.create(out or RESULTS_ROOT / run_id, new_manifest(spec, plan, filter_expr))
    console.print(
        f"run {store.dir}: {len(plan.steps)} repetitions of {store.manifest['cells']} cells, "
        f"server on CPU {_cpus(spec.settings.server_cpus)}, load generator on CPU "
        f"{_cpus(spec.settings.loadgen_cpus)}"
    )
    reporter = _Reporter(console, spec.settings)
    store.manifest["status"] = "running"
    try:
        execute(store, plan, spec.settings, reporter, server_env)
    except KeyboardInterrupt:
        store.manifest["status"] = "interrupted"
        store.write_manifest()
        console.print(f"\ninterrupted: finished repetitions are kept; continue with: grpclab run --resume {store.dir}")
        return 130
    store.manifest.update(status="complete", ended_at=datetime.now(UTC).isoformat(timespec="seconds"))
    store.write_manifest()
    df = results.load(store.dir)
    summary.render(df, console, title=f"{store.dir} (medians over repetitions)")
    console.print(f"results: {store.dir}/cells.parquet, cells.csv, manifest.json")
    return 0


def _cpus(cpus: tuple[int, ...]) -> str:
    return ",".join(map(str, cpus))


class _Reporter:
    """Progress: a live bar on a terminal, one line per repetition in CI logs."""

    def __init__(self, console: Console, settings: Settings) -> None:
        self.console = console
        self.started = time.monotonic()
        self.live = console.is_terminal and sys.stdout.isatty()
        self.progress = None
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self.task = None

    def __call__(self, done: int, total: int, cell: Cell, rep: int, row: dict | None) -> None:
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else float("nan")
        if self.progress is not None:
            if self.task is None:
                self.progress.start()
                self.task = self.progress.add_task("", total=total)
            text = cell.key() if row is None else f"last: {_row_text(row)}"
            self.progress.update(self.task, completed=done, description=text)
            if done == total:
                self.progress.stop()
        elif row is not None:
            self.console.print(
                f"[{done}/{total}] {cell.key()} r{rep}: {_row_text(row)} (eta {eta:.0f} s)", highlight=False
            )


def _row_text(row: dict) -> str:
    if row["failed"]:
        return f"FAILED: {row['error']}"
    text = f"{row['rps']:,.0f} RPC/s, p99 {row['lat_p99_ms']:.2f} ms"
    if row["loadgen_saturated"]:
        text += " (generator saturated)"
    return text
