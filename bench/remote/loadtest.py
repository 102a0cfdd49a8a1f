"""`grpclab loadtest SPEC --out DIR`: a spec as grpc/test-infra LoadTest manifests, one per shard of its cells.

A LoadTest (apiVersion e2etest.grpc.io/v1, the CRD in grpc/test-infra config/crd/bases) names a driver, one
server and clients; test-infra's controller runs each as a pod, servers and clients on different nodes. What
the controller gives the pods, and what these manifests rely on (test-infra podbuilder/podbuilder.go,
config/constants.go, containers/init/ready/ready.go):

- every worker pod (server and client) gets ``DRIVER_PORT=10000`` and a container port named ``driver``; the
  lab's worker reads ``$DRIVER_PORT`` (`grpclab worker`) and binds the pod's own address, ``$POD_IP``, from the
  downward API (``status.podIP``);
- the driver pod first runs the ``ready`` init container, which waits until every worker pod is ready and
  writes their addresses, ``IP:PORT`` joined by commas, servers first, to ``/var/data/qps_workers/addresses``;
  the driver's run container gets that path as ``$QPS_WORKERS_FILE``; the lab's driver reads it with
  `grpclab run SHARD_SPEC --hosts @$QPS_WORKERS_FILE` (first = the server worker, the rest clients);
- ``scenariosJSON`` becomes ``$SCENARIOS_FILE`` in the driver pod: here the shard's cells as
  ``grpc.testing.Scenarios`` (bench.remote.scenarios), so the manifest says what it runs in gRPC's terms; the
  lab's driver runs the shard's spec (``$GRPCLAB_SPEC``, TOML), which carries every axis exactly;
- every run container gets ``KILL_AFTER`` and ``POD_TIMEOUT`` (the test's timeoutSeconds).

The driver's script is deploy/driver.sh in the lab's image. When the run ends it prints the shard's run
directory to its log as a tar.gz in base64 between two marker lines (a finished pod can no longer be
``kubectl cp``-ed, but its log stays readable, and test-infra's runner saves every pod's log); :func:`collect`
(`grpclab loadtest --collect LOG`) turns such a log back into the run directory.

Cells a worker cannot run as the lab's own run does (bench.remote.drive.cell_problem), TLS cells (the
pods share no certificates) and go cells (the image has no Go) are left out with one line each.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import tarfile
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..run.executor import estimate_seconds
from ..spec import Cell, Settings, Spec, parse_spec
from ..spec.cell import AXES, DEFAULTS, applies
from . import drive, scenarios

API_VERSION = "e2etest.grpc.io/v1"
KIND = "LoadTest"
DEFAULT_IMAGE = "grpclab:latest"
# test-infra config/constants.go: DriverPort, ReadyOutputFile, ScenariosMountPath + "/scenarios.json"
DRIVER_PORT = 10000
WORKERS_FILE = "/var/data/qps_workers/addresses"
SCENARIOS_FILE = "/src/scenarios/scenarios.json"
WORKDIR = "/src/grpclab"  # where deploy/Containerfile puts the repository; the run containers start there
DRIVER_SCRIPT = "deploy/driver.sh"
# What the worker pods run: the lab's worker on the pod's address, bounded like test-infra's own worker pods.
WORKER_SCRIPT = 'exec timeout --kill-after="${KILL_AFTER}" "${POD_TIMEOUT}" grpclab worker --host "${POD_IP}"\n'
TTL_SECONDS = 86400
TIMEOUT_MARGIN_S = 300  # pod scheduling, image pull, the ready wait and the log dump, beyond the measuring
SHARD_BEGIN = "=== grpclab run directory {shard} begin (tar.gz, base64)"
SHARD_END = "=== grpclab run directory {shard} end"
_SHARD_BEGIN_RE = re.compile(r"^=== grpclab run directory (\S+) begin \(tar\.gz, base64\)$")
_NAME_RE = re.compile(r"[^a-z0-9-]+")


class LoadTestError(Exception):
    """Bad input to `grpclab loadtest` (one line naming the flag or file): exit 2."""


@dataclass(frozen=True)
class Shard:
    """One LoadTest's worth of cells: its name (also the run directory's), spec and scenarios."""

    name: str  # e.g. "quick-2-of-4"
    cells: tuple[Cell, ...]
    spec_toml: str
    scenarios_json: str


# -- the shard's spec: a TOML the driver's `grpclab run` reads ---------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a TOML number: {value!r}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string (same escapes)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _table(values: dict[str, object]) -> list[str]:
    return [f"{key} = {_toml_value(value)}" for key, value in values.items()]


def _axes(cell: Cell) -> dict[str, object]:
    """The cell's values as a spec may write them: an axis the cell ignores (the workers of an aio cell) at its
    default, since a spec refuses the fixed value normalize() gives it (workers 0); parsing fixes it again."""
    values = cell.to_dict()
    return {axis: value if applies(axis, values) else DEFAULTS[axis] for axis, value in values.items()}


def shard_spec_toml(name: str, description: str, cells: Sequence[Cell], settings: Settings) -> str:
    """A spec whose cells are exactly ``cells``: [axes] is the first cell, each other cell an [[include]] of all
    its axes. Parsed back before it is returned, so a shard never runs other cells than it names."""
    lines = [f"name = {_toml_value(name)}", f"description = {_toml_value(description)}", "", "[settings]"]
    lines += _table(asdict(settings))
    first = _axes(cells[0])
    lines += ["", "[axes]"] + _table({axis: [first[axis]] for axis in AXES})
    for cell in cells[1:]:
        lines += ["", "[[include]]"] + _table(_axes(cell))
    text = "\n".join(lines) + "\n"
    parsed = parse_spec(tomllib.loads(text), name)
    if parsed.cells != tuple(cells) or parsed.settings != settings:
        raise AssertionError(f"shard spec {name} does not parse back into its cells")  # a bug here, not bad input
    return text


# -- the manifests --------------------------------------------------------------------------------------------


def _slug(text: str, limit: int) -> str:
    return _NAME_RE.sub("-", text.lower()).strip("-")[:limit].strip("-") or "spec"


def _pod_problem(cell: Cell) -> str | None:
    """What a LoadTest's pods cannot give a cell that a worker could run (the image and the pods, not the worker)."""
    if cell.tls != "off":
        return f"tls={cell.tls}: the pods share no certificates"
    if cell.impl == "go":
        return "impl=go: the lab's image has no Go toolchain, so no grpc-go server (deploy/Containerfile)"
    return None


