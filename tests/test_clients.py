"""The client-side axes (client, channel, channel_options, server_options, event_loop), records payloads and
the protobuf runtime in the manifest: spec values, normalization, cell keys, old runs, what the generators and
servers are told. Fast tier: no process starts.

What the clients do over the wire (threads, futures, a connection per call, time to first RPC) is measured in
tests/test_client_validity.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench import cli
from bench.analysis import results, schema
from bench.load import ghz, python_load
from bench.load.channels import channel_options
from bench.load.job import LoadJob
from bench.load.workload import ReplyMismatch, Workload
from bench.run.manifest import Manifest
from bench.run.measure import client_notes, server_args
from bench.spec import ALLOWED, DEFAULTS, Cell, Settings, SpecError, parse_spec
from bench.spec.cell import LATER_AXES
from protos import greet_pb2
from servers import config, records
from servers.serve import PROTOBUF_RUNTIMES, protobuf_runtime

DATA = Path(__file__).resolve().parent / "data"
AXES = ("client", "channel", "channel_options", "server_options", "event_loop")
SETTINGS = Settings(duration=2.0, warmup=0.5, cell_timeout=30.0)


def cells(**axes: object) -> tuple[Cell, ...]:
    return parse_spec(
        {"name": "x", "axes": {axis: v if isinstance(v, list) else [v] for axis, v in axes.items()}}, None
    ).cells


def cell(**axes: object) -> Cell:
    (only,) = cells(**axes)
    return only


def error(data: dict) -> str:
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "x", **data}, None)
    assert "\n" not in str(err.value)
    return str(err.value)


# -- later axes: keys and old runs ------------------------------------------------------------------------


def test_the_axes_come_last_with_defaults_that_reproduce_what_runs_did_before() -> None:
    start = LATER_AXES.index(AXES[0])  # after the handler axes; axes added later (service) come after them
    assert LATER_AXES[start : start + len(AXES)] == AXES
    assert [DEFAULTS[a] for a in AXES] == ["aio", "reuse", "default", "default", "asyncio"]
    plain = Cell(**DEFAULTS)
    assert not any(f"{axis}=" in plain.key() for axis in AXES)
    changed = cell(client="sync-threads", channel="per-call", server_options="max-streams-4")
    assert changed.key().endswith("/client=sync-threads/channel=per-call/server_options=max-streams-4")
    assert Cell.from_dict(changed.to_dict()) == changed


@pytest.mark.parametrize("run", ["sample-run-v1", "sample-run"])
def test_runs_written_before_the_axes_read_as_their_defaults_with_their_keys(run: str) -> None:
    df = results.load(DATA / run)
    for axis in AXES:
        assert (df[axis].astype(str) == DEFAULTS[axis]).all(), axis
    assert df["time_to_first_rpc_ms"].isna().all()
    for _, row in df.drop_duplicates("cell_key").iterrows():
        assert Cell.from_dict(row.to_dict()).key() == row["cell_key"]


def test_time_to_first_rpc_is_a_format_2_column() -> None:
    (column,) = [c for c in schema.METRICS if c.name == "time_to_first_rpc_ms"]
    assert column.since == 2 and column.unit == "ms"


# -- bad values: one line naming the key ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"client": ["sync"]}, "axes.client[0]: unknown value 'sync'; allowed: aio, sync-threads, sync-future"),
        ({"channel": ["fresh"]}, "axes.channel[0]: unknown value 'fresh'; allowed: reuse, per-call"),
        ({"event_loop": ["trio"]}, "axes.event_loop[0]: unknown value 'trio'; allowed: asyncio, uvloop"),
        ({"channel_options": ["fast"]}, "axes.channel_options[0]: unknown channel options preset 'fast'"),
        ({"channel_options": ["max-streams-4"]}, "axes.channel_options[0]: unknown channel options preset"),
        ({"server_options": ["max-streams-0"]}, "axes.server_options[0]: unknown server options preset"),
        ({"server_options": ["max-streams-x"]}, "axes.server_options[0]: unknown server options preset"),
        ({"server_options": [4]}, "axes.server_options[0]: unknown server options preset 4"),
        ({"server_options": ["single-threaded-unary-stream"]}, "axes.server_options[0]: unknown server options"),
        ({"payload_kind": ["record"]}, "axes.payload_kind[0]: unknown value 'record'"),
        (
            {"client": ["sync-future"], "rpc": ["unary", "server_stream"]},
            "axes: client 'sync-future' cannot make server_stream calls",
        ),
        ({"payload_kind": ["records"], "compression": ["app-gzip-1"]}, "axes: payload_kind 'records' with app-gzip-1"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(axes: dict, message: str) -> None:
    got = error({"axes": axes})
    assert got.startswith(message), got


def test_hints_name_the_other_axis() -> None:
    assert "use server_options" in error({"axes": {"channel_options": ["max-streams-4"]}})
    assert "use channel_options" in error({"axes": {"server_options": ["single-threaded-unary-stream"]}})
    allowed = error({"axes": {"server_options": ["x"]}})
    assert allowed.endswith("allowed: default, keepalive, max-streams-<N> (N >= 1)")


def test_an_include_that_no_client_can_run_names_the_include() -> None:
    got = error({"axes": {"rpc": ["unary"]}, "include": [{"client": "sync-future", "rpc": "bidi"}]})
    assert got.startswith("include[0]: client 'sync-future' cannot make bidi calls"), got


def test_bad_spec_and_serve_flag_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "bad"\n[axes]\nchannel_options = ["keep-alive"]\n')
    assert cli.main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "axes.channel_options[0]" in err and "keep-alive" in err, err
    assert not (tmp_path / "out").exists()
    assert cli.main(["serve", "--options", "max-streams-0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.count("--options") == 1 and "max-streams-0" in err, err


# -- normalization (bench.spec.cell CLIENT_RULES) ---------------------------------------------------------


def test_ghz_is_its_own_client() -> None:
    (one,) = set(cells(loadgen="ghz", client=["aio", "sync-threads"], channel=["reuse", "per-call"]))
    assert (one.client, one.channel) == ("aio", "reuse")


def test_a_channel_per_call_has_no_connections_to_spread() -> None:
    assert cell(channel="per-call", connections=4).connections == 1
    assert cell(channel="reuse", connections=4).connections == 4


def test_event_loop_only_where_a_loop_runs() -> None:
    assert cell(impl="aio", event_loop="uvloop").event_loop == "uvloop"
    assert cell(impl="sync", event_loop="uvloop").event_loop == "uvloop"  # the aio client runs it
    assert cell(impl="sync", client="sync-threads", event_loop="uvloop").event_loop == "asyncio"
    assert cell(impl="aio", client="sync-threads", event_loop="uvloop").event_loop == "uvloop"  # the server


def test_single_threaded_unary_stream_only_for_sync_clients_on_server_streams() -> None:
    kept = cell(rpc="server_stream", client="sync-threads", channel_options="single-threaded-unary-stream")
    assert kept.channel_options == "single-threaded-unary-stream"
    for axes in ({"rpc": "unary", "client": "sync-threads"}, {"rpc": "server_stream", "client": "aio"}):
        assert cell(channel_options="single-threaded-unary-stream", **axes).channel_options == "default"


# -- what servers and generators are told ------------------------------------------------------------------


def test_presets_are_public_grpc_arguments() -> None:
    import grpc.experimental

    assert config.server_preset("max-streams-4") == (("grpc.max_concurrent_streams", 4),)
    assert ("grpc.keepalive_time_ms", config.KEEPALIVE_TIME_MS) in config.server_preset("keepalive")
    single = config.channel_preset("single-threaded-unary-stream")
    assert single == ((grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),)
    options = dict(channel_options(preset="keepalive"))
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert "grpc.keepalive_time_ms" not in dict(channel_options())


def test_server_args_and_notes() -> None:
    args = server_args(cell(impl="aio", event_loop="uvloop", server_options="max-streams-1"), Path("/c"))
    assert args[-3:] == ["--options", "max-streams-1", "--uvloop"]
    assert "--options" not in server_args(cell(), Path("/c"))
    assert "--uvloop" not in server_args(cell(impl="sync", event_loop="uvloop"), Path("/c"))
    assert client_notes(cell(impl="sync", event_loop="uvloop")) == [
        "uvloop: client only (the other end runs no asyncio loop)"
    ]
    assert client_notes(cell(impl="aio", event_loop="uvloop")) == []  # both ends
    assert any("wire bytes not measured" in n for n in client_notes(cell(channel="per-call")))
    assert client_notes(cell(loadgen="ghz", channel_options="keepalive"))[0].startswith("ghz: keepalive time only")


def test_the_job_carries_the_client_side_and_splits_no_connections_per_call() -> None:
    job = LoadJob.for_cell(
        cell(client="sync-threads", channel="per-call", concurrency=8, event_loop="uvloop"),
        target="t",
        tls_dir=None,
        settings=SETTINGS,
        repetition=0,
    )
    assert (job.client, job.channel, job.event_loop) == ("sync-threads", "per-call", "asyncio")
    assert LoadJob.from_json(job.to_json()) == job
    assert [job.share(i, 2).connections for i in range(2)] == [1, 1]
    assert python_load.worker_count(2, 1, 8, "per-call") == 2
    assert python_load.worker_count(2, 1, 8, "reuse") == 1


def test_ghz_gets_keepalive_and_the_records_request() -> None:
    job = LoadJob.for_cell(
        cell(loadgen="ghz", channel_options="keepalive", payload_kind="records", payload_size="1KiB"),
        target="t",
        tls_dir=None,
        settings=SETTINGS,
        repetition=0,
    )
    args = ghz.ghz_args(job, data_file="d", output="o", run_s=3.0, cpus=1)
    assert args[args.index("--keepalive") + 1] == "1000ms"
    assert ghz.request_message(job).records == records.build(1024).message
    plain = replace(job, channel_options="default")
    assert "--keepalive" not in ghz.ghz_args(plain, data_file="d", output="o", run_s=3.0, cpus=1)


# -- records --------------------------------------------------------------------------------------------


def test_records_requests_carry_records_and_replies_are_checked() -> None:
    job = LoadJob.for_cell(
        cell(payload_kind="records", payload_size="4KiB"), target="t", tls_dir=None, settings=SETTINGS, repetition=0
    )
    workload = Workload.for_job(job)
    request = greet_pb2.HelloRequest(name="lab", **workload.request_fields())
    built = records.build(4096)
    assert request.payload == b"" and len(request.records.records) == built.count > 10
    assert abs(request.records.ByteSize() - 4096) < 200
    workload.check(greet_pb2.HelloReply(records=built.message))
    short = greet_pb2.HelloReply(records=records.build(2048).message)
    with pytest.raises(ReplyMismatch):
        workload.check(short)
    with pytest.raises(ReplyMismatch):
        workload.check(greet_pb2.HelloReply(records=built.message, payload=b"x"))


# -- the protobuf runtime in the manifest -------------------------------------------------------------------


def test_the_protobuf_runtime_is_named_from_a_public_message_class() -> None:
    from protos import lab_pb2

    assert protobuf_runtime() == PROTOBUF_RUNTIMES[type(lab_pb2.Record).__module__]
    assert protobuf_runtime() in ("upb", "cpp", "python")


def test_the_manifest_records_it_and_old_manifests_read_without_it() -> None:
    old = results.read_manifest(DATA / "sample-run")
    assert old.environment.protobuf_runtime is None
    data = old.to_json()
    data["environment"]["protobuf_runtime"] = "upb"
    assert Manifest.from_json(data).environment.protobuf_runtime == "upb"


def test_the_clients_spec_and_study_k_cover_the_client_side() -> None:
    from bench.spec import load_spec

    specs = Path(__file__).resolve().parent.parent / "bench" / "specs"
    run = load_spec(specs / "clients.toml")
    assert len(run.cells) == len({c.key() for c in run.cells}) == 18  # the count and time in its header
    full = load_spec(specs / "full.toml").cells
    for axis in ("client", "channel", "event_loop"):
        assert {getattr(c, axis) for c in run.cells} == {getattr(c, axis) for c in full} == set(ALLOWED[axis])
    assert {(c.channel, c.tls) for c in full if c.channel == "per-call"} == {("per-call", "off"), ("per-call", "on")}
    assert {c.server_options for c in full} >= {"keepalive", "max-streams-1", "max-streams-4"}
    assert "single-threaded-unary-stream" in {c.channel_options for c in full}
    assert {c.payload_size for c in full if c.payload_kind == "records"} == {1024, 16384, 65536, 1024 * 1024}


# -- the README's run -------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
CLIENTS_RUN = REPO / "results" / "clients-2026-12-01"


def readme_block(name: str) -> str:
    text = (REPO / "README.md").read_text()
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    return text[text.index(begin) + len(begin) : text.index(end)]


def test_the_readme_tables_are_what_the_committed_run_gives() -> None:
    from bench.analysis import clients

    assert readme_block("clients").strip() == clients.to_markdown(results.load(CLIENTS_RUN)).strip()


def test_the_committed_run_is_the_clients_spec_measured_as_the_readme_says() -> None:
    manifest = results.read_manifest(CLIENTS_RUN)
    df = results.load(CLIENTS_RUN)
    assert manifest.spec_name == "clients" and manifest.status == "complete"
    assert not df["failed"].any() and df["cell_key"].nunique() == 18 and len(df) == 18 * 4
    assert manifest.environment.protobuf_runtime == "upb"
    assert manifest.cpu_latency_hold is not None and manifest.cpu_latency_hold.held
    assert {f.name for f in CLIENTS_RUN.iterdir()} == {"manifest.json", "cells.parquet", "cells.csv", "findings.json"}


def test_the_report_draws_the_client_figures_from_it(tmp_path: Path) -> None:
    from bench.analysis import figures

    df, manifest = results.load(CLIENTS_RUN), results.read_manifest(CLIENTS_RUN)
    for draw in (figures.clients, figures.channels):
        drawn = draw(df, manifest, tmp_path)
        assert (tmp_path / drawn.file).read_bytes().startswith(b"\x89PNG")


def test_the_readme_prose_quotes_the_committed_run() -> None:
    from bench.analysis import clients

    cells = clients.medians(results.load(CLIENTS_RUN)).set_index("cell_key")
    one = "sync/unary/w4/p1/1024B/text/none/tls-off/c1/n1/m1/closed/python"
    sixteen = one.replace("/c1/", "/c16/")
    tls_per_call = one.replace("tls-off", "tls-on") + "/channel=per-call"
    records_64k = sixteen.replace("1024B/text", "65536B/records")
    aio = "aio/unary/w0/p1/1024B/text/none/tls-off/c16/n1/m1/closed/python"
    streams_1 = sixteen + "/server_options=max-streams-1"

    def at(key: str, metric: str, form: str = ".0f") -> str:
        return format(float(cells.loc[key, metric]), form)

    prose = " ".join(readme_block("clients-prose").split())
    cpu = "loadgen_cpu_us_per_rpc"
    expected = [
        f"`sync-threads` spent {at(one + '/client=sync-threads', cpu)} us of client CPU per RPC, "
        f"`aio` {at(one, cpu)} us and `sync-future` {at(one + '/client=sync-future', cpu)} us",
        f"server CPU and {at(records_64k, cpu)} against",
        f"{at(aio + '/event_loop=uvloop', 'rps', ',.0f')} against {at(aio, 'rps', ',.0f')} RPC/s",
        f"{at(streams_1, 'rps', ',.0f')} RPC/s and p50 {at(streams_1, 'lat_p50_ms', '.3f')} ms "
        f"against {at(sixteen, 'rps', ',.0f')}",
        f"{at(tls_per_call, 'lat_p50_ms', '.3f')} ms and {at(tls_per_call, cpu, ',.0f')} us",
        f"({at(one + '/channel=per-call', 'server_cpu_us_per_rpc')} against {at(one, 'server_cpu_us_per_rpc')} us:",
    ]
    for text in expected:
        assert text in prose, text
    ttfr = cells["time_to_first_rpc_ms"].loc[[k for k in cells.index if "/1024B/" in k and "/c1/" in k]]
    assert f"was {ttfr.min():.1f}-{ttfr.max():.1f} ms in medians" in prose
