"""bench/load/ghz.py: ghz's arguments, its JSON report, the subprocess wrapper, and real ghz against both servers.

The unit tests run a fake `ghz` (a Python script written to tmp_path that records its arguments and
writes a canned report, exits 1, hangs or writes garbage). The integration tests need the real ghz
(`make ghz`; CI's setup builds it) and skip only when it is not installed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf.internal.decoder import _DecodeVarint

from bench.load import ghz, histogram
from bench.load.ghz import GhzLoad, LoadError
from bench.load.job import LoadJob
from bench.run import measure as runner
from bench.run import server_process
from bench.run.placement import LocalLoadgenHost, LocalPlacement
from bench.spec import Cell, Settings
from bench.spec.compression import Compression
from protos import chat_pb2, greet_pb2, lab_pb2, number_stream_pb2, sum_stream_pb2
from servers import certs, payloads

ROOT = Path(__file__).resolve().parent.parent
PROTOS = str(ROOT / "protos")

JOB = dict(
    target="127.0.0.1:50051",
    tls_dir=None,
    rpc="unary",
    payload_size=100,
    payload_kind="text",
    compression="none",
    stream_messages=1,
    connections=1,
    concurrency=4,
    mode="closed",
    rate=0.0,
    arrival="constant",
    warmup=0.0,
    duration=0.5,
    rpc_timeout=5.0,
    seed=1,
    tls="off",
)


def job(**changes) -> LoadJob:
    values = {**JOB, **changes}
    return LoadJob(**{**values, "compression": Compression.parse(values["compression"])})


def args(**changes) -> list[str]:
    return ghz.ghz_args(job(**changes), data_file="/d/req.bin", output="/d/out.json", run_s=1.0)


def common(proto: str, call: str) -> list[str]:
    """The flags every cell gets (closed loop, no --cpus), up to the per-cell ones."""
    return [
        "--proto", f"{PROTOS}/{proto}", "--import-paths", PROTOS, "--call", call,
        "-B", "/d/req.bin", "-c", "4", "--connections", "1", "-z", "1000ms", "--duration-stop", "wait",
        "--timeout", "5000ms", "--disable-template-functions", "--disable-template-data",
        "-O", "json", "-o", "/d/out.json",
    ]  # fmt: skip


# --- arguments --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rpc", "proto", "call", "stream_flags"),
    [
        ("unary", "greet.proto", "greet.Greeter.SayHello", []),
        # the request's `limit` makes the server send N; --stream-call-count would cancel the call instead
        ("server_stream", "number_stream.proto", "number_stream.NumberService.GetNumbers", []),
        ("client_stream", "sum_stream.proto", "sum_stream.SumService.CalculateSum", ["--stream-call-count", "7"]),
        ("bidi", "chat.proto", "chat.ChatService.Chat", ["--stream-call-count", "7"]),
    ],
)
def test_args_per_rpc_kind(rpc, proto, call, stream_flags):
    messages = 1 if rpc == "unary" else 7
    assert args(rpc=rpc, stream_messages=messages) == [
        *common(proto, call),
        *stream_flags,
        "--insecure",
        "127.0.0.1:50051",
    ]


def test_args_tls_and_mtls(tmp_path):
    ca, crt, key = str(tmp_path / "ca.crt"), str(tmp_path / "client.crt"), str(tmp_path / "client.key")
    base = common("greet.proto", "greet.Greeter.SayHello")
    tls = args(tls="on", tls_dir=str(tmp_path))
    assert tls == [*base, "--cacert", ca, "--cname", "localhost", "127.0.0.1:50051"]
    mtls = args(tls="mtls", tls_dir=str(tmp_path))
    assert mtls == [*base, "--cacert", ca, "--cname", "localhost", "--cert", crt, "--key", key, "127.0.0.1:50051"]
    assert "--insecure" not in tls + mtls


def test_args_open_loop_gzip_cpus_and_connections():
    got = ghz.ghz_args(
        job(mode="open", rate=250.0, compression="grpc-gzip", connections=2, concurrency=64, rpc_timeout=1.5),
        data_file="/d/req.bin",
        output="/d/out.json",
        run_s=2.95,
        cpus=2,
    )
    base = common("greet.proto", "greet.Greeter.SayHello")
    base[base.index("-c") + 1] = "64"
    base[base.index("--connections") + 1] = "2"
    base[base.index("-z") + 1] = "2950ms"
    base[base.index("--timeout") + 1] = "1500ms"
    assert got == [*base, "--cpus", "2", "--rps", "250", "-e", "--insecure", "127.0.0.1:50051"]


def test_app_gzip_is_in_the_data_not_a_flag():
    assert args(compression="app-gzip-6") == args()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (dict(compression="grpc-deflate"), ["grpc-deflate", "gzip only", "loadgen = python"]),
        (dict(connections=4, concurrency=2), ["connections <= concurrency", "4 > 2"]),
        (dict(mode="open", rate=0.4), ["--rps", "0.4"]),
    ],
)
def test_cells_ghz_cannot_run_are_load_errors(fake_ghz, changes, words):
    with pytest.raises(LoadError) as err:
        GhzLoad(job(**changes), LocalLoadgenHost(), binary=fake_ghz())
    assert all(w in str(err.value) for w in words), err.value
    assert "\n" not in str(err.value)


def test_missing_binary_is_a_load_error(monkeypatch):
    monkeypatch.setattr(ghz, "find_ghz", lambda: None)
    with pytest.raises(LoadError, match=r"ghz not found: run `make ghz`"):
        GhzLoad(job(), LocalLoadgenHost())


def test_notes():
    assert ghz.job_notes(job()) == [ghz.NOTE_PER_CALL]
    open_poisson = ghz.job_notes(job(mode="open", rate=100.4, arrival="poisson"))
    assert ghz.NOTE_OPEN in open_poisson and ghz.NOTE_POISSON in open_poisson
    assert "rate 100.4 ran as 100" in " ".join(open_poisson)
    assert ghz.NOTE_APP_GZIP in ghz.job_notes(job(compression="app-gzip-1"))
    assert ghz.NOTE_APP_GZIP not in ghz.job_notes(job(compression="grpc-gzip"))
    assert ghz.NOTE_BIDI in ghz.job_notes(job(rpc="bidi", stream_messages=3))


# --- the request data file --------------------------------------------------------------------------------


def _one_delimited(data: bytes) -> bytes:
    size, at = _DecodeVarint(data, 0)
    assert at + size == len(data), "exactly one count-delimited message"
    return data[at:]


@pytest.mark.parametrize(
    ("rpc", "cls", "extra"),
    [
        ("unary", greet_pb2.HelloRequest, {"name": "lab"}),
        ("server_stream", number_stream_pb2.NumberRequest, {"limit": 5}),
        ("client_stream", sum_stream_pb2.NumberRequest, {"number": 1}),
        ("bidi", chat_pb2.ChatRequest, {"message": "0"}),
    ],
)
@pytest.mark.parametrize("compression", ["none", "app-gzip-6"])
def test_request_bytes(rpc, cls, extra, compression):
    cell = job(rpc=rpc, stream_messages=1 if rpc == "unary" else 5, compression=compression, payload_kind="text")
    message = cls.FromString(_one_delimited(ghz.request_bytes(cell)))
    level = 6 if compression == "app-gzip-6" else 0
    assert payloads.decode(message.payload, message.payload_gzip_level) == payloads.make("text", 100)
    assert message.payload_gzip_level == level
    assert message.response_size == 100
    assert message.response_kind == lab_pb2.PAYLOAD_KIND_TEXT
    for field, value in extra.items():
        assert getattr(message, field) == value


def test_empty_request_still_has_its_length_prefix():
    data = ghz.request_bytes(job(payload_size=0, payload_kind="zeros"))
    assert greet_pb2.HelloRequest.FromString(_one_delimited(data)).name == "lab"


# --- the report ------------------------------------------------------------------------------------------

NS = 1_000_000_000
T0 = 1_700_000_000 * NS  # an arbitrary wall-clock origin for canned reports


def go_time(ns: int, zone: str = "Z") -> str:
    """ns since the epoch -> RFC 3339 the way Go writes it (trailing zeros of the fraction trimmed)."""
    seconds, fraction = divmod(ns, NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}".rstrip("0")
    return text + (f".{digits}" if digits else "") + zone


def detail(start_ns: int, latency_ns: int, status: str = "OK") -> dict:
    error = "" if status == "OK" else f"rpc error: code = {status} desc = boom"
    return {"timestamp": go_time(start_ns + latency_ns), "latency": latency_ns, "error": error, "status": status}


def report(details: list[dict], **extra) -> dict:
    return {"count": len(details), "total": 2 * NS, "details": details or None, **extra}


def test_wall_ns():
    assert ghz.wall_ns("2023-11-14T22:13:20Z") == T0
    assert ghz.wall_ns("2023-11-14T22:13:20.5Z") == T0 + NS // 2
    assert ghz.wall_ns("2023-11-14T22:13:20.000000001Z") == T0 + 1
    assert ghz.wall_ns("2023-11-15T00:13:20.123456789+02:00") == T0 + 123_456_789
    assert ghz.wall_ns(go_time(T0 + 7)) == T0 + 7
    with pytest.raises(ValueError):
        ghz.wall_ns("yesterday")


def test_status_names():
    assert ghz.status_name("Unavailable") == "UNAVAILABLE"
    assert ghz.status_name("DeadlineExceeded") == "DEADLINE_EXCEEDED"
    assert ghz.status_name("Canceled") == "CANCELLED"  # Go's spelling -> grpc.StatusCode's
    assert ghz.status_name("") == "UNKNOWN"  # an error with no gRPC status


def test_parse_counts_rpcs_started_in_the_window_and_converts_ns_to_us():
    lo, hi = T0 + 1 * NS, T0 + 2 * NS
    details = [
        detail(T0 + NS // 2, 3_000_000),  # warm-up: not counted
        detail(lo - 1_000_000, 2_000_000),  # started before lo, ended inside: not counted
        detail(lo, 1_500_000),  # counted, 1.5 ms
        detail(lo + 100_000_000, 250_000),  # counted, 0.25 ms
        detail(lo + 200_000_000, 20_000_000),  # counted, 20 ms
        detail(hi - 1_000_000, 40_000_000),  # started inside, ended after hi: counted (awaited)
        detail(lo + 300_000_000, 5_000_000, "Unavailable"),
        detail(lo + 400_000_000, 5_000_000, "Unavailable"),
        detail(lo + 500_000_000, 100_000_000, "DeadlineExceeded"),
        detail(hi, 1_000_000),  # started at hi: not counted
        detail(hi + NS // 10, 1_000_000, "Unavailable"),  # tail: not counted
    ]
    ok, errors, hist, notes = ghz.parse_report(report(details), (lo, hi), 1.0)
    assert ok == 4
    assert errors == {"UNAVAILABLE": 2, "DEADLINE_EXCEEDED": 1}
    assert hist.get_total_count() == ok
    assert hist.get_min_value() == 250  # us
    assert hist.get_max_value() == pytest.approx(40_000, rel=1e-3)
    assert hist.get_value_at_percentile(50) == pytest.approx(1500, rel=1e-3)
    assert notes == []


def test_parse_empty_run():
    ok, errors, hist, notes = ghz.parse_report({"count": 0, "total": NS, "details": None}, (T0, T0 + NS), 1.0)
    assert (ok, errors, hist.get_total_count(), notes) == (0, {}, 0, [])


def _summary_report(details=None) -> dict:
    return {
        "count": 2000,
        "total": 4 * NS,  # the whole run: counts are scaled by duration / 4 s
        "slowest": 90_000_000,
        "statusCodeDistribution": {"OK": 1900, "Unavailable": 100},
        "latencyDistribution": [
            {"percentage": 10, "latency": 1_000_000},
            {"percentage": 25, "latency": 1_200_000},
            {"percentage": 50, "latency": 2_000_000},
            {"percentage": 75, "latency": 3_000_000},
            {"percentage": 90, "latency": 5_000_000},
            {"percentage": 95, "latency": 8_000_000},
            {"percentage": 99, "latency": 20_000_000},
        ],
        "details": details,
    }


@pytest.mark.parametrize("kept", [0, 10])
def test_parse_without_complete_details_falls_back_to_the_summary(kept):
    details = [detail(T0, 1_000_000)] * kept or None
    ok, errors, hist, notes = ghz.parse_report(_summary_report(details), (T0, T0 + NS), 2.0)
    assert ok == 950 and errors == {"UNAVAILABLE": 50}
    assert hist.get_total_count() == ok
    assert hist.get_value_at_percentile(50) == pytest.approx(2000, rel=1e-3)
    assert hist.get_value_at_percentile(90) == pytest.approx(5000, rel=1e-3)
    assert hist.get_value_at_percentile(99) == pytest.approx(20_000, rel=1e-3)
    assert hist.get_max_value() == pytest.approx(90_000, rel=1e-3)
    assert len(notes) == 1 and "p99.9 unavailable" in notes[0]
    assert ("only 10 of 2000" in notes[0]) == bool(kept)


def test_parse_bad_shape_is_a_load_error():
    with pytest.raises(LoadError, match="unexpected shape"):
        ghz.parse_report({"details": []}, (T0, T0 + NS), 1.0)
    with pytest.raises(LoadError, match="unexpected shape"):
        ghz.parse_report({"count": 1, "details": [{"timestamp": "x", "latency": 1}]}, (T0, T0 + NS), 1.0)


# --- finding ghz ------------------------------------------------------------------------------------------


def _executable(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_find_ghz_prefers_the_venv_then_path(tmp_path, monkeypatch):
    venv_ghz = _executable(tmp_path / "venv" / "bin" / "ghz", "#!/bin/sh\n")
    path_ghz = _executable(tmp_path / "path" / "ghz", "#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    assert ghz.find_ghz() == venv_ghz
    monkeypatch.setattr(sys, "executable", str(tmp_path / "elsewhere" / "python"))
    assert ghz.find_ghz() == path_ghz
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert ghz.find_ghz() is None


@pytest.mark.slow
def test_ghz_version(tmp_path):
    release = _executable(tmp_path / "a" / "ghz", "#!/bin/sh\necho v0.121.0\n")
    assert ghz.ghz_version(release) == "v0.121.0"
    # `go install` without -ldflags says "dev": the module version comes from Go's embedded build info
    dev = _executable(
        tmp_path / "b" / "ghz",
        "#!/bin/sh\necho dev\nexit 0\n# path\tgithub.com/bojand/ghz/cmd/ghz\n"
        "mod\tgithub.com/bojand/ghz\tv0.120.0\th1:x\n",
    )
    assert ghz.ghz_version(dev) == "v0.120.0"


def test_makefile_builds_the_version_the_wrapper_names():
    text = (ROOT / "Makefile").read_text()
    assert f"GHZ_VERSION ?= {ghz.GHZ_VERSION}" in text


# --- the process, with a fake ghz --------------------------------------------------------------------------

FAKE = """\
#!{python}
import json, os, sys, time
from datetime import UTC, datetime
SCENARIO = json.loads({scenario!r})
NS = 1_000_000_000
launched = time.time_ns()
args = sys.argv[1:]
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "seen.json"), "w") as f:
    data = open(args[args.index("-B") + 1], "rb").read().hex()
    json.dump({{"argv": args, "cpus": sorted(os.sched_getaffinity(0)), "data": data, "cwd": os.getcwd()}}, f)