def shards(spec: Spec, cells: Sequence[Cell], count: int, num_clients: int = 1) -> tuple[list[Shard], list[str]]:
    """``cells`` dealt round-robin into ``count`` shards (of those a worker can run); and one line per cell left out."""
    if count < 1:
        raise LoadTestError(f"--shards: must be >= 1, got {count}")
    runnable, refused = drive.sort_out(cells, spec.settings, _pod_problem)
    left_out = [f"{cell.key()}: {problem}" for cell, problem in refused]
    if not runnable:
        raise LoadTestError(f"{spec.path or spec.name}: no cell can run on workers ({len(left_out)} left out)")
    if count > len(runnable):
        raise LoadTestError(f"--shards: {count} shards for {len(runnable)} cells a worker can run")
    out = []
    for i in range(count):
        part = tuple(runnable[i::count])
        name = f"{_slug(spec.name, 30)}-{i + 1}-of-{count}"
        source = Path(spec.path).name if spec.path else spec.name
        description = f"shard {i + 1} of {count} of {spec.name} ({source}), written by grpclab loadtest"
        document = scenarios.build(part, spec.settings, num_clients)
        spec_toml = shard_spec_toml(spec.name, description, part, spec.settings)
        out.append(Shard(name, part, spec_toml, scenarios.to_json(document.message)))
    return out, left_out


def _container(image: str, command: list[str], env: list[dict]) -> dict:
    # "main": test-infra's RunContainerName, the container whose exit is the pod's result
    return {"name": "main", "image": image, "workingDir": WORKDIR, "command": command, "env": env}


def manifest(
    shard: Shard,
    spec: Spec,
    *,
    image: str,
    num_clients: int = 1,
    pool: str | None = None,
    driver_pool: str | None = None,
) -> dict:
    """The LoadTest of one shard, as the JSON object kubectl and test-infra's runner read."""
    pod_ip = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    worker = _container(image, ["bash", "-c", WORKER_SCRIPT], [pod_ip])

    def component(name: str, pool_name: str | None) -> dict:
        part: dict = {"language": "python", "name": name}
        if pool_name:
            part["pool"] = pool_name
        return part

    driver_env = [{"name": "GRPCLAB_SHARD", "value": shard.name}, {"name": "GRPCLAB_SPEC", "value": shard.spec_toml}]
    steps = len(shard.cells) * spec.settings.repetitions
    timeout = math.ceil(estimate_seconds(steps, 1, spec.settings) * 2 + TIMEOUT_MARGIN_S)
    annotations = {"scenario": spec.name, "shard": shard.name}
    if pool:
        annotations["pool"] = pool  # test-infra's runner queues tests by this annotation (-annotation-key pool)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": f"grpclab-{shard.name}",
            "labels": {"prefix": "grpclab", "language": "python"},
            "annotations": annotations,
        },
        "spec": {
            "driver": {**component("0", driver_pool), "run": [_container(image, ["bash", DRIVER_SCRIPT], driver_env)]},
            "servers": [{**component("0", pool), "run": [worker]}],
            "clients": [{**component(str(i), pool), "run": [worker]} for i in range(num_clients)],
            "scenariosJSON": shard.scenarios_json,
            "timeoutSeconds": timeout,
            "ttlSeconds": TTL_SECONDS,
        },
    }


