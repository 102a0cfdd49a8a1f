"""Selecting like with like: the rows a figure compares, with every axis it does not vary held fixed."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ...spec import ALLOWED, AXES
from ...spec.cell import INAPPLICABLE
from ..table import value_text


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["failed"].astype(bool)]


def _inapplicable(rows: pd.DataFrame, axis: str, vary: list[str]) -> pd.Series:
    """Rows where ``axis`` does not apply and whose deciding axis is varied (aio and go rows for workers, ...)."""
    if axis in INAPPLICABLE and INAPPLICABLE[axis].deciders & set(vary):
        return _not_applying(rows, axis)
    return pd.Series(False, index=rows.index)


def _not_applying(rows: pd.DataFrame, axis: str) -> pd.Series:
    """Rows where ``axis`` means nothing (bench.spec.cell.INAPPLICABLE: workers of aio and go rows, the client of
    ghz rows, ...): bench.spec.cell.applies, over a table's columns at once."""
    rule = INAPPLICABLE[axis]
    held = pd.Series(False, index=rows.index)
    for condition in rule.where:
        met = pd.Series(True, index=rows.index)
        for decider, values in condition.items():
            met &= rows[decider].astype(str).isin(values)
        held |= met
    if rule.only is not None:
        held &= rows[axis].astype(str).isin(rule.only)
    return held


def hold_fixed(
    df: pd.DataFrame, vary: Iterable[str], base: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Rows of ``df`` where every axis outside ``vary`` has one value; returns them and {axis: value held}.

    For each other axis (in spec order) it keeps the value under which the ``vary`` axes have the most distinct
    combinations; ties go to the value with the most cells, then to the first seen. An axis that does not apply
    to some rows (workers for aio, ...) keeps those rows whenever the deciding axis (impl, ...) is varied.
    Reported as held: the axes that take more than one value in ``base`` (default ``df``).
    """
    vary = list(vary)
    sub = df
    for axis in AXES:
        if axis in vary or sub.empty:
            continue
        exempt = _inapplicable(sub, axis, vary)
        values = list(dict.fromkeys(sub.loc[~exempt, axis].tolist()))
        if len(values) <= 1:
            continue

        def score(value: object, sub=sub, exempt=exempt, axis=axis, values=values) -> tuple:
            chosen = sub[exempt | (sub[axis] == value)]
            combos = len(chosen[vary].astype(str).drop_duplicates()) if vary else 0
            return (combos, chosen["cell_key"].nunique(), -values.index(value))

        best = max(values, key=score)
        sub = sub[exempt | (sub[axis] == best)]
    base = df if base is None else base
    held: dict[str, object] = {}
    for axis in AXES:
        if axis in vary or base[axis].astype(str).nunique() < 2:
            continue
        if axis in INAPPLICABLE and _not_applying(sub, axis).all():
            continue  # e.g. rate in closed loop: nothing to say
        values = sub.loc[~_inapplicable(sub, axis, vary), axis].unique()
        if len(values) == 1:
            held[axis] = values[0]
    return sub, held


def held_text(held: dict[str, object]) -> str:
    if not held:
        return "No other axis varies in these cells."
    parts = [f"{axis}={value_text(axis, value)}" for axis, value in held.items()]
    return "Held fixed (the value with the most comparable cells): " + ", ".join(parts) + "."


def stats(sub: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """Per group of ``by``: med, lo, hi, n of ``metric`` over repetitions, and whether any was gen-saturated
    (``saturated``) or had the server's CPUs saturated (``server_saturated``)."""
    rows = sub.dropna(subset=[metric])
    if rows.empty:
        return pd.DataFrame(columns=[*by, "med", "lo", "hi", "n", "saturated", "server_saturated"])
    grouped = rows.groupby(by, observed=True)
    out = grouped[metric].agg(med="median", lo="min", hi="max", n="count")
    out["saturated"] = grouped["loadgen_saturated"].any()
    out["server_saturated"] = grouped["server_saturated"].any()
    return out.reset_index()


def order(axis: str, values: Iterable[object]) -> list[object]:
    values = list(dict.fromkeys(values))
    if axis in ALLOWED:  # enumerated axes: in the spec's order
        return [v for v in ALLOWED[axis] if v in values]
    return sorted(values)
