"""`python -m bench.analysis.measured RUN_DIR`: the README's "Measured on this machine" figures of a committed run.

Nothing in those figures is typed in: this module computes them from a run's manifest.json and cells.parquet,
and tests/test_readme.py checks that the README still shows what it prints.

* ``describe(run_dir)``: which run, when, on what (CPU, kernel, versions, commit) and with which settings (cells,
  repetitions, window, warm-up, pinning), the harness's own cost (wall time, overhead per repetition, failed
  repetitions), the run's machine lines (its /dev/cpu_dma_latency hold, grpclab system's warnings, the calibrated
  floor and noise: bench.analysis.summary.machine_lines) and, with ``system=True``, grpclab system's output as the
  run began (the manifest's system facts and checks).
* ``tables(run_dir)``: the quick matrix's cells in the lab's own per-cell table (bench.analysis.table, the table
  `grpclab run` and `grpclab report` show): one section per question (server model and RPC kind, compression,
  TLS), each the cells that differ from the quick matrix's base cell in that section's axes only, then every cell.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..spec import AXES
from . import results, summary, table

# The quick matrix's base cell (bench/specs/quick.toml [axes]); every other cell of it changes one study's axes.
# workers applies to the sync server only (other servers' rows store 0); stream_messages to streams (unary: 1).
BASE: dict[str, str] = {
    "impl": "sync",
    "rpc": "unary",
    "workers": "4",
    "processes": "1",
    "payload_size": "1024",
    "payload_kind": "text",
    "compression": "none",
    "tls": "off",
    "concurrency": "8",
    "connections": "1",
    "stream_messages": "10",
    "mode": "closed",
    "rate": "0.0",
    "arrival": "constant",
    "loadgen": "python",
    "link": "loopback",
}


@dataclass(frozen=True)
class Section:
    title: str
    vary: tuple[str, ...]  # the axes whose values the section compares
    where: dict[str, str] = field(default_factory=dict)  # axes held at another value than the base's


SECTIONS = (
    Section("Server model and RPC kind (1 KiB of text, 8 in flight, closed loop)", ("impl", "rpc")),
    Section(
        "Compression (sync server, unary, 64 KiB each way; wire bytes count both directions)",
        ("payload_kind", "compression"),
        {"payload_size": "65536"},
    ),
    Section("TLS and mTLS (1 KiB of text, unary, 8 in flight)", ("impl", "tls")),
)


def _expected(axis: str, row: pd.Series, where: dict[str, str]) -> str | None:
    """The value ``row`` must have on ``axis`` to belong to a section (None: any)."""
    if axis == "workers" and str(row["impl"]) != "sync":
        return None
    if axis == "stream_messages" and "stream_messages" not in where:
        return "1" if str(row["rpc"]) == "unary" else BASE["stream_messages"]
    return where.get(axis, BASE.get(axis))


def select(df: pd.DataFrame, section: Section) -> pd.DataFrame:
    """The rows of the cells that differ from the base cell (with ``section.where``) in ``section.vary`` only."""
    axes = [a for a in AXES if a in df.columns and a not in section.vary]
    first = df.drop_duplicates("cell_key").set_index("cell_key")
    keep = [
        key
        for key, row in first.iterrows()
        if all((want := _expected(a, row, section.where)) is None or str(row[a]) == want for a in axes)
    ]
    return df[df["cell_key"].isin(keep)]


def tables(run_dir: str | Path) -> str:
    """Markdown: one per-cell table per section, then every cell of the run."""
    df = results.load(run_dir)
    noise = summary.noise_cv(results.read_manifest(run_dir))
    out = []
    for section in SECTIONS:
        rows = select(df, section)
        if rows.empty:
            continue
        out += [f"**{section.title}**", "", table.to_markdown(table.build(rows, noise))]
    everything = table.build(df, noise)
    out += [
        "<details><summary>Every cell of the run (medians over repetitions)</summary>",
        "",
        table.to_markdown(everything),
        "</details>",
        "",
    ]
    return "\n".join(out)


def cells(run_dir: str | Path) -> str:
    """Markdown: every cell of the run in the lab's per-cell table (for a run of a few cells)."""
    return table.to_markdown(table.build(results.load(run_dir), summary.noise_cv(results.read_manifest(run_dir))))


BY_HAND = "ghz-by-hand.json"  # beside a run of bench/specs/floor.toml: ghz run by hand on the same kind of server
FLOOR_GOAL = 1.3  # issue 11: the Python generator's p50 within this factor of ghz's by hand, with the hold


