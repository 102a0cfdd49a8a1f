"""WHAT to measure: cells (axes, values, defaults), run settings, spec files and --filter.

The names most callers need are importable from here (``from bench.spec import Cell, load_spec``);
each is defined once, in the module named beside it.
"""

from .cell import ALLOWED, AXES, DEFAULTS, Cell, SpecError
from .filters import filter_cells
from .parse import SPECS_DIR, Spec, load_spec, parse_spec, with_settings
from .settings import SETTINGS_KEYS, Settings

__all__ = [
    "ALLOWED",
    "AXES",
    "DEFAULTS",
    "SETTINGS_KEYS",
    "SPECS_DIR",
    "Cell",
    "Settings",
    "Spec",
    "SpecError",
    "filter_cells",
    "load_spec",
    "parse_spec",
    "with_settings",
]
