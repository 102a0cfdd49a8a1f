"""`grpclab report RUN_DIR`: one self-contained HTML page about a run, with its figures beside it.

RUN_DIR/report/index.html opens with the run's findings (bench.analysis.findings: one sentence per study, with
its numbers and confidence; also written as findings.json and at the top of summary.md), then the machine the run
measured on (its /dev/cpu_dma_latency hold, the warnings of its system facts, its calibration: floor and noise;
bench.analysis.summary.machine_lines), the figures (PNG files in the same directory, relative links, no script, no
CDN), a note for each figure the run has no data for, for a run with go cells what Python costs against them
(bench.analysis.reference: the answer in words and one row per Python cell; also in summary.md), the summary table
(one row per cell: medians over repetitions, failed, saturated and unstable cells flagged; bench.analysis.table,
also written as summary.md) and the run's manifest (with every system check). Figures are drawn by
bench.analysis.figures; everything is read through bench.analysis.results, so a bad run directory is one
ResultsError line.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ..run.manifest import Manifest
from . import figures, findings, reference, results, summary, table

REPORT_DIR = "report"
INDEX = "index.html"
SUMMARY = "summary.md"  # the same per-cell table in markdown, for pull requests and notes

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { max-width: 70em; color: #333; font-size: .92em; }
.warn { background: #fff4cc; border-left: 4px solid #e0a800; padding: .4em .8em; margin: .4em 0; }
.bad { background: #fde2e2; border-left: 4px solid #c0392b; padding: .4em .8em; margin: .4em 0; }
.note { color: #555; margin: .2em 0; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .2em .5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fde2e2; } tr.saturated td { background: #fff4cc; } tr.unstable td { background: #f3e8fb; }
.flag { font-weight: bold; white-space: nowrap; } .flag-failed { color: #b00; } .flag-saturated { color: #8a6100; }
.flag-unstable { color: #7a2a9a; }
.scroll { overflow-x: auto; }
ul.findings { padding-left: 1.2em; } li.finding { margin: .6em 0; max-width: 90em; }
.confidence { font-weight: bold; padding: 0 .35em; border-radius: 3px; font-size: .85em; }
.finding-clear .confidence { background: #d8f0d8; } .finding-indicative .confidence { background: #fff4cc; }
.finding-inconclusive .confidence { background: #eee; color: #555; }
li.finding details { margin: .2em 0 0 0; font-size: .92em; } ul.cells { margin: 0; padding-left: 1em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; }
footer { margin-top: 3em; color: #555; font-size: .85em; border-top: 1px solid #ccc; padding-top: .5em; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _kv_table(items: dict) -> str:
    rows = []
    for key, value in items.items():
        if isinstance(value, dict | list | tuple):
            value = json.dumps(value, default=str)
        rows.append(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


def manifest_section(manifest: Manifest) -> str:
    env = asdict(manifest.environment)
    versions, git = env.pop("versions"), env.pop("git")
    m = manifest
    run = {"spec_name": m.spec_name, "spec_path": m.spec_path, "status": m.status, "started_at": m.started_at}
    run |= {"ended_at": m.ended_at, "filter": m.filter, "cells": m.cells, "repetitions run (steps)": m.steps}
    parts = [
        "<h3>Run</h3>",
        _kv_table(run),
        "<h3>Environment</h3>",
        _kv_table(env | {f"version: {k}": v for k, v in versions.items()} | {f"git {k}": v for k, v in git.items()}),
        "<h3>Placement</h3>",
        _kv_table(
            {k: v for k, v in asdict(m.placement).items() if k != "workers"}
            | {"tls_key_type": m.tls_key_type, "loadgen_processes": m.settings.loadgen_processes}
        ),
        *_workers(m),
        "<h3>Settings</h3>",
        _kv_table(asdict(m.settings)),
        *_machine_details(m),
        "<h3>Spec (as written; the settings above are the ones the run used)</h3>",
        f"<pre>{_e(json.dumps(m.spec_source, indent=2, default=str))}</pre>",
    ]
    return "\n".join(parts)


def _workers(manifest: Manifest) -> list[str]:
    """A driven run's workers (grpclab run --hosts), one line each: where, what, and on what machine."""
    if not manifest.placement.workers:
        return []
    items = {}
    for worker in manifest.placement.workers:
        machine = f"{worker.system.cpu.model}, {len(worker.system.cpu.online)} CPUs" if worker.system else worker.note
        versions = ", ".join(f"{k} {v}" for k, v in (worker.versions or {}).items() if k in ("python", "grpcio"))
        items[f"{worker.role} worker {worker.address}"] = "; ".join(
            filter(None, (worker.kind, f"{worker.cores} cores" if worker.cores else None, machine, versions))
        )
    return ["<h3>Workers (the run was driven over them; the environment above is the driver's)</h3>", _kv_table(items)]


def warnings(cells: table.CellTable, manifest: Manifest) -> str:
    out = []
    status = manifest.status
    if status != "complete":
        out.append(f'<p class="bad">The run is not complete (status: {_e(status)}): some cells may be missing.</p>')
    if cells.failed_cells:
        out.append(
            f'<p class="bad">{cells.failed_cells} of {len(cells.rows)} cells had failed repetitions (red rows below; '
            "hover for the error). Figures use successful repetitions only.</p>"
        )
    if cells.saturated_cells:
        warning = summary.saturation_warning(cells.saturated_cells, len(cells.rows))
        out.append(
            f'<p class="warn">{html.escape(warning[:1].upper() + warning[1:])} '
            "(yellow rows; red rings or hatching in the figures).</p>"
        )
    if cells.unstable_cells:
        warning = summary.unstable_warning(cells.unstable_cells, len(cells.rows))
        out.append(f'<p class="warn">{html.escape(warning[:1].upper() + warning[1:])} (purple rows).</p>')
    return "\n".join(out)