def write(
    spec: Spec,
    cells: Sequence[Cell],
    out: Path,
    *,
    image: str = DEFAULT_IMAGE,
    count: int = 1,
    num_clients: int = 1,
    pool: str | None = None,
    driver_pool: str | None = None,
) -> tuple[list[Path], list[str]]:
    """One LoadTest file per shard in ``out`` (``grpclab-NAME.json``); the files and the cells left out."""
    if num_clients < 1:
        raise LoadTestError(f"--clients: must be >= 1, got {num_clients}")
    if not image or any(c.isspace() for c in image):
        raise LoadTestError(f"--image: expected an image reference such as registry/grpclab:TAG, got {image!r}")
    parts, left_out = shards(spec, cells, count, num_clients)
    if out.exists() and not out.is_dir():
        raise LoadTestError(f"--out: {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in parts:
        document = manifest(shard, spec, image=image, num_clients=num_clients, pool=pool, driver_pool=driver_pool)
        path = out / f"{document['metadata']['name']}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        paths.append(path)
    return paths, left_out


def read_manifests(directory: Path) -> list[dict]:
    """The LoadTests `grpclab loadtest` wrote in ``directory``; LoadTestError naming a file that is not one."""
    if not directory.is_dir():
        raise LoadTestError(f"--local: {directory} is not a directory")
    tests = []
    for path in sorted(directory.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise LoadTestError(f"{path}: not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("kind") != KIND or document.get("apiVersion") != API_VERSION:
            raise LoadTestError(f"{path}: not a {API_VERSION} {KIND}")
        problem = _runnable_problem(document)
        if problem:
            raise LoadTestError(f"{path}: {problem}")
        tests.append(document)
    if not tests:
        raise LoadTestError(f"--local: no LoadTest (*.json) in {directory}")
    return tests


def _runnable_problem(test: dict) -> str | None:
    """What a LoadTest lacks that running its pods needs (the parts `grpclab loadtest` always writes), or None."""
    spec = test.get("spec")
    name = test.get("metadata", {}).get("name") if isinstance(test.get("metadata"), dict) else None
    if not isinstance(name, str) or not name:
        return "metadata.name: missing"
    if not isinstance(spec, dict):
        return "spec: missing"
    timeout = spec.get("timeoutSeconds")
    if not isinstance(timeout, int) or timeout < 1:
        return "spec.timeoutSeconds: expected an integer >= 1"
    parts = [("spec.driver", spec.get("driver"))]
    for role in ("servers", "clients"):
        if not isinstance(spec.get(role), list) or not spec[role]:
            return f"spec.{role}: expected a non-empty list"
        parts += [(f"spec.{role}[{i}]", part) for i, part in enumerate(spec[role])]
    for where, part in parts:
        run = part.get("run") if isinstance(part, dict) else None
        if not isinstance(run, list) or not run or not isinstance(run[0], dict):
            return f"{where}.run: expected a list of containers"
    return None


# -- results: the run directory out of the driver's log -----------------------------------------------------


def shard_block(shard: str, tar_gz: bytes) -> str:
    """The driver log's block that carries a run directory (what deploy/driver.sh prints; tests use it)."""
    body = base64.encodebytes(tar_gz).decode()
    return f"{SHARD_BEGIN.format(shard=shard)}\n{body}{SHARD_END.format(shard=shard)}\n"


def collect(log_text: str, out: Path, where: str = "log") -> list[Path]:
    """Every run directory a driver log carries, unpacked under ``out``; LoadTestError when there is none."""
    found: list[Path] = []
    lines = log_text.splitlines()
    i = 0
    while i < len(lines):
        begin = _SHARD_BEGIN_RE.match(lines[i].strip())
        i += 1
        if not begin:
            continue
        shard, body = begin.group(1), []
        while i < len(lines) and lines[i].strip() != SHARD_END.format(shard=shard):
            body.append(lines[i].strip())
            i += 1
        if i == len(lines):
            raise LoadTestError(f"{where}: the run directory {shard} is cut off (no end line)")
        found.append(_unpack(shard, "".join(body), out, where))
    if not found:
        raise LoadTestError(f"{where}: no grpclab run directory in it (is it a grpclab LoadTest driver's log?)")
    return found


def _unpack(shard: str, body: str, out: Path, where: str) -> Path:
    try:
        data = base64.b64decode(body, validate=True)
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    except (ValueError, tarfile.TarError) as exc:
        raise LoadTestError(f"{where}: the run directory {shard} is damaged ({exc})") from None
    target = out / shard
    if target.exists():
        raise LoadTestError(f"--out: {target} already exists")
    with archive:
        for member in archive.getmembers():
            if not (member.isfile() or member.isdir()) or not (
                member.name == shard or member.name.startswith(f"{shard}/")
            ):
                raise LoadTestError(f"{where}: the run directory {shard} holds {member.name!r}, not its own files")
        archive.extractall(out, filter="data")
    return target
