"""`grpclab merge SHARD_DIR... --out RUN_DIR`: the run directories of many shards (e.g. one per LoadTest,
bench.remote.loadtest) joined into one run directory that `grpclab report` and `grpclab compare` read.

The shards' cell files are the measured data: each is checked (bench.run.store.read_cell_file) and copied
as it is, rows unchanged (each row's ``run_id`` still names the shard that measured it), and the tables
are rebuilt from them. Refused, with one line, before anything is written:

- shards measured in environments that `grpclab compare` would refuse to compare (its own check,
  bench.gate.compare.environment_differences, against the first shard): a merged run would mix machines or
  settings in one table;
- a cell measured in two shards (its repetitions would collide; shards of one spec never share a cell);
- a directory that is not a run directory, or one with no measured repetition.

The merged manifest has the first shard's environment, placement and settings (the check makes the others the
same where it matters; for driven shards that includes the workers' machines), every shard's plan steps, and
``merge``: when, and each shard's path, status, times, steps, rows, placement and commit. Its status is
``complete`` only when every shard's is. Each shard's machine state and calibration stay in its own manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..gate.compare import environment_differences
from .manifest import Manifest, MergeInfo, ResultsError, ShardInfo, now, read
from .plan import Plan
from .store import CELLS_DIR, RunStore, atomic_write, read_cell_file


class MergeError(ResultsError):
    """Shards that cannot be one run (one line naming them): exit 2."""


def _shard(path: Path) -> tuple[Manifest, list[Path], list[dict]]:
    manifest = read(path)
    files = sorted((path / CELLS_DIR).glob("*.json"))
    if not files:
        raise MergeError(f"{path}: no measured repetition ({path / CELLS_DIR}/*.json); nothing to merge")
    return manifest, files, [read_cell_file(f) for f in files]


def _status(statuses: Sequence[str]) -> str:
    for worst in ("failed", "interrupted", "running"):
        if worst in statuses:
            return worst
    return "complete"


def merge(shard_dirs: Sequence[Path], out: Path) -> Manifest:
    """Join ``shard_dirs`` into the new run directory ``out``; MergeError/ResultsError (one line) on bad input."""
    if len(shard_dirs) < 2:
        raise MergeError(f"merge: give at least two shard run directories, got {len(shard_dirs)}")
    if len({p.resolve() for p in shard_dirs}) != len(shard_dirs):
        raise MergeError("merge: a shard directory is given twice")
    shards = [(path, *_shard(path)) for path in shard_dirs]
    first_path, first, _, _ = shards[0]
    measured_in: dict[str, Path] = {}
    for path, manifest, _, rows in shards:
        hard, _ = environment_differences(first, manifest)
        if hard:
            raise MergeError(
                f"{first_path} and {path} were measured differently: {'; '.join(hard)} "
                "(grpclab compare refuses such runs; a merged run would mix them in one table)"
            )
        for key in sorted({row["cell_key"] for row in rows}):
            if key in measured_in:
                raise MergeError(f"cell {key} is in two shards: {measured_in[key]} and {path}")
            measured_in[key] = path
    shard_info = tuple(
        ShardInfo(
            path=str(path),
            spec_name=manifest.spec_name,
            started_at=manifest.started_at,
            ended_at=manifest.ended_at,
            status=manifest.status,
            steps=manifest.steps,
            rows=len(rows),
            placement=manifest.placement.kind,
            git_commit=manifest.environment.git.commit,
        )
        for path, manifest, _, rows in shards
    )
    ended = [m.ended_at for _, m, _, _ in shards]
    merged = replace(
        first,
        spec_name=first.spec_name if all(m.spec_name == first.spec_name for _, m, _, _ in shards) else "merged",
        plan=Plan([step for _, manifest, _, _ in shards for step in manifest.plan.steps]),
        started_at=min(m.started_at for _, m, _, _ in shards),
        ended_at=None if None in ended else max(e for e in ended if e is not None),
        status=_status([m.status for _, m, _, _ in shards]),
        # The machine's state and calibration were each shard's own; the shards' manifests keep them.
        system=None,
        calibration=None,
        merge=MergeInfo(merged_at=now(), shards=shard_info),
    )
    store = RunStore.create(out, merged)
    for _, _, files, _ in shards:
        for source in files:
            atomic_write(out / CELLS_DIR / source.name, source.read_bytes())
    store.write_tables()
    return merged


def main(shard_dirs: Sequence[Path], out: Path) -> int:
    """`grpclab merge`: prints what it joined; errors are the CLI's (one line, exit 2)."""
    merged = merge(shard_dirs, out)
    rows = sum(shard.rows for shard in merged.merge.shards) if merged.merge else 0
    print(f"{out}: {rows} repetitions of {merged.cells} cells from {len(shard_dirs)} shards (status {merged.status})")
    return 0
