"""The overhead benchmark (bench/studies/overhead.py): its plan and verdict on made-up windows, the bare
tutorial server over the wire, and a short real run that must measure back a cost injected into the lab server.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from dataclasses import replace

import grpc
import pytest

from bench.load.channels import open_channel
from bench.run import server_process
from bench.studies import overhead
from protos import (
    chat_pb2,
    chat_pb2_grpc,
    greet_pb2,
    greet_pb2_grpc,
    number_stream_pb2,
    number_stream_pb2_grpc,
    sum_stream_pb2,
    sum_stream_pb2_grpc,
)
from servers import payloads

SETTINGS = overhead.Settings(rounds=6)


def test_plan_interleaves_both_servers_of_every_cell_in_every_round() -> None:
    windows = overhead.plan(SETTINGS)
    cells = overhead.cells(SETTINGS)
    assert len(cells) == 16 and len(windows) == 6 * 16 * 2
    for round_ in range(6):
        mine = [w for w in windows if w.round == round_]
        assert Counter((w.impl, w.rpc, w.tls, w.arm) for w in mine) == {
            (c.impl, c.rpc, c.tls, arm): 1 for c in cells for arm in overhead.ARMS
        }
        for first, second in zip(mine[::2], mine[1::2], strict=True):  # a cell's two servers back to back
            assert (first.impl, first.rpc, first.tls) == (second.impl, second.rpc, second.tls)
            assert {first.arm, second.arm} == {"lab", "bare"}
    firsts = Counter(w.arm for w in windows[::2])
    assert firsts["lab"] > 20 and firsts["bare"] > 20  # a coin decides who goes first
    assert [w.order for w in windows] == list(range(len(windows)))
    assert overhead.plan(SETTINGS) == windows  # seeded
    assert overhead.plan(replace(SETTINGS, seed=2)) != windows


def _windows(lab: list[float], bare: list[float], rpc: str = "unary") -> list[overhead.Window]:
    out = []
    for i, (a, b) in enumerate(zip(lab, bare, strict=True)):
        for arm, value in (("lab", a), ("bare", b)):
            out.append(overhead.Window("sync", rpc, "off", arm, i, len(out), ok=1000, cpu_us_per_rpc=value, rps=1e4))
    return out


def test_verdict_is_the_hodges_lehmann_ratio_bare_over_lab() -> None:
    settings = replace(SETTINGS, impls=("sync",), rpcs=("unary", "bidi"), tls=("off",))
    lab = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2]
    close = [98.5, 99.0, 98.0, 99.2, 98.8, 98.6]  # ~1.3 % cheaper: meets 0.97
    far = [90.0, 91.0, 89.5, 90.5, 90.2, 89.8]  # ~10 % cheaper: the lab misses the goal
    results = overhead.summarize(_windows(lab, close) + _windows(lab, far, "bidi"), settings)
    unary, bidi = results
    assert unary.rounds == 6 and unary.lab_cpu_us == pytest.approx(100.1) and unary.bare_cpu_us == pytest.approx(98.7)
    assert 0.98 < unary.ratio < 0.995 and unary.ci_low < unary.ratio < unary.ci_high
    assert unary.met is True and overhead.goal_text(unary, 0.97) == "met"
    assert 0.89 < bidi.ratio < 0.91 and bidi.ci_high < 0.97
    assert bidi.met is False and overhead.goal_text(bidi, 0.97) == "MISSED"


def test_failed_windows_are_left_out_and_counted() -> None:
    settings = replace(SETTINGS, impls=("sync",), rpcs=("unary",), tls=("off",))
    windows = _windows([100.0] * 4, [99.0] * 4)
    windows[0].error = "ghz exited with code 1"
    windows[3].errors = {"UNAVAILABLE": 3}
    (result,) = overhead.summarize(windows, settings)
    assert result.failed_windows == 2 and result.rounds == 3


def test_bad_options_are_one_line_and_exit_2(capsys) -> None:
    for argv, message in (
        (["--rpc", "unary,bogus"], "--rpc: unknown value 'bogus'"),
        (["--rounds", "1"], "--rounds: at least 2"),
        (["--loadgen", "wrk"], "--loadgen: unknown value 'wrk'"),
        (["--server-cpu", "1", "--loadgen-cpu", "1"], "must differ"),
    ):
        assert overhead.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


# --- real servers ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["sync", "aio"])
def test_bare_server_serves_the_tutorial_and_stops_cleanly(impl: str) -> None:
    srv = server_process.start(["--impl", impl, "--port", "0", "--exit-with-parent"], entry=overhead.BARE_ENTRY)
    try:
        assert srv.ready["bare"] is True and srv.ready["impl"] == impl and srv.ready["host"] == "127.0.0.1"
        with open_channel(srv.target) as channel:
            hello = greet_pb2_grpc.GreeterStub(channel).SayHello(greet_pb2.HelloRequest(name="you"), timeout=10)
            assert hello.message == "Hello, you!" and hello.payload == b""
            numbers = number_stream_pb2_grpc.NumberServiceStub(channel).GetNumbers(
                number_stream_pb2.NumberRequest(limit=3, response_size=100, response_kind=2), timeout=10
            )
            assert [(n.number, n.payload) for n in numbers] == [(i, payloads.make("text", 100)) for i in range(3)]
            requests = iter([sum_stream_pb2.NumberRequest(number=n) for n in (1, 2, 3)])
            assert sum_stream_pb2_grpc.SumServiceStub(channel).CalculateSum(requests, timeout=10).sum == 6
            chat = chat_pb2_grpc.ChatServiceStub(channel).Chat(iter([chat_pb2.ChatRequest(message="hi")]), timeout=10)
            assert [r.message for r in chat] == ["You said: hi"]
            # Nothing but the tutorial's services: no health, no lab.Control.
            with pytest.raises(grpc.RpcError) as info:
                channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        # SIGTERMs back to back, as a harness stopping it from two threads may send (servers.stop_signals): exit 0
        begun = time.monotonic()
        while time.monotonic() - begun < 0.3 and srv.proc.poll() is None:  # not reaped: the pid is still ours
            os.kill(srv.proc.pid, signal.SIGTERM)
        assert srv.stop() == 0


@pytest.mark.slow
def test_short_run_measures_an_injected_cost_back(tmp_path) -> None:
    # 300 us of CPU injected into every lab RPC: bare/lab must drop far below 1, and the difference of the two
    # medians must be about the injected cost (not an absolute speed: a difference the test put there).
    settings = overhead.Settings(rounds=3, duration=1.0, warmup=0.3, impls=("sync",), rpcs=("unary",), tls=("off",))
    settings = replace(settings, loadgen="ghz" if overhead.find_ghz() else "python", cpu_latency_hold=False)
    meta, (result,) = overhead.run(
        settings, tmp_path / "out", progress=lambda _: None, lab_env={"GRPCLAB_INJECT_CPU_US": "300"}
    )
    assert result.rounds == 3 and result.failed_windows == 0
    assert 250 <= result.lab_cpu_us - result.bare_cpu_us <= 360, (result.lab_cpu_us, result.bare_cpu_us)
    assert result.ratio < 0.6 and result.met is False
    doc = json.loads((tmp_path / "out" / "overhead.json").read_text())
    assert len(doc["windows"]) == 6 and doc["cpu_latency_hold"] == "off"
    assert doc["environment"]["versions"]["grpcio"] == grpc.__version__
    table = (tmp_path / "out" / "overhead.md").read_text()
    assert "| sync | unary | off |" in table and "MISSED" in table and "GRPCLAB_INJECT_CPU_US" in table
    assert (tmp_path / "out" / "windows.jsonl").read_text().count("\n") == 6
    assert overhead.main(["--render", str(tmp_path / "out")]) == 0
