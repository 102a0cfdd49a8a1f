"""bench.analysis.crosscheck: Python generator vs ghz, paired cell by cell from the tidy schema."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.analysis import crosscheck, results


def rows(python: dict, ghz: dict, **axes) -> pd.DataFrame:
    base = {
        "impl": "sync", "rpc": "unary", "payload_size": 0, "concurrency": 16, "connections": 1,
        "compression": "none", "tls": "off", "mode": "closed", "failed": False, "server_saturated": False,
        "lat_p50_ms": 1.0, "lat_p99_ms": 2.0, "loadgen_cpu_us_per_rpc": 50.0, "loadgen_cpu_util": 0.5,
        "server_cpu_util": 0.5, "loadgen_saturated": False,
    }  # fmt: skip
    out = []
    for loadgen, values in (("python", python), ("ghz", ghz)):
        for rep in range(3):
            out.append({**base, **axes, **values, "loadgen": loadgen, "repetition": rep})
    return pd.DataFrame(out)


def test_python_at_least_90_percent_of_ghz_meets_the_goal():
    wide = crosscheck.pairs(rows({"rps": 950.0}, {"rps": 1000.0}))
    assert len(wide) == 1 and wide["ratio"].iloc[0] == pytest.approx(0.95)
    assert crosscheck.goal(wide.iloc[0]) == "met"


def test_slower_python_is_flagged_or_missed_never_hidden():
    flagged = crosscheck.pairs(rows({"rps": 500.0, "loadgen_saturated": True}, {"rps": 1000.0}))
    assert crosscheck.goal(flagged.iloc[0]) == "flagged saturated"
    assert crosscheck.limit(flagged.iloc[0]) == "Python generator"
    missed = crosscheck.pairs(rows({"rps": 500.0}, {"rps": 1000.0}, concurrency=1))
    assert crosscheck.goal(missed.iloc[0]) == "MISSED"
    assert crosscheck.limit(missed.iloc[0]).startswith("neither: one RPC in flight")


def test_failed_repetitions_are_left_out_and_unpaired_cells_dropped():
    df = rows({"rps": 900.0}, {"rps": 1000.0})
    df.loc[0, ["failed", "rps"]] = [True, 1.0]
    other = rows({"rps": 1.0}, {"rps": 1.0}, impl="aio")
    other = other[other["loadgen"] == "python"]  # aio has no ghz row: not a pair
    wide = crosscheck.pairs(pd.concat([df, other], ignore_index=True))
    assert list(wide["impl"]) == ["sync"] and wide["rps_python"].iloc[0] == 900.0
    assert wide["reps_python"].iloc[0] == 2


def test_a_run_without_both_generators_is_one_line_exit_2(tmp_path, capsys):
    df = rows({"rps": 1.0}, {"rps": 1.0})
    with pytest.raises(results.ResultsError, match="both loadgen"):
        crosscheck.pairs(df[df["loadgen"] == "python"])
    assert crosscheck.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "manifest.json" in err


def test_cells_that_differ_in_any_other_axis_are_not_merged():
    # payload_kind and workers were not among the axes the cross-check once paired on
    text = rows({"rps": 900.0}, {"rps": 1000.0}, payload_kind="text", workers=16)
    random = rows({"rps": 400.0}, {"rps": 1000.0}, payload_kind="random", workers=16)
    fewer = rows({"rps": 300.0}, {"rps": 1000.0}, payload_kind="text", workers=4)
    wide = crosscheck.pairs(pd.concat([text, random, fewer], ignore_index=True))
    assert len(wide) == 3
    assert sorted(wide["rps_python"]) == [300.0, 400.0, 900.0]
