"""A run's manifest.json: what was measured, how, where and on what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..machine import environment
from ..spec import Spec
from .plan import Plan


@dataclass(frozen=True)
class PlacementInfo:
    """Where a run's servers and generators ran (bench.run.placement)."""

    kind: str  # "local"
    server_cpus: tuple[int, ...]
    loadgen_cpus: tuple[int, ...]


def new_manifest(spec: Spec, plan: Plan, filter_expr: str | None) -> dict:
    from dataclasses import asdict

    from servers import certs

    return {
        "spec_name": spec.name,
        "spec_path": spec.path,
        "spec_source": spec.source,
        "settings": asdict(spec.settings),
        "filter": filter_expr,
        "plan": plan.to_json(),
        "steps": len(plan.steps),
        "cells": len({c.key() for c, _ in plan.steps}),
        "pinning": {"server_cpus": list(spec.settings.server_cpus), "loadgen_cpus": list(spec.settings.loadgen_cpus)},
        "tls_key_type": certs.KEY_TYPE,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ended_at": None,
        "status": "running",
        "environment": environment.describe(),
    }
