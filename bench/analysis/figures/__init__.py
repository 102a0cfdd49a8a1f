"""The report's figures: each one picks like-for-like cells from a run's table and draws one PNG.

Every figure varies one or two axes and holds every other axis fixed (``hold_fixed``): for each other axis it
keeps the value under which the varied axes have the most distinct combinations, ties going to the most common
value. The caption says what was held. Points are the median over a cell's successful repetitions; error bars
span their min..max. A figure whose data the run lacks raises ``Skip`` with a one-line reason instead of being
drawn empty.

Reads only what bench.analysis.results returns; draws with matplotlib's object API (Agg canvas, no pyplot state).

The figures live in this package by kind: ``sweeps`` (payload size, compression, workers, processes,
TLS), ``latency`` (open-loop rate sweep, percentile curves, streams), ``links`` (link rate), ``reference``
(what Python costs against the grpc-go server), ``handlers`` (the worker-count knee under handler work) and
``clients`` (client models, channel per call, options presets);
``select`` picks like-for-like rows, ``draw`` holds what every figure shares, ``bars`` the grouped bar panels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ...run.manifest import Manifest
from .clients import channels, clients, options
from .draw import TITLES, Drawn, Skip, Skipped, footer_text
from .handlers import handlers
from .latency import knee, latency_percentiles, open_loop, streaming
from .links import links
from .reference import python_cost
from .select import held_text, hold_fixed, ok_rows
from .sweeps import compression, payload, processes, tls, workers

__all__ = [
    "FIGURES",
    "TITLES",
    "Drawn",
    "Skip",
    "Skipped",
    "draw_all",
    "footer_text",
    "held_text",
    "hold_fixed",
    "knee",
    "ok_rows",
]

FIGURES: tuple[tuple[str, Callable[[pd.DataFrame, Manifest, Path], Drawn]], ...] = (
    ("payload", payload),
    ("gzip", compression),
    ("workers", workers),
    ("processes", processes),
    ("tls", tls),
    ("open_loop", open_loop),
    ("latency_percentiles", latency_percentiles),
    ("streaming", streaming),
    ("links", links),
    ("python_cost", python_cost),
    ("handlers", handlers),
    ("clients", clients),
    ("channels", channels),
    ("options", options),
)


def draw_all(df: pd.DataFrame, manifest: Manifest, out_dir: Path) -> list[Drawn | Skipped]:
    """Every figure the run has data for, written into ``out_dir``; the others as Skipped with the reason."""
    out: list[Drawn | Skipped] = []
    for name, draw in FIGURES:
        (out_dir / f"{name}.png").unlink(missing_ok=True)  # a figure left out now must not linger from before
        try:
            out.append(draw(df, manifest, out_dir))
        except Skip as why:
            out.append(Skipped(name, TITLES[name], str(why)))
    return out
