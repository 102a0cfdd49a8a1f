"""Benchmark specs: a TOML file that decides which cells a run measures and how.

A spec names axes whose values are run as a cartesian product, trims it with
[[exclude]] tables, adds cells with [[include]] tables and fixes run settings.
Every problem is one SpecError line naming the key path, so the CLI can print it,
exit 2 and write nothing.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path


class SpecError(Exception):
    """One-line, user-facing message naming the key path / file."""


@dataclass(frozen=True)
class Cell:
    """One benchmark configuration; field order = column order in results."""

    impl: str  # "sync" | "aio"
    rpc: str  # "unary" | "server_stream" | "client_stream" | "bidi"
    workers: int  # sync thread-pool size; 0 for aio (aio ignores it)
    processes: int  # server processes sharing one port
    payload_size: int  # bytes of request and reply payload, uncompressed
    payload_kind: str  # "random" | "text" | "zeros"
    compression: str  # "none" | "grpc-gzip" | "grpc-deflate" | "app-gzip-1" ... "app-gzip-9"
    tls: str  # "off" | "on" | "mtls"
    concurrency: int  # RPCs in flight (closed loop) / cap on in-flight RPCs (open loop)
    connections: int  # channels
    stream_messages: int  # messages per streaming call; 1 for unary
    mode: str  # "closed" | "open"
    rate: float  # offered RPC/s for open loop; 0.0 for closed
    arrival: str  # "constant" | "poisson"; "constant" for closed
    loadgen: str  # "python" | "ghz"

    def key(self) -> str:
        """Stable, unique, human-readable id.

        e.g. 'sync/unary/w4/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python'
        """
        # Fields that normalization fixes keep their slot (w0, m1) so every key has
        # the same shape; rate and arrival only mean something in open mode.
        mode = self.mode if self.mode == "closed" else f"open-r{_fmt_number(self.rate)}-{self.arrival}"
        parts = [
            self.impl,
            self.rpc,
            f"w{self.workers}",
            f"p{self.processes}",
            f"{self.payload_size}B",
            self.payload_kind,
            self.compression,
            f"tls-{self.tls}",
            f"c{self.concurrency}",
            f"n{self.connections}",
            f"m{self.stream_messages}",
            mode,
            self.loadgen,
        ]
        return "/".join(parts)

    def to_dict(self) -> dict:
        """Field -> value, in column order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Cell:
        """Validate and normalize a field -> value mapping (e.g. a results row); errors name 'cell.FIELD'."""
        missing = [axis for axis in AXES if axis not in data]
        if missing:
            raise SpecError(f"cell: missing {', '.join(missing)}")
        values = {}
        for axis in AXES:
            if axis == "workers" and data["impl"] == "aio" and _is_int(data[axis]) and data[axis] == 0:
                values[axis] = 0  # already normalized
            else:
                values[axis] = _AXIS_PARSERS[axis](data[axis], f"cell.{axis}")
        if values["mode"] == "open" and values["rate"] <= 0:
            raise SpecError(f"cell.rate: open mode needs rate > 0, got {_show(data['rate'])}")
        return _normalize(values)


AXES: tuple[str, ...] = tuple(f.name for f in fields(Cell))

_APP_GZIP = tuple(f"app-gzip-{level}" for level in range(1, 10))
ALLOWED: dict[str, tuple[str, ...]] = {
    "impl": ("sync", "aio"),
    "rpc": ("unary", "server_stream", "client_stream", "bidi"),
    "payload_kind": ("random", "text", "zeros"),
    "compression": ("none", "grpc-gzip", "grpc-deflate", *_APP_GZIP),
    "tls": ("off", "on", "mtls"),
    "mode": ("closed", "open"),
    "arrival": ("constant", "poisson"),
    "loadgen": ("python", "ghz"),
}

# Value of an axis that a spec does not list.
DEFAULTS: dict[str, object] = {
    "impl": "sync",
    "rpc": "unary",
    "workers": 4,
    "processes": 1,
    "payload_size": 0,
    "payload_kind": "text",
    "compression": "none",
    "tls": "off",
    "concurrency": 8,
    "connections": 1,
    "stream_messages": 10,
    "mode": "closed",
    "rate": 0.0,
    "arrival": "constant",
    "loadgen": "python",
}

