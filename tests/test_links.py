"""The link axis and the network-namespace placement (bench.spec.link, bench.run.netns, bench.run.placement).

Fast tier: the rate grammar, the tbf parameter choice, namespace names, old runs reading with link=loopback,
the manifest's links field, the break-even arithmetic, and the one-line failure of a link cell without the
privilege. Slow tier (root; skipped without CAP_NET_ADMIN + CAP_SYS_ADMIN): a shaped link's measured
throughput against its configured rate, both generators and TLS across the link, namespaces gone after a
SIGKILLed `grpclab run`, the clear error of a run without the capabilities, and a sweep that spares a live
run's namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bench.analysis import breakeven, results
from bench.run import measure as runner
from bench.run import netns, placement
from bench.run.manifest import Manifest
from bench.spec import DEFAULTS, Cell, Settings, SpecError, parse_spec
from bench.spec.cell import LATER_AXES
from bench.spec.link import MAX_RATE_BPS, Link, payload_rate_bps

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[1]
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS, LOADGEN_CPUS = (CPUS[0],), (CPUS[-1],)
PRIVILEGED = netns.privilege_problem() is None
needs_root = pytest.mark.skipif(not PRIVILEGED, reason=f"link cells need root: {netns.privilege_problem()}")


# -- the link axis ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("loopback", None),
        ("veth", None),
        ("veth-1gbit", 10**9),
        ("veth-100mbit", 10**8),
        ("veth-10mbit", 10**7),
        ("veth-512kbit", 512_000),
        ("veth-32gbit", 32 * 10**9),
    ],
)
def test_link_values_and_their_rates(value: str, rate: int | None) -> None:
    link = Link.parse(value)
    assert link.value == value and link.rate_bps == rate
    assert link.shaped == (rate is not None)
    assert link.namespaced == (value != "loopback")


@pytest.mark.parametrize(
    "bad", ["veth-10mbps", "veth-0mbit", "veth-1.5gbit", "veth-", "veth-100", "VETH", "veth-100Mbit", "lo", "", 100]
)
def test_the_rate_grammar_refuses_with_one_line_naming_the_key(bad: object) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "x", "axes": {"link": ["veth", bad]}}, None)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("axes.link[1]: ") and "kbit|mbit|gbit" in message


def test_a_rate_above_what_tbf_carries_is_refused() -> None:
    with pytest.raises(SpecError, match=r"axes.link\[0\]: 'veth-33gbit': rate above the 32gbit"):
        parse_spec({"name": "x", "axes": {"link": ["veth-33gbit"]}}, None)
    assert MAX_RATE_BPS / 8 < 2**32  # tbf's rate field: 32-bit bytes per second


def test_link_is_a_later_axis_that_shows_in_keys_only_away_from_loopback() -> None:
    assert "link" in LATER_AXES and DEFAULTS["link"] == "loopback"
    cell = Cell(**DEFAULTS)
    assert "link" not in cell.key()
    assert replace(cell, link="veth-100mbit").key() == cell.key() + "/link=veth-100mbit"


@pytest.mark.parametrize("run", ["sample-run-v1", "sample-run"])
def test_runs_written_before_the_axis_read_as_loopback_with_their_keys(run: str) -> None:
    df = results.load(DATA / run)
    assert (df["link"] == "loopback").all()
    for _, row in df.drop_duplicates("cell_key").iterrows():
        assert Cell.from_dict(row.to_dict()).key() == row["cell_key"]  # old keys still name the same cells


def test_links_spec_expands_as_documented() -> None:
    from bench.spec import load_spec

    spec = load_spec(REPO / "bench" / "specs" / "links.toml")
    assert len(spec.cells) == 110
    text_links = {c.link for c in spec.cells if c.payload_kind == "text"}
    assert len(text_links) == 8 and {"loopback", "veth"} < text_links
    assert {c.compression for c in spec.cells} == {"none", "grpc-gzip", "app-gzip-1", "app-gzip-6", "app-gzip-9"}


# -- tbf parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [10**5, 10**6, 10**7, 10**8, 10**9, 5 * 10**9, 32 * 10**9])
def test_tbf_bucket_and_queue(rate: int) -> None:
    tbf = netns.tbf_for(rate)
    rate_bytes = rate / 8
    # the bucket holds a whole GSO packet (no software segmentation) and 2 ms at the rate (late dequeues lose
    # no tokens) ...
    assert tbf.burst_bytes >= netns.GSO_MAX and tbf.burst_bytes >= rate_bytes * 0.002 - 1
    # ... and no more than needed: a full bucket adds little to a window (what the slow test allows on top)
    assert tbf.burst_bytes <= max(netns.GSO_MAX, rate_bytes * 0.002 + 1)
    if rate >= 10**8:
        assert tbf.burst_bytes / (rate_bytes * 2.0) < 0.005  # < 0.5 % of a 2 s window
    # the queue: the bucket plus at least 100 ms at the rate and at least two 64 KiB GSO packets per direction
    assert tbf.limit_bytes - tbf.burst_bytes >= max(rate_bytes * 0.1 - 1, 256 * 1024)


def test_payload_rate_counts_tcp_ip_and_ethernet_headers() -> None:
    # 1448 bytes of payload per 1514-byte frame (TCP with timestamps, IPv4, Ethernet)
    assert payload_rate_bps(1514) == pytest.approx(1448)


# -- names, privilege, the failure without it -------------------------------------------------------


def test_names_carry_the_harness_pid_and_run_tag() -> None:
    server, loadgen = netns.names(4242, netns.run_tag("20261201-101500-links"), 7)
    assert (server, loadgen) == ("grpclab-4242-20261201_101500_links-7-srv", "grpclab-4242-20261201_101500_links-7-gen")
    assert netns.owner_pid(server) == netns.owner_pid(loadgen) == 4242
    assert netns.run_tag("a b/../c") == "a_b_.._c" and len(netns.run_tag("x" * 100)) == 40
    for foreign in ("grpclab-x-1-srv", "other-4242-run-1-srv", "grpclab-4242-run-1-srv.bak"):
        assert netns.owner_pid(foreign) is None


def test_privilege_problem_names_the_missing_capabilities(monkeypatch) -> None:
    monkeypatch.setattr(netns, "_effective_caps", lambda: 1 << netns.CAP_NET_ADMIN)
    problem = netns.privilege_problem()
    assert problem is not None and "\n" not in problem
    assert "CAP_SYS_ADMIN missing" in problem and "root" in problem and "loopback" in problem
    monkeypatch.setattr(netns, "_effective_caps", lambda: 0)
    assert "CAP_SYS_ADMIN and CAP_NET_ADMIN missing" in netns.privilege_problem()


def test_without_the_privilege_a_link_cell_fails_with_one_line_and_starts_nothing(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(netns, "privilege_problem", lambda: "network namespaces need root (CAP_NET_ADMIN missing)")
    settings = Settings(duration=1.0, warmup=0.2, server_cpus=SERVER_CPUS, loadgen_cpus=LOADGEN_CPUS)
    where = placement.for_settings(settings)
    where.check()  # loopback cells still run: the check only refuses CPUs that are not there
    ctx = runner.Context(run_id="r", settings=settings, certs_dir=tmp_path, placement=where)
    row = runner.measure(replace(Cell(**DEFAULTS), link="veth-100mbit"), 0, 0, ctx)
    assert row["failed"] and row["link"] == "veth-100mbit"
    assert row["error"] == "link=veth-100mbit: network namespaces need root (CAP_NET_ADMIN missing)"


def test_manifest_records_how_each_link_is_built_and_old_manifests_have_none(monkeypatch) -> None:
    from bench.machine import environment
    from bench.run.plan import Plan

    monkeypatch.setattr(environment, "describe", lambda: {})  # (it asks ghz its version: a process)
    spec = parse_spec({"name": "x", "axes": {"link": ["loopback", "veth", "veth-100mbit"]}}, None)
    manifest = Manifest.new(
        spec, Plan.make(spec.cells, spec.settings), None, placement.for_settings(spec.settings).describe()
    )
    assert [info.link for info in manifest.links] == ["veth", "veth-100mbit"]  # loopback is built by nobody
    shaped = manifest.links[1]
    tbf = netns.tbf_for(10**8)
    assert (shaped.rate_bps, shaped.burst_bytes, shaped.limit_bytes) == (10**8, tbf.burst_bytes, tbf.limit_bytes)
    assert shaped.server_address == "198.18.0.1/30" and shaped.loadgen_address == "198.18.0.2/30"
    again = Manifest.from_json(json.loads(manifest.dumps()))
    assert again.links == manifest.links
    old = Manifest.from_json(json.loads((DATA / "sample-run" / "manifest.json").read_text()))
    assert old.links is None and "links" not in old.to_json()


def test_the_server_certificate_names_the_namespace_address() -> None:
    from servers import certs

    assert netns.SERVER_ADDRESS in certs.SERVER_SAN


# -- break-even arithmetic ----------------------------------------------------------------------------


def _rows(points: dict[tuple[str, str], float]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"link": link, "compression": comp, "rps": rps, "failed": False} for (link, comp), rps in points.items()]
    )


def test_measured_break_even_interpolates_where_the_ratio_crosses_one() -> None:
    rows = _rows(
        {
            ("veth-100mbit", "none"): 100.0, ("veth-100mbit", "app-gzip-1"): 400.0,
            ("veth-1gbit", "none"): 1000.0, ("veth-1gbit", "app-gzip-1"): 1000.0 / 4,
            ("veth", "none"): 3000.0, ("veth", "app-gzip-1"): 500.0,
        }
    )  # fmt: skip
    found = breakeven.measured(rows)
    assert found.bracket == (1e8, 1e9)
    # ratio 4 at 100 Mbit/s, 1/4 at 1 Gbit/s: the log ratio crosses zero half way on the log rate axis
    assert found.rate_bps == pytest.approx(10**8.5)
    assert breakeven.measured(_rows({("veth-1gbit", "none"): 1.0, ("veth-1gbit", "app-gzip-1"): 2.0})).rate_bps is None
    # a 1 % "win" on a slow link is noise, not a crossing (random payloads: gzip saves nothing)
    noise = _rows(
        {
            ("veth-200mbit", "none"): 100.0, ("veth-200mbit", "app-gzip-1"): 101.0,
            ("veth-1gbit", "none"): 500.0, ("veth-1gbit", "app-gzip-1"): 200.0,
        }
    )  # fmt: skip
    found = breakeven.measured(noise)
    assert found.rate_bps is None and "never beats none by more than 5%" in found.verdict


def test_predicted_break_even_from_loopback_cpu_and_bytes() -> None:
    def row(comp: str, server_us: float, loadgen_us: float, tx: float, rx: float) -> dict:
        return {
            "compression": comp, "failed": False, "server_cpus": "0", "loadgen_cpus": "1",
            "server_cpu_us_per_rpc": server_us, "loadgen_cpu_us_per_rpc": loadgen_us,
            "wire_tx_bytes_per_rpc": tx, "wire_rx_bytes_per_rpc": rx,
        }  # fmt: skip

    loopback = pd.DataFrame([row("none", 200, 150, 65_600, 65_500), row("app-gzip-1", 450, 500, 15_200, 15_100)])
    got = breakeven.predicted(loopback)
    assert got.cpu_limit_rps["app-gzip-1"] == pytest.approx(2000)  # the generator's 500 us is the limit
    # none's link limit reaches 2000 RPC/s when the payload rate carries 2000 x 65,600 B/s
    assert got.rate_bps == pytest.approx(2000 * 65_600 * 8 / payload_rate_bps(1.0))
    assert breakeven.serial_mbit(100_000, 500) == pytest.approx(1600)
    incompressible = pd.DataFrame([row("none", 200, 150, 655_900, 500), row("app-gzip-1", 450, 500, 655_200, 500)])
    assert breakeven.predicted(incompressible).rate_bps is None  # 0.1 % fewer bytes: never pays


# -- slow: the real thing (root) ----------------------------------------------------------------------


def _settings(**kw) -> Settings:
    base = dict(duration=2.0, warmup=1.0, repetitions=1, cell_timeout=40.0)
    return Settings(**{**base, **kw}, server_cpus=SERVER_CPUS, loadgen_cpus=LOADGEN_CPUS)


def _measure(cell: Cell, tls_dir: Path, **settings) -> dict:
    s = _settings(**settings)
    row = runner.measure(cell, 0, 0, runner.Context("links-test", s, tls_dir, placement.for_settings(s, "links-test")))
    assert not row["failed"], row["error"]
    return row


def _own_namespaces() -> list[str]:
    return [n for n in netns.lab_namespaces() if netns.owner_pid(n) == os.getpid()]


@pytest.mark.slow
@needs_root
@pytest.mark.parametrize(("link", "duration"), [("veth-20mbit", 6.0), ("veth-200mbit", 2.0)])
def test_a_shaped_link_carries_its_rate_and_no_more(link: str, duration: float, lab_certs) -> None:
    cell = replace(Cell(**DEFAULTS), payload_size=65536, link=link)
    row = _measure(cell, lab_certs.dir, duration=duration)
    rate = Link.parse(link).rate_bps
    payload_rate = payload_rate_bps(rate)  # what the rate leaves for TCP payload in full-size segments
    busier = max(row["wire_tx_bytes_per_rpc"], row["wire_rx_bytes_per_rpc"])
    for direction in ("wire_tx_bytes_per_rpc", "wire_rx_bytes_per_rpc"):
        measured_bps = row[direction] * row["rps"] * 8
        assert measured_bps <= payload_rate * 1.03, (direction, measured_bps, payload_rate)
    # link-bound: RPC/s is the link's payload rate over the bytes per RPC of the busier direction
    expected_rps = payload_rate / (8 * busier)
    # the RPCs completed inside a window are uncertain by up to those in flight at its edges: at 20 Mbit (~37 RPC/s,
    # 8 in flight) that alone is several per cent, so the slow link gets the longer window and the tolerance says so
    tolerance = 0.05 + cell.concurrency / (expected_rps * duration)
    assert row["rps"] == pytest.approx(expected_rps, rel=tolerance), (row["rps"], expected_rps, tolerance)
    assert not row["server_saturated"]  # the link, not the server, was the limit
    assert _own_namespaces() == []  # the cell's namespaces are gone after it


@pytest.mark.slow
@needs_root
@pytest.mark.parametrize("loadgen", ["python", "ghz"])
def test_both_generators_and_tls_work_across_the_link(loadgen: str, lab_certs) -> None:
    if loadgen == "ghz":
        from bench.load.ghz import find_ghz

        if find_ghz() is None:
            pytest.skip("ghz not installed (make ghz)")
    cell = replace(Cell(**DEFAULTS), payload_size=1024, tls="on", loadgen=loadgen, link="veth")
    row = _measure(cell, lab_certs.dir, duration=1.0, warmup=0.5)
    assert row["rpcs_ok"] > 0 and row["errors"] == 0
    assert row["wire_bytes_per_rpc"] > 2 * 1024  # the counters were read in the server's namespace


@pytest.mark.slow
def test_sock_diag_reads_what_ss_reads(server) -> None:
    """The in-process counters agree with ss's for the same sockets (an idle connection: nothing moves)."""
    import grpc

    if shutil.which("ss") is None:
        pytest.skip("ss not installed")
    from bench.run import sampling

    started = server("--impl", "sync")
    channel = grpc.insecure_channel(started.target)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
        time.sleep(0.3)  # let the connection's handshake and settings frames settle
        ours = sampling.tcp_bytes(started.port)
        out = subprocess.run(
            ["ss", "-tinH", "state", "established", f"( sport = :{started.port} )"], capture_output=True, text=True
        ).stdout
        import re

        acked = sum(int(v) for v in re.findall(r"bytes_acked:(\d+)", out))
        received = sum(int(v) for v in re.findall(r"bytes_received:(\d+)", out))
        assert ours == (acked, received) and acked > 0
    finally:
        channel.close()


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _spec(tmp_path: Path, links: list[str], duration: float = 1.0) -> Path:
    spec = tmp_path / "links.toml"
    spec.write_text(
        f'name = "links-test"\n[settings]\nduration = {duration}\nwarmup = 0.2\nrepetitions = 1\ncalibrate = false\n'
        f"server_cpus = [{SERVER_CPUS[0]}]\nloadgen_cpus = [{LOADGEN_CPUS[0]}]\n"
        f"[axes]\nlink = {json.dumps(links)}\n"
    )
    return spec


