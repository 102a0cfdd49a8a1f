"""Spec files: TOML in, a validated Spec (settings + the cells to run, in run order) out.

A spec names axes whose values are run as a cartesian product, trims it with
[[exclude]] tables, adds cells with [[include]] tables and fixes run settings.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from .cell import (
    AXES,
    AXIS_PARSERS,
    DEFAULTS,
    Cell,
    SpecError,
    check_cell,
    check_combination,
    check_keys,
    fmt_number,
    matches,
    normalize,
    show,
)
from .settings import SETTINGS_KEYS, Settings, parse_settings

# A typo such as an extra zero in a list can make a product nobody can run;
# refuse it before building millions of cells.
MAX_PRODUCT = 1_000_000
SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"  # bench/specs: the path users type

# [hosts]: the workers a driven run uses (bench.run.hosts reads and checks it; the cells do not depend on it)
_TOP_KEYS = ("name", "description", "settings", "axes", "exclude", "include", "hosts")
# The name ends up in result directory names, so keep it path-safe.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Spec:
    """A validated spec: settings plus the cells to run, in run order."""

    name: str
    description: str
    settings: Settings
    cells: tuple[Cell, ...]  # after product, excludes, includes, normalization, de-duplication
    source: dict  # the parsed TOML, for the results manifest
    path: str | None


def _values(raw: object, axis: str, path: str, *, scalar_ok: bool) -> list:
    """Validated values of one axis: a non-empty list, or (in exclude/include) also a single value."""
    if isinstance(raw, list):
        if not raw:
            raise SpecError(f"{path}: expected a non-empty list")
        return [AXIS_PARSERS[axis](item, f"{path}[{i}]") for i, item in enumerate(raw)]
    if scalar_ok and not isinstance(raw, dict):
        return [AXIS_PARSERS[axis](raw, path)]
    raise SpecError(f"{path}: expected a non-empty list, got {show(raw)}")


def _tables(data: dict, key: str) -> list[dict]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        raise SpecError(f"{key}: expected an array of tables ([[{key}]]), got {show(raw)}")
    for i, table in enumerate(raw):
        if not isinstance(table, dict):
            raise SpecError(f"{key}[{i}]: expected a table, got {show(table)}")
        if not table:
            raise SpecError(f"{key}[{i}]: empty table; name at least one axis")
        check_keys(table, AXES, f"{key}[{i}]", what="axis")
    return raw


def _unique(values: list) -> list:
    # Order-preserving: '1KiB' and 1024 are the same size.
    return list(dict.fromkeys(values))


def _product(axes: dict[str, list], path: str) -> Iterable[dict[str, object]]:
    size = math.prod(len(axes[axis]) for axis in AXES)
    if size > MAX_PRODUCT:
        raise SpecError(f"{path}: the product has {size} cells (limit {MAX_PRODUCT}); narrow the lists")
    for combo in itertools.product(*(axes[axis] for axis in AXES)):
        yield dict(zip(AXES, combo, strict=True))


def parse_spec(data: dict, path: str | None = None) -> Spec:
    """Validate parsed TOML and expand it into cells; SpecError on any problem."""
    if not isinstance(data, dict):
        raise SpecError(f"{path or 'spec'}: expected a table at the top level")
    check_keys(data, _TOP_KEYS, "")

    name = data.get("name")
    if name is None:
        raise SpecError("name: required; expected a non-empty string")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        allowed = "letters, digits, '.', '_' or '-' (it names results)"
        raise SpecError(f"name: expected {allowed}, got {show(name)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"description: expected a string, got {show(description)}")
    settings = parse_settings(data.get("settings", {}))

    raw_axes = data.get("axes", {})
    if not isinstance(raw_axes, dict):
        raise SpecError(f"axes: expected a table, got {show(raw_axes)}")
    check_keys(raw_axes, AXES, "axes", what="axis")
    axes = {
        axis: _unique(_values(raw_axes[axis], axis, f"axes.{axis}", scalar_ok=False))
        if axis in raw_axes
        else [DEFAULTS[axis]]
        for axis in AXES
    }
    bad_rate = next((rate for rate in axes["rate"] if rate <= 0), None)
    if "open" in axes["mode"] and bad_rate is not None:
        how = "" if "rate" in raw_axes else " (the default; set axes.rate)"
        raise SpecError(f"axes.rate: mode 'open' needs rate > 0, got {fmt_number(bad_rate)}{how}")

    excludes = [
        {axis: _values(raw, axis, f"exclude[{i}].{axis}", scalar_ok=True) for axis, raw in table.items()}
        for i, table in enumerate(_tables(data, "exclude"))
    ]
    product = [normalize(values) for values in _product(axes, "axes")]
    for i, table in enumerate(excludes):
        # An exclude that removes nothing is almost always a typo or a stale value.
        if not any(matches(cell, table) for cell in product):
            raise SpecError(
                f"exclude[{i}]: matches no cell of the [axes] product (note: aio and go cells have workers 0, "
                "unary cells stream_messages 1, closed cells rate 0)"
            )
    cells = [cell for cell in product if not any(matches(cell, table) for table in excludes)]
    for cell in cells:  # after the excludes, which may remove an impossible combination
        check_combination(cell.to_dict(), "axes")
        check_cell(cell, "axes")

    for i, table in enumerate(_tables(data, "include")):
        where = f"include[{i}]"
        given = {axis: _values(raw, axis, f"{where}.{axis}", scalar_ok=True) for axis, raw in table.items()}
        # Axes the include does not name take the first [axes] value: the baseline.
        values = {axis: _unique(given.get(axis, axes[axis][:1])) for axis in AXES}
        bad_rate = next((rate for rate in values["rate"] if rate <= 0), None)
        if "open" in values["mode"] and bad_rate is not None:
            how = "" if "rate" in given else " (inherited from [axes])"
            raise SpecError(f"include[{i}].rate: open mode needs rate > 0, got {fmt_number(bad_rate)}{how}")
        for combo in _product(values, where):
            check_combination(combo, where)
            cell = normalize(combo)
            check_cell(cell, where)
            cells.append(cell)

    unique = tuple(dict.fromkeys(cells))
    if not unique:
        raise SpecError(f"{path}: the spec selects no cells" if path else "the spec selects no cells")
    return Spec(
        name=name,
        description=description,
        settings=settings,
        cells=unique,
        source=copy.deepcopy(data),
        path=path,
    )


def _resolve(path: str | Path) -> Path:
    candidate = Path(path)
    # Let the CLI say `quick` for bench/specs/quick.toml.
    if not candidate.exists() and candidate.parent == Path(".") and not candidate.suffix:
        builtin = SPECS_DIR / f"{candidate.name}.toml"
        if builtin.is_file():
            return builtin
    return candidate


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file (or a built-in spec name such as 'quick')."""
    resolved = _resolve(path)
    try:
        raw = resolved.read_bytes()
    except FileNotFoundError:
        builtins = ", ".join(sorted(p.stem for p in SPECS_DIR.glob("*.toml")))
        raise SpecError(f"spec file not found: {path} (built-in specs: {builtins})") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SpecError(f"{path}: invalid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        detail = " ".join(str(exc).split())
        raise SpecError(f"{path}: invalid TOML: {detail}") from None
    return parse_spec(data, str(resolved))


def with_settings(spec: Spec, **overrides: object) -> Spec:
    """The spec with some settings replaced (None = keep), validated like the file's [settings]."""
    merged = {key: getattr(spec.settings, key) for key in SETTINGS_KEYS}
    check_keys(overrides, SETTINGS_KEYS, "settings")
    merged.update({key: value for key, value in overrides.items() if value is not None})
    return replace(spec, settings=parse_settings(merged))
