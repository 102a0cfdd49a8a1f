"""Every study of the quick matrix (bench/specs/quick.toml) has a finding on a run with its cells; no process starts.

The studies are read from quick.toml itself: its [axes] product and each [[include]] table is a group of cells, and
the axes a group names (bar ``impl`` where it only says "for both servers") are what it studies. A group passes when
one of its cells is compared by a finding of a study over one of those axes (bench.analysis.findings.studies), and
every axis in which its cells differ from the baseline has a study at all. So an [[include]] added to quick.toml
without a finding fails here.

The run is SYNTHETIC, made here from quick.toml's cells: no committed run has all of them (the committed quick runs
predate handler work, the client side and BenchmarkService). Its numbers are invented, deterministic and only
shaped enough for every study to compare (finite, positive, two repetitions a side); what the findings SAY about real
numbers is tested in tests/test_findings.py and tests/test_findings_clients.py on committed runs.
"""

from __future__ import annotations

import tomllib
import zlib
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bench import results
from bench.analysis import findings, schema
from bench.spec import AXES, Cell, parse_spec

REPO = Path(__file__).resolve().parent.parent
QUICK_TOML = REPO / "bench" / "specs" / "quick.toml"
MANIFEST_FROM = REPO / "tests" / "data" / "quick-run"  # its environment only; spec and settings are quick.toml's


def quick_source() -> dict:
    return tomllib.loads(QUICK_TOML.read_text(encoding="utf-8"))


def groups(source: dict) -> list[tuple[str, dict, set[Cell]]]:
    """(name, the table, the cells it adds) for the [axes] product and each [[include]], in the file's order."""
    product = {**source, "include": []}
    base = set(parse_spec(product).cells)
    out = [("[axes]", {a: v for a, v in source["axes"].items() if isinstance(v, list) and len(v) > 1}, base)]
    for i, table in enumerate(source.get("include", [])):
        added = set(parse_spec({**source, "include": [table]}).cells) - base
        out.append((f"include[{i}] {table}", table, added))
    return out


def studied_axes(table: dict) -> set[str]:
    """The axes a group studies: those it names, but ``impl`` only alone or naming the Go server (elsewhere
    ``impl = ["sync", "aio"]`` says which servers the group's study runs on)."""
    named = set(table)
    impl = table.get("impl")
    go = impl == "go" or (isinstance(impl, list) and "go" in impl)
    if named != {"impl"} and not go:
        named.discard("impl")
    return named


def synthetic_run(cells: list[Cell]) -> pd.DataFrame:
    """Two repetitions of every cell with invented, deterministic numbers (see the module docstring)."""
    rows = []
    for order, cell in enumerate(cells):
        seed = zlib.crc32(cell.key().encode())
        scale = 1 + (seed % 1000) / 1000  # 1.0 .. 2.0, fixed per cell
        for rep, wobble in enumerate((0.99, 1.01)):
            metrics = {
                "rps": 5000 / scale * wobble,
                "server_cpu_us_per_rpc": 100 * scale * wobble,
                "loadgen_cpu_us_per_rpc": 90 * scale * wobble,
                "wire_bytes_per_rpc": (2000 + cell.payload_size) / (scale if cell.compression != "none" else 1),
                "lat_p50_ms": 0.5 * scale * wobble,
                "lat_p99_ms": 2.0 * scale * wobble,
                "server_cpu_util": 0.5,
                "loadgen_cpu_util": 0.5,
                "time_to_first_rpc_ms": 3.0 * scale,
                "loadgen_saturated": False,
                "server_saturated": False,
            }
            row = schema.empty_row() | cell.to_dict() | {"run_id": "synthetic-quick", "cell_key": cell.key()}
            rows.append(row | {"repetition": rep, "order": order, "failed": False} | metrics)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def quick_run() -> tuple[dict, tuple[findings.Finding, ...]]:
    source = quick_source()
    spec = parse_spec(source)
    manifest = replace(results.read_manifest(MANIFEST_FROM), spec_source=source, settings=spec.settings)
    return source, findings.compute(synthetic_run(list(spec.cells)), manifest)


def uncovered(
    source: dict, found: tuple[findings.Finding, ...], registry: tuple[findings.Study, ...] = findings.REGISTRY
) -> list[str]:
    """The groups of quick.toml no finding answers, each with why."""
    by_axis = {axis: {s.name for s in registry if axis in s.axes} for axis in AXES}
    baseline = parse_spec(source).cells[0]
    problems = []
    for name, table, cells in groups(source):
        if not cells:
            continue  # everything it names is already in the product
        differs = {a for a in studied_axes(table) for c in cells if getattr(c, a) != getattr(baseline, a)}
        no_study = sorted(a for a in differs if not by_axis[a])
        if no_study:
            problems.append(f"{name}: no study compares {', '.join(no_study)}")
            continue
        studies = set().union(*(by_axis[a] for a in studied_axes(table)))
        keys = {c.key() for c in cells}
        if not any(f.study in studies and keys & set(f.cells) for f in found):
            problems.append(f"{name}: no finding of {sorted(studies)} compares any of its {len(keys)} cells")
    return problems


def test_every_study_of_the_quick_matrix_has_a_finding(quick_run) -> None:
    source, found = quick_run
    assert uncovered(source, found) == []


def test_the_synthetic_run_is_the_whole_quick_matrix(quick_run) -> None:
    source, _ = quick_run
    cells = parse_spec(source).cells
    assert len(cells) == len(synthetic_run(list(cells)).drop_duplicates("cell_key")) == 73  # as quick.toml says
    assert sum(len(added) for _, _, added in groups(source)) == len(cells)  # every cell is in one group


def test_a_study_without_findings_is_caught(quick_run) -> None:
    """The check can fail: drop the client-side findings and the groups they answered are named."""
    source, found = quick_run
    kept = tuple(f for f in found if f.study not in ("client", "channel"))
    problems = uncovered(source, kept)
    assert len(problems) == 2 and all("['client']" in p or "['channel']" in p for p in problems), problems


def test_an_axis_without_a_study_is_caught(quick_run) -> None:
    source, found = quick_run
    without = tuple(s for s in findings.REGISTRY if s.name != "event_loop")  # as if no study compared it
    problems = uncovered(source, found, registry=without)
    assert problems and "no study compares event_loop" in problems[0]


def test_every_finding_compares_cells_of_the_run(quick_run) -> None:
    source, found = quick_run
    keys = {c.key() for c in parse_spec(source).cells}
    assert found and all(set(f.cells) <= keys for f in found)
    # every study over an axis the quick matrix varies has a finding (the options presets are full.toml's only)
    cells = parse_spec(source).cells
    varied = {a for a in AXES if len({getattr(c, a) for c in cells}) > 1}
    assert {f.study for f in found} == {s.name for s in findings.REGISTRY if set(s.axes) & varied}
    assert "options" not in {f.study for f in found}
