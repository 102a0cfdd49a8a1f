"""bench.run.manifest: the typed, versioned manifest, and runs written before it (format /1) still load."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench.analysis import results
from bench.run.manifest import (
    FORMAT,
    FORMAT_1,
    MANIFEST,
    GateStudyInfo,
    Injection,
    Manifest,
    PlacementInfo,
    RegressInfo,
    ResultsError,
    read,
    upgrade,
)
from bench.run.plan import Plan
from bench.run.store import RunStore
from bench.spec import Settings

DATA = Path(__file__).resolve().parent / "data"
V1_RUN = DATA / "sample-run-v1"  # written by grpclab at commit aad5d7b, before the manifest had a type
CROSSCHECK = Path(__file__).resolve().parent.parent / "results" / "crosscheck-2026-11-25"


def test_a_format_1_manifest_is_upgraded_on_read():
    raw = json.loads((V1_RUN / MANIFEST).read_text())
    assert raw["schema"] == FORMAT_1 and "pinning" in raw and "placement" not in raw
    manifest = read(V1_RUN)
    assert manifest.placement == PlacementInfo("local", tuple(raw["pinning"]["server_cpus"]), (1,))
    assert manifest.steps == raw["steps"] == len(raw["plan"]) and manifest.cells == raw["cells"]
    assert manifest.settings == Settings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in raw["settings"].items()},
        cpu_latency_hold=False,  # settings added since read as what the run did: no hold, no calibration
        calibrate=False,
    )
    assert manifest.environment.git.commit == raw["environment"]["git"]["commit"]
    assert manifest.environment.versions == raw["environment"]["versions"]
    assert manifest.plan == Plan.from_json(raw["plan"])
    assert (manifest.status, manifest.regress, manifest.gate_study) == ("complete", None, None)
    assert upgrade(raw)["schema"] == FORMAT and raw["schema"] == FORMAT_1  # the document read is not changed


def test_the_committed_crosscheck_run_still_loads():
    manifest = results.read_manifest(CROSSCHECK)
    assert manifest.spec_name == "crosscheck" and manifest.cells == 16 and manifest.steps == 80
    assert manifest.environment.ghz == "v0.121.0"
    assert len(results.load(CROSSCHECK)) == 80


def test_round_trip_through_json_is_exact():
    manifest = read(V1_RUN)
    again = Manifest.from_json(json.loads(manifest.dumps()))
    assert again == manifest
    gated = replace(
        manifest,
        regress=RegressInfo("base", "HEAD~1", "a" * 40, "HEAD~1", "a" * 40, "worktree", "head's", "shared"),
        gate_study=GateStudyInfo("B", {"k": Injection(baseline_us_per_rpc=180.5, inject_us=18)}),
    )
    assert Manifest.from_json(json.loads(gated.dumps())) == gated
    written = json.loads(gated.dumps())
    assert written["schema"] == FORMAT and "pinning" not in written and "steps" not in written


def test_a_resumed_format_1_run_is_rewritten_in_the_current_format(tmp_path):
    run = shutil.copytree(V1_RUN, tmp_path / "run")
    store = RunStore.open(run)
    assert len(store.rows()) == store.manifest.steps  # every cell file of the old run reads
    store.begin()
    assert json.loads((run / MANIFEST).read_text())["schema"] == FORMAT
    store.finish("interrupted")
    again = read(run)
    assert again.status == "interrupted" and again.ended_at and again.plan == read(V1_RUN).plan


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(schema="grpclab.run/9"), "not a grpclab run manifest"),
        (lambda m: m.update(surprise=1), r"unknown keys \['surprise'\] \(written by a newer grpclab\?\)"),
        (lambda m: m["settings"].update(turbo=True), r"settings: unknown keys \['turbo'\]"),
        (lambda m: m["environment"].update(gpu="x"), r"environment: unknown keys \['gpu'\]"),
        (lambda m: m.pop("spec_name"), "missing spec_name"),
        (lambda m: m.update(plan="not a plan"), "corrupt manifest"),
    ],
)
def test_a_foreign_or_damaged_manifest_is_one_line_naming_the_problem(tmp_path, edit, message):
    data = json.loads((V1_RUN / MANIFEST).read_text())
    edit(data)
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=message) as err:
        read(tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path / MANIFEST) in str(err.value)


def test_a_missing_or_unparsable_manifest_is_named(tmp_path):
    with pytest.raises(ResultsError, match="not found .is .* a grpclab run directory"):
        read(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ResultsError, match="corrupt manifest"):
        read(tmp_path)
