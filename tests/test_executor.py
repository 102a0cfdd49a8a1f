"""bench.run.executor: one executor over one or more sides; the schedule, and a run's lifecycle on every exit."""

from __future__ import annotations

import signal
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from bench.analysis import schema
from bench.machine import cpu_latency, system
from bench.run import executor
from bench.run.executor import Side, Step, execute, schedule
from bench.run.manifest import PlacementInfo, read
from bench.run.measure import Context, ServerCode
from bench.run.plan import Plan
from bench.run.store import RunStore
from bench.spec import parse_spec

FIXTURE = Path(__file__).resolve().parent / "data" / "sample-run"
SYSTEM_TREE = Path(__file__).resolve().parent / "data" / "system" / "kvm-haltpoll"
# These tests are about the schedule and the lifecycle; tests/test_calibration.py runs the calibration.
SPEC = parse_spec(
    {
        "name": "three",
        "settings": {"repetitions": 2, "seed": 7, "calibrate": False},
        "axes": {"impl": ["sync", "aio"], "concurrency": [1, 2]},
    }
)
PLAN = Plan.make(SPEC.cells, SPEC.settings)


@pytest.fixture(autouse=True)
def fake_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine's facts from a committed tree, and a regular file as /dev/cpu_dma_latency (returned)."""
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(struct.pack("=i", cpu_latency.NO_REQUEST_US))
    monkeypatch.setattr(cpu_latency, "DEVICE", device)
    monkeypatch.setattr(
        executor, "machine_facts", lambda pinning: system.collect(SYSTEM_TREE, pinning=pinning, steal_interval_s=0)
    )
    return device


class FakePlacement:
    checked = 0

    def check(self) -> None:
        FakePlacement.checked += 1

    def describe(self) -> PlacementInfo:
        return PlacementInfo("local", (0,), (1,))


def store(tmp_path: Path, name: str) -> RunStore:
    manifest = replace(read(FIXTURE), plan=PLAN, settings=SPEC.settings, status="created", ended_at=None)
    return RunStore.create(tmp_path / name, manifest)


def fake_measure(seen: list):
    def measure(cell, repetition: int, order: int, ctx: Context) -> dict:
        seen.append((ctx.run_id, cell.key(), repetition, dict(ctx.server.env), ctx.certs_dir))
        assert (ctx.certs_dir / "ca.crt").is_file() and (ctx.certs_dir / "server.key").is_file()
        row = schema.empty_row()
        row.update(cell.to_dict(), cell_key=cell.key(), repetition=repetition, order=order, run_id=ctx.run_id)
        return row

    return measure


def test_one_side_runs_the_plan_in_order_and_skips_what_its_store_has(tmp_path):
    one = store(tmp_path, "one")
    assert [(order, cell, rep) for order, cell, rep, _ in schedule([Side(one)], PLAN, 1)] == [
        (i, cell, rep) for i, (cell, rep) in enumerate(PLAN.steps)
    ]
    first = PLAN.steps[0]
    one.add_row({**schema.empty_row(), "cell_key": first[0].key(), "repetition": first[1], "order": 0})
    assert [order for order, *_ in schedule([Side(one)], PLAN, 1)] == list(range(1, len(PLAN.steps)))


def test_sides_are_interleaved_per_step_in_a_seeded_order_that_resuming_does_not_change(tmp_path):
    sides = [Side(store(tmp_path, name), name) for name in ("A", "A2", "B")]
    full = schedule(sides, PLAN, 7)
    assert len(full) == 3 * len(PLAN.steps)
    per_step = [[side.name for order, _, _, side in full if order == i] for i in range(len(PLAN.steps))]
    assert all(sorted(names) == ["A", "A2", "B"] for names in per_step)
    assert len({tuple(names) for names in per_step}) > 1, "the order within a step is drawn, not fixed"
    assert [(o, s.name) for o, _, _, s in schedule(sides, PLAN, 7)] == [(o, s.name) for o, _, _, s in full]
    cell, rep = PLAN.steps[0]
    sides[1].store.add_row({**schema.empty_row(), "cell_key": cell.key(), "repetition": rep, "order": 0})
    resumed = [(o, s.name) for o, _, _, s in schedule(sides, PLAN, 7)]
    assert resumed == [(o, s.name) for o, _, _, s in full if (o, s.name) != (0, "A2")]


def test_execute_measures_every_side_finishes_each_store_and_cleans_up(tmp_path, monkeypatch):
    seen: list = []
    monkeypatch.setattr(executor, "measure", fake_measure(seen))
    steps: list[Step] = []
    before = signal.getsignal(signal.SIGTERM)
    cell0 = SPEC.cells[0]
    sides = [
        Side(store(tmp_path, "base"), "base", ServerCode(env={"X": "1"})),
        Side(store(tmp_path, "head"), "head", cell_env={cell0.key(): {"INJECT": "5"}}),
    ]
    assert execute(sides, PLAN, SPEC.settings, steps.append, FakePlacement()) == 2 * len(PLAN.steps)
    assert FakePlacement.checked >= 1
    assert signal.getsignal(signal.SIGTERM) == before
    assert not seen[0][4].exists()  # the certificates directory is gone
    for side in sides:
        manifest = read(side.store.dir)
        assert manifest.status == "complete" and manifest.ended_at
        assert len(side.store.rows()) == len(PLAN.steps)
    envs = {(run, key): env for run, key, _, env, _ in seen}
    assert envs[("base", cell0.key())] == {"X": "1"}
    assert envs[("head", cell0.key())] == {"INJECT": "5"}  # only that cell, only that side
    assert envs[("head", SPEC.cells[1].key())] == {}
    started = [s for s in steps if s.row is None]
    assert len(started) == len(steps) // 2 and steps[-1].done == steps[-1].total == 2 * len(PLAN.steps)


@pytest.mark.parametrize(("raised", "status"), [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_a_run_that_stops_says_why_in_every_side_s_manifest(tmp_path, monkeypatch, raised, status):
    calls: list = []

    def measure(cell, repetition, order, ctx):
        if len(calls) == 3:
            raise raised("stop")
        calls.append(ctx.certs_dir)
        return fake_measure([])(cell, repetition, order, ctx)

    monkeypatch.setattr(executor, "measure", measure)
    sides = [Side(store(tmp_path, name), name) for name in ("base", "head")]
    with pytest.raises(raised):
        execute(sides, PLAN, SPEC.settings, lambda step: None, FakePlacement())
    for side in sides:
        manifest = read(side.store.dir)
        assert manifest.status == status and manifest.ended_at
    assert sum(len(side.store.rows()) for side in sides) == 3  # every finished step is kept
    assert not calls[0].exists()


def test_sigterm_inside_the_block_is_a_keyboard_interrupt():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), executor.sigterm_interrupts():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before
