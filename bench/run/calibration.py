"""The machine's floor and noise, measured at the start of every run (``[settings] calibrate``, default true).

Absolute figures do not travel between machines, or between states of one machine: a run says what its machine
could do at the time, next to what it measured.

* **Floor**, per load generator the run uses: a no-op unary RPC, 0 B, one RPC in flight, closed loop, on the lab's
  default sync server (``floor_cell``), one repetition with the run's warm-up and window. Its p50 is about the
  fastest round trip this machine, generator and grpcio make; a cell whose p50 is within ``FLOOR_FACTOR`` of it
  measures mostly that round trip, and its row says so in its notes.
* **Noise**: ``NOISE_WINDOWS`` repetitions (each a fresh server, like a cell's repetitions) of one fixed cell, the
  lab's default cell (``noise_cell``: sync server with 4 threads, 0 B unary, 8 RPCs in flight, closed loop, the
  Python generator), with the run's warm-up and window; the coefficient of variation of RPC/s, p50 and server CPU
  per RPC over them. Why that cell: closed loop, so RPC/s is free to vary (at a fixed open-loop rate RPC/s is the
  offered rate, and its spread would say nothing); both CPUs busy, so interference on either side shows; 0 B, so
  it measures the machine and gRPC rather than payload work; fixed, so the noise of two runs (or two machines)
  compares. The windows are the run's own, so the noise is on the same footing as the spread of the run's
  repetitions, which bench.analysis.stability's ``unstable`` rule compares with it.
* When the run's hold is off (``cpu_latency_hold = false``) and this process may hold it, the floor is measured
  once more while holding /dev/cpu_dma_latency at 0 (``floor_with_hold``): the run then reports what the hold
  would have changed, in its own terms.

Cost: (generators + NOISE_WINDOWS [+ generators, hold off]) repetitions of (warm-up + window + ~0.5 s of server
start and stop): about 22 s for the quick matrix (2 s windows, Python and ghz).

The manifest's ``calibration`` is :meth:`Calibration.to_json`: ``{"floor": {"python": {"p50_ms": ...}, "ghz":
{...}}, "noise": {"cv": {"rps": ..., "lat_p50_ms": ..., "server_cpu_us_per_rpc": ...}, ...}, ...}``
(bench.analysis.findings reads ``floor.<generator>.p50_ms`` and ``noise.cv.<metric>``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, fields

from ..analysis.stability import METRICS, cv
from ..machine import cpu_latency
from ..spec import DEFAULTS, Cell

NOISE_WINDOWS = 5
FLOOR_FACTOR = 2.0  # a p50 within this factor of the floor is "mostly the round trip"

_LABELS = {"rps": "RPC/s", "lat_p50_ms": "p50", "server_cpu_us_per_rpc": "server CPU/RPC"}

MeasureOne = Callable[[Cell, int], dict]  # (cell, repetition) -> a measured row (bench.run.measure)


def noise_cell() -> Cell:
    """The lab's default cell: every axis at its default (sync, 4 threads, 0 B unary, 8 in flight, Python)."""
    return Cell.from_dict(dict(DEFAULTS))


def floor_cell(generator: str) -> Cell:
    """A no-op unary with one RPC in flight on the default sync server, driven by ``generator``."""
    return Cell.from_dict({**DEFAULTS, "concurrency": 1, "connections": 1, "loadgen": generator})


@dataclass(frozen=True)
class Floor:
    """One repetition of ``floor_cell``: the fastest round trip of this machine, generator and grpcio."""

    cell: str  # its cell key
    p50_ms: float
    p99_ms: float
    rps: float
    server_cpu_us_per_rpc: float
    loadgen_cpu_us_per_rpc: float

    @classmethod
    def from_row(cls, row: dict) -> Floor:
        return cls(
            cell=row["cell_key"],
            p50_ms=float(row["lat_p50_ms"]),
            p99_ms=float(row["lat_p99_ms"]),
            rps=float(row["rps"]),
            server_cpu_us_per_rpc=float(row["server_cpu_us_per_rpc"]),
            loadgen_cpu_us_per_rpc=float(row["loadgen_cpu_us_per_rpc"]),
        )

    def text(self, generator: str) -> str:
        return (
            f"{generator} p50 {self.p50_ms:.3f} ms (p99 {self.p99_ms:.3f} ms, {self.rps:,.0f} RPC/s, "
            f"server {self.server_cpu_us_per_rpc:,.0f} us/RPC, generator {self.loadgen_cpu_us_per_rpc:,.0f} us/RPC)"
        )


