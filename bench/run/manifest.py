"""A run's manifest.json: what was measured, how, where and on what. Read and written only here.

The file carries a format version (``schema``). This code writes ``grpclab.run/2`` and reads /1 and /2:
``upgrade`` turns an older document into the current one before it is checked, so runs written
before a change still load. What changed from /1 to /2: ``pinning`` became ``placement`` (with the
placement's ``kind``), and the counts ``steps`` and ``cells``, derived from the plan, are no longer
stored.

Every field the code reads is typed. A field that a later feature adds (the machine's system facts, the
CPU-latency hold, a calibration floor and noise, network links and hosts) is added here as an
optional typed field or sub-dataclass with a default, so older manifests read as "not recorded";
a new format version is only needed when the meaning of an existing field changes. Keys this code
does not know are refused with a line naming them (a file written by a newer grpclab, or not by
grpclab at all), never silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..machine.cpu_latency import HoldState
from ..machine.system import SystemFacts
from ..spec import SETTINGS_KEYS, Settings, Spec
from .calibration import Calibration
from .plan import Plan

FORMAT = "grpclab.run/2"
FORMAT_1 = "grpclab.run/1"
MANIFEST = "manifest.json"
# Settings a manifest may lack (written before they existed), with the value that says what such a run did.
LATER_SETTINGS: dict[str, object] = {"cpu_latency_hold": False, "calibrate": False}


class ResultsError(Exception):
    """A missing, corrupt or foreign results file (the message names it)."""


@dataclass(frozen=True)
class GitState:
    commit: str | None = None
    dirty: bool | None = None  # uncommitted changes to tracked files


@dataclass(frozen=True)
class Environment:
    """The machine and software a run was measured on (bench.machine.environment.describe())."""

    cpu_model: str | None = None
    cores: int | None = None
    cpus_available: tuple[int, ...] = ()
    memory_gib: float | None = None
    kernel: str | None = None
    os: str | None = None
    python_executable: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)  # package -> version (python, grpcio, ...)
    git: GitState = GitState()
    ghz: str | None = None  # ghz's version, None: not installed
    # the protobuf runtime that encodes and decodes messages: "upb", "cpp" or "python" (None: not recorded)
    protobuf_runtime: str | None = None


@dataclass(frozen=True)
class WorkerInfo:
    """One gRPC benchmark worker a driven run used (bench.remote.drive), as the run found it when it started."""

    address: str  # HOST:PORT of its driver port
    role: str  # "server" | "client"
    kind: str  # "grpclab" (answers grpclab.WorkerFacts) | "foreign" (another language's worker, e.g. grpc-go's)
    cores: int | None = None  # its CoreCount answer
    system: SystemFacts | None = None  # its `grpclab system` facts for the run's CPUs; None: see note
    versions: dict[str, str] | None = None  # its python, grpcio, protobuf... (as Environment.versions); None: unknown
    note: str | None = None  # why there are no facts (a foreign worker, or the question failed)

    def to_json(self) -> dict:
        return {**asdict(self), "system": self.system.to_json() if self.system is not None else None}

    @classmethod
    def from_json(cls, data: dict) -> WorkerInfo:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown keys {unknown}")
        facts = data.get("system")
        return cls(**{**data, "system": SystemFacts.from_json(facts) if facts is not None else None})


@dataclass(frozen=True)
class PlacementInfo:
    """Where a run's servers and generators ran (bench.run.placement)."""

    kind: str  # "local" | "workers" (driven over gRPC benchmark workers, bench.remote.drive)
    server_cpus: tuple[int, ...]  # "workers": the core_list each server worker is asked to pin to
    loadgen_cpus: tuple[int, ...]
    workers: tuple[WorkerInfo, ...] | None = None  # "workers": the server worker first, then the clients

    def to_json(self) -> dict:
        data = {"kind": self.kind, "server_cpus": self.server_cpus, "loadgen_cpus": self.loadgen_cpus}
        if self.workers is not None:
            data["workers"] = [worker.to_json() for worker in self.workers]
        return data


@dataclass(frozen=True)
class LinkInfo:
    """How one value of the ``link`` axis was built (bench.run.netns): namespaces, addresses, qdisc."""

    link: str  # the axis value, e.g. "veth-100mbit"
    namespaces: str  # how the per-cell namespaces are named
    server_address: str  # in the server's namespace, e.g. "198.18.0.1/30"
    loadgen_address: str  # in the generators' namespace
    mtu: int
    qdisc: str  # what shapes it, e.g. "tbf on both veth ends"
    rate_bps: int | None = None  # tbf rate, bit/s of Ethernet frames (None: not shaped)
    burst_bytes: int | None = None  # tbf bucket
    limit_bytes: int | None = None  # tbf queue


@dataclass(frozen=True)
class RegressInfo:
    """One side of a `grpclab regress` run."""

    side: str  # "base" | "head"
    ref: str
    commit: str | None
    base_ref: str
    base_commit: str
    server_code: str
    harness: str
    server_environment: str
    # The adaptive gate (bench.gate.adaptive); None in runs written before it: a fixed number of repetitions.
    budget_s: float | None = None  # measuring-time budget
    max_repetitions: int | None = None  # per side and cell
    rounds: int | None = None  # rounds measured (the plan holds every step of all of them)
    stop: str | None = None  # why it stopped measuring: powered, budget, max-repetitions, no-usable-data