kind = SCENARIO["kind"]
if kind == "exit1":
    print("fake ghz: connection refused", file=sys.stderr)
    sys.exit(1)
if kind == "sleep":
    time.sleep(3600)
out = args[args.index("-o") + 1]
if kind == "garbage":
    open(out, "w").write("this is not json {{")
    sys.exit(0)
if kind == "noreport":
    sys.exit(0)

def go_time(ns):
    seconds, fraction = divmod(ns, NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + "." + f"{{fraction:09d}}" + "Z"

details = []
for start_s, latency_ns, status in SCENARIO["details"]:
    end = launched + int(start_s * NS) + latency_ns
    error = "" if status == "OK" else "rpc error: code = " + status
    details.append({{"timestamp": go_time(end), "latency": latency_ns, "error": error, "status": status}})
codes = {{}}
for d in details:
    codes[d["status"]] = codes.get(d["status"], 0) + 1
report = {{"count": len(details), "total": 3 * NS, "details": details or None, "statusCodeDistribution": codes}}
with open(out, "w") as f:
    json.dump(report, f)
"""


@pytest.fixture
def fake_ghz(tmp_path) -> Callable[..., str]:
    """fake_ghz(kind="report", details=[(start_s_after_launch, latency_ns, status), ...]) -> its path."""

    def make(kind: str = "report", details: list | None = None) -> str:
        scenario = json.dumps({"kind": kind, "details": details or []})
        return _executable(tmp_path / "fake" / "ghz", FAKE.format(python=sys.executable, scenario=scenario))

    return make


def seen(binary: str) -> dict:
    return json.loads((Path(binary).parent / "seen.json").read_text())


# warm-up 1 s and duration 1 s: the window is [LEAD_S + 1, LEAD_S + 2) s after launch; the canned RPCs keep
# 0.2 s away from its edges, more than the fake's own start-up.
FAKE_DETAILS = [
    (0.5, 1_000_000, "OK"),  # warm-up
    (1.4, 2_000_000, "OK"),
    (1.6, 3_000_000, "OK"),
    (1.8, 4_000_000, "Unavailable"),
    (2.0, 500_000_000, "OK"),  # ends after the window: still counted
    (2.4, 1_000_000, "Unavailable"),  # tail
]


@pytest.mark.slow
def test_fake_run_arguments_pinning_and_result(fake_ghz):
    binary = fake_ghz(details=FAKE_DETAILS)
    cpu = sorted(os.sched_getaffinity(0))[-1]
    cell = job(
        warmup=1.0,
        duration=1.0,
        rpc="client_stream",
        stream_messages=3,
        compression="app-gzip-3",
        payload_size=4096,
        rpc_timeout=2.0,
    )
    load = GhzLoad(cell, LocalLoadgenHost((cpu,)), binary=binary)
    try:
        lo, hi = load.start()
        assert hi - lo == pytest.approx(1.0)
        assert lo - time.monotonic() == pytest.approx(ghz.LEAD_S + 1.0, abs=0.1)
        result = load.result()
        got = seen(binary)
        assert Path(got["cwd"]) != Path.cwd()  # ghz runs in its own temporary directory
        data_file, out = got["argv"][got["argv"].index("-B") + 1], got["argv"][got["argv"].index("-o") + 1]
        expected = ghz.ghz_args(cell, data_file=data_file, output=out, run_s=load.run_s, cpus=1)
        assert got["argv"] == expected
        assert "-z" in expected and f"{round((ghz.LEAD_S + 2.0 + ghz.TAIL_S) * 1000)}ms" in expected
        assert got["cpus"] == [cpu]
        assert bytes.fromhex(got["data"]) == ghz.request_bytes(cell)
    finally:
        load.close()
    assert not Path(data_file).parent.exists()  # close() removes the data file and the report
    assert result.loadgen == "ghz" and result.processes == 1 and result.window_s == 1.0
    assert result.ok == 3 and result.errors == {"UNAVAILABLE": 1} and result.rpcs == 4
    assert result.hists["call"].get_total_count() == 3
    assert result.hists["call"].get_max_value() == pytest.approx(500_000, rel=1e-3)
    counts = {name: h.get_total_count() for name, h in result.hists.items()}
    assert counts == {"call": 3, "msg": 0, "first": 0, "lag": 0}
    assert ghz.NOTE_PER_CALL in result.notes and ghz.NOTE_APP_GZIP in result.notes
    # the fake exits at once, long before the window: no CPU samples
    assert math.isnan(result.cpu_s) and any("CPU unavailable" in n for n in result.notes)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("exit1", r"^ghz exited with code 1: fake ghz: connection refused$"),
        ("garbage", r"^ghz report is not valid JSON: "),
        ("noreport", r"^ghz wrote no report: \(no output\)$"),
    ],
)
def test_fake_failures_are_one_line_load_errors(fake_ghz, kind, message):
    load = GhzLoad(job(rpc_timeout=1.0), LocalLoadgenHost(), binary=fake_ghz(kind))
    try:
        load.start()
        with pytest.raises(LoadError, match=message) as err:
            load.result()
        assert "\n" not in str(err.value)
    finally:
        load.close()


@pytest.mark.slow
def test_fake_hang_is_killed_at_the_deadline(fake_ghz, monkeypatch):
    monkeypatch.setattr(ghz, "EXIT_MARGIN_S", 0.3)
    load = GhzLoad(job(duration=0.1, rpc_timeout=0.2), LocalLoadgenHost(), binary=fake_ghz("sleep"))
    try:
        began = time.monotonic()
        load.start()
        with pytest.raises(LoadError, match=r"^ghz did not finish within 1\.\d s and was killed$"):
            load.result()
        assert time.monotonic() - began < 1.0 + 2.0
        assert load.proc is not None and load.proc.poll() is not None
    finally:
        load.close()


@pytest.mark.slow
def test_close_kills_a_running_ghz_and_removes_its_files(fake_ghz):
    load = GhzLoad(job(rpc_timeout=1.0), LocalLoadgenHost(), binary=fake_ghz("sleep"))
    load.start()
    directory = load._dir
    assert directory is not None and Path(directory).is_dir()
    load.close()
    assert load.proc is not None and load.proc.returncode is not None
    assert not Path(directory).exists()


# --- real ghz against the lab servers ------------------------------------------------------------------------

requires_ghz = pytest.mark.skipif(
    ghz.find_ghz() is None, reason="ghz is not installed: `make ghz` builds it into .venv/bin (needs Go >= 1.23)"
)
RPC_KINDS = ("unary", "server_stream", "client_stream", "bidi")
SHORT = dict(warmup=0.1, duration=0.5, payload_size=256, concurrency=4, connections=2, rpc_timeout=10.0)


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory) -> Path:
    return certs.generate(tmp_path_factory.mktemp("ghz-tls")).dir


@pytest.fixture(scope="module")
def lab_server(tls_dir) -> Iterator[Callable[..., server_process.ServerProcess]]:
    """lab_server(impl, tls="off", compression="none", env=None): one shared server per combination."""
    started: dict[tuple, server_process.ServerProcess] = {}
    with ExitStack() as stack:

        def get(impl: str, tls: str = "off", compression: str = "none", env: dict | None = None):
            key = (impl, tls, compression, tuple(sorted((env or {}).items())))
            if key not in started:
                server_args = ["--impl", impl, "--port", "0", "--grace", "0.5", "--exit-with-parent"]
                if tls != "off":
                    server_args += ["--tls", str(tls_dir)] + (["--mtls"] if tls == "mtls" else [])
                if compression != "none":
                    server_args += ["--compression", compression]
                started[key] = stack.enter_context(server_process.running(server_args, env=env))
            return started[key]

        yield get
    bad = {key: srv.exit_code for key, srv in started.items() if srv.exit_code != 0}
    assert not bad, f"servers exited non-zero on SIGTERM: {bad}"


def run_ghz(cell: LoadJob):
    load = GhzLoad(cell, LocalLoadgenHost())
    try:
        lo, hi = load.start()
        time.sleep(max(0.0, hi - time.monotonic()))
        return load.result()
    finally:
        load.close()


def assert_clean(result) -> None:
    assert result.ok > 0
    assert result.errors == {}
    assert result.hists["call"].get_total_count() == result.ok
    assert result.cpu_s >= 0 and not math.isnan(result.cpu_s)


@pytest.mark.slow
@requires_ghz
@pytest.mark.parametrize("tls", ["off", "on"])
@pytest.mark.parametrize("rpc", RPC_KINDS)
@pytest.mark.parametrize("impl", ["sync", "aio"])
def test_real_ghz_every_rpc_kind(lab_server, tls_dir, impl, rpc, tls):
    srv = lab_server(impl, tls)
    cell = job(
        **SHORT,
        rpc=rpc,
        stream_messages=1 if rpc == "unary" else 5,
        target=srv.target,
        tls=tls,
        tls_dir=str(tls_dir) if tls != "off" else None,
    )
    assert_clean(run_ghz(cell))


@pytest.mark.slow
@requires_ghz
@pytest.mark.parametrize("impl", ["sync", "aio"])
def test_real_ghz_mtls(lab_server, tls_dir, impl):
    srv = lab_server(impl, "mtls")
    assert_clean(run_ghz(job(**SHORT, target=srv.target, tls="mtls", tls_dir=str(tls_dir))))


@pytest.mark.slow
@requires_ghz
def test_real_ghz_mtls_without_client_cert_fails_every_rpc(lab_server, tls_dir):
    srv = lab_server("aio", "mtls")
    result = run_ghz(job(**SHORT, target=srv.target, tls="on", tls_dir=str(tls_dir)))
    assert result.ok == 0 and sum(result.errors.values()) > 0 and set(result.errors) <= {"UNAVAILABLE"}


@pytest.mark.slow
@requires_ghz
@pytest.mark.parametrize(
    ("compression", "server_compression"), [("grpc-gzip", "gzip"), ("app-gzip-6", "none")], ids=["grpc", "app"]
)
def test_real_ghz_compression(lab_server, compression, server_compression):
    srv = lab_server("sync", compression=server_compression)
    rpc = "bidi" if compression == "grpc-gzip" else "unary"
    cell = job(
        **{**SHORT, "payload_size": 4096}, rpc=rpc, stream_messages=3, target=srv.target, compression=compression
    )
    result = run_ghz(cell)
    assert_clean(result)  # a wrongly encoded app-gzip payload would fail as INVALID_ARGUMENT


@pytest.mark.slow
@requires_ghz
def test_real_ghz_open_loop_rate(lab_server):
    srv = lab_server("aio")
    cell = job(**{**SHORT, "duration": 1.0, "concurrency": 16}, target=srv.target, mode="open", rate=200.0)
    result = run_ghz(cell)
    assert_clean(result)
    assert 160 <= result.ok <= 240  # 200 RPC/s for 1 s
    assert ghz.NOTE_OPEN in result.notes


@pytest.mark.slow
@requires_ghz
def test_real_ghz_counts_deadline_errors(lab_server):
    srv = lab_server("aio", env={"GRPCLAB_INJECT_DELAY_US": "300000"})
    result = run_ghz(job(**{**SHORT, "rpc_timeout": 0.05}, target=srv.target))
    assert result.ok == 0
    assert set(result.errors) == {"DEADLINE_EXCEEDED"}
    assert result.errors["DEADLINE_EXCEEDED"] >= 10  # 4 in flight, 50 ms each, for 0.5 s
    assert result.hists["call"].get_total_count() == 0


@pytest.mark.slow
@requires_ghz
def test_real_ghz_pinned_and_through_the_runner(tls_dir):
    """The runner's own path: a ghz cell's row, pinned like a real run."""
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, loadgen_cpus = (cpus[:1], cpus[1:2]) if len(cpus) > 1 else (cpus, cpus)
    cell = Cell(
        impl="aio", rpc="unary", workers=0, processes=1, payload_size=512, payload_kind="text",
        compression="none", tls="on", concurrency=8, connections=1, stream_messages=1, mode="closed",
        rate=0.0, arrival="constant", loadgen="ghz",
    )  # fmt: skip
    settings = Settings(
        duration=1.0,
        warmup=0.2,
        repetitions=1,
        cell_timeout=30.0,
        server_cpus=tuple(server_cpus),
        loadgen_cpus=tuple(loadgen_cpus),
    )
    ctx = runner.Context(
        run_id="ghz", settings=settings, certs_dir=tls_dir, placement=LocalPlacement.from_settings(settings)
    )
    row = runner.measure(cell, 0, 0, ctx)
    assert not row["failed"], row["error"]
    assert row["loadgen_processes"] == 1
    assert row["rpcs_ok"] > 0 and row["errors"] == 0
    assert histogram.decode(row["hdr_call"]).get_total_count() == row["rpcs_ok"]
    assert row["hdr_msg"] == ""
    assert 0 < row["loadgen_cpu_s"] <= 1.0 * len(loadgen_cpus) * 1.1
    if shutil.which("ss"):
        assert row["wire_bytes_per_rpc"] > 512  # the server's TCP counters were read while ghz was connected
    assert ghz.NOTE_PER_CALL in row["notes"]
