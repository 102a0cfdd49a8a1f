"""The soak benchmark (bench/studies/soak.py): its growth rule on made-up series, then a short real soak of
each server model that passes, and one of a server leaking on purpose (GRPCLAB_INJECT_LEAK_BYTES) that fails.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bench.studies import soak

SETTINGS = soak.Settings()
SHORT = soak.Settings(rpcs=18_000, cycle_rpcs=2_000, max_seconds=120.0, concurrency=32, connections=4)


def series(rss: list[float], threads: list[int] | None = None, fds: list[int] | None = None) -> list[dict]:
    n = len(rss)
    threads = threads or [20] * n
    fds = fds or [30] * n
    return [{"rss_mib": r, "threads": t, "fds": f} for r, t, f in zip(rss, threads, fds, strict=True)]


def verdicts(samples: list[dict]) -> dict[str, bool]:
    return {c.metric: c.ok for c in soak.judge(samples, [], SETTINGS)}


def test_flat_series_is_bounded() -> None:
    assert verdicts(series([60.0] * 12)) == {"rss_mib": True, "threads": True, "fds": True}


def test_a_ramp_that_settles_is_bounded() -> None:
    # Storms push RSS up in the first cycles (the issue saw 51 -> 125 MB), then it stays: no leak.
    rss = [51, 95, 125, 120, 118, 124, 121, 119, 123, 122, 120, 121]
    assert verdicts(series(rss))["rss_mib"] is True


def test_steady_growth_after_settling_fails() -> None:
    # 4 MiB per cycle: settled 72 (cycle 4), final 100 (median of the last three), beyond 16 + 10 % of 72.
    rss = [60 + 4 * i for i in range(12)]
    check = {c.metric: c for c in soak.judge(series(rss), [], SETTINGS)}["rss_mib"]
    assert check.ok is False
    assert (check.settled, check.final, check.growth) == (72, 100, 28)
    assert check.tolerance == pytest.approx(16 + 7.2)


def test_descriptor_and_thread_leaks_fail() -> None:
    n = 12
    fds = [30 + 2 * i for i in range(n)]  # two descriptors per cycle: 16 more by the end
    threads = [20] * 8 + [21, 23, 25, 27]
    got = verdicts(series([60.0] * n, threads=threads, fds=fds))
    assert got == {"rss_mib": True, "threads": False, "fds": False}


def test_a_single_late_spike_is_not_growth() -> None:
    # The final level is the median of the last three cycle ends: one outlier does not decide.
    rss = [60.0] * 11 + [200.0]
    assert verdicts(series(rss))["rss_mib"] is True


def test_judging_needs_three_cycles() -> None:
    with pytest.raises(ValueError, match="at least 3 cycles"):
        soak.judge(series([60.0, 61.0]), [], SETTINGS)


def test_the_settling_phase_is_a_third_of_the_cycles() -> None:
    assert [soak.settle_cycles(n) for n in (3, 5, 6, 9, 50)] == [2, 2, 2, 3, 16]


def test_bad_options_are_one_line_and_exit_2(capsys) -> None:
    assert soak.main(["--impl", "tornado"]) == 2
    assert "--impl: unknown server model 'tornado'" in capsys.readouterr().err
    assert soak.main(["--rpcs", "100", "--cycle-rpcs", "80"]) == 2
    assert "--rpcs: at least 3 cycles" in capsys.readouterr().err


# --- real servers ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["sync", "aio"])
def test_short_soak_passes(tmp_path, impl: str) -> None:
    _, results = soak.run(replace(SHORT, impls=(impl,)), tmp_path / "out", progress=lambda _: None)
    (result,) = results
    assert result.passed, result.problems
    assert result.cycles == 9 and result.rpcs == 18_000
    storms = result.outcomes
    assert storms["deadline_unary"].get("DEADLINE_EXCEEDED", 0) > 0  # the storms really hit their deadlines
    assert storms["cancel_bidi"] == {"CANCELLED": 900} and storms["cancel_server_stream"] == {"CANCELLED": 900}
    normal = {rpc: {"OK": 9 * n} for rpc, n in soak.part_counts(2_000).items() if rpc in soak.NORMAL}
    assert {rpc: result.outcomes[rpc] for rpc in soak.NORMAL} == normal
    assert result.health == ["SERVING"] * 10
    assert len(result.timeline) > 5 and len(result.cycle_ends) == 9
    doc = json.loads((tmp_path / "out" / f"soak-{impl}.json").read_text())
    assert doc["passed"] is True
    assert "| bounded |" in (tmp_path / "out" / "soak.md").read_text()


@pytest.mark.slow
def test_short_soak_catches_a_leaking_server(tmp_path) -> None:
    # 4 KiB kept per RPC: ~48 MiB over the two thirds after settling, far past the tolerance.
    env = {"GRPCLAB_INJECT_LEAK_BYTES": "4096"}
    _, results = soak.run(replace(SHORT, impls=("aio",)), tmp_path / "out", env=env, progress=lambda _: None)
    (result,) = results
    assert not result.passed
    assert [c.metric for c in result.checks if not c.ok] == ["rss_mib"]
    assert any(p.startswith("rss_mib kept growing") for p in result.problems)
    assert "FAIL" in soak.verdict_line(result) and "GROWING" in (tmp_path / "out" / "soak.md").read_text()
