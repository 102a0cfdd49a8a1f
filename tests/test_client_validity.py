"""Validity of the client-side axes: each client model, per-call channels, the options presets and records do
what they say, measured through the harness's own code path (bench.run.measure, as tests/test_validity.py).

Each check puts a known cost or limit in (a handler wait, one stream per connection) or counts what the kernel
saw (TCP connections accepted), so a client that serialized its calls, reused a connection it claims to open per
call, or a preset that was not applied, fails. No bound assumes this machine's speed: each is against the wait it
injected or a latency measured in the same test.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from server_impls import GO_BUILT, GO_MISSING
from test_validity import Lab

from servers import certs, records

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not {0, 1} <= os.sched_getaffinity(0), reason="the lab pins the server to CPU 0 and the load generator to CPU 1"
    ),
]

CLIENTS = ("aio", "sync-threads", "sync-future")
WAIT_MS = 10.0  # each RPC's handler waits this long (handler_wait_ms): far above a loopback round trip
IN_FLIGHT = 8
WINDOW = {"duration": 1.0, "warmup": 0.3}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab(certs.generate(tmp_path_factory.mktemp("certs")).dir)


def ok_row(lab: Lab, **axes: object) -> dict:
    row = lab.row(**WINDOW, **axes)
    assert row["errors"] == 0 and row["rpcs_ok"] > 0, row["errors_by_code"]
    return row


def waiting_row(lab: Lab, client: str, concurrency: int, **axes: object) -> dict:
    # 16 threads: the server's pool is never the limit for 8 waiting RPCs
    return ok_row(lab, client=client, workers=16, concurrency=concurrency, handler_wait_ms=WAIT_MS, **axes)


@pytest.mark.parametrize("client", CLIENTS)
def test_each_client_keeps_its_rpcs_in_flight(lab, client):
    """8 RPCs in flight that each wait 10 ms in the handler overlap: ~8 / L1 RPC/s, where L1 is the same client's
    mean latency with one RPC in flight. A client that ran its calls one at a time would make 1 / L1."""
    alone = waiting_row(lab, client, 1)
    together = waiting_row(lab, client, IN_FLIGHT)
    latency_s = alone["lat_mean_ms"] / 1000
    assert latency_s >= WAIT_MS / 1000
    assert alone["rps"] <= 1 / latency_s * 1.05 + 1 / alone["duration_s"]
    assert together["rps"] >= 0.7 * IN_FLIGHT / latency_s, (together["rps"], IN_FLIGHT / latency_s)
    assert together["rps"] <= IN_FLIGHT / (WAIT_MS / 1000) * 1.02


@pytest.mark.parametrize("client", ["sync-threads", "sync-future"])
def test_sync_clients_keep_the_open_loop_rate(lab, client):
    row = ok_row(lab, client=client, mode="open", rate=400, arrival="constant", concurrency=16)
    assert row["rps"] == pytest.approx(400, rel=0.03)
    assert row["send_lag_p99_ms"] is not None


def tcp_passive_opens() -> int:
    """TCP connections this network namespace accepted since boot (/proc/net/snmp, Tcp: PassiveOpens)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Tcp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("PassiveOpens")])


def accepted_row(lab: Lab, client: str, channel: str) -> tuple[dict, int]:
    """One RPC in flight; the row and the TCP connections accepted while it ran (server start to stop)."""
    before = tcp_passive_opens()
    row = ok_row(lab, client=client, channel=channel, condition=f"opens-{time.monotonic()}")
    return row, tcp_passive_opens() - before