@pytest.mark.slow
@needs_root
def test_namespaces_are_gone_after_a_sigkilled_run(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ["veth-100mbit"], duration=20.0)
    run = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", str(spec), "--out", str(tmp_path / "run")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        assert _wait(lambda: any(netns.owner_pid(n) == run.pid for n in netns.lab_namespaces()), 30), "no namespaces"
        assert _wait(lambda: (tmp_path / "run" / "manifest.json").exists(), 5)
        run.send_signal(signal.SIGKILL)
        run.wait()
        # the reaper notices the harness is gone and removes its namespaces; the next run's sweep is not needed
        assert _wait(lambda: not any(netns.owner_pid(n) == run.pid for n in netns.lab_namespaces()), 10)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        netns.remove_of(run.pid)


@pytest.mark.slow
@needs_root
def test_without_capabilities_link_cells_fail_with_one_line_and_loopback_cells_run(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not installed")
    spec = _spec(tmp_path, ["loopback", "veth-100mbit"])
    # root without CAP_NET_ADMIN and CAP_SYS_ADMIN: what a container or an unprivileged user has
    drop = [setpriv, "--bounding-set=-net_admin,-sys_admin", "--inh-caps=-net_admin,-sys_admin"]
    out = subprocess.run(
        [*drop, sys.executable, "-m", "bench.cli", "run", str(spec), "--out", str(tmp_path / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "warning: 1 cells with link != loopback will fail (network namespaces need root" in out.stdout
    df = results.load(tmp_path / "run").set_index("link")
    assert not df.loc["loopback", "failed"] and df.loc["loopback", "rps"] > 0
    assert df.loc["loopback", "wire_bytes_per_rpc"] > 0  # sock_diag needs no privilege in its own namespace
    assert df.loc["veth-100mbit", "failed"]
    assert df.loc["veth-100mbit", "error"] == (
        "link=veth-100mbit: network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN missing in this process); "
        "run as root, or measure link=loopback"
    )


@pytest.mark.slow
@needs_root
def test_sweep_removes_dead_runs_namespaces_and_spares_live_ones() -> None:
    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid is free
    made = [*netns.names(live.pid, "sweeptest", 1), *netns.names(dead.pid, "sweeptest", 1)]
    try:
        for name in made:
            netns.create(name)
        removed = netns.sweep()
        assert sorted(removed) == sorted(made[2:])
        remaining = netns.lab_namespaces()
        assert made[0] in remaining and made[1] in remaining
        assert made[2] not in remaining and made[3] not in remaining
    finally:
        live.kill()
        live.wait()
        for name in made:
            netns.remove(name)