@dataclass(frozen=True)
class Injection:
    baseline_us_per_rpc: float  # calibrated median server CPU per RPC
    inject_us: int  # GRPCLAB_INJECT_CPU_US the B series ran with


@dataclass(frozen=True)
class GateStudyInfo:
    """One series of a gate study recording (bench.gate.study)."""

    series: str  # "A" | "A2" | "B"
    injection: dict[str, Injection] | None = None  # cell key -> injection (series B only)


@dataclass(frozen=True)
class ShardInfo:
    """One run directory that `grpclab merge` joined into this one (bench.run.merge)."""

    path: str  # the shard's run directory, as given to merge
    spec_name: str
    started_at: str
    ended_at: str | None
    status: str
    steps: int  # repetitions planned in the shard
    rows: int  # repetitions it measured (cell files merged)
    placement: str  # the shard's placement kind
    git_commit: str | None


@dataclass(frozen=True)
class MergeInfo:
    """This run directory is a merge of shards, measured separately (e.g. one LoadTest each), not one run."""

    merged_at: str
    shards: tuple[ShardInfo, ...]


@dataclass(frozen=True)
class Manifest:
    spec_name: str
    spec_path: str | None
    spec_source: dict[str, Any]  # the spec file as written (parsed TOML): resume re-reads it
    settings: Settings  # the settings the run used (the spec's, with command-line overrides)
    filter: str | None  # --filter
    plan: Plan
    placement: PlacementInfo
    tls_key_type: str
    environment: Environment
    started_at: str  # ISO 8601, UTC
    ended_at: str | None = None
    status: str = "running"  # "running" | "complete" | "interrupted" | "failed"
    regress: RegressInfo | None = None
    gate_study: GateStudyInfo | None = None
    links: tuple[LinkInfo, ...] | None = None  # the run's non-loopback links, as built (None: loopback only)
    # The machine's state while the run measured (bench.machine.system.collect with the run's pinning), what it
    # held of /dev/cpu_dma_latency, and its floor and noise (bench.run.calibration); recorded by the executor
    # when the run starts measuring. None: not recorded (a run written before grpclab recorded them).
    system: SystemFacts | None = None
    cpu_latency_hold: HoldState | None = None
    calibration: Calibration | None = None
    merge: MergeInfo | None = None  # set by `grpclab merge` (bench.run.merge); None: measured as one run

    @property
    def steps(self) -> int:
        """Repetitions planned (cells x repetitions)."""
        return len(self.plan.steps)

    @property
    def cells(self) -> int:
        return len({cell.key() for cell, _ in self.plan.steps})

    @classmethod
    def new(cls, spec: Spec, plan: Plan, filter_expr: str | None, placement: PlacementInfo) -> Manifest:
        """A manifest for a run about to start on this machine."""
        from servers import certs

        from ..machine import environment
        from ..spec.link import Link
        from . import netns

        link_values = sorted({cell.link for cell, _ in plan.steps} - {"loopback"})
        return cls(
            spec_name=spec.name,
            spec_path=spec.path,
            spec_source=spec.source,
            settings=spec.settings,
            filter=filter_expr,
            plan=plan,
            placement=placement,
            tls_key_type=certs.KEY_TYPE,
            environment=_environment(environment.describe(), "environment"),
            started_at=now(),
            links=tuple(netns.link_info(Link.parse(value)) for value in link_values) or None,
        )

    def finished(self, status: str) -> Manifest:
        return replace(self, status=status, ended_at=now())

    def to_json(self) -> dict:
        data = asdict(self)
        data["plan"] = self.plan.to_json()
        data["placement"] = self.placement.to_json()
        for typed in ("system", "cpu_latency_hold", "calibration"):  # each writes its own document
            value = getattr(self, typed)
            data[typed] = value.to_json() if value is not None else None
        for optional in ("regress", "gate_study", "links", "system", "cpu_latency_hold", "calibration", "merge"):
            if data[optional] is None:
                del data[optional]
        return {"schema": FORMAT, **data}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str) + "\n"

    @classmethod
    def from_json(cls, data: object, where: str = MANIFEST) -> Manifest:
        """Check and type a manifest document of any format this code reads; ResultsError names the problem."""
        if not isinstance(data, dict) or data.get("schema") not in (FORMAT, FORMAT_1):
            raise ResultsError(f"{where}: not a grpclab run manifest (expected schema {FORMAT} or {FORMAT_1})")
        data = upgrade(data)
        _check_keys(data, {"schema", *(f.name for f in fields(cls))}, where)
        try:
            return cls(
                spec_name=data["spec_name"],
                spec_path=data.get("spec_path"),
                spec_source=data["spec_source"],
                settings=_settings(data["settings"], where),
                filter=data.get("filter"),
                plan=Plan.from_json(data["plan"]),
                placement=_placement(data["placement"], f"{where}: placement"),
                tls_key_type=data["tls_key_type"],
                environment=_environment(data["environment"], f"{where}: environment"),
                started_at=data["started_at"],
                ended_at=data.get("ended_at"),
                status=data["status"],
                regress=_typed(RegressInfo, data["regress"], f"{where}: regress") if data.get("regress") else None,
                gate_study=_gate_study(data["gate_study"], where) if data.get("gate_study") else None,
                links=_links(data["links"], where) if data.get("links") else None,
                system=_part(SystemFacts, data.get("system"), f"{where}: system"),
                cpu_latency_hold=_part(HoldState, data.get("cpu_latency_hold"), f"{where}: cpu_latency_hold"),
                calibration=_part(Calibration, data.get("calibration"), f"{where}: calibration"),
                merge=_merge(data["merge"], where) if data.get("merge") else None,
            )
        except KeyError as exc:
            raise ResultsError(f"{where}: missing {exc.args[0]}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ResultsError(f"{where}: corrupt manifest ({type(exc).__name__}: {exc})") from None


def upgrade(data: dict) -> dict:
    """An older manifest document as the current format (a copy; the file itself is not rewritten)."""
    if data.get("schema") == FORMAT_1:
        settings = data.get("settings") or {}
        pinning = data.get("pinning") or {k: settings.get(k, []) for k in ("server_cpus", "loadgen_cpus")}
        data = {k: v for k, v in data.items() if k not in ("pinning", "steps", "cells")}
        data["placement"] = {"kind": "local", **pinning}  # /1 runs were all local
        data["schema"] = FORMAT
    return data


def read(run_dir: str | Path) -> Manifest:
    """The manifest of ``run_dir``, typed; ResultsError (one line) when it is missing, corrupt or foreign."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ResultsError(f"{path}: not found (is {run_dir} a grpclab run directory?)")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: corrupt manifest ({exc})") from None
    return Manifest.from_json(data, str(path))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- typing the parts -------------------------------------------------------------------------------


def _check_keys(data: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ResultsError(f"{where}: unknown keys {unknown} (written by a newer grpclab?)")


def _typed(cls: type, data: object, where: str):
    """A flat dataclass from its JSON object (lists become tuples where the field is a tuple)."""
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: expected an object, got {type(data).__name__}")
    _check_keys(data, {f.name for f in fields(cls)}, where)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def _settings(data: object, where: str) -> Settings:
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: settings: expected an object")
    _check_keys(data, set(SETTINGS_KEYS), f"{where}: settings")
    # Settings added later read as what a run written before them did (and a resumed one goes on doing):
    # it neither held /dev/cpu_dma_latency nor calibrated.
    return _typed(Settings, {**LATER_SETTINGS, **data}, f"{where}: settings")


def _environment(data: object, where: str) -> Environment:
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: expected an object")
    _check_keys(data, {f.name for f in fields(Environment)}, where)
    values = dict(data)
    values["git"] = _typed(GitState, data.get("git") or {}, f"{where}.git")
    values["versions"] = dict(data.get("versions") or {})
    values["cpus_available"] = tuple(data.get("cpus_available") or ())
    return Environment(**values)


def _part(cls: type, data: object, where: str):
    """A part that reads itself (``cls.from_json``), or None when absent; ResultsError names the part."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: expected an object, got {type(data).__name__}")
    try:
        return cls.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as exc:
        detail = f"missing {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
        raise ResultsError(f"{where}: corrupt ({detail})") from None


