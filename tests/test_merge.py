"""`grpclab merge` (bench.run.merge): shards' run directories joined into one that report and compare read, and
the refusals: mixed environments (compare's own check), a cell in two shards, not a run directory.

The shards are the committed tests/data/sample-run split in two by cell, each with its own manifest (its plan
steps only), as two LoadTests of one spec would write them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import cli
from bench.analysis import results
from bench.gate.compare import compare_runs
from bench.run import manifest as manifest_module
from bench.run.merge import MergeError, merge
from bench.run.store import CELLS_DIR, read_cell_file

SAMPLE_RUN = Path(__file__).parent / "data" / "sample-run"


def _split(tmp_path: Path, parts: int = 2) -> list[Path]:
    """sample-run as ``parts`` shards: cells dealt round-robin, each shard's manifest planning only its cells."""
    document = json.loads((SAMPLE_RUN / "manifest.json").read_text())
    files = sorted((SAMPLE_RUN / CELLS_DIR).glob("*.json"))
    keys = sorted({read_cell_file(f)["cell_key"] for f in files})
    shards = []
    for i in range(parts):
        mine = set(keys[i::parts])
        shard = tmp_path / f"shard-{i}"
        (shard / CELLS_DIR).mkdir(parents=True)
        for f in files:
            if read_cell_file(f)["cell_key"] in mine:
                shutil.copy(f, shard / CELLS_DIR / f.name)
        plan = [step for step in document["plan"] if _key(step["cell"]) in mine]
        (shard / "manifest.json").write_text(json.dumps({**document, "plan": plan}))
        shards.append(shard)
    return shards


def _key(cell: dict) -> str:
    from bench.spec import Cell

    return Cell.from_dict(cell).key()


def test_merged_shards_are_one_run_that_report_and_compare_read(tmp_path: Path) -> None:
    shards = _split(tmp_path, 2)
    out = tmp_path / "merged"
    assert cli.main(["merge", *map(str, shards), "--out", str(out)]) == 0
    merged, original = results.load(out), results.load(SAMPLE_RUN)
    assert len(merged) == len(original) and set(merged["cell_key"]) == set(original["cell_key"])
    by_key = ["cell_key", "repetition"]
    assert (
        merged.sort_values(by_key)["rps"].tolist() == original.sort_values(by_key)["rps"].tolist()
    )  # rows as measured
    manifest = results.read_manifest(out)
    assert manifest.merge is not None and [s.path for s in manifest.merge.shards] == list(map(str, shards))
    assert sum(s.rows for s in manifest.merge.shards) == len(original)
    assert manifest.steps == len(original) and manifest.status == "complete"
    # the merged run compares with the run it was split from, cell for cell, without an environment refusal
    comparison = compare_runs(SAMPLE_RUN, out)
    assert set(comparison.rows["cell_key"]) == set(original.loc[~original["failed"], "cell_key"])
    assert comparison.worse.empty and not comparison.regression  # the same rows: no change
    # and `grpclab report` writes its report of it
    assert cli.main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "index.html").is_file()


def test_the_merge_record_reads_back_and_old_manifests_still_read(tmp_path: Path) -> None:
    shards = _split(tmp_path, 3)
    merge(shards, tmp_path / "m")
    again = manifest_module.read(tmp_path / "m")
    assert again.merge is not None and len(again.merge.shards) == 3
    assert manifest_module.read(SAMPLE_RUN).merge is None  # written before merges existed


def test_resuming_a_merged_run_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    # what a merged run misses belongs to the shard that measured elsewhere: resuming it here would mix machines
    out = tmp_path / "merged"
    merge(_split(tmp_path, 2), out)
    next((out / CELLS_DIR).glob("*.json")).unlink()  # a repetition missing
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert cli.main(["run", "--resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--resume: {out} is a merge of 2 shards (grpclab merge)" in err
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing written


def test_shards_measured_differently_are_refused_in_one_line(tmp_path: Path, capsys) -> None:
    shards = _split(tmp_path, 2)
    path = shards[1] / "manifest.json"
    document = json.loads(path.read_text())
    document["environment"]["cpu_model"] = "Another CPU"
    path.write_text(json.dumps(document))
    assert cli.main(["merge", *map(str, shards), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "were measured differently: CPU model" in err
    assert "Another CPU" in err and not (tmp_path / "m").exists()


def test_a_cell_in_two_shards_is_refused(tmp_path: Path) -> None:
    shards = _split(tmp_path, 2)
    twin = tmp_path / "twin"
    shutil.copytree(shards[0], twin)
    with pytest.raises(MergeError, match=r"cell .* is in two shards: .*shard-0 and .*twin"):
        merge([shards[0], shards[1], twin], tmp_path / "m")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda tmp, shards: [shards[0]], "at least two shard run directories"),
        (lambda tmp, shards: [shards[0], shards[0]], "given twice"),
        (lambda tmp, shards: [shards[0], tmp / "nothing"], "manifest.json: not found"),
        (lambda tmp, shards: [shards[0], _empty(shards[1])], "no measured repetition"),
    ],
)
def test_bad_merge_input_is_one_line_exit_2(tmp_path: Path, capsys, make, needle: str) -> None:
    shards = _split(tmp_path, 2)
    assert cli.main(["merge", *map(str, make(tmp_path, shards)), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def _empty(shard: Path) -> Path:
    shutil.rmtree(shard / CELLS_DIR)
    return shard
