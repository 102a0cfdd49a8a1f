"""Run settings shared by every cell of a spec ([settings] in a spec file), and their checks."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .cell import SpecError, check_keys, fmt_number, is_int, is_number, positive_int, show


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
    # Hold /dev/cpu_dma_latency at 0 while the run measures (idle CPUs poll instead of sleeping; bench.machine.
    # cpu_latency). Off only to measure what the hold changes.
    cpu_latency_hold: bool = True
    # Measure the machine's floor and noise before the matrix (bench.run.calibration); off keeps tiny runs fast.
    calibrate: bool = True


SETTINGS_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Settings))


def _number(value: object, path: str, minimum: float, strict: bool) -> float:
    if not is_number(value) or value < minimum or (strict and value == minimum):
        bound = f"> {fmt_number(minimum)}" if strict else f">= {fmt_number(minimum)}"
        raise SpecError(f"{path}: expected a number {bound}, got {show(value)}")
    return float(value)


def _cpus(value: object, path: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise SpecError(f"{path}: expected a non-empty list of CPU ids (integers >= 0), got {show(value)}")
    seen: list[int] = []
    for i, cpu in enumerate(value):
        if not is_int(cpu) or cpu < 0:
            raise SpecError(f"{path}[{i}]: expected a CPU id (integer >= 0), got {show(cpu)}")
        if cpu in seen:
            raise SpecError(f"{path}[{i}]: CPU {cpu} is listed twice")
        seen.append(cpu)
    return tuple(seen)


def parse_settings(table: object, prefix: str = "settings") -> Settings:
    if not isinstance(table, dict):
        raise SpecError(f"{prefix}: expected a table, got {show(table)}")
    check_keys(table, SETTINGS_KEYS, prefix)
    defaults = Settings()
    values = {key: table.get(key, getattr(defaults, key)) for key in SETTINGS_KEYS}

    def path(key: str) -> str:
        return f"{prefix}.{key}"

    out = {
        "duration": _number(values["duration"], path("duration"), 0, strict=True),
        "warmup": _number(values["warmup"], path("warmup"), 0, strict=False),
        "repetitions": positive_int(values["repetitions"], path("repetitions")),
        "slo_p99_ms": _number(values["slo_p99_ms"], path("slo_p99_ms"), 0, strict=True),
        "server_cpus": _cpus(values["server_cpus"], path("server_cpus")),
        "loadgen_cpus": _cpus(values["loadgen_cpus"], path("loadgen_cpus")),
        "loadgen_processes": positive_int(values["loadgen_processes"], path("loadgen_processes")),
        "cell_timeout": _number(values["cell_timeout"], path("cell_timeout"), 0, strict=True),
    }
    seed = values["seed"]
    if not is_int(seed) or seed < 0:
        raise SpecError(f"{path('seed')}: expected an integer >= 0, got {show(seed)}")
    out["seed"] = seed
    for key in ("cpu_latency_hold", "calibrate"):
        if not isinstance(values[key], bool):
            raise SpecError(f"{path(key)}: expected true or false, got {show(values[key])}")
        out[key] = values[key]
    if set(out["server_cpus"]) & set(out["loadgen_cpus"]):
        why = "honest numbers need separate CPUs"
        raise SpecError(f"{path('loadgen_cpus')}: overlaps {path('server_cpus')} ({why})")
    # A timeout the measurement itself cannot fit in would fail every cell after the wait.
    needed = out["warmup"] + out["duration"]
    if out["cell_timeout"] <= needed:
        raise SpecError(
            f"{path('cell_timeout')}: {fmt_number(out['cell_timeout'])} s must exceed "
            f"warmup + duration ({fmt_number(needed)} s)"
        )
    return Settings(**out)
