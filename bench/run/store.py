"""Writing a run directory: manifest.json, one atomic JSON file per finished cell repetition, and
the tidy tables (cells.parquet, cells.csv) rebuilt from those files after every cell.

The per-cell files are the source of truth: a harness killed at any moment
loses at most the repetition in progress, and ``grpclab run --resume`` reads
them to run only what is missing. Reading the tables is bench.analysis.results' job.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..analysis import schema
from .manifest import MANIFEST, Manifest, ResultsError, read

CELLS_DIR = "cells"
CSV = "cells.csv"
PARQUET = "cells.parquet"
_ARROW = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, rename: readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def cell_file_name(cell_key: str, repetition: int) -> str:
    digest = hashlib.sha1(cell_key.encode()).hexdigest()[:16]
    return f"{digest}-r{repetition}.json"


def read_cell_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: corrupt cell file ({exc})") from None
    written_in = schema.format_of(data.get("schema")) if isinstance(data, dict) else None
    if written_in is None or not isinstance(data.get("row"), dict):
        raise ResultsError(f"{path}: not a grpclab cell file (expected schema {schema.SCHEMA_VERSION} or older)")
    missing = schema.missing_columns(data["row"], written_in)
    if missing:
        raise ResultsError(f"{path}: cell file lacks columns {sorted(missing)[:3]}")
    return schema.complete(data["row"])


def arrow_schema(names: tuple[str, ...] = schema.NAMES) -> pa.Schema:
    return pa.schema([(n, _ARROW[schema.BY_NAME[n].kind]) for n in names])


class RunStore:
    def __init__(self, run_dir: Path, manifest: Manifest) -> None:
        self.dir = run_dir
        self.manifest = manifest

    @classmethod
    def create(cls, run_dir: Path, manifest: Manifest) -> RunStore:
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ResultsError(f"{run_dir}: already exists and is not empty (use --resume {run_dir} to continue it)")
        (run_dir / CELLS_DIR).mkdir(parents=True, exist_ok=True)
        store = cls(run_dir, manifest)
        store.write_manifest()
        return store

    @classmethod
    def open(cls, run_dir: Path) -> RunStore:
        """Reopen a run to resume it; validates the manifest and every cell file."""
        store = cls(run_dir, read(run_dir))
        (run_dir / CELLS_DIR).mkdir(exist_ok=True)
        store.rows()
        return store

    def begin(self) -> None:
        """The run is (again) being measured."""
        self.manifest = replace(self.manifest, status="running", ended_at=None)
        self.write_manifest()

    def record(self, **fields: object) -> None:
        """Set manifest fields (the machine's state, the hold, the calibration) and write the manifest."""
        self.manifest = replace(self.manifest, **fields)
        self.write_manifest()

    def finish(self, status: str) -> None:
        """The run stopped: ``complete``, ``interrupted`` or ``failed``, now (the one place that says so)."""
        self.manifest = self.manifest.finished(status)
        self.write_manifest()

    def write_manifest(self) -> None:
        """The manifest in the current format (a resumed older run is upgraded as it is rewritten)."""
        atomic_write(self.dir / MANIFEST, self.manifest.dumps().encode())

    def cell_paths(self) -> list[Path]:
        return sorted((self.dir / CELLS_DIR).glob("*.json"))

    def rows(self) -> list[dict]:
        return [read_cell_file(p) for p in self.cell_paths()]

    def done(self) -> set[tuple[str, int]]:
        return {(r["cell_key"], int(r["repetition"])) for r in self.rows()}

    def add_row(self, row: dict) -> None:
        missing = set(schema.NAMES) - row.keys()
        if missing:
            raise ValueError(f"row lacks columns: {sorted(missing)}")
        payload = {"schema": schema.SCHEMA_VERSION, "row": {n: row[n] for n in schema.NAMES}}
        path = self.dir / CELLS_DIR / cell_file_name(row["cell_key"], row["repetition"])
        atomic_write(path, (json.dumps(payload, allow_nan=True) + "\n").encode())
        self.write_tables()

    def write_tables(self) -> None:
        rows = sorted(self.rows(), key=lambda r: r["order"])
        table = pa.Table.from_pylist(rows, schema=arrow_schema())
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write(self.dir / PARQUET, sink.getvalue().to_pybytes())
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table.select(list(schema.CSV_NAMES)), sink)
        atomic_write(self.dir / CSV, sink.getvalue().to_pybytes())
