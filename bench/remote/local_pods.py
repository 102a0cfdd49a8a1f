"""`grpclab loadtest --local DIR --out RESULTS`: the LoadTests `grpclab loadtest` wrote, run on this machine as
grpc/test-infra's controller runs their pods, each pod in a network namespace of its own (bench.remote.fleet,
198.18.0.0/15), so the manifests' own commands and environment are what is tested, end to end.

For each LoadTest, one after the other (one machine), what the controller and kubelet would do:

1. a pod per server and client: its run container's command in the namespace, from the image's working
   directory (here the lab's checkout, which is what deploy/Containerfile copies), with the container's env
   (``status.podIP`` is the namespace's address) and the controller's: ``DRIVER_PORT``, ``KILL_AFTER``,
   ``POD_TIMEOUT``;
2. test-infra's ``ready`` init container: wait until every worker is ready (here its ready line; a pod's
   readiness there), then write the workers file, ``IP:PORT`` joined by commas, servers first;
3. the driver pod, with ``QPS_WORKERS_FILE``, ``SCENARIOS_FILE`` (the test's scenariosJSON) and the
   time limit; its exit is the test's result;
4. the pods are deleted (SIGTERM, then SIGKILL), as when a test ends, and the shard's run directory is taken
   from the driver's log (bench.remote.loadtest.collect), as from a cluster.

Every pod's log is kept in RESULTS/logs/. Not simulated: scheduling, images, resource limits, and any env
source other than a value and ``status.podIP`` (the manifests this lab writes use no other).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import loadtest
from .fleet import Fleet, FleetError
from .loadtest import LoadTestError

READY_TIMEOUT_S = 30.0  # a worker prints its ready line within a couple of seconds of starting
STOP_TIMEOUT_S = 10.0  # after SIGTERM, as kubelet's grace period (shortened: the lab's worker exits in < 1 s)
KILL_AFTER = "30.000000"  # test-infra's default killAfter, formatted as its podbuilder formats it ("%f")
READY_MARK = '"event": "ready"'  # `grpclab worker`'s ready line (bench.remote.worker.serve)
CHECKOUT = Path(__file__).resolve().parents[2]  # the lab's repository: the image's working directory


@dataclass
class Pod:
    name: str
    address: str
    process: subprocess.Popen
    log: Path


def _env(container: dict, pod_ip: str, controller: dict[str, str], pod_dir: Path) -> dict[str, str]:
    """What the pod's process sees: a base like an image's, the container's env, then the controller's."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(pod_dir),
        "TMPDIR": str(pod_dir),  # a pod's /tmp is its own
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    for item in container.get("env", []):
        name = item.get("name")
        field = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if "value" in item:
            env[name] = str(item["value"])
        elif field == "status.podIP":
            env[name] = pod_ip
        else:
            raise LoadTestError(f"env {name}: --local gives only values and status.podIP, not {item!r}")
    env.update(controller)
    return env


def _command(container: dict, where: str) -> list[str]:
    command = list(container.get("command") or []) + list(container.get("args") or [])
    if not command:
        raise LoadTestError(f"{where}: the run container has no command (the image's entrypoint is not simulated)")
    return command


@contextmanager
def _pods() -> Iterator[list[Pod]]:
    """The pods started inside; all of them deleted on the way out, however it is left."""
    pods: list[Pod] = []
    try:
        yield pods
    finally:
        for pod in pods:
            if pod.process.poll() is None:
                pod.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for pod in pods:
            try:
                pod.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pod.process.kill()
                pod.process.wait()


