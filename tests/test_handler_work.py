"""The handler-work axes (handler_wait_ms, handler_block_ms, handler_cpu_us): spec values, cell keys, old runs,
what the generators send (lab.Work), and the servers' bounds (servers/work.py). Fast tier: no process starts.

What the servers do with the work is tested over the wire in tests/test_servers.py (per message, per model) and
measured in tests/test_validity.py (the worker-count knee).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bench.analysis import figures, findings, handlers, results, table
from bench.load import ghz
from bench.load.job import LoadJob
from bench.load.workload import Workload
from bench.spec import DEFAULTS, Cell, Settings, SpecError, load_spec, parse_spec
from bench.spec.cell import LATER_AXES
from protos import greet_pb2, lab_pb2
from servers import work

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
AXES = ("handler_wait_ms", "handler_block_ms", "handler_cpu_us")
SETTINGS = Settings(duration=2.0, warmup=0.5, cell_timeout=30.0)


def cell(**axes: object) -> Cell:
    spec = parse_spec({"name": "x", "axes": {axis: [value] for axis, value in axes.items()}}, None)
    assert len(spec.cells) == 1
    return spec.cells[0]


def test_the_axes_are_later_axes_whose_default_is_no_work() -> None:
    assert LATER_AXES[1:4] == AXES  # right after link, before the client axes
    assert (DEFAULTS["handler_wait_ms"], DEFAULTS["handler_block_ms"], DEFAULTS["handler_cpu_us"]) == (0.0, 0.0, 0)
    plain = Cell(**DEFAULTS)
    assert not any(axis in plain.key() for axis in AXES)
    # Away from the default they join the key, numbers written plainly (5, not 5.0).
    worked = cell(handler_wait_ms=5, handler_block_ms=0.25, handler_cpu_us=500)
    assert worked.key().endswith("/handler_wait_ms=5/handler_block_ms=0.25/handler_cpu_us=500")
    assert worked.handler_wait_ms == 5.0 and isinstance(worked.handler_wait_ms, float)
    assert Cell.from_dict(worked.to_dict()) == worked


@pytest.mark.parametrize("run", ["sample-run-v1", "sample-run"])
def test_runs_written_before_the_axes_read_as_no_work_with_their_keys(run: str) -> None:
    df = results.load(DATA / run)
    assert (df["handler_wait_ms"] == 0).all() and (df["handler_block_ms"] == 0).all()
    assert (df["handler_cpu_us"] == 0).all()
    for _, row in df.drop_duplicates("cell_key").iterrows():
        assert Cell.from_dict(row.to_dict()).key() == row["cell_key"]


@pytest.mark.parametrize(
    ("axis", "bad", "message"),
    [
        ("handler_wait_ms", -1, "axes.handler_wait_ms[0]: expected a number of milliseconds >= 0, got -1"),
        ("handler_wait_ms", "5ms", "axes.handler_wait_ms[0]: expected a number of milliseconds >= 0, got '5ms'"),
        ("handler_block_ms", True, "axes.handler_block_ms[0]: expected a number of milliseconds >= 0, got true"),
        ("handler_block_ms", 0.0004, "axes.handler_block_ms[0]: 0.0004 ms is finer than the 1 us"),
        ("handler_wait_ms", 10_001, "axes.handler_wait_ms[0]: 10001 ms is more than the servers' limit of 10000 ms"),
        ("handler_cpu_us", 2.5, "axes.handler_cpu_us[0]: expected a whole number of microseconds >= 0, got 2.5"),
        ("handler_cpu_us", -3, "axes.handler_cpu_us[0]: expected a whole number of microseconds >= 0, got -3"),
        ("handler_cpu_us", 1_000_001, "axes.handler_cpu_us[0]: 1000001 us is more than the servers' limit"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(axis: str, bad: object, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "x", "axes": {axis: [bad]}}, None)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(message), str(err.value)


def test_go_cells_have_no_pool_to_size() -> None:
    go = cell(impl="go", workers=16)
    assert go.workers == 0 and go.key().startswith("go/unary/w0/")


def test_the_job_carries_whole_microseconds_and_the_request_carries_the_work() -> None:
    worked = cell(rpc="bidi", handler_wait_ms=2.5, handler_block_ms=1, handler_cpu_us=300)
    job = LoadJob.for_cell(worked, target="t:1", tls_dir=None, settings=SETTINGS, repetition=0)
    assert (job.handler_wait_us, job.handler_block_us, job.handler_cpu_us) == (2500, 1000, 300)
    assert LoadJob.from_json(job.to_json()) == job
    fields = Workload.for_job(job).request_fields()
    assert fields["work"] == lab_pb2.Work(wait_us=2500, block_us=1000, cpu_us=300)
    # ghz sends the same request message (its -B file is built from these fields).
    sent = ghz.request_message(job)
    assert sent.work == lab_pb2.Work(wait_us=2500, block_us=1000, cpu_us=300)


def test_no_work_sends_no_work_field() -> None:
    """At the default the requests are byte for byte what they were before the axes existed."""
    job = LoadJob.for_cell(Cell(**DEFAULTS), target="t:1", tls_dir=None, settings=SETTINGS, repetition=0)
    assert "work" not in Workload.for_job(job).request_fields()
    request = ghz.request_message(job)
    assert not request.HasField("work")
    assert request.SerializeToString() == greet_pb2.HelloRequest(name="lab", response_kind=request.response_kind,
                                                                  payload_gzip_level=0).SerializeToString()  # fmt: skip


def test_the_servers_bounds_and_no_work() -> None:
    assert work.checked(0, 0, 0) is None
    assert work.checked(5000, 0, 0) == work.Work(0.005, 0.0, 0.0)
    assert work.checked(work.MAX_WAIT_US, work.MAX_BLOCK_US, work.MAX_CPU_US) is not None
    for fields, message in (
        ((work.MAX_WAIT_US + 1, 0, 0), "work.wait_us 10000001 > 10000000"),
        ((0, work.MAX_BLOCK_US + 1, 0), "work.block_us 10000001 > 10000000"),
        ((0, 0, work.MAX_CPU_US + 1), "work.cpu_us 1000001 > 1000000"),
    ):
        with pytest.raises(work.WorkError, match=f"^{message}$"):
            work.checked(*fields)


def test_the_spec_limits_are_the_servers() -> None:
    from bench.spec import cell as cell_module

    assert cell_module.MAX_HANDLER_MS * 1000 == work.MAX_WAIT_US == work.MAX_BLOCK_US
    assert cell_module.MAX_HANDLER_CPU_US == work.MAX_CPU_US


def test_table_shows_work_with_its_unit() -> None:
    assert table.value_text("handler_wait_ms", 5.0) == "5 ms"
    assert table.value_text("handler_block_ms", 0.0) == "0"
    assert table.value_text("handler_cpu_us", 1000) == "1000 us"
    assert replace(Cell(**DEFAULTS), handler_cpu_us=7).key().endswith("/handler_cpu_us=7")


# -- the knee: the report's figure and the README's table -------------------------------------------------------


def knee_run() -> tuple[pd.DataFrame, object]:
    """A run of the handler study's shape, numbers made up: sync at 1-8 threads, aio and go, under each work."""
    base = results.load(DATA / "sample-run")
    template = base[base["impl"] == "sync"].iloc[0].to_dict()
    rows = []
    works = {"none": {}, "wait": {"handler_wait_ms": 2.0}, "cpu": {"handler_cpu_us": 1000}}
    for kind, axes in works.items():
        for impl, workers in [("sync", 1), ("sync", 2), ("sync", 4), ("sync", 8), ("aio", 0), ("go", 0)]:
            rps = {"none": 9000.0, "wait": 450.0 * workers if impl == "sync" else 6000.0, "cpu": 900.0}[kind]
            rps = 20_000.0 if impl == "go" and kind != "cpu" else rps
            for repetition in range(2):
                row = {**template, "impl": impl, "workers": workers, "handler_wait_ms": 0.0, "handler_cpu_us": 0}
                row |= axes | {"repetition": repetition, "rps": rps * (1 + 0.01 * repetition)}
                row["loadgen_saturated"] = impl == "go" and kind == "none"
                row["server_saturated"] = kind == "cpu"
                row["cell_key"] = Cell.from_dict({a: row[a] for a in Cell.__dataclass_fields__}).key()
                rows.append(row)
    manifest = results.read_manifest(DATA / "sample-run")
    return pd.DataFrame(rows), manifest