def floor_check(run_dir: str | Path) -> str:
    """Markdown: the Python generator's p50 (the run's median, per client model) against ghz's by hand (the median
    of its runs)."""
    run_dir = Path(run_dir)
    df = results.load(run_dir)
    ok = df[~df["failed"].astype(bool)]
    python = ok[ok["loadgen"].astype(str) == "python"]
    cell = ok.loc[ok["loadgen"].astype(str) == "ghz", "lat_p50_ms"]
    try:
        by_hand = json.loads((run_dir / BY_HAND).read_text())
    except (OSError, ValueError) as exc:
        raise results.ResultsError(f"{run_dir / BY_HAND}: {exc}") from None
    hand = [float(r["p50_ms"]) for r in by_hand["runs"]]
    lines = []
    for client, rows in python.groupby(python["client"].astype(str), sort=False):
        p50 = rows["lat_p50_ms"].median()
        ratio = p50 / statistics.median(hand)
        verdict = "within" if ratio <= FLOOR_GOAL else "over"
        lines.append(
            f'p50 of the Python generator with `client = "{client}"` (`grpclab run`, median of {len(rows)}): '
            f"{p50:.3f} ms; Python / ghz by hand: **{ratio:.2f}x**, {verdict} the {FLOOR_GOAL:g}x issue 11 asks for."
        )
    return (
        f'p50 of the `loadgen = "ghz"` cell (median of {len(cell)}): {cell.median():.3f} ms; '
        f"of ghz by hand ({len(hand)} runs): {' / '.join(f'{v:.3f}' for v in hand)} ms.\n\n" + "\n\n".join(lines) + "\n"
    )


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def describe(run_dir: str | Path, system: bool = False) -> str:
    """Markdown: the run, its machine and settings, the harness's cost; grpclab system's output with ``system``."""
    run_dir = Path(run_dir)
    m = results.read_manifest(run_dir)
    df = results.load(run_dir)
    env, s, versions = m.environment, m.settings, m.environment.versions
    when = f"{_time(m.started_at):%Y-%m-%d %H:%M}"
    if m.ended_at:
        minutes = (_time(m.ended_at) - _time(m.started_at)).total_seconds() / 60
        when += f"-{_time(m.ended_at):%H:%M} UTC ({minutes:.1f} min)"
    commit = f"`{env.git.commit[:7]}`" if env.git.commit else "unknown"
    if env.git.dirty:
        commit += " (with uncommitted changes)"
    spec = f"`grpclab run {m.spec_path}`" if m.spec_path else f"spec `{m.spec_name}`"
    software = f"Python {versions['python']}, grpcio {versions['grpcio']}, protobuf {versions['protobuf']}"
    if env.ghz:
        software += f", ghz {env.ghz}"
    written = m.spec_source.get("settings", {})
    changed = [(n, v) for n, v in (("repetitions", s.repetitions), ("duration", s.duration)) if written.get(n, v) != v]
    overridden = ""
    if changed:
        flags = " ".join(f"--{name} {value:g}" for name, value in changed)
        overridden = f" (`{flags}`; the spec's own: {written['repetitions']} x {written['duration']:g} s)"
    failed = int(df["failed"].astype(bool).sum())
    lines = [
        f"Run `{run_dir.name}` ({spec}), {when}, commit {commit}: {env.cpu_model}, {env.cores} CPUs, "
        f"{env.memory_gib:g} GiB, Linux {env.kernel}, {software}.",
        "",
        f"Settings: {m.cells} cells x {s.repetitions} repetitions of {s.duration:g} s after {s.warmup:g} s of "
        f"warm-up{overridden}, in a shuffled order (seed {s.seed}); server on CPU "
        f"{','.join(map(str, s.server_cpus))}, load generator on CPU {','.join(map(str, s.loadgen_cpus))}. "
        f"Harness overhead per repetition beyond warm-up and window: median {df['overhead_s'].median():.2f} s, "
        f"max {df['overhead_s'].max():.2f} s; {failed} of {len(df)} repetitions failed.",
        "",
    ]
    lines += [f"- {'warning: ' if line.kind == 'warning' else ''}{line.text}" for line in summary.machine_lines(m)]
    if system and m.system is not None:
        lines += ["", "`grpclab system` as the run began (its manifest's `system`):", "", "```"]
        lines += [m.system.render(), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis.measured", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--describe", action="store_true", help="only the run, its machine and settings")
    parser.add_argument("--system", action="store_true", help="with --describe: grpclab system's output too")
    parser.add_argument("--cells", action="store_true", help="only the table of every cell")
    parser.add_argument("--floor", action="store_true", help=f"a floor run: the Python generator against {BY_HAND}")
    args = parser.parse_args(argv)
    try:
        if args.describe:
            text = describe(args.run_dir, system=args.system)
        elif args.cells:
            text = cells(args.run_dir)
        elif args.floor:
            text = floor_check(args.run_dir)
        else:
            text = tables(args.run_dir)
    except results.ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
