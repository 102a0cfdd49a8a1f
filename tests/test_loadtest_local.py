"""`grpclab loadtest --local` end to end: LoadTests generated from the quick matrix's unary cells run as
test-infra's controller runs their pods (each pod in a lab network namespace: bench.remote.fleet), the shards'
run directories come back out of the driver logs, and `grpclab merge` makes one run that report and compare read.

Slow and root (network namespaces). Two cheap cells, one shard each, 2 repetitions of 1 s windows (compare needs
two): about 15 s on 2 CPUs.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bench import cli
from bench.analysis import results
from bench.remote import loadtest
from bench.run import netns
from bench.spec import load_spec, with_settings
from bench.spec.filters import filter_cells

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(netns.privilege_problem() is not None, reason=f"pods need root: {netns.privilege_problem()}"),
]
LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")


def test_generated_loadtests_run_as_pods_and_merge_into_one_run(tmp_path: Path) -> None:
    quick = with_settings(
        load_spec("quick"), duration=1.0, warmup=0.5, repetitions=2, calibrate=False, cpu_latency_hold=False
    )
    # the baseline sync and aio unary cells of the quick matrix
    cells = filter_cells(quick.cells, "rpc=unary,loadgen=python,concurrency=8,payload_size=1024,payload_kind=text")
    cells = [c for c in cells if c.key() in {f"{impl}/unary/{w}/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python"
                                             for impl, w in (("sync", "w4"), ("aio", "w0"))}]  # fmt: skip
    assert len(cells) == 2
    manifests, out = tmp_path / "manifests", tmp_path / "results"
    paths, left_out = loadtest.write(quick, cells, manifests, count=2)
    assert len(paths) == 2 and not left_out

    assert cli.main(["loadtest", "--local", str(manifests), "--out", str(out)]) == 0

    shards = sorted(p for p in out.iterdir() if p.name != "logs")
    assert [p.name for p in shards] == ["quick-1-of-2", "quick-2-of-2"]
    for shard in shards:
        manifest = results.read_manifest(shard)
        assert manifest.placement.kind == "workers" and manifest.status == "complete"
        for worker in manifest.placement.workers:  # the pods' own addresses, in the lab's range
            assert ipaddress.ip_address(worker.address.rpartition(":")[0]) in LAB_RANGE
    # every pod's log is kept, and the workers were told to quit (they end, not time out)
    logs = sorted(p.name for p in (out / "logs").iterdir())
    assert len(logs) == 6 and all(name.endswith("-main.log") for name in logs)

    merged = tmp_path / "merged"
    assert cli.main(["merge", *map(str, shards), "--out", str(merged)]) == 0
    df = results.load(merged)
    assert sorted(set(df["cell_key"])) == sorted(c.key() for c in cells) and len(df) == 4
    assert not df["failed"].any() and (df["rps"] > 0).all() and (df["server_cpu_us_per_rpc"] > 0).all()
    assert sorted(set(df["run_id"])) == ["quick-1-of-2", "quick-2-of-2"]  # each row names the shard that measured it
    assert cli.main(["report", str(merged), "--out", str(tmp_path / "report")]) == 0
    assert cli.main(["compare", str(merged), str(merged), "--format", "json"]) == 0