def _wait_ready(workers: Sequence[Pod]) -> None:
    """test-infra's ready init container: every worker ready, or the test fails naming the pod."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for pod in workers:
        while READY_MARK not in pod.log.read_text(errors="replace"):
            if pod.process.poll() is not None:
                raise LoadTestError(
                    f"pod {pod.name} exited {pod.process.returncode} before it was ready (log {pod.log})"
                )
            if time.monotonic() > deadline:
                raise LoadTestError(f"pod {pod.name} not ready after {READY_TIMEOUT_S:g} s (log {pod.log})")
            time.sleep(0.05)


def run_test(
    test: dict, results: Path, fleet_factory: Callable[..., AbstractContextManager[Fleet]] = Fleet
) -> tuple[int, list[Path]]:
    """One LoadTest's pods, as the controller runs them: (the driver's exit code, the run directories it printed)."""
    name = test["metadata"]["name"]
    spec = test["spec"]
    timeout = int(spec["timeoutSeconds"])
    logs = results / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    controller = {"KILL_AFTER": KILL_AFTER, "POD_TIMEOUT": str(timeout)}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grpclab-pods-")))
        fleet = stack.enter_context(fleet_factory(tag="loadtest"))
        pods = stack.enter_context(_pods())

        def start(role: str, part: dict, short: str, extra: dict[str, str]) -> Pod:
            pod_name = f"{name}-{role}-{part.get('name', '0')}"
            container = part["run"][0]
            host = fleet.host(short)
            pod_dir = tmp / pod_name
            pod_dir.mkdir()
            log = logs / f"{pod_name}-main.log"  # test-infra's runner names saved logs POD-CONTAINER.log
            env = _env(container, host.address, {**controller, **extra}, pod_dir)
            with log.open("wb") as sink:
                process = host.launch(
                    _command(container, pod_name), env=env, cwd=CHECKOUT, stdout=sink, stderr=subprocess.STDOUT
                )
            pod = Pod(pod_name, host.address, process, log)
            pods.append(pod)
            return pod

        port = {"DRIVER_PORT": str(loadtest.DRIVER_PORT)}
        workers = [start("server", part, f"s{i}", port) for i, part in enumerate(spec["servers"])]
        workers += [start("client", part, f"c{i}", port) for i, part in enumerate(spec["clients"])]
        _wait_ready(workers)
        workers_file = tmp / "qps_workers" / "addresses"
        workers_file.parent.mkdir()
        workers_file.write_text(",".join(f"{pod.address}:{loadtest.DRIVER_PORT}" for pod in workers))
        scenarios_file = tmp / "scenarios" / "scenarios.json"
        scenarios_file.parent.mkdir()
        scenarios_file.write_text(spec.get("scenariosJSON", ""))
        driver = start(
            "driver",
            spec["driver"],
            "d0",
            {"QPS_WORKERS_FILE": str(workers_file), "SCENARIOS_FILE": str(scenarios_file)},
        )
        try:
            code = driver.process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = -1  # the test's timeout: the controller marks it Errored and deletes its pods
    log_text = driver.log.read_text(errors="replace")
    try:
        found = loadtest.collect(log_text, results, where=str(driver.log))
    except LoadTestError:
        if code == 0:
            raise
        found = []
    return code, found


def main(manifests_dir: Path, results: Path) -> int:
    """`grpclab loadtest --local`: every LoadTest in ``manifests_dir``; 0 when every driver succeeded, else 1."""
    tests = loadtest.read_manifests(manifests_dir)
    if results.exists() and any(results.iterdir()):
        raise LoadTestError(f"--out: {results} exists and is not empty")
    results.mkdir(parents=True, exist_ok=True)
    failed = 0
    shard_dirs: list[Path] = []
    for test in tests:
        name = test["metadata"]["name"]
        print(f"{name}: running its pods in network namespaces", flush=True)
        try:
            code, found = run_test(test, results, Fleet)
        except FleetError as exc:  # the namespaces could not be made (not root, no setpriv...): one line
            raise LoadTestError(f"--local: {exc}") from None
        shard_dirs += found
        state = "Succeeded" if code == 0 else f"Errored (driver exit {code})"
        print(f"{name}: {state}; run directory {', '.join(map(str, found)) or 'none'}", flush=True)
        failed += code != 0
    print(f"logs of every pod: {results / 'logs'}")
    if len(shard_dirs) > 1:
        print(f"one run directory of them all: grpclab merge {' '.join(map(str, shard_dirs))} --out {results / 'run'}")
    return 1 if failed else 0