def reference_section(found: list[reference.Ratio]) -> str:
    """What Python costs against the grpc-go reference; empty for a run without a Python and a Go cell to pair."""
    if not found:
        return ""
    return f'<h2 id="python-cost">{_e(reference.TITLE)}</h2>\n{reference.to_html(found)}'


def machine_section(manifest: Manifest) -> str:
    """The machine the run measured on, next to the results: hold, warnings, calibration (empty if not recorded)."""
    lines = summary.machine_lines(manifest)
    if not lines:
        return (
            '<p class="note">This run recorded neither the machine\'s state, nor a /dev/cpu_dma_latency hold, '
            "nor a calibration (written before grpclab recorded them).</p>"
        )
    items = [f'<p class="{"warn" if line.kind == "warning" else "note"}">{_e(line.text)}</p>' for line in lines]
    return "\n".join(items)


def _machine_details(m: Manifest) -> list[str]:
    parts = []
    if m.system is not None:
        parts += ["<h3>Machine state (grpclab system, as the run began)</h3>", f"<pre>{_e(m.system.render())}</pre>"]
    if m.cpu_latency_hold is not None:
        parts += ["<h3>cpu_latency_hold</h3>", _kv_table(m.cpu_latency_hold.to_json())]
    if m.calibration is not None:
        parts += ["<h3>Calibration</h3>", f"<pre>{_e(json.dumps(m.calibration.to_json(), indent=2))}</pre>"]
    return parts


def render(
    df: pd.DataFrame,
    manifest: Manifest,
    out_dir: Path,
    title: str,
    cells: table.CellTable,
    found: findings.Document | None = None,
    costs: list[reference.Ratio] | None = None,
) -> str:
    """The page's HTML, the findings first; draws the figures into ``out_dir`` on the way. ``found``: the run's
    findings, ``costs``: its Python/Go pairs (each computed here when not given)."""
    if found is None:
        computed = findings.compute(df, manifest)
        found = findings.Document(title, computed, findings.machine_note(manifest, computed))
    if costs is None:
        costs = reference.ratios(df, manifest)
    drawn = figures.draw_all(df, manifest, out_dir)
    figs, notes = [], []
    for item in drawn:
        if isinstance(item, figures.Drawn):
            figs.append(
                f'<figure id="{_e(Path(item.file).stem)}"><h3>{_e(item.title)}</h3>'
                f'<img src="{_e(item.file)}" alt="{_e(item.title)}">'
                f"<figcaption>{_e(item.caption)}</figcaption></figure>"
            )
        else:
            notes.append(
                f'<p class="note skipped" id="{_e(item.name)}">Left out: {_e(item.title)}: {_e(item.reason)}.</p>'
            )
    footer = figures.footer_text(manifest)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    reps = df.groupby("cell_key")["repetition"].nunique()
    lead = (
        f"{df['cell_key'].nunique()} cells, {len(df)} cell repetitions "
        f"({reps.min() if len(reps) else 0}..{reps.max() if len(reps) else 0} per cell), "
        f"spec <code>{_e(manifest.spec_name)}</code>, started {_e(manifest.started_at)}."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<h1>grpclab report: {_e(title)}</h1>
<p>{lead}</p>
{warnings(cells, manifest)}
{findings.to_html(found.findings, found.note)}
<h2>The machine</h2>
{machine_section(manifest)}
<h2>Figures</h2>
{"".join(figs) or '<p class="note">No figure: the run has data for none of them.</p>'}
{"".join(notes)}
{reference_section(costs)}
<h2>Summary (one row per cell, medians over successful repetitions)</h2>
{table.to_html(cells)}
<h2>Manifest</h2>
{manifest_section(manifest)}
<footer>{_e(footer)} | generated {_e(generated)} by grpclab report</footer>
</body></html>
"""


def write(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default RUN_DIR/report); returns the index.html path."""
    run_dir = Path(run_dir)
    manifest = results.read_manifest(run_dir)
    df = results.load(run_dir)
    if df.empty:
        raise results.ResultsError(f"{run_dir / results.PARQUET}: no cell repetitions in it (nothing to report)")
    out_dir = Path(out) if out is not None else run_dir / REPORT_DIR
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        cells = table.build(df, summary.noise_cv(manifest))
        computed = findings.compute(df, manifest)
        found = findings.Document(str(df["run_id"].iloc[0]), computed, findings.machine_note(manifest, computed))
        costs = reference.ratios(df, manifest)
        page = render(df, manifest, out_dir, run_dir.resolve().name, cells, found, costs)
        index = out_dir / INDEX
        index.write_text(page, encoding="utf-8")
        text = (
            f"# {run_dir.resolve().name}\n\n{findings.to_markdown(found.findings, found.note)}\n"
            f"## Cells: medians over successful repetitions\n\n{table.to_markdown(cells)}"
        )
        if costs:
            text += f"\n## {reference.TITLE}\n\n{reference.to_markdown(costs)}"
        (out_dir / SUMMARY).write_text(text, encoding="utf-8")
        findings.write(out_dir / findings.FILE_NAME, found.findings, found.run_id, found.note)
    except OSError as exc:
        raise results.ResultsError(f"{out_dir}: cannot write the report ({exc.strerror or exc})") from None
    except results.ResultsError as exc:  # a damaged value inside the table (a histogram, ...)
        raise results.ResultsError(f"{run_dir / results.PARQUET}: {exc}") from None
    return index