# The servers accept 64 MiB messages; 16 MiB leaves room for framing and for
# app-gzip growing incompressible payloads, and is already far past typical RPCs.
MAX_PAYLOAD_SIZE = 16 * 1024 * 1024
# A typo such as an extra zero in a list can make a product nobody can run;
# refuse it before building millions of cells.
MAX_PRODUCT = 1_000_000
SPECS_DIR = Path(__file__).resolve().parent / "specs"

_TOP_KEYS = ("name", "description", "settings", "axes", "exclude", "include")
_SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 * 1024}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([A-Za-z]*)\s*")
# The name ends up in result directory names, so keep it path-safe.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Settings:
    """Run settings shared by every cell of a spec."""

    duration: float = 5.0  # seconds measured per cell repetition
    warmup: float = 1.0  # seconds of discarded load before measuring
    repetitions: int = 3
    slo_p99_ms: float = 50.0  # reports mark the latency knee against it
    seed: int = 1  # shuffles repetition order (runner); recorded
    server_cpus: tuple[int, ...] = (0,)  # CPU ids the server is pinned to
    loadgen_cpus: tuple[int, ...] = (1,)  # CPU ids the load generator is pinned to
    loadgen_processes: int = 1  # Python load-generator processes: one per load-generator CPU measured best
    cell_timeout: float = 120.0  # hard limit on one cell repetition, seconds


SETTINGS_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Settings))


@dataclass(frozen=True)
class Spec:
    """A validated spec: settings plus the cells to run, in run order."""

    name: str
    description: str
    settings: Settings
    cells: tuple[Cell, ...]  # after product, excludes, includes, normalization, de-duplication
    source: dict  # the parsed TOML, for the results manifest
    path: str | None


# -- value checks ------------------------------------------------------