def test_knee_points_split_by_work_and_hold_the_rest() -> None:
    df, _ = knee_run()
    points = handlers.knee_points(df)
    assert [w.text for w in points.works] == ["no handler work", "handlers wait 2 ms", "handlers burn 1000 us of CPU"]
    assert points.workers == [1, 2, 4, 8]
    wait = points.works[1]
    assert points.sync[wait]["med"].tolist() == pytest.approx([450 * w * 1.005 for w in (1, 2, 4, 8)])
    assert set(points.flat[wait]) == {"aio", "go"}
    # a cell doing two kinds of work is neither: left out
    worked = (df["handler_wait_ms"] > 0) | (df["handler_cpu_us"] > 0)
    mixed = df.assign(handler_block_ms=worked.astype(float))
    assert handlers.knee_points(mixed).works == []


def test_readme_table_and_figure(tmp_path: Path) -> None:
    df, manifest = knee_run()
    text = handlers.to_markdown(df)
    assert text.splitlines()[0] == "| handler work | sync 1 | sync 2 | sync 4 | sync 8 | aio | go |"
    assert "| handlers wait 2 ms | 452 | 904 | 1,809 | 3,618 | 6,030 | 20,100 |" in text
    assert "| no handler work | 9,045 | 9,045 | 9,045 | 9,045 | 9,045 | 20,100* |" in text
    assert "*: the load generator was saturated" in text
    assert "| handlers burn 1000 us of CPU | 904+ | 904+ | 904+ | 904+ | 904+ | 904+ |" in text
    assert "+: the server's CPU was saturated (>= 90 % busy)" in text
    assert "+" not in text.split("| handlers wait 2 ms |")[1].splitlines()[0]
    drawn = figures.handlers(df, manifest, tmp_path)
    assert (tmp_path / drawn.file).read_bytes()[:4] == b"\x89PNG"
    assert "aio and go have no thread pool" in drawn.caption
    with pytest.raises(figures.Skip, match="no sync thread-count sweep under handler work"):
        figures.handlers(df[(df["handler_wait_ms"] == 0) & (df["handler_cpu_us"] == 0)], manifest, tmp_path)


