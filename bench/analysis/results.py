"""Reading results: the API notebooks, the report and compare use (and nothing else).

from bench import results
df = results.load("results/20261125-101500-quick")      # one row per cell x repetition
both = results.load_many([run_a, run_b])                 # adds a `run` column
hist = results.histogram(df.iloc[0])                     # the row's HdrHistogram (microseconds)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from hdrh.histogram import HdrHistogram

from ..load import histogram as hdr
from ..spec import ALLOWED, AXES
from . import schema

RUN_SCHEMA = "grpclab.run/1"
MANIFEST = "manifest.json"
PARQUET = "cells.parquet"
RESULTS_ROOT = Path("results")


class ResultsError(Exception):
    """A missing, corrupt or foreign results file (the message names it)."""


def read_manifest(run_dir: str | Path) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ResultsError(f"{path}: not found (is {run_dir} a grpclab run directory?)")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: corrupt manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != RUN_SCHEMA:
        raise ResultsError(f"{path}: not a grpclab run manifest (expected schema {RUN_SCHEMA})")
    return manifest


def read_cell_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: corrupt cell file ({exc})") from None
    if (
        not isinstance(data, dict)
        or data.get("schema") != schema.SCHEMA_VERSION
        or not isinstance(data.get("row"), dict)
    ):
        raise ResultsError(f"{path}: not a grpclab cell file (expected schema {schema.SCHEMA_VERSION})")
    missing = set(schema.NAMES) - data["row"].keys()
    if missing:
        raise ResultsError(f"{path}: cell file lacks columns {sorted(missing)[:3]}")
    return data["row"]


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for axis in AXES:
        if axis in ALLOWED:  # enumerated axes: categoricals in the spec's order
            df[axis] = pd.Categorical(df[axis], categories=list(ALLOWED[axis]), ordered=True)
    return df


def load(run_dir: str | Path) -> pd.DataFrame:
    """The run's tidy table, typed: numbers numeric, enumerated axes categorical, flags bool."""
    run_dir = Path(run_dir)
    read_manifest(run_dir)
    path = run_dir / PARQUET
    if not path.is_file():
        raise ResultsError(f"{path}: not found (the run has no finished cell yet)")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        raise ResultsError(f"{path}: unreadable parquet ({type(exc).__name__}: {exc})") from None
    missing = set(schema.NAMES) - set(df.columns)
    if missing:
        raise ResultsError(f"{path}: not a grpclab cells table (missing {sorted(missing)[:3]})")
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