@dataclass(frozen=True)
class Noise:
    """Repetitions of ``noise_cell``: each metric's values and their coefficient of variation."""

    cell: str
    cv: dict[str, float]  # metric -> CV over the windows (a fraction)
    windows: dict[str, tuple[float, ...]]  # metric -> the windows' values, in the order measured

    @classmethod
    def from_rows(cls, cell: str, rows: Sequence[dict]) -> Noise:
        windows = {m: tuple(float(r[m]) for r in rows) for m in METRICS}
        return cls(cell=cell, cv={m: cv(values) for m, values in windows.items()}, windows=windows)

    def text(self) -> str:
        cvs = ", ".join(f"{_LABELS[m]} {v:.1%}" for m, v in self.cv.items() if math.isfinite(v))
        n = len(next(iter(self.windows.values()), ()))
        return f"noise (CV of {n} repetitions of {self.cell}): {cvs or 'not finite'}"


@dataclass(frozen=True)
class Calibration:
    """A run's floor and noise (the module docstring); the manifest's ``calibration``."""

    floor: dict[str, Floor]  # generator -> its floor, measured as the run measures (with its hold, or without)
    noise: Noise | None  # None: not measured (see failures)
    window_s: float  # each repetition's measured window (the run's duration)
    warmup_s: float
    seconds: float  # wall time the calibration took
    hold_off: bool = False  # measured without the cpu_latency hold (the run's setting)
    floor_with_hold: dict[str, Floor] | None = None  # hold off: the floor again, holding /dev/cpu_dma_latency at 0
    failures: dict[str, str] = field(default_factory=dict)  # what could not be measured -> why

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        """The manifest's ``calibration``; ValueError naming unknown keys, KeyError/TypeError when malformed."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"calibration: unknown keys {unknown}")
        noise = data.get("noise")
        with_hold = data.get("floor_with_hold")
        return cls(
            floor={str(g): Floor(**entry) for g, entry in data["floor"].items()},
            noise=Noise(
                cell=noise["cell"],
                cv={str(m): float(v) for m, v in noise["cv"].items()},
                windows={str(m): tuple(float(x) for x in v) for m, v in noise["windows"].items()},
            )
            if noise
            else None,
            window_s=float(data["window_s"]),
            warmup_s=float(data["warmup_s"]),
            seconds=float(data["seconds"]),
            hold_off=bool(data.get("hold_off", False)),
            floor_with_hold={str(g): Floor(**entry) for g, entry in with_hold.items()} if with_hold else None,
            failures={str(k): str(v) for k, v in (data.get("failures") or {}).items()},
        )

    @property
    def noise_cv(self) -> dict[str, float]:
        """metric -> the machine's CV (finite values only; empty when the noise was not measured)."""
        return {m: v for m, v in (self.noise.cv if self.noise else {}).items() if math.isfinite(v)}

    def floor_note(self, generator: str, p50_ms: float) -> str | None:
        """A row's note when its p50 is within FLOOR_FACTOR of its generator's floor (None otherwise)."""
        floor = self.floor.get(generator)
        if floor is None or not math.isfinite(p50_ms) or not p50_ms <= FLOOR_FACTOR * floor.p50_ms:
            return None
        return (
            f"p50 {p50_ms:.3f} ms is within {FLOOR_FACTOR:g}x of this machine's floor ({floor.p50_ms:.3f} ms: "
            f"no-op unary, one RPC in flight, {generator} generator): mostly the round trip, not the cell's work"
        )

    def lines(self) -> list[str]:
        """What people read (the terminal summary, the report)."""
        window = f"{self.window_s:g} s windows after {self.warmup_s:g} s warm-up"
        out = []
        if self.floor:
            held = "without the cpu_latency hold" if self.hold_off else "as the run measures"
            floors = "; ".join(floor.text(g) for g, floor in self.floor.items())
            out.append(f"floor (no-op unary, 0 B, one RPC in flight, sync server; {held}): {floors}")
        if self.floor_with_hold:
            parts = []
            for generator, held_floor in self.floor_with_hold.items():
                off = self.floor.get(generator)
                ratio = f", {off.p50_ms / held_floor.p50_ms:.2f}x" if off and held_floor.p50_ms > 0 else ""
                before = f"{off.p50_ms:.3f} ms without" if off else "not measured without"
                parts.append(f"{generator} p50 {before}, {held_floor.p50_ms:.3f} ms with the hold{ratio}")
            out.append(
                "the hold was off for this run; the floor held at 0 us for comparison: " + "; ".join(parts) + " "
                "(cells with few RPCs in flight include idle-CPU wake-ups that a held run does not)"
            )
        if self.noise is not None:
            out.append(self.noise.text())
        for what, why in self.failures.items():
            out.append(f"not measured: {what}: {why}")
        out.append(f"calibration: {window}, {self.seconds:.0f} s in all")
        return out


