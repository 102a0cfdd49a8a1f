"""`python -m bench.analysis.crosscheck RUN_DIR`: the Python load generator against ghz, cell by cell (README table).

Reads a run of bench/specs/crosscheck.toml (or any run whose cells come in pairs that
differ only in ``loadgen``) and prints a markdown table: medians over repetitions of
RPC/s, p50, p99 and generator CPU per RPC for each generator, Python's RPC/s as a
fraction of ghz's, and which side limits the cell. The goal for the Python generator
is at least 0.9x ghz's RPC/s on the same cell, or the cell flagged saturated
(``loadgen_saturated``): the table says which of the two holds, or that neither does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..spec import AXES
from . import results
from .table import fmt_size

GOAL = 0.9  # Python's RPC/s / ghz's on the same cell
# Two rows are "the same cell" apart from the generator when every other axis is equal.
PAIRED_ON = tuple(axis for axis in AXES if axis != "loadgen")
SHOWN = ("impl", "payload_size", "concurrency")


def pairs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell measured with both generators: medians per generator, side by side."""
    ok = df[~df["failed"].astype(bool)].astype({"loadgen_saturated": bool, "server_saturated": bool})
    axes = [a for a in PAIRED_ON if a in ok.columns]
    agg = ok.groupby([*axes, "loadgen"], dropna=False).agg(
        reps=("rps", "size"),
        rps=("rps", "median"),
        p50=("lat_p50_ms", "median"),
        p99=("lat_p99_ms", "median"),
        gen_us=("loadgen_cpu_us_per_rpc", "median"),
        server_util=("server_cpu_util", "median"),
        saturated=("loadgen_saturated", "mean"),  # share of repetitions flagged
        server_saturated=("server_saturated", "mean"),
    )
    wide = agg.unstack("loadgen")
    if "python" not in wide.columns.get_level_values(1) or "ghz" not in wide.columns.get_level_values(1):
        raise results.ResultsError("the run has no cell measured with both loadgen = python and loadgen = ghz")
    wide = wide.dropna(subset=[("rps", "python"), ("rps", "ghz")])
    wide.columns = [f"{metric}_{gen}" for metric, gen in wide.columns]
    wide = wide.reset_index()
    wide["ratio"] = wide["rps_python"] / wide["rps_ghz"]
    return wide


def limit(row: pd.Series) -> str:
    """Which side limits the cell, from the saturation flags of the majority of repetitions."""
    sides = []
    if row["saturated_python"] >= 0.5:
        sides.append("Python generator")
    if row["saturated_ghz"] >= 0.5:
        sides.append("ghz")
    if row["server_saturated_python"] >= 0.5 or row["server_saturated_ghz"] >= 0.5:
        sides.append("server")
    if sides:
        return " + ".join(sides)
    if row["concurrency"] == 1:
        return "neither: one RPC in flight, round-trip bound"
    return "neither saturated"


def goal(row: pd.Series) -> str:
    if row["ratio"] >= GOAL:
        return "met"
    if row["saturated_python"] >= 0.5:
        return "flagged saturated"
    return "MISSED"


def to_markdown(wide: pd.DataFrame) -> str:
    lines = [
        "| server | payload | in flight | RPC/s Python | RPC/s ghz | Python/ghz | p50 ms Python / ghz "
        "| p99 ms Python / ghz | generator CPU us/RPC Python / ghz | server CPU busy Python / ghz | limit | goal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for _, r in wide.sort_values(list(SHOWN)).iterrows():
        lines.append(
            f"| {r['impl']} | {fmt_size(r['payload_size'])} | {int(r['concurrency'])} "
            f"| {r['rps_python']:,.0f} | {r['rps_ghz']:,.0f} | {r['ratio']:.2f}x "
            f"| {r['p50_python']:.2f} / {r['p50_ghz']:.2f} | {r['p99_python']:.2f} / {r['p99_ghz']:.2f} "
            f"| {r['gen_us_python']:.0f} / {r['gen_us_ghz']:.0f} "
            f"| {r['server_util_python']:.0%} / {r['server_util_ghz']:.0%} | {limit(r)} | {goal(r)} |"
        )
    reps = int(wide[["reps_python", "reps_ghz"]].min().min())
    lines.append("")
    lines.append(f"Medians of {reps}+ repetitions per cell and generator.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis.crosscheck", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    args = parser.parse_args(argv)
    try:
        table = to_markdown(pairs(results.load(args.run_dir)))
    except results.ResultsError as exc:
        print(f"grpclab crosscheck: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
