"""The one-axis findings (client model, channel per call, event loop, options presets, payload kind, handler work,
RPC kind, stream length, RPCs in flight, connections, arrivals) on committed runs; no process is started.

Every expected number is computed here with plain pandas from the run's table (medians over successful repetitions of
cells named by their keys) and compared with what the finding carries and says. The runs:
- results/clients-2026-12-01: `grpclab run bench/specs/clients.toml` (4 repetitions x 2 s, 2026-12-01, idle 2-vCPU AMD
  EPYC KVM guest, calibration recorded);
- results/quick-2026-12-01: `make bench` (2 repetitions x 2 s, 2026-12-01, same machine, no calibration);
- results/handlers-2026-12-01: the README's handler-work sweep (ghz, 4 repetitions).
No committed run has BenchmarkService cells: that study is covered only by tests/test_findings_coverage.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.analysis import findings, results

REPO = Path(__file__).resolve().parent.parent
CLIENTS = REPO / "results" / "clients-2026-12-01"
QUICK = REPO / "results" / "quick-2026-12-01"
HANDLERS = REPO / "results" / "handlers-2026-12-01"
CPU, CLIENT_CPU, RPS, P50, P99 = (
    "server_cpu_us_per_rpc",
    "loadgen_cpu_us_per_rpc",
    "rps",
    "lat_p50_ms",
    "lat_p99_ms",
)
C1 = "sync/unary/w4/p1/1024B/text/none/tls-off/c1/n1/m1/closed/python"
C16 = "sync/unary/w4/p1/1024B/text/none/tls-off/c16/n1/m1/closed/python"
AIO16 = "aio/unary/w0/p1/1024B/text/none/tls-off/c16/n1/m1/closed/python"


@pytest.fixture(scope="module")
def clients() -> tuple[pd.DataFrame, tuple[findings.Finding, ...]]:
    return results.load(CLIENTS), findings.analyse(CLIENTS).findings


@pytest.fixture(scope="module")
def quick() -> tuple[pd.DataFrame, tuple[findings.Finding, ...]]:
    return results.load(QUICK), findings.analyse(QUICK).findings


def only(found, study: str, subject: str) -> findings.Finding:
    chosen = [f for f in found if f.study == study and f.subject == subject]
    assert len(chosen) == 1, [f"{f.study}: {f.subject}" for f in found]
    return chosen[0]


def median(df: pd.DataFrame, key: str, metric: str) -> float:
    rows = df[(df["cell_key"] == key) & ~df["failed"]]
    assert len(rows), key
    return float(rows[metric].median())


def check_pair(df: pd.DataFrame, finding: findings.Finding, first: str, second: str, metric: str) -> None:
    """The leading instance is (first, second), its medians are the table's, its ratio second / first of
    ``metric``, and the sentence quotes both cells' RPC/s and the compared metric."""
    lead = finding.instances[0]
    assert list(lead.cells.values()) == [first, second]
    assert finding.metric == metric
    for side, key in lead.cells.items():
        for m in (RPS, CPU, CLIENT_CPU, P50):
            assert lead.values[side][m] == pytest.approx(median(df, key, m), rel=1e-12)
    assert finding.ratio == pytest.approx(median(df, second, metric) / median(df, first, metric), rel=1e-12)
    for key in (first, second):
        assert f"{median(df, key, RPS):,.0f} RPC/s" in finding.sentence


def test_client_models_against_aio(clients) -> None:
    df, found = clients
    threads = only(found, "client", "sync-threads client vs aio client")
    check_pair(df, threads, C1, f"{C1}/client=sync-threads", CLIENT_CPU)
    # 64 against 93 us of client CPU per RPC at one in flight: the blocking stubs are the cheaper client
    assert threads.ratio < 1 and "sync-threads client had 1.46x less client CPU per RPC than aio client" in (
        threads.sentence
    )
    # 4 a side, ranges apart: the exact test's p = 2 / C(8, 4); but p50 near the calibrated floor: indicative
    assert "Mann-Whitney p = 0.029" in threads.sentence
    assert threads.confidence == findings.INDICATIVE
    assert findings.NEAR_FLOOR in {r.code for r in threads.reasons}
    # the 16-in-flight pair is the other instance
    assert list(threads.instances[1].cells.values()) == [C16, f"{C16}/client=sync-threads"]
    future = only(found, "client", "sync-future client vs aio client")
    check_pair(df, future, C1, f"{C1}/client=sync-future", CLIENT_CPU)
    assert future.ratio > 2  # 195 against 93 us


