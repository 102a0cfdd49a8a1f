"""Reading results: the API notebooks, the report and compare use (and nothing else).

from bench import results
df = results.load("results/20261125-101500-quick")      # one row per cell x repetition
both = results.load_many([run_a, run_b])                 # adds a `run` column
hist = results.histogram(df.iloc[0])                     # the row's HdrHistogram (microseconds)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from hdrh.histogram import HdrHistogram

from ..load import histogram as hdr
from ..run.manifest import MANIFEST as MANIFEST
from ..run.manifest import Manifest, ResultsError, read
from ..run.store import PARQUET
from ..spec import ALLOWED, AXES
from . import schema

RESULTS_ROOT = Path("results")


def read_manifest(run_dir: str | Path) -> Manifest:
    """The run's manifest, typed (bench.run.manifest.Manifest): spec, settings, placement, environment..."""
    return read(run_dir)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for axis in AXES:
        if axis in ALLOWED:  # enumerated axes: categoricals in the spec's order
            df[axis] = pd.Categorical(df[axis], categories=list(ALLOWED[axis]), ordered=True)
    return df


def load(run_dir: str | Path) -> pd.DataFrame:
    """The run's tidy table, typed: numbers numeric, enumerated axes categorical, flags bool."""
    run_dir = Path(run_dir)
    read_manifest(run_dir)  # a directory that is not a run is named as such, before its table is read
    path = run_dir / PARQUET
    if not path.is_file():
        raise ResultsError(f"{path}: not found (the run has no finished cell yet)")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        raise ResultsError(f"{path}: unreadable parquet ({type(exc).__name__}: {exc})") from None
    missing = schema.missing_columns(df.columns, written_in=1)
    if missing:
        raise ResultsError(f"{path}: not a grpclab cells table (missing {sorted(missing)[:3]})")
    # A table written before later columns existed: fill them as schema.complete fills a row.
    df = df.assign(**{name: value for name, value in schema.later_defaults(df.columns).items()})
    return _typed(df)


def load_many(run_dirs: Iterable[str | Path], names: Iterable[str] | None = None) -> pd.DataFrame:
    """Several runs in one table with a `run` column (the directory name unless ``names`` are given)."""
    run_dirs = [Path(d) for d in run_dirs]
    labels = list(names) if names is not None else [d.name for d in run_dirs]
    frames = [load(d).assign(run=label) for d, label in zip(run_dirs, labels, strict=True)]
    df = pd.concat(frames, ignore_index=True)
    return _typed(df)


def histogram(row: pd.Series | dict, which: str = "call") -> HdrHistogram:
    """The row's latency histogram: call, msg, first or lag (microseconds)."""
    text = row[f"hdr_{which}"]
    return hdr.decode(text) if text else hdr.new()


def latest_run(root: str | Path = RESULTS_ROOT) -> Path | None:
    """The newest run directory under ``root`` that has a cells table."""
    runs = [p.parent for p in Path(root).glob(f"*/{PARQUET}")]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None