def test_a_thread_pool_finding_per_kind_of_handler_work() -> None:
    df, manifest = knee_run()
    pool = [f for f in findings.compute(df, manifest) if f.study == "thread_pool"]
    subjects = [f.subject.rsplit(" (", 1)[1] for f in pool]
    assert sorted(subjects) == sorted(["no handler work)", "handlers wait 2 ms)", "handlers burn 1000 us of CPU)"])
    wait = next(f for f in pool if "wait" in f.subject)
    # Waiting handlers: the pool sets the pace, so RPC/s is compared although the server's CPU was not saturated.
    assert wait.metric == "rps" and wait.ratio == pytest.approx(8.0)
    assert "8 threads served 2.00x the RPC/s of 4 threads" in wait.sentence
    assert "the thread pool set the pace" in wait.sentence and "handlers wait 2 ms" in wait.sentence
    assert "not the server's capacity" not in wait.sentence


def quick_run(tmp_path: Path) -> Path:
    """A run of the quick matrix's cells, numbers made up by what each cell's handlers do (2 ms waits and blocks,
    1 ms of CPU, 16 in flight): the run `make bench` writes, without measuring."""
    spec = load_spec(REPO / "bench" / "specs" / "quick.toml")
    base = results.load(DATA / "sample-run")
    template = base[(base["impl"] == "sync") & ~base["failed"]].iloc[0].to_dict()
    rows = []
    for c in spec.cells:
        wait_s = (c.handler_wait_ms or c.handler_block_ms) / 1000
        if c.handler_cpu_us:
            rps = 900.0
        elif c.handler_block_ms and c.impl == "aio":
            rps = 0.95 / wait_s  # the event loop held: one RPC per block
        elif wait_s:
            rps = 0.9 * (c.workers if c.impl == "sync" else c.concurrency) / wait_s
        else:
            rps = 5000.0
        for repetition in range(spec.settings.repetitions):
            row = {**template, **c.to_dict(), "cell_key": c.key(), "repetition": repetition}
            rows.append(row | {"rps": rps * (1 + 0.01 * repetition), "loadgen_saturated": False})
    run_dir = tmp_path / "quick-run"
    run_dir.mkdir()
    (run_dir / results.MANIFEST).write_bytes((DATA / "sample-run" / results.MANIFEST).read_bytes())
    pd.DataFrame(rows).to_parquet(run_dir / results.PARQUET)
    return run_dir


def test_the_quick_matrix_gives_the_report_its_knee_figure(tmp_path: Path) -> None:
    """quick.toml's handler cells are enough for the knee: sync at 1 and 8 threads under waiting and CPU handlers,
    aio and go under waiting handlers, aio under a blocking call; `grpclab report` draws the figure from them.
    (The committed quick run, results/quick-2026-12-01, predates the handler cells.)"""
    from bench.analysis import report

    run_dir = quick_run(tmp_path)
    df = results.load(run_dir)
    points = handlers.knee_points(df)
    assert [w.text for w in points.works] == [
        "no handler work",  # aio's cell at 16 in flight: a reference line in its own panel
        "handlers wait 2 ms",
        "handlers block 2 ms",
        "handlers burn 1000 us of CPU",
    ]
    assert points.workers == [1, 8]
    _, wait, block, cpu = points.works
    assert points.sync[wait]["med"].round().tolist() == [452, 3618]  # 0.9 x 1 and 8 threads per 2 ms (x 1.005)
    assert {impl for impl, st in points.flat[wait].items() if not st.empty} == {"aio", "go"}
    assert points.sync[block].empty and points.flat[block]["aio"]["med"].round().tolist() == [477]
    assert points.sync[cpu]["workers"].tolist() == [1, 8] and points.held["concurrency"] == 16
    index = report.write(run_dir)
    page = index.read_text()
    assert '<img src="handlers.png"' in page, "the knee figure is missing from the report"
    assert (index.parent / "handlers.png").read_bytes()[:4] == b"\x89PNG"
    assert "The worker-count knee under waiting, blocking and CPU-bound handlers" in page