def repetitions(generators: Iterable[str], with_hold: bool) -> int:
    """How many cell repetitions a calibration measures (for estimates)."""
    n = len(set(generators))
    return n + NOISE_WINDOWS + (n if with_hold else 0)


def _usable(row: dict) -> str | None:
    """Why a calibration row cannot be used, or None."""
    if row.get("failed"):
        return str(row.get("error") or "failed")
    if not row.get("rpcs_ok") or not math.isfinite(float(row.get("lat_p50_ms", math.nan))):
        return "no successful RPC in the window"
    return None


def calibrate(
    generators: Iterable[str],
    measure_one: MeasureOne,
    *,
    settings_window: tuple[float, float],
    hold_off: bool,
    with_hold: Callable[[], AbstractContextManager[cpu_latency.HoldState]] | None = None,
    notice: Callable[[str], None] = lambda text: None,
) -> Calibration:
    """Measure the floor of each generator and the noise of ``noise_cell``; failures are recorded, not raised.

    ``settings_window``: the run's (warm-up, duration). ``hold_off``: idle CPUs were not kept polling while this
    measures. ``with_hold``: a hold of /dev/cpu_dma_latency at 0 (cpu_latency.hold) within which the floor is
    measured once more, for comparison (a run with the hold turned off).
    """
    began = time.monotonic()
    warmup, duration = settings_window
    floors: dict[str, Floor] = {}
    held_floors: dict[str, Floor] = {}
    failures: dict[str, str] = {}
    for generator in sorted(set(generators)):
        cell = floor_cell(generator)
        row = measure_one(cell, 0)
        why = _usable(row)
        if why:
            failures[f"floor.{generator}"] = why
        else:
            floors[generator] = Floor.from_row(row)
            notice(f"calibration: floor {floors[generator].text(generator)}")
        if with_hold is not None:
            with with_hold() as state:
                if not state.held:
                    failures[f"floor_with_hold.{generator}"] = f"the hold could not be taken: {state.reason}"
                    continue
                row = measure_one(cell, 1)
            why = _usable(row)
            if why:
                failures[f"floor_with_hold.{generator}"] = why
            else:
                held_floors[generator] = Floor.from_row(row)
                notice(f"calibration: floor with the hold, {held_floors[generator].text(generator)}")
    cell = noise_cell()
    rows = [measure_one(cell, rep) for rep in range(NOISE_WINDOWS)]
    good = [row for row in rows if _usable(row) is None]
    noise = None
    if len(good) >= 2:
        noise = Noise.from_rows(cell.key(), good)
        if len(good) < len(rows):
            failures["noise"] = f"{len(rows) - len(good)} of {len(rows)} repetitions failed: {_first_error(rows)}"
    else:
        failures["noise"] = f"{len(rows) - len(good)} of {len(rows)} repetitions failed: {_first_error(rows)}"
    calibration = Calibration(
        floor=floors,
        noise=noise,
        window_s=duration,
        warmup_s=warmup,
        seconds=time.monotonic() - began,
        hold_off=hold_off,
        floor_with_hold=held_floors or None,
        failures=failures,
    )
    if noise is not None:
        notice(f"calibration: {noise.text()}")
    return calibration


def _first_error(rows: Sequence[dict]) -> str:
    return next((why for row in rows if (why := _usable(row))), "")
