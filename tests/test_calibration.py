"""Issue 11 part B, pure logic: the hold and calibrate settings and flag, the manifest's machine fields, the hold as
an environment difference in compare, the unstable rule, the calibration's maths, and the executor's recording
(with a fake measure, a committed /proc + /sys tree and a regular file for /dev/cpu_dma_latency).

The slow tests that run the real thing are in tests/test_machine_run.py.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import struct
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from bench import cli
from bench.analysis import report, results, stability, summary, table
from bench.gate import compare, render
from bench.machine import cpu_latency, system
from bench.machine.cpu_latency import HoldState
from bench.run import calibration, executor
from bench.run.calibration import Calibration, Floor, Noise
from bench.run.executor import Side, execute
from bench.run.manifest import MANIFEST, Manifest, PlacementInfo, ResultsError, read
from bench.run.measure import Context
from bench.run.plan import Plan
from bench.run.store import RunStore
from bench.spec import DEFAULTS, Cell, SpecError, parse_spec, with_settings

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = DATA / "sample-run"  # format /2, written before the machine fields existed
KVM = DATA / "system" / "kvm-haltpoll"
NO_REQUEST = cpu_latency.NO_REQUEST_US


def kvm_facts(pinning: tuple[int, ...] = (0, 1), request: int | None = None) -> system.SystemFacts:
    facts = system.collect(KVM, pinning=pinning, steal_interval_s=0)
    if request is not None:
        facts = replace(facts, cpu_latency_request_us=request)
        facts = replace(facts, checks=tuple(system.evaluate(facts)))
    return facts


def a_calibration(**changes) -> Calibration:
    floor = Floor("sync/unary/.../c1/.../python", 0.15, 0.24, 6000.0, 110.0, 86.0)
    noise = Noise.from_rows("sync/unary/.../c8/.../python", [row(rps=r) for r in (9000.0, 9300.0, 8800.0)])
    base = Calibration(floor={"python": floor}, noise=noise, window_s=2.0, warmup_s=0.5, seconds=21.0)
    return replace(base, **changes)


def row(**values: float) -> dict:
    """A measured row, as far as the calibration reads one."""
    base = {
        "cell_key": "k",
        "failed": False,
        "error": "",
        "rpcs_ok": 100,
        "rps": 5000.0,
        "lat_p50_ms": 0.2,
        "lat_p99_ms": 0.4,
        "server_cpu_us_per_rpc": 100.0,
        "loadgen_cpu_us_per_rpc": 90.0,
    }
    return {**base, **values}


# -- settings and the flag ---------------------------------------------------------------------------------------


def test_both_settings_default_on_and_take_booleans_only():
    spec = parse_spec({"name": "s"})
    assert spec.settings.cpu_latency_hold is True and spec.settings.calibrate is True
    off = parse_spec({"name": "s", "settings": {"cpu_latency_hold": False, "calibrate": False}})
    assert (off.settings.cpu_latency_hold, off.settings.calibrate) == (False, False)
    for key, value, shown in (("cpu_latency_hold", "off", "'off'"), ("calibrate", 1, "1"), ("calibrate", 0, "0")):
        with pytest.raises(SpecError) as err:
            parse_spec({"name": "s", "settings": {key: value}})
        assert str(err.value) == f"settings.{key}: expected true or false, got {shown}"


def test_run_flags_override_the_spec_and_default_to_it():
    parser = cli.build_parser()
    assert parser.parse_args(["run"]).cpu_latency_hold is None and parser.parse_args(["run"]).calibrate is None
    args = parser.parse_args(["run", "--no-cpu-latency-hold", "--no-calibrate"])
    assert (args.cpu_latency_hold, args.calibrate) == (False, False)
    assert parser.parse_args(["run", "--cpu-latency-hold"]).cpu_latency_hold is True
    spec = parse_spec({"name": "s", "settings": {"cpu_latency_hold": False}})
    assert with_settings(spec, cpu_latency_hold=True, calibrate=None).settings.cpu_latency_hold is True
    assert with_settings(spec, cpu_latency_hold=None).settings.cpu_latency_hold is False  # None keeps the spec's


# -- the hold's record ---------------------------------------------------------------------------------------------


def test_hold_records_say_what_idle_cpus_could_do(tmp_path):
    device = tmp_path / "dev"
    device.write_bytes(struct.pack("=i", NO_REQUEST))
    off = HoldState.not_requested("turned off", device)
    assert (off.requested, off.held, off.effective_us, off.polling, off.warns) == (
        False,
        False,
        NO_REQUEST,
        False,
        True,
    )
    assert off.describe().startswith("warning: /dev/cpu_dma_latency not held: turned off;")
    device.write_bytes(struct.pack("=i", 0))  # someone else holds 0: idle CPUs poll anyway, no warning
    other = HoldState.not_requested("turned off", device)
    assert other.polling and not other.warns and "another process holds" in other.describe()
    held = HoldState(requested_us=0, held=True, effective_us=0)
    assert held.polling and not held.warns and held.regime() == other.regime() != off.regime()
    for state in (off, other, held, HoldState(0, False, None, "no device")):
        assert HoldState.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert HoldState(0, False, None, "no device").polling is None  # unknown


def test_the_cpuidle_advice_says_runs_hold_by_default():
    idle = next(c for c in kvm_facts().checks if c.name == "cpuidle")
    assert idle.status == system.WARNING
    assert "`grpclab run` holds it for its duration by default" in idle.effect
    assert "settings.cpu_latency_hold = false" in idle.effect and "grpclab system tune" in idle.effect


# -- the manifest ------------------------------------------------------------------------------------------------


def test_a_manifest_without_the_machine_fields_still_reads():
    manifest = read(SAMPLE)
    assert (manifest.system, manifest.cpu_latency_hold, manifest.calibration) == (None, None, None)
    raw = json.loads((SAMPLE / MANIFEST).read_text())
    assert not {"system", "cpu_latency_hold", "calibration"} & raw.keys()
    assert "system" not in manifest.to_json()  # and is written back without them


def test_the_machine_fields_round_trip_through_json_exactly():
    facts = kvm_facts(request=0)
    hold = HoldState(requested_us=0, held=True, effective_us=0)
    cal = a_calibration(floor_with_hold={"python": a_calibration().floor["python"]}, failures={"floor.ghz": "no ghz"})
    manifest = replace(read(SAMPLE), system=facts, cpu_latency_hold=hold, calibration=cal)
    data = json.loads(manifest.dumps())
    assert data["calibration"]["floor"]["python"]["p50_ms"] == 0.15  # the shape DESIGN.md fixes
    assert set(data["calibration"]["noise"]["cv"]) == {"rps", "lat_p50_ms", "server_cpu_us_per_rpc"}
    assert data["system"] == json.loads(json.dumps(facts.to_json())) and data["cpu_latency_hold"]["requested"] is True
    again = Manifest.from_json(data)
    assert again == manifest and again.system.checks == facts.checks
    assert again.dumps() == manifest.dumps()


@pytest.mark.parametrize(
    ("part", "value", "message"),
    [
        ("calibration", {"floor": {}}, "calibration: corrupt (missing window_s)"),
        ("calibration", [], "calibration: expected an object, got list"),
        ("cpu_latency_hold", {"held": True}, "cpu_latency_hold: corrupt (missing requested_us)"),
        ("system", {"schema_version": 99}, "system: corrupt (system facts schema_version 99; this grpclab reads 1)"),
    ],
)
def test_a_damaged_machine_field_is_one_line_naming_it(tmp_path, part, value, message):
    data = json.loads((SAMPLE / MANIFEST).read_text())
    data[part] = value
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ResultsError) as err:
        read(tmp_path)
    assert str(err.value).endswith(message) and "\n" not in str(err.value)


def test_unknown_calibration_keys_are_refused():
    data = a_calibration().to_json() | {"colour": "blue"}
    with pytest.raises(ValueError, match=r"calibration: unknown keys \['colour'\]"):
        Calibration.from_json(data)


# -- compare: a different hold is a different environment ------------------------------------------------------------


def run_copy(tmp_path: Path, name: str, **fields) -> Path:
    out = tmp_path / name
    shutil.copytree(SAMPLE, out)
    manifest = replace(read(out), **fields)
    (out / MANIFEST).write_text(manifest.dumps())
    return out


HELD = HoldState(requested_us=0, held=True, effective_us=0)
OFF = HoldState(requested_us=0, held=False, effective_us=NO_REQUEST, reason="turned off", requested=False)


def test_a_hold_mismatch_is_refused_like_a_grpcio_upgrade(tmp_path):
    held = run_copy(tmp_path, "held", cpu_latency_hold=HELD)
    off = run_copy(tmp_path, "off", cpu_latency_hold=OFF)
    hard, _ = compare.environment_differences(read(held), read(off))
    assert hard == ["cpu_latency_hold effective request 0 us vs effective request none"]
    with pytest.raises(compare.CompareError, match="cpu_latency_hold effective request 0 us vs"):
        compare.compare_runs(held, off)
    cmp = compare.compare_runs(held, off, allow_env_mismatch=True)
    assert cmp.warnings[0].startswith("environments differ (compared anyway, --allow-env-mismatch): cpu_latency_hold")
    # the same regime is no difference, whoever held it; a run that recorded none is a soft difference
    other = run_copy(tmp_path, "other", cpu_latency_hold=replace(OFF, effective_us=0))
    assert compare.environment_differences(read(held), read(other))[0] == []
    hard, soft = compare.environment_differences(read(held), read(SAMPLE))
    assert hard == [] and any(s.startswith("cpu_latency_hold recorded by one run only") for s in soft)


# -- the unstable rule -------------------------------------------------------------------------------------------


def test_cv_is_the_sample_standard_deviation_over_the_mean():
    values = [100.0, 110.0, 90.0, 105.0]
    assert stability.cv(values) == pytest.approx(statistics.stdev(values) / statistics.fmean(values))
    assert math.isnan(stability.cv([1.0])) and math.isnan(stability.cv([0.0, 0.0]))
    assert stability.cv([1.0, float("nan"), 1.0]) == 0.0  # NaN left out


def test_unstable_means_above_max_of_twice_the_noise_and_10_percent():
    assert stability.limit("rps") == stability.limit("rps", {"rps": 0.03}) == 0.10
    assert stability.limit("rps", {"rps": 0.08}) == pytest.approx(0.16)
    assert stability.limit("rps", {"rps": float("nan")}) == 0.10
    spread = [100.0, 124.0]  # CV 15.2 %
    assert [s.metric for s in stability.unstable({"rps": spread})] == ["rps"]
    assert stability.unstable({"rps": spread}, {"rps": 0.08}) == []  # a noisy machine: within 2 x its noise
    assert stability.unstable({"rps": [100.0, 108.0]}) == []  # CV 5.4 %
    assert stability.unstable({"rps": [100.0]}) == []  # one repetition: nothing to judge
    assert stability.unstable({"lat_p99_ms": spread}) == []  # only the calibrated metrics are judged
    (found,) = stability.unstable({"server_cpu_us_per_rpc": spread})
    assert found.text() == "server_cpu_us_per_rpc CV 15% > 10%"


def a_table(values: dict[str, list[float]], failed: dict[str, list[bool]] | None = None) -> pd.DataFrame:
    """A tidy table of cells (impl values) x repetitions, rps varying as given, the other metrics steady."""
    rows = results.load(SAMPLE).iloc[[0]].to_dict("records")[0]
    out = []
    for order, (impl, series) in enumerate(values.items()):
        cell = Cell.from_dict({**DEFAULTS, "impl": impl})
        for rep, rps in enumerate(series):
            bad = (failed or {}).get(impl, [False] * len(series))[rep]
            out.append(
                {**rows, **cell.to_dict(), "cell_key": cell.key(), "repetition": rep, "order": order * 10 + rep}
                | {"rps": rps, "lat_p50_ms": 1.0, "server_cpu_us_per_rpc": 100.0, "failed": bad}
                | {"loadgen_saturated": False, "errors": 0}
            )
    return pd.DataFrame(out)


def test_the_summary_the_report_table_and_compare_flag_the_same_cells():
    df = a_table({"sync": [1000.0, 1300.0, 1000.0], "aio": [1000.0, 1010.0, 990.0]})
    sync_key = Cell.from_dict({**DEFAULTS, "impl": "sync"}).key()
    assert list(stability.unstable_cells(df)) == [sync_key]
    cells = table.build(df)
    flags = {r.key: [f.text for f in r.flags] for r in cells.rows}
    assert flags[sync_key] == ["unstable (rps CV 16% > 10%)"] and cells.unstable_cells == 1
    assert not any(flags[k] for k in flags if k != sync_key)
    assert table.build(df, {"rps": 0.1}).unstable_cells == 0  # against a machine noise of 10 %: limit 20 %
    assert "unstable (rps CV 16% > 10%)" in table.to_markdown(cells) and 'class="cell unstable"' in table.to_html(cells)
    console = Console(record=True, width=250)
    summary.render(df, console)
    assert "1 of 2 cells are unstable" in console.export_text()
    # failed repetitions are not part of the spread
    assert stability.unstable_cells(a_table({"sync": [1000.0, 1000.0, 5000.0]}, {"sync": [False, False, True]})) == {}
    cmp = compare.compare_frames(df, df.assign(rps=df["rps"] * 1.0))
    marked = cmp.rows[cmp.rows["unstable"] != ""]
    marks = set(zip(marked["cell_key"], marked["metric"], marked["unstable"], strict=True))
    assert marks == {(sync_key, "rps", "base and head")}
    assert any("1 cells have unstable repetitions" in w for w in cmp.warnings)
    # 3 repetitions per side cannot show any change, so the ~ is also underpowered (bench.gate.stats.detectable)
    assert "~ underpowered (unstable: base and head)" in render.to_markdown(cmp)
    assert json.loads(render.to_json(cmp))["rows"][0]["unstable"] in ("", "base and head")


# -- the calibration's maths ---------------------------------------------------------------------------------------


def test_floor_and_noise_come_from_their_cells_and_failures_are_recorded():
    measured: list[tuple[str, int]] = []
    noise_rps = [9000.0, 9500.0, 8500.0, 9100.0, 8900.0]

    def measure_one(cell: Cell, rep: int) -> dict:
        measured.append((cell.key(), rep))
        if cell.loadgen == "ghz":
            return row(failed=True, error="ghz not found", cell_key=cell.key())
        if cell.concurrency == 1:
            return row(lat_p50_ms=0.15, rps=6000.0, cell_key=cell.key())
        return row(rps=noise_rps[rep], lat_p50_ms=0.8 + rep / 100, cell_key=cell.key())

    result = calibration.calibrate(["python", "ghz", "python"], measure_one, settings_window=(0.5, 2.0), hold_off=False)
    floor_key = calibration.floor_cell("python").key()
    assert floor_key == "sync/unary/w4/p1/0B/text/none/tls-off/c1/n1/m1/closed/python"
    noise_key = calibration.noise_cell().key()
    assert noise_key == "sync/unary/w4/p1/0B/text/none/tls-off/c8/n1/m1/closed/python"
    assert measured == [(floor_key.replace("python", "ghz"), 0), (floor_key, 0)] + [(noise_key, r) for r in range(5)]
    assert list(result.floor) == ["python"] and result.floor["python"].p50_ms == 0.15
    assert result.failures == {"floor.ghz": "ghz not found"}
    assert result.noise.windows["rps"] == tuple(noise_rps)
    assert result.noise.cv["rps"] == pytest.approx(statistics.stdev(noise_rps) / statistics.fmean(noise_rps))
    assert result.noise.cv["server_cpu_us_per_rpc"] == 0.0
    assert (result.window_s, result.warmup_s, result.hold_off, result.floor_with_hold) == (2.0, 0.5, False, None)
    assert result.noise_cv == result.noise.cv
    assert calibration.repetitions(["python", "ghz"], with_hold=False) == 7


def test_with_the_hold_off_the_floor_is_measured_again_inside_a_hold():
    inside: list[bool] = []
    holding = [False]

    @contextmanager
    def fake_hold():
        holding[0] = True
        try:
            yield HoldState(requested_us=0, held=True, effective_us=0)
        finally:
            holding[0] = False

    def measure_one(cell: Cell, rep: int) -> dict:
        inside.append(holding[0])
        slow = cell.concurrency == 1 and not holding[0]
        return row(lat_p50_ms=0.3 if slow else 0.15, cell_key=cell.key())

    result = calibration.calibrate(
        ["python"], measure_one, settings_window=(0.2, 1.0), hold_off=True, with_hold=fake_hold
    )
    assert inside == [False, True] + [False] * calibration.NOISE_WINDOWS
    assert result.hold_off and result.floor["python"].p50_ms == 0.3 and result.floor_with_hold["python"].p50_ms == 0.15
    text = "\n".join(result.lines())
    assert "without the cpu_latency hold" in text
    assert "python p50 0.300 ms without, 0.150 ms with the hold, 2.00x" in text

    @contextmanager
    def refused():
        yield HoldState(requested_us=0, held=False, effective_us=None, reason="permission denied")

    result = calibration.calibrate(
        ["python"], measure_one, settings_window=(0.2, 1.0), hold_off=True, with_hold=refused
    )
    assert result.floor_with_hold is None
    assert result.failures == {"floor_with_hold.python": "the hold could not be taken: permission denied"}


def test_noise_needs_two_good_windows():
    def measure_one(cell: Cell, rep: int) -> dict:
        return row(failed=cell.concurrency == 8 and rep > 0, error="boom", cell_key=cell.key())

    result = calibration.calibrate(["python"], measure_one, settings_window=(0.2, 1.0), hold_off=False)
    assert result.noise is None and result.noise_cv == {}
    assert result.failures == {"noise": "4 of 5 repetitions failed: boom"}


def test_rows_near_the_floor_say_so():
    cal = a_calibration()
    assert "within 2x of this machine's floor (0.150 ms" in cal.floor_note("python", 0.29)
    assert cal.floor_note("python", 0.31) is None
    assert cal.floor_note("ghz", 0.16) is None  # no floor for that generator
    assert cal.floor_note("python", float("nan")) is None


# -- the executor records it all ---------------------------------------------------------------------------------

SPEC = parse_spec(
    {"name": "two", "settings": {"repetitions": 1, "seed": 3}, "axes": {"impl": ["sync", "aio"], "concurrency": [1]}}
)
PLAN = Plan.make(SPEC.cells, SPEC.settings)


class FakePlacement:
    def check(self) -> None:
        pass

    def describe(self) -> PlacementInfo:
        return PlacementInfo("local", (0,), (1,))


@pytest.fixture
def device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cpu_dma_latency"
    path.write_bytes(struct.pack("=i", NO_REQUEST))
    monkeypatch.setattr(cpu_latency, "DEVICE", path)
    monkeypatch.setattr(executor, "machine_facts", lambda pinning: kvm_facts(tuple(pinning)))
    real_hold = cpu_latency.hold

    @contextmanager
    def hold(us: int = 0, device: Path | None = None):
        """The real hold on the file, which then drops the request as the kernel does when the holder closes it."""
        before = path.read_bytes()
        try:
            with real_hold(us, device) as state:
                yield state
        finally:
            path.write_bytes(before)

    monkeypatch.setattr(cpu_latency, "hold", hold)
    return path


def recording_measure(device: Path, seen: list):
    """A measure() that records (cell, order, the device's request, whether it got a calibration) and fakes a row."""

    def measure(cell: Cell, repetition: int, order: int, ctx: Context) -> dict:
        seen.append((cell.key(), order, cpu_latency.read_request_us(device), ctx.calibration is not None))
        from bench.analysis import schema

        out = schema.empty_row()
        out.update(cell.to_dict(), cell_key=cell.key(), repetition=repetition, order=order, run_id=ctx.run_id)
        out.update(row(cell_key=cell.key(), rps=5000.0 + 100 * len(seen)))
        return out

    return measure


def make_store(tmp_path: Path, name: str, settings) -> RunStore:
    manifest = replace(read(SAMPLE), plan=PLAN, settings=settings, status="created", ended_at=None)
    return RunStore.create(tmp_path / name, manifest)


def test_every_side_records_the_machine_the_hold_and_one_calibration(tmp_path, device, monkeypatch):
    seen: list = []
    monkeypatch.setattr(executor, "measure", recording_measure(device, seen))
    notices: list[str] = []
    sides = [Side(make_store(tmp_path, name, SPEC.settings), name) for name in ("base", "head")]
    execute(sides, PLAN, SPEC.settings, lambda step: None, FakePlacement(), notices.append)
    calibrating = [s for s in seen if s[1] == -1]
    assert len(calibrating) == calibration.repetitions(["python"], with_hold=False)  # once for both sides
    assert {s[2] for s in seen} == {0}  # held at 0 through calibration and every step
    assert all(s[3] for s in seen if s[1] >= 0) and not any(s[3] for s in calibrating)
    manifests = [read(side.store.dir) for side in sides]
    assert manifests[0].calibration == manifests[1].calibration is not None
    for manifest in manifests:
        assert manifest.cpu_latency_hold == HoldState(requested_us=0, held=True, effective_us=0)
        assert manifest.system.pinning == (0, 1) and manifest.system.cpu.model.startswith("AMD EPYC")
    assert notices[0].startswith("holding /dev/cpu_dma_latency at 0 us")
    assert any(n.startswith("calibrating: floor with python") for n in notices)
    # the summary's and the report's machine lines come from what was recorded
    lines = [line.text for line in summary.machine_lines(manifests[0])]
    assert lines[0] == "cpu_latency_hold: /dev/cpu_dma_latency held at 0 us for the whole run: idle CPUs polled"
    assert any(t.startswith("floor (no-op unary") for t in lines) and any(t.startswith("noise (CV of 5") for t in lines)

    # resumed (nothing missing on one side, everything on a new one): the calibration is kept, not measured again
    seen.clear()
    fresh = Side(make_store(tmp_path, "fresh", SPEC.settings), "fresh")
    fresh.store.record(calibration=manifests[0].calibration)
    execute([fresh], PLAN, SPEC.settings, lambda step: None, FakePlacement(), notices.append)
    assert [s[1] for s in seen] == list(range(len(PLAN.steps)))


def test_with_the_hold_off_nothing_is_asked_of_the_device_but_the_floor_is_compared(tmp_path, device, monkeypatch):
    seen: list = []
    monkeypatch.setattr(executor, "measure", recording_measure(device, seen))
    settings = replace(SPEC.settings, cpu_latency_hold=False)
    notices: list[str] = []
    side = Side(make_store(tmp_path, "off", settings), "off")
    execute([side], PLAN, settings, lambda step: None, FakePlacement(), notices.append)
    requests = [s[2] for s in seen]
    assert requests[1] == 0 and requests.count(0) == 1  # held only for the floor's comparison
    manifest = read(side.store.dir)
    assert manifest.cpu_latency_hold.requested is False and manifest.cpu_latency_hold.warns
    assert notices[0].startswith("warning: /dev/cpu_dma_latency not held: turned off")
    assert manifest.calibration.hold_off and set(manifest.calibration.floor_with_hold) == {"python"}
    idle = next(c for c in manifest.system.warnings() if c.name == "cpuidle")
    kinds = {line.text.split(":")[0]: line.kind for line in summary.machine_lines(manifest)}
    assert kinds["cpu_latency_hold"] == "warning" and idle.effect
    assert any("the hold was off for this run" in line for line in manifest.calibration.lines())


def test_without_calibrate_no_calibration_is_measured(tmp_path, device, monkeypatch):
    seen: list = []
    monkeypatch.setattr(executor, "measure", recording_measure(device, seen))
    settings = replace(SPEC.settings, calibrate=False)
    side = Side(make_store(tmp_path, "nocal", settings), "nocal")
    execute([side], PLAN, settings, lambda step: None, FakePlacement(), lambda text: None)
    assert [s[1] for s in seen] == list(range(len(PLAN.steps)))
    manifest = read(side.store.dir)
    assert manifest.calibration is None and manifest.system is not None
    assert "calibration: not measured (settings.calibrate = false)" in [x.text for x in summary.machine_lines(manifest)]


def test_the_report_shows_the_machine_next_to_the_results(tmp_path):
    run = run_copy(tmp_path, "run", system=kvm_facts(), cpu_latency_hold=OFF, calibration=a_calibration())
    text = report.write(run, tmp_path / "out").read_text()
    machine = text[text.index("<h2>The machine</h2>") : text.index("<h2>Figures</h2>")]
    assert '<p class="warn">cpu_latency_hold: /dev/cpu_dma_latency not held: turned off' in machine
    assert '<p class="warn">machine: cpuidle: driver haltpoll' in machine
    assert "floor (no-op unary, 0 B, one RPC in flight, sync server" in machine and "noise (CV of 3" in machine
    assert "<h3>Machine state (grpclab system, as the run began)</h3>" in text and "<h3>Calibration</h3>" in text
    old = report.write(SAMPLE, tmp_path / "old").read_text()
    assert "recorded neither the machine" in old