@pytest.mark.parametrize("client", CLIENTS)
def test_a_channel_per_call_opens_a_connection_per_rpc_and_a_reused_one_does_not(lab, client):
    """The kernel's count of accepted connections: per-call at least one per RPC counted (every counted RPC
    started inside the window, so its connection was accepted while the cell ran), reuse a handful for the
    whole cell (the health check, the generator's channel, the time-to-first-RPC channel). Nothing else on the
    machine should accept loopback connections meanwhile: the tests run under the machine lock."""
    per_call, opened = accepted_row(lab, client, "per-call")
    reused, opened_reused = accepted_row(lab, client, "reuse")
    print(f"{client}: per-call {per_call['rpcs']} RPCs, {opened} accepted; reuse {opened_reused} accepted")
    assert opened >= per_call["rpcs"] > 50
    assert opened_reused <= 10
    # Connecting shows in every per-call RPC, and a fresh channel's first call costs more than a reused one's.
    assert per_call["lat_p50_ms"] > reused["lat_p50_ms"]
    for row in (per_call, reused):
        assert row["time_to_first_rpc_ms"] > reused["lat_p50_ms"], row["time_to_first_rpc_ms"]


def test_max_streams_1_leaves_one_rpc_in_flight_per_connection(lab):
    """grpc.max_concurrent_streams = 1: the 8 calls queue in the client for the connection's one stream, so the
    10 ms waits no longer overlap (at most one RPC per wait), where the default preset overlaps them."""
    limited = waiting_row(lab, "aio", IN_FLIGHT, server_options="max-streams-1")
    free = waiting_row(lab, "aio", IN_FLIGHT)
    assert limited["rps"] <= 1 / (WAIT_MS / 1000) * 1.02 + 1 / limited["duration_s"], limited["rps"]
    assert free["rps"] >= 4 * limited["rps"]


def test_keepalive_and_single_threaded_unary_stream_presets_run(lab):
    """The presets are accepted by grpcio on both ends and RPCs stay correct (keepalive pings every second:
    over the cell's ~2 s of connection life, a ping the server refused would end it with GOAWAY)."""
    ok_row(lab, channel_options="keepalive", server_options="keepalive", concurrency=4)
    row = ok_row(
        lab,
        rpc="server_stream",
        client="sync-threads",
        channel_options="single-threaded-unary-stream",
        stream_messages=5,
        concurrency=4,
    )
    assert row["msg_p50_ms"] is not None  # per-message times came through the calling thread


@pytest.mark.parametrize(
    "impl", ["sync", "aio", pytest.param("go", marks=pytest.mark.skipif(not GO_BUILT, reason=GO_MISSING))]
)
@pytest.mark.parametrize("rpc", ["unary", "bidi"])
def test_records_go_both_ways_on_every_server(lab, impl, rpc):
    """Every reply is checked record by record count and last record (bench.load.workload); the wire carries the
    serialized records each way (plus framing, no payload bytes)."""
    size = 16 * 1024
    row = ok_row(lab, impl=impl, rpc=rpc, payload_kind="records", payload_size=size, stream_messages=4, concurrency=2)
    messages = 1 if rpc == "unary" else 4
    body = records.build(size).size
    # Bytes are counted over the window, RPCs as they finish in it: the 2 in flight at its edges blur a per-RPC
    # figure by up to 2 RPCs' worth (in a CI run a go bidi row read 65,132 B for 65,136 B of records).
    blur = 2 / row["rpcs"]
    for direction in ("wire_rx_bytes_per_rpc", "wire_tx_bytes_per_rpc"):
        low, high = messages * body * (1 - blur), (messages * body * 1.1 + 1000) * (1 + blur)
        assert low <= row[direction] <= high, (direction, row[direction])


def test_uvloop_runs_under_the_aio_server_and_client(lab):
    row = ok_row(lab, impl="aio", event_loop="uvloop", concurrency=4)
    assert "uvloop" not in row["notes"]  # both ends ran it: nothing to note


@pytest.mark.parametrize("impl", ["sync", "aio"])
def test_the_ready_line_names_the_preset_and_the_protobuf_runtime(impl):
    from bench.run import server_process
    from servers.serve import protobuf_runtime

    args = ["--impl", impl, "--port", "0", "--options", "max-streams-2"] + (["--uvloop"] if impl == "aio" else [])
    with server_process.running(args, cpus=[0]) as server:
        ready = server.ready
    assert ready["options"] == "max-streams-2"
    assert ready["protobuf"] == protobuf_runtime() in ("upb", "cpp", "python")
