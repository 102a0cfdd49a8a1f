"""`grpclab scenarios` and `grpclab loadtest`: gRPC's Scenarios JSON and grpc/test-infra LoadTest manifests of a
spec (bench.remote.scenarios, bench.remote.loadtest), the driver's log carrying the run directory back
(loadtest.collect), and `grpclab loadtest --local` (bench.remote.local_pods) up to starting processes.

Fast: what the files say, checked against what test-infra's CRD requires and what its controller gives the
pods (grpc/test-infra config/crd/bases/e2etest.grpc.io_loadtests.yaml, podbuilder/podbuilder.go,
containers/init/ready/ready.go). The end-to-end run is tests/test_loadtest_local.py (slow, root).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import tomllib
from pathlib import Path

import pytest
from google.protobuf import json_format

from bench import cli
from bench.remote import configs, loadtest, local_pods, scenarios
from bench.spec import DEFAULTS, load_spec, parse_spec
from bench.spec.cell import normalize
from bench.spec.filters import filter_cells
from protos.grpc.testing import control_pb2

ROOT = Path(__file__).resolve().parent.parent
QUICK = load_spec("quick")
QUICK_UNARY = filter_cells(QUICK.cells, "rpc=unary")
SAMPLE_RUN = Path(__file__).parent / "data" / "sample-run"
# What test-infra's CRD requires (openAPIV3Schema): spec.timeoutSeconds and spec.ttlSeconds (minimum 1); driver,
# each server and each client: language and run; each run container: name.
CRD_SPEC_REQUIRED = ("timeoutSeconds", "ttlSeconds")
CRD_COMPONENT_REQUIRED = ("language", "run")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# The properties the CRD's schema knows (a key outside them is a typo the API server would prune or refuse).
CRD_SPEC_KEYS = {"clients", "driver", "results", "scenariosJSON", "servers", "timeoutSeconds", "ttlSeconds"}
CRD_COMPONENT_KEYS = {"build", "clone", "language", "metricsPort", "name", "pool", "run"}  # driver: no metricsPort
CRD_CONTAINER_KEYS = {
    "args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle", "livenessProbe", "name", "ports",
    "readinessProbe", "resources", "securityContext", "startupProbe", "stdin", "stdinOnce", "terminationMessagePath",
    "terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts", "workingDir",
}  # fmt: skip
CRD_ENV_KEYS = {"name", "value", "valueFrom"}


# -- grpclab scenarios ---------------------------------------------------------------------------------------------


def test_the_quick_matrix_as_scenarios_parses_back_into_grpcs_protos() -> None:
    document = scenarios.build(QUICK.cells, QUICK.settings, num_clients=2)
    text = scenarios.to_json(document.message)
    parsed = json_format.Parse(text, control_pb2.Scenarios())  # the upstream message, nothing unknown
    assert parsed == document.message
    assert [s.name for s in parsed.scenarios] == [cell.key() for cell in document.cells]
    assert len(document.cells) + len(document.left_out) == len(QUICK.cells)
    for scenario, cell in zip(parsed.scenarios, document.cells, strict=True):
        assert (scenario.num_servers, scenario.num_clients) == (1, 2)
        assert (scenario.warmup_seconds, scenario.benchmark_seconds) == (1, 2)  # 0.5 s rounded up, 2 s
        assert scenario.server_config == configs.server_config(cell, QUICK.settings)
        assert scenario.client_config == configs.client_config(cell, QUICK.settings)
        assert not scenario.client_config.server_targets  # a driver fills them from its workers
    # Written as upstream's files are: .proto field names and enum names, zero values included.
    first = json.loads(text)["scenarios"][0]
    assert first["server_config"]["server_type"] == "SYNC_SERVER" and first["client_config"]["rpc_type"] == "UNARY"
    assert document.notes[0] == "settings.warmup 0.5 s is 1 s in the Scenarios (whole seconds)"
    # sync bidi cells with fewer threads than streams: fine for the lab's client, not for one that never ends them
    starved = [c for c in document.cells if (c.rpc, c.impl) == ("bidi", "sync") and c.workers < c.concurrency]
    assert starved and len(document.notes) == 1 + len(starved)
    for note, cell in zip(document.notes[1:], starved, strict=True):
        assert note.startswith(f"{cell.key()}: with a client worker that ignores messages_per_stream (grpc-go's), ")
        assert f"{cell.concurrency - cell.workers} of the {cell.concurrency} would never get a reply" in note


def test_cells_a_worker_would_run_differently_are_left_out_each_named() -> None:
    document = scenarios.build(QUICK.cells, QUICK.settings)
    why = dict(line.split(": ", 1) for line in document.left_out)
    kept = {cell.key() for cell in document.cells}
    for cell in QUICK.cells:
        if cell.loadgen == "ghz":
            assert "loadgen=ghz" in why[cell.key()]
        elif cell.handler_wait_ms or cell.handler_cpu_us or cell.handler_block_ms:
            assert "handler_" in why[cell.key()]
        elif cell.event_loop == "uvloop":
            assert "event_loop=uvloop" in why[cell.key()]
        elif cell.client != "aio" or cell.channel != "reuse":
            assert cell.key() in why
        elif cell.payload_kind == "records":  # the worker refuses records payloads (servers.payloads.KIND_TO_PROTO)
            assert "'records'" in why[cell.key()]
        else:
            assert cell.key() in kept
    # each kept cell's configs are ones the lab's worker runs
    for scenario in document.message.scenarios:
        configs.server_plan(scenario.server_config, certs_dir=Path("/certs"), available={0, 1})
        client = control_pb2.ClientConfig()
        client.CopyFrom(scenario.client_config)
        client.server_targets.append("127.0.0.1:1")
        configs.client_plan(client, certs_dir=Path("/certs"), available={0, 1})


def test_grpclab_scenarios_writes_the_file_and_names_each_cell_left_out(tmp_path: Path, capsys) -> None:
    out = tmp_path / "quick.json"
    assert cli.main(["scenarios", "quick", "--filter", "rpc=unary", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    parsed = scenarios.from_json(out.read_text())
    assert len(parsed.scenarios) == len(QUICK_UNARY) - err.count("left out ")
    assert "left out sync/unary/w4/p1/1024B/text/none/tls-off/c8/n1/m1/closed/ghz: loadgen=ghz" in err


def test_grpclab_scenarios_with_no_runnable_cell_is_one_line_exit_2(capsys) -> None:
    assert cli.main(["scenarios", "quick", "--filter", "loadgen=ghz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("grpclab scenarios: error: no cell can run on a worker")
    assert "Traceback" not in "".join(err)


# -- grpclab loadtest: the manifests ---------------------------------------------------------------------------


def _write(tmp_path: Path, shards: int = 3, clients: int = 2) -> tuple[list[dict], list[str]]:
    paths, left_out = loadtest.write(
        QUICK, QUICK_UNARY, tmp_path, image="registry.example/grpclab:1", count=shards, num_clients=clients,
        pool="bench", driver_pool="drivers",
    )  # fmt: skip
    return [json.loads(p.read_text()) for p in paths], left_out


def test_a_loadtest_has_what_test_infras_crd_requires_one_per_shard(tmp_path: Path) -> None:
    tests, _ = _write(tmp_path, shards=3, clients=2)
    assert len(tests) == 3
    assert loadtest.read_manifests(tmp_path) == tests
    for test in tests:
        assert (test["apiVersion"], test["kind"]) == ("e2etest.grpc.io/v1", "LoadTest")
        name = test["metadata"]["name"]
        # pods are named TEST-ROLE-NAME: keep them valid DNS labels
        assert DNS_LABEL.fullmatch(name) and len(f"{name}-client-1") <= 63
        assert test["metadata"]["annotations"]["pool"] == "bench"  # the runner's queue
        spec = test["spec"]
        assert all(isinstance(spec[key], int) and spec[key] >= 1 for key in CRD_SPEC_REQUIRED)
        components = [spec["driver"], *spec["servers"], *spec["clients"]]
        assert len(spec["servers"]) == 1 and len(spec["clients"]) == 2
        assert len({c["name"] for c in spec["clients"]}) == 2
        assert set(spec) <= CRD_SPEC_KEYS and set(spec["driver"]) <= CRD_COMPONENT_KEYS - {"metricsPort"}
        for component in components:
            assert all(component.get(key) for key in CRD_COMPONENT_REQUIRED)
            assert set(component) <= CRD_COMPONENT_KEYS
            for container in component["run"]:
                assert set(container) <= CRD_CONTAINER_KEYS
                assert all(set(item) <= CRD_ENV_KEYS and item["name"] for item in container["env"])
            main = component["run"][0]
            assert main["name"] == "main" and main["image"] == "registry.example/grpclab:1"
            assert main["workingDir"] == loadtest.WORKDIR
        assert spec["driver"]["pool"] == "drivers" and spec["servers"][0]["pool"] == "bench"


def test_worker_pods_run_grpclab_worker_on_the_controllers_port_and_the_pods_address(tmp_path: Path) -> None:
    tests, _ = _write(tmp_path, shards=1, clients=1)
    for worker in (tests[0]["spec"]["servers"][0], tests[0]["spec"]["clients"][0]):
        main = worker["run"][0]
        script = main["command"][-1]
        assert main["command"][:2] == ["bash", "-c"] and "grpclab worker" in script
        # the port is $DRIVER_PORT, which the controller sets (the worker reads it); the address is the pod's
        assert "--driver-port" not in script and '--host "${POD_IP}"' in script
        assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in main["env"]
        assert 'timeout --kill-after="${KILL_AFTER}" "${POD_TIMEOUT}"' in script  # as test-infra's own workers


def test_the_driver_runs_the_shards_spec_over_the_workers_file_and_prints_the_run_directory(tmp_path: Path) -> None:
    tests, left_out = _write(tmp_path, shards=3)
    runnable = [c for c in QUICK_UNARY if not any(line.startswith(f"{c.key()}: ") for line in left_out)]
    seen: list = []
    for test in tests:
        main = test["spec"]["driver"]["run"][0]
        assert main["command"] == ["bash", loadtest.DRIVER_SCRIPT]
        env = {item["name"]: item["value"] for item in main["env"]}
        shard_spec = parse_spec(tomllib.loads(env["GRPCLAB_SPEC"]), "shard")
        assert shard_spec.settings == QUICK.settings and shard_spec.name == QUICK.name
        names = [s.name for s in scenarios.from_json(test["spec"]["scenariosJSON"]).scenarios]
        assert names == [cell.key() for cell in shard_spec.cells]  # scenariosJSON says what the shard runs
        assert env["GRPCLAB_SHARD"] == test["metadata"]["annotations"]["shard"]
        seen += shard_spec.cells
    assert sorted(c.key() for c in seen) == sorted(c.key() for c in runnable)  # a partition of the runnable cells
    script = (ROOT / loadtest.DRIVER_SCRIPT).read_text()
    assert 'grpclab run "$work/shard.toml" --hosts "@$QPS_WORKERS_FILE" --out "$work/$GRPCLAB_SHARD"' in script
    assert loadtest.SHARD_BEGIN.format(shard="$GRPCLAB_SHARD") in script
    assert loadtest.SHARD_END.format(shard="$GRPCLAB_SHARD") in script


def test_tls_cells_and_cells_a_worker_cannot_run_are_left_out(tmp_path: Path) -> None:
    tls = filter_cells(QUICK.cells, "tls=on|mtls")
    assert tls
    _, left_out = loadtest.write(QUICK, QUICK.cells, tmp_path)
    why = dict(line.split(": ", 1) for line in left_out)
    assert all(why[cell.key()].startswith(f"tls={cell.tls}:") for cell in tls)
    assert all(c.key() in why for c in filter_cells(QUICK.cells, "impl=go"))
    go = normalize({**DEFAULTS, "impl": "go", "payload_size": 1024})
    _, left_out = loadtest.write(QUICK, [go, QUICK.cells[0]], tmp_path / "go")
    assert left_out == [
        f"{go.key()}: impl=go: the lab's image has no Go toolchain, so no grpc-go server (deploy/Containerfile)"
    ]
    assert all("loadgen=ghz" in why[c.key()] for c in filter_cells(QUICK.cells, "loadgen=ghz"))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["loadtest", "quick", "--out", "{tmp}", "--shards", "999"], "--shards: 999 shards for"),
        (["loadtest", "quick", "--out", "{tmp}", "--shards", "0"], "--shards: must be >= 1"),
        (["loadtest", "quick", "--out", "{tmp}", "--clients", "0"], "--clients: must be >= 1"),
        (["loadtest", "quick", "--out", "{tmp}", "--image", "a b"], "--image: expected"),
        (["loadtest", "quick"], "--out: required"),
        (["loadtest", "--out", "{tmp}"], "give one of SPEC"),
        (["loadtest", "nosuchspec", "--out", "{tmp}"], "spec file not found: nosuchspec"),
        (["loadtest", "--local", "{tmp}/none", "--out", "{tmp}/r"], "--local: {tmp}/none is not a directory"),
        (["loadtest", "--collect", "{tmp}/none.log", "--out", "{tmp}/r"], "--collect: {tmp}/none.log"),
        (["loadtest", "--local", "{tmp}/broken", "--out", "{tmp}/r"], "{tmp}/broken/t.json: spec.clients: expected"),
    ],
)
def test_bad_loadtest_input_is_one_line_exit_2(tmp_path: Path, capsys, argv: list[str], needle: str) -> None:
    (tmp_path / "broken").mkdir()
    test = {"apiVersion": loadtest.API_VERSION, "kind": loadtest.KIND, "metadata": {"name": "t"}}
    test["spec"] = {"timeoutSeconds": 60, "driver": {"run": [{}]}, "servers": [{"run": [{}]}], "clients": []}
    (tmp_path / "broken" / "t.json").write_text(json.dumps(test))
    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle.format(tmp=tmp_path) in err, err


# -- results back: the run directory in the driver's log -------------------------------------------------------


def _tar_gz(source: Path, name: str, extra: tuple[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(source, arcname=name)
        if extra is not None:
            info = tarfile.TarInfo(extra[0])
            info.size = len(extra[1])
            archive.addfile(info, io.BytesIO(extra[1]))
    return buffer.getvalue()


def test_collect_unpacks_the_run_directory_a_driver_log_carries(tmp_path: Path) -> None:
    log = "grpclab run output\n" + loadtest.shard_block("quick-1-of-2", _tar_gz(SAMPLE_RUN, "quick-1-of-2")) + "bye\n"
    (found,) = loadtest.collect(log, tmp_path / "out")
    assert found == tmp_path / "out" / "quick-1-of-2"
    for path in SAMPLE_RUN.rglob("*"):
        if path.is_file():
            assert (found / path.relative_to(SAMPLE_RUN)).read_bytes() == path.read_bytes()
    # the same through the command line, from a saved log, as after `kubectl logs POD -c main > LOG`
    saved = tmp_path / "driver.log"
    saved.write_text(log)
    assert cli.main(["loadtest", "--collect", str(saved), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "quick-1-of-2" / "manifest.json").read_bytes() == (
        SAMPLE_RUN / "manifest.json"
    ).read_bytes()


def test_collect_refuses_a_cut_damaged_or_foreign_run_directory(tmp_path: Path) -> None:
    block = loadtest.shard_block("s", _tar_gz(SAMPLE_RUN, "s"))
    with pytest.raises(loadtest.LoadTestError, match="cut off"):
        loadtest.collect(block.rsplit("===", 1)[0], tmp_path / "a")
    with pytest.raises(loadtest.LoadTestError, match="damaged"):
        loadtest.collect(block.replace(block.splitlines()[1], "not base64 at all!"), tmp_path / "b")
    foreign = loadtest.shard_block("s", _tar_gz(SAMPLE_RUN, "s", ("../escape", b"x")))
    with pytest.raises(loadtest.LoadTestError, match="not its own files"):
        loadtest.collect(foreign, tmp_path / "c")
    with pytest.raises(loadtest.LoadTestError, match="no grpclab run directory"):
        loadtest.collect("just a log\n", tmp_path / "d")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*escape*"))


# -- --local: the pods' environment, as the controller gives it --------------------------------------------------


def test_local_pods_get_the_containers_env_the_pods_address_and_the_controllers(tmp_path: Path) -> None:
    tests, _ = _write(tmp_path / "m", shards=1, clients=1)
    worker = tests[0]["spec"]["servers"][0]["run"][0]
    env = local_pods._env(worker, "198.18.1.2", {"DRIVER_PORT": "10000", "POD_TIMEOUT": "60"}, tmp_path)
    assert (env["POD_IP"], env["DRIVER_PORT"], env["POD_TIMEOUT"], env["TMPDIR"]) == (
        "198.18.1.2", "10000", "60", str(tmp_path),
    )  # fmt: skip
    assert env["PATH"].split(":")[0] == str(Path(local_pods.sys.executable).parent)  # this lab's grpclab first
    with pytest.raises(loadtest.LoadTestError, match="env SECRET"):
        local_pods._env({"env": [{"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "x"}}}]}, "", {}, tmp_path)
    assert local_pods._command(worker, "pod") == worker["command"]


class _Process:
    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode

    def poll(self) -> int | None:
        return self.returncode


def test_local_ready_wait_is_the_workers_ready_line_and_a_dead_worker_fails_naming_its_pod(tmp_path: Path) -> None:
    ready, dead = tmp_path / "ready.log", tmp_path / "dead.log"
    ready.write_text('{"event": "ready", "worker": "grpclab", "host": "198.18.1.2", "driver_port": 10000}\n')
    dead.write_text("grpclab worker: error: --host: cannot bind\n")
    local_pods._wait_ready([local_pods.Pod("t-server-0", "198.18.1.2", _Process(None), ready)])
    with pytest.raises(loadtest.LoadTestError, match=r"pod t-client-0 exited 2 before it was ready \(log .*dead.log\)"):
        local_pods._wait_ready([local_pods.Pod("t-client-0", "198.18.1.3", _Process(2), dead)])