def test_a_channel_per_call_against_reuse(clients) -> None:
    df, found = clients
    channel = only(found, "channel", "channel per RPC vs reused channel")
    per_call = f"{C1}/channel=per-call"
    check_pair(df, channel, C1, per_call, P50)
    lead = channel.instances[0]
    added = median(df, per_call, P50) - median(df, C1, P50)
    assert lead.derived["p50_added_ms"] == pytest.approx(added)
    assert lead.derived["time_to_first_rpc_ms"] == pytest.approx(median(df, per_call, "time_to_first_rpc_ms"))
    assert f"+{added:.2f} ms per RPC" in channel.sentence
    # every client model and TLS: the other three reuse/per-call pairs
    assert len(channel.instances) == 4


def test_uvloop_against_asyncio(clients) -> None:
    df, found = clients
    loop = only(found, "event_loop", "uvloop vs asyncio")
    # both cells server-limited, no generator saturated: RPC/s is the comparison
    check_pair(df, loop, AIO16, f"{AIO16}/event_loop=uvloop", RPS)
    assert "uvloop served 1.14x the RPC/s of asyncio" in loop.sentence
    assert loop.confidence == findings.CLEAR


def test_options_presets_against_the_default(clients) -> None:
    df, found = clients
    streams = only(found, "options", "server options max-streams-1 vs server options default")
    # the default cell's generator was saturated: server CPU per RPC, not RPC/s
    check_pair(df, streams, C16, f"{C16}/server_options=max-streams-1", CPU)
    assert findings.GENERATOR_SATURATED in {r.code for r in streams.reasons}
    # keepalive is set on both ends in one cell: it differs from the default in two axes, so no one-axis pair
    assert not [f for f in found if "keepalive" in f.subject]


def test_records_against_text(clients) -> None:
    df, found = clients
    kind = only(found, "payload_kind", "records vs text")
    records = "sync/unary/w4/p1/1024B/records/none/tls-off/c16/n1/m1/closed/python"
    check_pair(df, kind, C16, records, CPU)
    big = kind.instances[1]
    text64 = "sync/unary/w4/p1/65536B/text/none/tls-off/c16/n1/m1/closed/python"
    assert list(big.cells.values()) == [text64, text64.replace("/text/", "/records/")]
    assert big.ratio == pytest.approx(median(df, text64.replace("/text/", "/records/"), CPU) / median(df, text64, CPU))


def test_handler_work_against_none() -> None:
    df, found = results.load(HANDLERS), findings.analyse(HANDLERS).findings
    base = "sync/unary/w1/p1/0B/text/none/tls-off/c64/n1/m1/closed/ghz"
    wait = only(found, "handler_work", "handlers wait 2 ms vs no handler work")
    # the wait sets the pace and no generator was saturated: RPC/s, one thread at ~2 ms per RPC
    check_pair(df, wait, base, f"{base}/handler_wait_ms=2", RPS)
    assert median(df, f"{base}/handler_wait_ms=2", RPS) < 500  # one thread, 2 ms each: at most 500 RPC/s
    cpu = only(found, "handler_work", "handlers burn 1000 us of CPU vs no handler work")
    assert cpu.instances[0].cells["handlers burn 1000 us of CPU"] == f"{base}/handler_cpu_us=1000"


def test_rpc_kinds_and_stream_length_per_message(quick) -> None:
    df, found = quick
    sync = "sync/unary/w4/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python"
    bidi = "sync/bidi/w4/p1/1024B/text/none/tls-off/c8/n1/m10/closed/python"
    kind = only(found, "rpc", "bidi vs unary")
    check_pair(df, kind, sync, bidi, CPU)
    per_message = median(df, bidi, CPU) / 10
    assert kind.instances[0].derived["server_cpu_per_message_us"] == pytest.approx(per_message)
    assert f"{per_message:,.0f} us of server CPU per message" in kind.sentence
    longer = only(found, "stream_messages", "100 messages per call vs 10 messages per call")
    bidi100 = bidi.replace("/m10/", "/m100/")
    check_pair(df, longer, bidi, bidi100, CPU)
    assert longer.instances[0].derived["server_cpu_per_message_us"] == pytest.approx(median(df, bidi100, CPU) / 100)


