"""A small real run made on demand: what notebooks fall back to on a fresh clone, and what tests analyse."""

from __future__ import annotations

from pathlib import Path

from ..analysis import results
from ..spec import load_spec, with_settings
from . import placement
from .executor import Side, execute
from .manifest import Manifest
from .plan import Plan
from .store import RunStore

SAMPLE_SPEC = "sample"


def make(out_dir: str | Path, **settings) -> Path:
    """Run bench/specs/sample.toml (settings overridable) into ``out_dir``; returns it."""
    spec = with_settings(load_spec(SAMPLE_SPEC), **settings)
    plan = Plan.make(spec.cells, spec.settings)
    manifest = Manifest.new(spec, plan, None, placement.for_settings(spec.settings).describe())
    store = RunStore.create(Path(out_dir), manifest)
    execute([Side(store)], plan, spec.settings, lambda step: None)
    return store.dir


def newest_or_sample(root: str | Path = results.RESULTS_ROOT, sample_dir: str | Path = "results/sample") -> Path:
    """The newest run under ``root``; if there is none, a sample run made (once) in ``sample_dir``."""
    latest = results.latest_run(root)
    if latest is not None:
        return latest
    return make(sample_dir)
