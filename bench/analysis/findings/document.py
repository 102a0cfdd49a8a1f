"""The findings as a JSON document (write, read, from_json) and the one line about the machine (machine_note)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np

from ...run.manifest import Manifest
from .engine import CONFIDENCES, TEST_REPETITIONS, Document, Finding, Instance, Reason, _finite, read_calibration
from .words import _join

FORMAT = "grpclab.findings/2"  # /1 (part A): "weak" for indicative, a finding per compression setting, no headline
FILE_NAME = "findings.json"


class FindingsError(Exception):
    """A findings document that is not one (the message names what is wrong): exit 2 at the command line."""


# -- JSON ----------------------------------------------------------------------------------------------------------


def _clean(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _finding_dict(finding: Finding) -> dict:
    return {
        "study": finding.study,
        "subject": finding.subject,
        "sentence": finding.sentence,
        "headline": finding.headline,
        "metric": finding.metric,
        "ratio": _clean(finding.ratio),
        "confidence": finding.confidence,
        "reasons": [{"code": r.code, "text": r.text} for r in finding.reasons],
        "cells": list(finding.cells),
        "instances": [
            {
                "cells": inst.cells,
                "values": _clean(inst.values),
                "spread": _clean(inst.spread),
                "repetitions": inst.repetitions,
                "metric": inst.metric,
                "ratio": _clean(inst.ratio),
                "derived": _clean(inst.derived),
            }
            for inst in finding.instances
        ],
    }


def to_json(findings: Sequence[Finding], run_id: str, note: str | None = None) -> str:
    """The versioned findings document (FORMAT), as indented JSON text."""
    doc = {"format": FORMAT, "run_id": run_id, "note": note, "findings": [_finding_dict(f) for f in findings]}
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _float_or_none(value: object, where: str) -> float | None:
    if value is None:
        return None
    number = _finite(value)
    if number is None:
        raise FindingsError(f"{where}: expected a number or null, got {value!r}")
    return number


def _instance_from(raw: object, where: str) -> Instance:
    if not isinstance(raw, dict):
        raise FindingsError(f"{where}: expected an object")
    try:
        return Instance(
            cells={str(k): str(v) for k, v in raw["cells"].items()},
            values={str(s): {str(m): float(v) for m, v in ms.items()} for s, ms in raw["values"].items()},
            spread={
                str(s): {str(m): [float(x) for x in lh] for m, lh in ms.items()} for s, ms in raw["spread"].items()
            },
            repetitions={str(k): int(v) for k, v in raw["repetitions"].items()},
            metric=str(raw["metric"]),
            ratio=_float_or_none(raw.get("ratio"), f"{where}.ratio"),
            derived={str(k): float(v) for k, v in raw["derived"].items()},
        )
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise FindingsError(f"{where}: malformed instance ({type(exc).__name__}: {exc})") from None


def from_json(text: str) -> Document:
    """Read a findings document written by to_json; FindingsError names what is wrong."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise FindingsError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise FindingsError(f"not a findings document (format {found!r}, expected {FORMAT!r})")
    raw_findings = doc.get("findings")
    if not isinstance(raw_findings, list):
        raise FindingsError("findings: expected a list")
    out = []
    for i, raw in enumerate(raw_findings):
        where = f"findings[{i}]"
        if not isinstance(raw, dict):
            raise FindingsError(f"{where}: expected an object")
        missing = [
            k
            for k in ("study", "subject", "sentence", "headline", "metric", "confidence", "reasons", "instances")
            if k not in raw
        ]
        if missing:
            raise FindingsError(f"{where}: missing {', '.join(missing)}")
        if raw["confidence"] not in CONFIDENCES:
            raise FindingsError(f"{where}.confidence: {raw['confidence']!r}; expected one of {', '.join(CONFIDENCES)}")
        reasons = raw["reasons"]
        if not isinstance(reasons, list) or not all(
            isinstance(r, dict) and {"code", "text"} <= r.keys() for r in reasons
        ):
            raise FindingsError(f"{where}.reasons: expected a list of {{code, text}} objects")
        instances = raw["instances"]
        if not isinstance(instances, list) or not instances:
            raise FindingsError(f"{where}.instances: expected a non-empty list")
        out.append(
            Finding(
                study=str(raw["study"]),
                subject=str(raw["subject"]),
                sentence=str(raw["sentence"]),
                headline=str(raw["headline"]),
                metric=str(raw["metric"]),
                ratio=_float_or_none(raw.get("ratio"), f"{where}.ratio"),
                confidence=raw["confidence"],
                reasons=tuple(Reason(str(r["code"]), str(r["text"])) for r in reasons),
                instances=tuple(_instance_from(inst, f"{where}.instances[{j}]") for j, inst in enumerate(instances)),
            )
        )
    note = doc.get("note")
    if note is not None and not isinstance(note, str):
        raise FindingsError(f"note: expected a string or null, got {note!r}")
    return Document(run_id=str(doc.get("run_id", "")), findings=tuple(out), note=note)


def write(path: str | Path, findings: Sequence[Finding], run_id: str, note: str | None = None) -> Path:
    path = Path(path)
    path.write_text(to_json(findings, run_id, note), encoding="utf-8")
    return path


def read(path: str | Path) -> Document:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FindingsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return from_json(text)
    except FindingsError as exc:
        raise FindingsError(f"{path}: {exc}") from None


# -- the machine, in one line ----------------------------------------------------------------------------------


def _plain(value: object) -> object:
    """A typed manifest field as its JSON form (dataclasses as dicts); anything else as it is."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def machine_note(manifest: Manifest, findings: Sequence[Finding] = ()) -> str | None:
    """One line under the findings about what of the machine weakens them, or None: a run without a noise
    calibration where a leading comparison rests on 2-3 repetitions a side, a CPU-latency request that was not
    held, and the system facts' warnings.

    The manifest's ``calibration``, ``cpu_latency_hold`` and ``system`` are read typed or in their JSON forms
    (older or hand-made manifests): a hold as a bool or as {"held": bool, "reason": ...}; the system facts as
    an object with ``warnings()`` or as {"checks": [{"name", "status"}, ...]}. Missing means "not recorded": nothing
    is said about it.
    """
    parts = []
    few = any(
        2 <= min(inst.repetitions.values()) < TEST_REPETITIONS
        for finding in findings
        for inst in finding.instances[:1]
        if inst.repetitions
    )
    if few and not read_calibration(manifest).noise_cv:
        parts.append(
            f"the run has no noise calibration, so below {TEST_REPETITIONS} repetitions a side no finding is clear"
        )
    hold = _plain(getattr(manifest, "cpu_latency_hold", None))
    if (hold.get("held") if isinstance(hold, dict) else hold) is False:
        reason = hold.get("reason") if isinstance(hold, dict) else None
        parts.append(
            "the CPU-latency request (/dev/cpu_dma_latency) was not held"
            + (f" ({reason})" if reason else "")
            + ": idle CPUs could sleep between RPCs, so low-load latencies include wake-ups"
        )
    system = getattr(manifest, "system", None)
    if callable(getattr(system, "warnings", None)):  # bench.machine.system.SystemFacts
        warned = [str(getattr(check, "name", check)) for check in system.warnings()]
    else:
        checks = _plain(system).get("checks") if isinstance(_plain(system), dict) else None
        warned = [
            str(check.get("name", "?"))
            for check in (checks if isinstance(checks, list) else [])
            if isinstance(check, dict) and check.get("status") == "warning"
        ]
    if warned:
        parts.append(f"grpclab system warned about {_join(warned)} (see the manifest)")
    return f"Machine: {'; '.join(parts)}." if parts else None