def test_concurrency_connections_and_arrivals(quick) -> None:
    df, found = quick
    sync = "sync/unary/w4/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python"
    one = only(found, "concurrency", "1 in flight vs 8 in flight")
    check_pair(df, one, sync, sync.replace("/c8/", "/c1/"), CPU)
    # 2 repetitions a side, no calibration in this run: apart at best indicative
    assert one.confidence in (findings.INDICATIVE, findings.INCONCLUSIVE)
    more = only(found, "connections", "4 connections vs 1 connection")
    check_pair(df, more, sync, sync.replace("/n1/", "/n4/"), CPU)
    arrivals = only(found, "arrival", "poisson arrivals vs constant arrivals")
    constant = "sync/unary/w4/p1/1024B/text/none/tls-off/c64/n1/m1/open-r2000-constant/python"
    poisson = constant.replace("constant", "poisson")
    lead = arrivals.instances[0]
    assert list(lead.cells.values()) == [constant, poisson] and arrivals.metric == P99
    assert arrivals.ratio == pytest.approx(median(df, poisson, P99) / median(df, constant, P99))
    # the open-loop cells are described at their rate, without the compared arrivals
    assert "open loop at 2,000 RPC/s," in arrivals.sentence and "(constant arrivals)" not in arrivals.sentence


# -- the options figure ---------------------------------------------------------------------------------------------


def test_the_report_draws_the_options_presets_where_a_run_has_them(tmp_path: Path) -> None:
    from bench.analysis import figures
    from bench.analysis.figures.clients import preset_label

    assert "options" in dict(figures.FIGURES)  # so the report draws it, or says why not
    drawn = figures.options(results.load(CLIENTS), results.read_manifest(CLIENTS), tmp_path)
    assert (tmp_path / drawn.file).read_bytes().startswith(b"\x89PNG")
    # the cells it compares: the default and each preset, the other axes held where the presets were measured
    assert "concurrency=16" in drawn.caption and "Hatched bars" in drawn.caption
    assert preset_label("keepalive", "keepalive") == "client: keepalive\nserver: keepalive"
    assert preset_label("default", "max-streams-1") == "server: max-streams-1"
    with pytest.raises(figures.Skip, match="no options presets"):
        figures.options(results.load(QUICK), results.read_manifest(QUICK), tmp_path)


def test_the_readme_options_text_quotes_the_committed_run(clients) -> None:
    """README, "Client models, channels and options": every number of the options paragraph is the run's median."""
    df, found = clients
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    text = " ".join(
        readme.split("<!-- options-figure:begin -->\n", 1)[1].split("<!-- options-figure:end -->")[0].split()
    )
    streams, keepalive = (
        f"{C16}/server_options=max-streams-1",
        f"{C16}/channel_options=keepalive/server_options=keepalive",
    )
    expected = [
        f"With `max-streams-1` the server did {median(df, streams, RPS):,.0f} RPC/s against "
        f"{median(df, C16, RPS):,.0f} with the defaults",
        f"p50 was {median(df, streams, P50):.3f} ms against {median(df, C16, P50):.3f} ms",
        f"p99 {median(df, streams, P99):.3f} ms against {median(df, C16, P99):.3f} ms",
        f"server CPU per RPC was {median(df, streams, CPU):.0f} us against {median(df, C16, CPU):.0f} us",
        f"Keepalive on both ends did {median(df, keepalive, RPS):,.0f} RPC/s, p50 {median(df, keepalive, P50):.3f} ms "
        f"and p99 {median(df, keepalive, P99):.3f} ms, at {median(df, keepalive, CPU):.0f} us",
    ]
    for words in expected:
        assert words in text, words
    finding = only(found, "options", "server options max-streams-1 vs server options default")
    assert (
        finding.confidence == findings.CLEAR and finding.metric == CPU and "Mann-Whitney p = 0.029" in finding.sentence
    )
    assert df[df["cell_key"] == C16]["loadgen_saturated"].any()  # "the generator was saturated in the default cell"