def _placement(data: object, where: str) -> PlacementInfo:
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: expected an object, got {type(data).__name__}")
    workers = data.get("workers")
    placement = _typed(PlacementInfo, {k: v for k, v in data.items() if k != "workers"}, where)
    if workers is None:
        return placement
    if not isinstance(workers, list):
        raise ResultsError(f"{where}: workers: expected a list")
    typed = tuple(_part(WorkerInfo, item, f"{where}: workers[{i}]") for i, item in enumerate(workers))
    return replace(placement, workers=typed)


def _links(data: object, where: str) -> tuple[LinkInfo, ...]:
    if not isinstance(data, list):
        raise ResultsError(f"{where}: links: expected a list")
    return tuple(_typed(LinkInfo, item, f"{where}: links[{i}]") for i, item in enumerate(data))


def _gate_study(data: object, where: str) -> GateStudyInfo:
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: gate_study: expected an object")
    _check_keys(data, {"series", "injection"}, f"{where}: gate_study")
    injection = data.get("injection")
    return GateStudyInfo(
        series=data["series"],
        injection={k: _typed(Injection, v, f"{where}: gate_study.injection") for k, v in injection.items()}
        if injection
        else None,
    )


def _merge(data: object, where: str) -> MergeInfo:
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: merge: expected an object")
    _check_keys(data, {"merged_at", "shards"}, f"{where}: merge")
    shards = data.get("shards")
    if not isinstance(shards, list) or not shards:
        raise ResultsError(f"{where}: merge.shards: expected a non-empty list")
    return MergeInfo(
        merged_at=data["merged_at"],
        shards=tuple(_typed(ShardInfo, item, f"{where}: merge.shards[{i}]") for i, item in enumerate(shards)),
    )
