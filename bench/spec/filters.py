"""`--filter axis=value|value,...`: choosing cells of a spec from the command line."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .cell import AXES, AXIS_PARSERS, Cell, SpecError, matches


def _filter_value(axis: str, text: str, path: str) -> object:
    value: object = text.strip()
    if axis in ("workers", "processes", "concurrency", "connections", "stream_messages"):
        if re.fullmatch(r"-?\d+", text.strip()):
            value = int(text)
        if axis == "workers" and value == 0:
            return 0  # aio cells carry workers 0, so let the filter pick them
    elif axis == "rate":
        try:
            value = float(text)
        except ValueError:
            pass  # the parser reports it
    return AXIS_PARSERS[axis](value, path)


def filter_cells(cells: Iterable[Cell], expr: str) -> tuple[Cell, ...]:
    """Cells matching every 'axis=value|value' term of a comma-separated expression (empty expr: all)."""
    cells = tuple(cells)
    if not expr.strip():
        return cells
    wanted: dict[str, set] = {}
    for term in expr.split(","):
        axis, sep, alternatives = term.partition("=")
        axis = axis.strip()
        if not sep or not axis or not alternatives.strip():
            raise SpecError(f"--filter: expected axis=value[|value...], got {term.strip()!r}")
        if axis not in AXES:
            raise SpecError(f"--filter: unknown axis {axis!r}; axes: {', '.join(AXES)}")
        if axis in wanted:
            raise SpecError(f"--filter: axis {axis!r} given twice; use '|' for alternatives")
        wanted[axis] = {_filter_value(axis, text, f"--filter: {axis}") for text in alternatives.split("|")}
    return tuple(cell for cell in cells if matches(cell, wanted))