def _show(value: object) -> str:
    """A value as the user wrote it in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _fmt_number(value: float) -> str:
    # repr round-trips, so distinct rates always give distinct keys.
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _allowed_text(axis: str) -> str:
    if axis == "compression":
        return "none, grpc-gzip, grpc-deflate, app-gzip-1..9"
    return ", ".join(ALLOWED[axis])


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not a count


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _choice(axis: str) -> Callable[[object, str], str]:
    def parse(value: object, path: str) -> str:
        if not isinstance(value, str) or value not in ALLOWED[axis]:
            raise SpecError(f"{path}: unknown value {_show(value)}; allowed: {_allowed_text(axis)}")
        return value

    return parse


def _positive_int(value: object, path: str) -> int:
    if not _is_int(value) or value < 1:
        raise SpecError(f"{path}: expected a positive integer, got {_show(value)}")
    return value


def _size(value: object, path: str) -> int:
    size = None
    if _is_int(value):
        size = value
    elif isinstance(value, str):
        match = _SIZE_RE.fullmatch(value)
        if match and match[2] in ("", *_SIZE_UNITS):
            size = int(match[1]) * _SIZE_UNITS.get(match[2], 1)
    if size is None or size < 0:
        raise SpecError(
            f"{path}: expected a size in bytes (integer >= 0 or a string with unit B, KiB or MiB "
            f"like '64KiB'), got {_show(value)}"
        )
    if size > MAX_PAYLOAD_SIZE:
        raise SpecError(f"{path}: {_show(value)} is larger than the lab's limit of 16MiB")
    return size


def _rate(value: object, path: str) -> float:
    if not _is_number(value) or value < 0:
        raise SpecError(f"{path}: expected a number >= 0 (RPC/s), got {_show(value)}")
    return float(value)


_AXIS_PARSERS: dict[str, Callable[[object, str], object]] = {axis: _choice(axis) for axis in ALLOWED} | {
    "workers": _positive_int,
    "processes": _positive_int,
    "payload_size": _size,
    "concurrency": _positive_int,
    "connections": _positive_int,
    "stream_messages": _positive_int,
    "rate": _rate,
}


def _normalize(values: dict[str, object]) -> Cell:
    """Fix fields a cell ignores, so cells that would measure the same thing compare equal."""
    if values["impl"] == "aio":
        values = values | {"workers": 0}
    if values["rpc"] == "unary":
        values = values | {"stream_messages": 1}
    if values["mode"] == "closed":
        values = values | {"rate": 0.0, "arrival": "constant"}
    return Cell(**values)


def _check_keys(table: dict, allowed: Iterable[str], prefix: str, what: str = "key") -> None:
    allowed = tuple(allowed)
    for key in table:
        if key not in allowed:
            path = f"{prefix}.{key}" if prefix else key
            label = "axes" if what == "axis" else "allowed"
            raise SpecError(f"{path}: unknown {what}; {label}: {', '.join(allowed)}")


# -- settings ----------------------------------------------------------


def _number(value: object, path: str, minimum: float, strict: bool) -> float:
    if not _is_number(value) or value < minimum or (strict and value == minimum):
        bound = f"> {_fmt_number(minimum)}" if strict else f">= {_fmt_number(minimum)}"
        raise SpecError(f"{path}: expected a number {bound}, got {_show(value)}")
    return float(value)


def _cpus(value: object, path: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise SpecError(f"{path}: expected a non-empty list of CPU ids (integers >= 0), got {_show(value)}")
    seen: list[int] = []
    for i, cpu in enumerate(value):
        if not _is_int(cpu) or cpu < 0:
            raise SpecError(f"{path}[{i}]: expected a CPU id (integer >= 0), got {_show(cpu)}")
        if cpu in seen:
            raise SpecError(f"{path}[{i}]: CPU {cpu} is listed twice")
        seen.append(cpu)
    return tuple(seen)


def _parse_settings(table: object, prefix: str = "settings") -> Settings:
    if not isinstance(table, dict):
        raise SpecError(f"{prefix}: expected a table, got {_show(table)}")
    _check_keys(table, SETTINGS_KEYS, prefix)
    defaults = Settings()
    values = {key: table.get(key, getattr(defaults, key)) for key in SETTINGS_KEYS}

    def path(key: str) -> str:
        return f"{prefix}.{key}"

    out = {
        "duration": _number(values["duration"], path("duration"), 0, strict=True),
        "warmup": _number(values["warmup"], path("warmup"), 0, strict=False),
        "repetitions": _positive_int(values["repetitions"], path("repetitions")),
        "slo_p99_ms": _number(values["slo_p99_ms"], path("slo_p99_ms"), 0, strict=True),
        "server_cpus": _cpus(values["server_cpus"], path("server_cpus")),
        "loadgen_cpus": _cpus(values["loadgen_cpus"], path("loadgen_cpus")),
        "loadgen_processes": _positive_int(values["loadgen_processes"], path("loadgen_processes")),
        "cell_timeout": _number(values["cell_timeout"], path("cell_timeout"), 0, strict=True),
    }
    seed = values["seed"]
    if not _is_int(seed) or seed < 0:
        raise SpecError(f"{path('seed')}: expected an integer >= 0, got {_show(seed)}")
    out["seed"] = seed
    if set(out["server_cpus"]) & set(out["loadgen_cpus"]):
        why = "honest numbers need separate CPUs"
        raise SpecError(f"{path('loadgen_cpus')}: overlaps {path('server_cpus')} ({why})")
    # A timeout the measurement itself cannot fit in would fail every cell after the wait.
    needed = out["warmup"] + out["duration"]
    if out["cell_timeout"] <= needed:
        raise SpecError(
            f"{path('cell_timeout')}: {_fmt_number(out['cell_timeout'])} s must exceed "
            f"warmup + duration ({_fmt_number(needed)} s)"
        )
    return Settings(**out)


# -- axes, excludes, includes ------------------------------------------


def _values(raw: object, axis: str, path: str, *, scalar_ok: bool) -> list:
    """Validated values of one axis: a non-empty list, or (in exclude/include) also a single value."""
    if isinstance(raw, list):
        if not raw:
            raise SpecError(f"{path}: expected a non-empty list")
        return [_AXIS_PARSERS[axis](item, f"{path}[{i}]") for i, item in enumerate(raw)]
    if scalar_ok and not isinstance(raw, dict):
        return [_AXIS_PARSERS[axis](raw, path)]
    raise SpecError(f"{path}: expected a non-empty list, got {_show(raw)}")


def _tables(data: dict, key: str) -> list[dict]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        raise SpecError(f"{key}: expected an array of tables ([[{key}]]), got {_show(raw)}")
    for i, table in enumerate(raw):
        if not isinstance(table, dict):
            raise SpecError(f"{key}[{i}]: expected a table, got {_show(table)}")
        if not table:
            raise SpecError(f"{key}[{i}]: empty table; name at least one axis")
        _check_keys(table, AXES, f"{key}[{i}]", what="axis")
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


def _matches(cell: Cell, table: dict[str, list]) -> bool:
    return all(getattr(cell, axis) in values for axis, values in table.items())


def parse_spec(data: dict, path: str | None = None) -> Spec:
    """Validate parsed TOML and expand it into cells; SpecError on any problem."""
    if not isinstance(data, dict):
        raise SpecError(f"{path or 'spec'}: expected a table at the top level")
    _check_keys(data, _TOP_KEYS, "")

    name = data.get("name")
    if name is None:
        raise SpecError("name: required; expected a non-empty string")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        allowed = "letters, digits, '.', '_' or '-' (it names results)"
        raise SpecError(f"name: expected {allowed}, got {_show(name)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"description: expected a string, got {_show(description)}")
    settings = _parse_settings(data.get("settings", {}))

    raw_axes = data.get("axes", {})
    if not isinstance(raw_axes, dict):
        raise SpecError(f"axes: expected a table, got {_show(raw_axes)}")
    _check_keys(raw_axes, AXES, "axes", what="axis")
    axes = {
        axis: _unique(_values(raw_axes[axis], axis, f"axes.{axis}", scalar_ok=False))
        if axis in raw_axes
        else [DEFAULTS[axis]]
        for axis in AXES
    }
    bad_rate = next((rate for rate in axes["rate"] if rate <= 0), None)
    if "open" in axes["mode"] and bad_rate is not None:
        how = "" if "rate" in raw_axes else " (the default; set axes.rate)"
        raise SpecError(f"axes.rate: mode 'open' needs rate > 0, got {_fmt_number(bad_rate)}{how}")

    excludes = [
        {axis: _values(raw, axis, f"exclude[{i}].{axis}", scalar_ok=True) for axis, raw in table.items()}
        for i, table in enumerate(_tables(data, "exclude"))
    ]
    product = [_normalize(values) for values in _product(axes, "axes")]
    for i, table in enumerate(excludes):
        # An exclude that removes nothing is almost always a typo or a stale value.
        if not any(_matches(cell, table) for cell in product):
            raise SpecError(
                f"exclude[{i}]: matches no cell of the [axes] product (note: aio cells have workers 0, "
                "unary cells stream_messages 1, closed cells rate 0)"
            )
    cells = [cell for cell in product if not any(_matches(cell, table) for table in excludes)]

    for i, table in enumerate(_tables(data, "include")):
        where = f"include[{i}]"
        given = {axis: _values(raw, axis, f"{where}.{axis}", scalar_ok=True) for axis, raw in table.items()}
        # Axes the include does not name take the first [axes] value: the baseline.
        values = {axis: _unique(given.get(axis, axes[axis][:1])) for axis in AXES}
        bad_rate = next((rate for rate in values["rate"] if rate <= 0), None)
        if "open" in values["mode"] and bad_rate is not None:
            how = "" if "rate" in given else " (inherited from [axes])"
            raise SpecError(f"include[{i}].rate: open mode needs rate > 0, got {_fmt_number(bad_rate)}{how}")
        cells.extend(_normalize(combo) for combo in _product(values, f"include[{i}]"))

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


# -- CLI helpers -------------------------------------------------------


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
    return _AXIS_PARSERS[axis](value, path)


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
    return tuple(cell for cell in cells if _matches(cell, wanted))


def with_settings(spec: Spec, **overrides: object) -> Spec:
    """The spec with some settings replaced (None = keep), validated like the file's [settings]."""
    merged = {key: getattr(spec.settings, key) for key in SETTINGS_KEYS}
    _check_keys(overrides, SETTINGS_KEYS, "settings")
    merged.update({key: value for key, value in overrides.items() if value is not None})
    return replace(spec, settings=_parse_settings(merged))
