"""Handler work and the worker-count knee: which work a cell's handlers did, and RPC/s per thread count and model.

A cell's handlers do one kind of work (the handler_* axes, servers/work.py): ``none``, ``wait`` (a wait they yield
during), ``block`` (a blocking call) or ``cpu`` (Python CPU work holding the GIL); a cell that sets two of them is
``mixed``. The report's figure (bench.analysis.figures.handlers) and the README's table both come from
:func:`knee_points`: per work, the median RPC/s of the sync server at each thread count and of aio and go, which
have no pool to size, with every other axis held fixed.

    python -c "from bench import results; from bench.analysis import handlers; \\
        print(handlers.to_markdown(results.load('results/handlers-2026-12-01')))"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .figures.select import hold_fixed, ok_rows, order, stats
from .table import fmt_size

WORK_AXES = {"wait": "handler_wait_ms", "block": "handler_block_ms", "cpu": "handler_cpu_us"}
KINDS = ("none", "wait", "block", "cpu")
NO_POOL = ("aio", "go")  # server models with no thread pool: workers does not apply


def work_kind(row: pd.Series | dict) -> str:
    """'none', 'wait', 'block', 'cpu', or 'mixed' when the handlers do more than one kind."""
    kinds = [kind for kind, axis in WORK_AXES.items() if float(row[axis])]
    return kinds[0] if len(kinds) == 1 else ("none" if not kinds else "mixed")


def work_text(kind: str, amount: float) -> str:
    """'handlers wait 2 ms', 'handlers block 2 ms', 'handlers burn 1000 us of CPU', 'no handler work'."""
    if kind == "wait":
        return f"handlers wait {amount:g} ms"
    if kind == "block":
        return f"handlers block {amount:g} ms"
    if kind == "cpu":
        return f"handlers burn {amount:g} us of CPU"
    return "no handler work"


@dataclass(frozen=True)
class Work:
    kind: str
    amount: float  # ms for wait and block, us for cpu, 0 for none

    @property
    def text(self) -> str:
        return work_text(self.kind, self.amount)


def with_work(df: pd.DataFrame) -> pd.DataFrame:
    """The rows with one kind of work (or none), with columns ``work_kind`` and ``work_amount``."""
    wait, block, cpu = (df[axis].astype(float).to_numpy() for axis in WORK_AXES.values())
    several = (wait > 0).astype(int) + (block > 0) + (cpu > 0) > 1
    kinds = np.select([several, wait > 0, block > 0, cpu > 0], ["mixed", "wait", "block", "cpu"], "none")
    amounts = np.select([wait > 0, block > 0, cpu > 0], [wait, block, cpu], 0.0)
    out = df.assign(work_kind=kinds, work_amount=amounts)
    return out[out["work_kind"] != "mixed"]


@dataclass(frozen=True)
class KneePoints:
    works: list[Work]  # in KINDS order, then by amount
    sync: dict[Work, pd.DataFrame]  # per work: stats of the sync cells by workers (med, lo, hi, n, saturated)
    flat: dict[Work, dict[str, pd.DataFrame]]  # per work: {"aio": stats, "go": stats} (one row each)
    held: dict[str, object]  # the other axes held fixed
    workers: list[int]  # every thread count drawn


def knee_points(df: pd.DataFrame, metric: str = "rps") -> KneePoints:
    """Per work: the sync server's ``metric`` by thread count, and aio's and go's; no works when the run has no sync
    sweep (two thread counts or more) under some handler work. A work with only aio or go cells is kept."""
    ok = with_work(ok_rows(df))
    worked = ok[ok["work_kind"] != "none"]
    if worked.empty:
        return KneePoints([], {}, {}, {}, [])
    sub, held = hold_fixed(ok, ["workers", "impl", *WORK_AXES.values()], base=ok)
    sub = with_work(sub)
    works = sorted(
        {Work(k, a) for k, a in zip(sub["work_kind"], sub["work_amount"], strict=True)},
        key=lambda w: (KINDS.index(w.kind), w.amount),
    )
    sync, flat = {}, {}
    for work in works:
        rows = sub[(sub["work_kind"] == work.kind) & (sub["work_amount"] == work.amount)]
        threads = rows[rows["impl"] == "sync"]
        if threads["workers"].nunique() >= 2:
            sync[work] = stats(threads, ["workers"], metric).sort_values("workers")
        flat[work] = {
            impl: stats(rows[rows["impl"] == impl].assign(one=1), ["one"], metric)
            for impl in order("impl", rows["impl"])
            if impl in NO_POOL
        }
    if not any(w.kind != "none" for w in sync):
        return KneePoints([], {}, {}, held, [])
    empty = stats(sub.iloc[:0], ["workers"], metric)
    works = [w for w in works if w in sync or any(not f.empty for f in flat[w].values())]
    workers = sorted({int(w) for st in sync.values() for w in st["workers"]})
    return KneePoints(works, {w: sync.get(w, empty) for w in works}, {w: flat[w] for w in works}, held, workers)


def _cell(st: pd.DataFrame | None, where: pd.Series | None = None) -> str:
    if st is None or st.empty:
        return "-"
    row = st if where is None else st[where]
    if row.empty:
        return "-"
    value = f"{row['med'].iloc[0]:,.0f}"
    return (
        value + ("*" if bool(row["saturated"].iloc[0]) else "") + ("+" if bool(row["server_saturated"].iloc[0]) else "")
    )


def to_markdown(df: pd.DataFrame) -> str:
    """The README's table: median RPC/s per work (rows) and sync thread count, aio, go (columns)."""
    points = knee_points(df)
    if not points.works:
        return "No sync thread-count sweep under handler work in this run.\n"
    impls = [i for i in NO_POOL if any(i in f and not f[i].empty for f in points.flat.values())]
    head = [f"sync {w}" for w in points.workers] + [f"{i}" for i in impls]
    lines = [
        "| handler work | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]
    any_saturated = any_cpu_bound = False
    for work in points.works:
        st = points.sync[work]
        cells = [_cell(st, st["workers"] == w) for w in points.workers]
        cells += [_cell(points.flat[work].get(i)) for i in impls]
        any_saturated |= any("*" in c for c in cells)
        any_cpu_bound |= any(c.endswith("+") for c in cells)
        lines.append(f"| {work.text} | " + " | ".join(cells) + " |")
    held = ", ".join(
        f"{axis}={fmt_size(v) if axis == 'payload_size' else v}" for axis, v in points.held.items() if axis != "link"
    )
    lines.append("")
    lines.append(f"RPC/s, medians over repetitions; sync N: the sync server with N threads. Held: {held or 'nothing'}.")
    if any_saturated:
        lines.append("*: the load generator was saturated in at least one repetition (the client's limit).")
    if any_cpu_bound:
        lines.append(
            "+: the server's CPU was saturated (>= 90 % busy) in at least one repetition (the server's limit)."
        )
    return "\n".join(lines) + "\n"
