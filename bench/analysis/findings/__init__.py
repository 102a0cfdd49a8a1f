"""Findings: the answers a run's cells support, one sentence each, with its numbers and its doubt.

    from bench import results
    from bench.analysis import findings
    found = findings.compute(results.load(run_dir), results.read_manifest(run_dir))
    print(findings.to_text(found))            # also to_markdown(found), to_html(found) (an HTML fragment)
    text = findings.to_json(found, run_id)    # {"format": "grpclab.findings/2", "run_id", "note", "findings": [...]}
    document = findings.from_json(text)       # Document(run_id, findings, note); read(path) / write(path, ...)
    document = findings.analyse(run_dir)      # all of it from a run directory, with machine_note()

``python -m bench.analysis.findings RUN_DIR [--format text|markdown|html|json]`` prints them. Where they appear:
at the top of `grpclab report` (index.html, summary.md, report/findings.json), at the end of `grpclab run` (the
compact form, to_rich: label, study and ``headline`` per finding) and in RUN_DIR/findings.json, and at the top of
the notebooks.

Which studies a run supports
----------------------------
A study compares cells that differ in exactly one axis, with every other axis of bench.spec.AXES equal. Axes that a cell
ignores follow the spec's normalisation (bench.spec.cell.INAPPLICABLE, the one rule): ``workers`` applies to the sync
server only (aio and go cells carry 0), ``stream_messages`` to streaming RPCs only (unary cells carry 1), ``rate`` and
``arrival`` to open loop only (closed-loop cells carry 0 and constant), ``client`` and ``channel`` to the Python
generator only, ``connections`` to reused channels, ``event_loop`` where an asyncio loop runs (the aio server or the
aio client), ``payload_kind`` to the tutorial services. So a sync cell with 4 threads and an aio cell differ in
``impl`` alone. A cell that could pair with several others (an aio cell with sync cells of 1 and of 4 threads)
is paired with the one nearest the run's **baseline** (the first cell of the spec's product: each [axes] list's first
value; the most common value of each axis when the manifest has no usable spec), and every cell is used once per study.
When a run has several instances of a study (sync vs aio at four RPC kinds, ...), they make ONE finding: the instance
nearest the baseline leads the sentence, the others are summarised (their range, with the cells at its ends named, or
each in a few words when there are at most three). A study the run has no cells for gives no finding.

Every number is a median over a cell's successful repetitions (failed rows are left out); spreads are min..max.

Studies and their rules:

- ``server_model``: sync vs aio. The headline metric (below) decides the comparison, "sync is 1.55x cheaper per RPC".
- ``thread_pool``: sync cells that differ in ``workers``, one finding per kind of handler work (none, wait, block,
  CPU, or mixed: the handler_* axes), since what threads buy depends on it. Under handlers that wait or block, the
  pool, not the CPU, sets the pace: RPC/s is the headline whenever no generator was saturated.
- ``processes``: cells that differ in ``processes`` (per server model; the processes share the spec's server CPUs,
  which the sentence names). A sweep (here and in ``thread_pool``) names the best value by the headline metric and
  compares it with the runner-up.
- ``payload_size``: cells that differ in ``payload_size``: how server CPU per RPC and RPC/s change from the smallest
  to the largest payload, and the server CPU per extra KiB between the two largest sizes (left out when those two
  differ by less than their repetitions' spread).
- ``compression``: ONE finding for every setting against ``none`` with the same payload (size and kind); every pair
  is an instance, with server and client CPU added per RPC, wire bytes saved per RPC and the link speed below which
  it pays (see ``break_even_bit_per_s``), and that speed's range over the repetitions' min..max. The payload with the
  most settings leads: its app-gzip levels as a sweep (the level that pays on the most links, i.e. the highest
  break-even speed, the range of break-even speeds over the levels, the level that saves the most bytes), and gRPC's
  own grpc-gzip and grpc-deflate against app-gzip-6 (gRPC core compresses at zlib's default level, 6). Then, in a
  few words each, the same for the other payload kinds, then the other payloads. The label rests on the leading
  level against none, and is held back to indicative when that level's lead over the runner-up is inside the
  repetitions' spread (their break-even ranges overlap).
- ``tls``: one finding each for TLS and mTLS against plaintext: server and client CPU and wire bytes added per RPC.
- ``open_loop_knee``: open-loop cells that differ in ``rate``: the knee is the highest offered rate whose median p99,
  and every lower rate's, stays within the spec's ``settings.slo_p99_ms`` (bench.analysis.figures.knee, as in the
  report's figure), and whether the server kept up there (served >= 95 % of the offered rate, not saturated). No
  usable SLO in the manifest (a finite number > 0): no finding.
- ``load_generator``: the Python generator vs ghz on the same cell: in each cell, what limited (the generator when
  flagged saturated in any repetition, else the server when saturated in every one, else neither), and ghz's RPC/s
  over Python's.
- ``go_reference``: one finding per Python server model against ``impl = "go"`` with the same other axes: server CPU
  per RPC, Python over Go; RPC/s Python over Go only when neither generator was saturated.
- One-axis studies (``pairwise``: one finding per value of the axis against the reference value, the run's baseline
  value or the axis's default; the leading pair quotes both cells' RPC/s, server and client CPU per RPC and p50, the
  other pairs are summarised by the range of their ratio). What each comparison rests on: ``client`` (sync-threads,
  sync-future against aio): client CPU per RPC; ``channel`` (per-call against reuse): p50, with the p50 added per RPC
  and the first RPC's time on a new channel; ``event_loop``, ``options`` (each ``server_options`` and
  ``channel_options`` preset against default), ``payload_kind``, ``concurrency`` (closed loop), ``connections``,
  ``service`` (BenchmarkService against the tutorial services): the headline metric; ``handler_work`` (each handler_*
  axis against none): RPC/s unless a generator was saturated, as for the thread pool under waiting handlers; ``rpc``
  (each streaming kind against unary) and ``stream_messages``: server CPU per call, and per message; ``arrival``
  (open loop, Poisson against constant at one rate): p99.

The studies, their order, titles and axes are listed once, in ``studies.REGISTRY``.

Headline metric
---------------
RPC/s is the server's capacity only when the server was the limit (``server_saturated`` in every repetition of both
cells) and no load generator was saturated in either cell (``loadgen_saturated`` in no repetition). Then RPC/s is the
comparison; otherwise it is server CPU per RPC, which does not depend on who set the pace. Both are quoted either way.

Confidence
----------
A finding has a ``confidence`` label and the ``reasons`` for it; its sentence says what the label rests on (in the
parenthesis after the leading comparison). For the comparison of two cells on a metric:

- 4 or more repetitions a side: bench.gate.stats's exact Mann-Whitney test. ``clear`` when p < 0.05, else
  ``inconclusive`` (inside the repetitions' spread).
- 2-3 repetitions a side: no exact test can reach p < 0.05 there, and the min..max ranges of two IDENTICAL cells are
  apart with probability 2 / C(n + m, n) (1 in 3 at 2 + 2, 1 in 10 at 3 + 3), so "apart" alone is not enough.
  Overlapping ranges: ``inconclusive``. Apart, and the effect |ratio - 1| over NOISE_FACTOR (3) x the calibration's
  coefficient of variation of that metric: ``clear`` (see NOISE_FACTOR for why 3). Apart otherwise: ``indicative``,
  saying which: within that noise, or no calibration in the run to weigh the effect against.
- 1 repetition: no spread to judge by, ``indicative``.

Whatever the repetitions, ``clear`` is held back to ``indicative`` by latencies near the machine's floor (a cell's p50
<= 2 x the no-op floor of its generator: the RPCs are about as short as the machine's fastest round trip), for the
compression sweep by a best level whose lead is inside the spread, and for the open-loop knee by a saturated
generator (its delay is in the p99). The knee is judged at its edge rates: repetitions on both sides of the SLO make
it ``inconclusive``; all on one side make it ``clear`` from 4 repetitions on and ``indicative`` below (a p99 has no
calibrated noise to weigh its distance from the SLO against).

Said in words without changing the label: a saturated load generator in either cell (named, with what to use
instead: ``loadgen = "ghz"`` for the Python generator, more load-generator CPUs for ghz), a server that was not
saturated where RPC/s is quoted (then RPC/s is not the server's capacity), failed repetitions left out, and a knee
above the highest rate measured. ``machine_note`` adds one line under the findings when the machine weakens them:
no noise calibration where a leading comparison rests on 2-3 repetitions, a CPU-latency request that was not held,
warnings of the system facts (read through getattr: the manifest gets those fields with issue 11 part B).

The machine's calibration (issue 11) is read from the manifest's ``calibration`` field when it has one (the typed
Manifest gets it with issue 11 part B; a typed calibration is read through its JSON form, which is this):
``{"floor": {"python": {"p50_ms": 0.34}, "ghz": {"p50_ms": 0.23}}, "noise": {"cv": {"rps": 0.05,
"server_cpu_us_per_rpc": 0.04, "lat_p50_ms": 0.06}}}``. Only ``floor.<generator>.p50_ms`` (no-op unary p50 with one
RPC in flight, per generator) and ``noise.cv.<metric>`` (coefficient of variation of short windows of one cell, as a
fraction) are read; anything else there is ignored, and a missing or malformed part only means that check is skipped.

Where each part lives (bench/analysis/findings/)
------------------------------------------------
``engine``: the findings as data, a run's per-cell statistics, matching like with like (``pairs``, ``families``)
and the labels' constants; ``words``: numbers and settings in words; ``confidence``: what a comparison's label
rests on; one module per study family (``servers``: server model, thread pool, processes, Go reference;
``payloads``: payload size and compression; ``tls``; ``load``: the open-loop knee and the load generator);
``document``: the JSON document and the machine's line; ``render``: text, terminal, Markdown and HTML. This module
lists the studies in order and re-exports the names callers use, so ``bench.analysis.findings.X`` keeps working.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from .. import results
from .confidence import chance_apart
from .document import FILE_NAME, FORMAT, FindingsError, from_json, machine_note, read, to_json, write
from .engine import (
    CLEAR,
    CLIENT_CPU,
    CLIENT_UTIL,
    CONFIDENCES,
    CPU,
    FAILED_REPETITIONS,
    FEW_REPETITIONS,
    FLOOR_FACTOR,
    GENERATOR_SATURATED,
    INCONCLUSIVE,
    INDICATIVE,
    INSIDE_SPREAD,
    KEPT_UP,
    KNEE_NOT_REACHED,
    MAX_LISTED,
    METRICS,
    NEAR_FLOOR,
    NOISE_FACTOR,
    ONE_REPETITION,
    P50,
    P99,
    RANKING_INSIDE_SPREAD,
    RPS,
    SERVER_NOT_LIMIT,
    SERVER_UTIL,
    TEST_REPETITIONS,
    WIRE,
    WITHIN_NOISE,
    Calibration,
    CellStats,
    Document,
    Finding,
    Instance,
    Reason,
    Run,
    cell_stats,
    families,
    headline_metric,
    pairs,
    read_calibration,
    run_of,
)
from .load import load_generator, open_loop_knee
from .payloads import break_even_bit_per_s, compression, payload_size
from .render import _LEGEND, _TITLES, legend, tags, title, to_compact_text, to_html, to_markdown, to_rich, to_text
from .servers import go_reference, processes, server_model, thread_pool
from .studies import REGISTRY, STUDIES, STUDY_FUNCTIONS, TITLES, Study
from .tls import tls

__all__ = [
    "CLEAR",
    "CLIENT_CPU",
    "CLIENT_UTIL",
    "CONFIDENCES",
    "CPU",
    "FAILED_REPETITIONS",
    "FEW_REPETITIONS",
    "FILE_NAME",
    "FLOOR_FACTOR",
    "FORMAT",
    "GENERATOR_SATURATED",
    "INCONCLUSIVE",
    "INDICATIVE",
    "INSIDE_SPREAD",
    "KEPT_UP",
    "KNEE_NOT_REACHED",
    "MAX_LISTED",
    "METRICS",
    "NEAR_FLOOR",
    "NOISE_FACTOR",
    "ONE_REPETITION",
    "P50",
    "P99",
    "RANKING_INSIDE_SPREAD",
    "RPS",
    "SERVER_NOT_LIMIT",
    "SERVER_UTIL",
    "STUDIES",
    "STUDY_FUNCTIONS",
    "REGISTRY",
    "TITLES",
    "Study",
    "TEST_REPETITIONS",
    "WIRE",
    "WITHIN_NOISE",
    "_LEGEND",
    "_TITLES",
    "Calibration",
    "CellStats",
    "Document",
    "Finding",
    "FindingsError",
    "Instance",
    "Reason",
    "Run",
    "analyse",
    "break_even_bit_per_s",
    "cell_stats",
    "chance_apart",
    "compression",
    "compute",
    "families",
    "from_json",
    "go_reference",
    "headline_metric",
    "legend",
    "load_generator",
    "machine_note",
    "main",
    "open_loop_knee",
    "pairs",
    "payload_size",
    "processes",
    "read",
    "read_calibration",
    "run_of",
    "server_model",
    "tags",
    "thread_pool",
    "title",
    "tls",
    "to_compact_text",
    "to_html",
    "to_json",
    "to_markdown",
    "to_rich",
    "to_text",
    "write",
]


def compute(df: pd.DataFrame, manifest: Manifest) -> tuple[Finding, ...]:
    """Every finding the run's cells support, in STUDIES order. ``df`` is results.load's table (or any table with its
    columns); ``manifest`` the run's manifest (settings.slo_p99_ms, spec_source, calibration are read)."""
    run = run_of(df, manifest)
    if not run.cells:
        return ()
    return tuple(finding for study in STUDY_FUNCTIONS for finding in study(run))


def analyse(run_dir: str | Path) -> Document:
    """The findings of a run directory, with its machine's line (results.ResultsError for a bad directory)."""
    run_dir = Path(run_dir)
    manifest = results.read_manifest(run_dir)
    df = results.load(run_dir)
    found = compute(df, manifest)
    run_id = str(df["run_id"].iloc[0]) if len(df) else run_dir.name
    return Document(run_id, found, machine_note(manifest, found))


# -- command line ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis.findings", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--format", choices=("text", "markdown", "html", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        doc = analyse(args.run_dir)
    except results.ResultsError as exc:
        print(f"findings: {exc}", file=sys.stderr)
        return 2
    found, note = doc.findings, doc.note
    if args.format == "json":
        sys.stdout.write(to_json(found, doc.run_id, note))
    else:
        sys.stdout.write({"text": to_text, "markdown": to_markdown, "html": to_html}[args.format](found, note=note))
    return 0
