"""bench.load.job: the typed job the harness hands the load generators (and each worker process its share)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.load.job import LoadJob, split
from bench.load.python_load import worker_count
from bench.spec import DEFAULTS, Cell, Settings
from bench.spec.compression import Compression

CELL = Cell(
    **{**DEFAULTS, "tls": "mtls", "compression": "app-gzip-3", "concurrency": 7, "connections": 3, "mode": "open"}
    | {"rate": 1000.0, "arrival": "poisson", "rpc": "bidi", "stream_messages": 5}
)
SETTINGS = Settings(duration=2.0, warmup=0.5, cell_timeout=30.0, seed=4)


def test_for_cell_takes_the_cell_s_load_and_the_settings_window():
    job = LoadJob.for_cell(CELL, target="127.0.0.1:4000", tls_dir=Path("/certs"), settings=SETTINGS, repetition=2)
    assert (job.rpc, job.stream_messages, job.concurrency, job.connections) == ("bidi", 5, 7, 3)
    assert (job.mode, job.rate, job.arrival) == ("open", 1000.0, "poisson")
    assert job.compression == Compression.parse("app-gzip-3") and job.compression.app_level == 3
    assert (job.warmup, job.duration) == (0.5, 2.0)
    assert job.rpc_timeout == 30.0 - 0.5 - 2.0  # what is left of the cell's time limit
    assert (job.tls, job.tls_dir) == ("mtls", "/certs")
    assert job.seed == 4 * 1000 + 2  # a repetition's own arrival sequence


def test_rpc_timeout_has_a_floor_and_plaintext_cells_get_no_certificates():
    tight = Settings(duration=2.0, warmup=0.5, cell_timeout=2.6)
    plain = Cell(**DEFAULTS)
    job = LoadJob.for_cell(plain, target="t:1", tls_dir=Path("/certs"), settings=tight, repetition=0)
    assert job.rpc_timeout == 1.0
    assert job.tls == "off" and job.tls_dir is None


def test_json_round_trip_is_exact():
    job = LoadJob.for_cell(CELL, target="127.0.0.1:4000", tls_dir=Path("/certs"), settings=SETTINGS, repetition=1)
    wire = json.loads(json.dumps(job.to_json()))
    assert wire["compression"] == "app-gzip-3"  # the axis value, not an object
    assert LoadJob.from_json(wire) == job


def test_from_json_names_missing_and_unknown_keys():
    wire = LoadJob.for_cell(CELL, target="t:1", tls_dir=None, settings=SETTINGS, repetition=0).to_json()
    with pytest.raises(ValueError, match=r"missing \['target'\], unknown \['extra'\]"):
        LoadJob.from_json({k: v for k, v in wire.items() if k != "target"} | {"extra": 1})
    assert LoadJob.from_json({k: v for k, v in wire.items() if k != "connect_timeout"}).connect_timeout == 10.0


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_shares_add_up_to_the_job(parts):
    job = LoadJob.for_cell(CELL, target="t:1", tls_dir=None, settings=SETTINGS, repetition=0)
    shares = [job.share(i, parts) for i in range(parts)]
    assert sum(s.connections for s in shares) == job.connections
    assert sum(s.concurrency for s in shares) == job.concurrency
    assert sum(s.rate for s in shares) == pytest.approx(job.rate)
    assert len({s.seed for s in shares}) == parts  # independent arrival sequences
    assert all(s.target == job.target and s.compression == job.compression for s in shares)


def test_split_and_worker_count():
    assert split(7, 3) == [3, 2, 2] and split(2, 2) == [1, 1]
    # never more processes than connections or RPCs in flight
    assert worker_count(4, connections=2, concurrency=8) == 2
    assert worker_count(4, connections=8, concurrency=1) == 1
    assert worker_count(1, connections=8, concurrency=8) == 1


def test_reply_clock_times_the_first_reply_from_the_start_then_the_gaps(monkeypatch):
    from bench.load import workload

    ticks = iter([1_000, 1_700, 1_750, 2_050])  # the call's start, then three replies
    monkeypatch.setattr(workload.time, "monotonic_ns", lambda: next(ticks))
    clock = workload.ReplyClock()
    for _ in range(3):
        clock.reply()
    timings = clock.timings()
    assert timings.first_ns == 700
    assert timings.gaps_ns == [50, 300]
