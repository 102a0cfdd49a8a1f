"""The findings rendered: plain text, the terminal's compact form, Markdown and an HTML section."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType
from .confidence import _METRIC_WORDS, _odds, _range_text, chance_apart
from .engine import (
    CLEAR,
    CPU,
    FAILED_REPETITIONS,
    FEW_REPETITIONS,
    GENERATOR_SATURATED,
    INCONCLUSIVE,
    INDICATIVE,
    INSIDE_SPREAD,
    NEAR_FLOOR,
    NOISE_FACTOR,
    ONE_REPETITION,
    P99,
    RANKING_INSIDE_SPREAD,
    RPS,
    SERVER_NOT_LIMIT,
    TEST_REPETITIONS,
    WIRE,
    WITHIN_NOISE,
    Finding,
    Instance,
)
from .studies import TITLES
from .words import _UNITS, _bits_per_second, _number, _signed, _times

# -- renderers --------------------------------------------------------------------------------------------------------

_TITLES = TITLES  # the registry's (studies.py)
_STYLES = {CLEAR: "green", INDICATIVE: "yellow", INCONCLUSIVE: "dim"}
_LEGEND = (
    "Medians over successful repetitions; each finding says what its label rests on. clear: with 4 or more "
    "repetitions a side, the exact Mann-Whitney test gives p < 0.05; with 2-3, the repetitions' min..max ranges are "
    f"apart and the difference is over {NOISE_FACTOR:g}x the machine's calibrated noise (its coefficient of "
    "variation). indicative: apart, but on too few repetitions to be sure, or within that noise, or on one "
    "repetition, or with latencies near the machine's floor. inconclusive: inside the repetitions' spread."
)
# The terminal's compact form: a few words per reason instead of its sentence.
_SHORT = {
    INSIDE_SPREAD: "inside the spread",
    ONE_REPETITION: "1 repetition",
    FEW_REPETITIONS: "few repetitions",
    WITHIN_NOISE: "within the machine's noise",
    NEAR_FLOOR: "near the machine's floor",
    RANKING_INSIDE_SPREAD: "ranking inside the spread",
    SERVER_NOT_LIMIT: "server not saturated",
    FAILED_REPETITIONS: "failed repetitions left out",
}


def legend(findings: Sequence[Finding]) -> str:
    """The labels explained, and, when a leading comparison rests on 2-3 repetitions a side, how little 'apart'
    proves there: two cells that do not differ give ranges apart with probability 2 / C(n + m, n)."""
    few = [
        (min(inst.repetitions.values()), max(inst.repetitions.values()))
        for f in findings
        for inst in f.instances[:1]
        if inst.repetitions and 2 <= min(inst.repetitions.values()) < TEST_REPETITIONS
    ]
    if not few:
        return _LEGEND
    n, m = min(few)
    chance = chance_apart(n, m)
    sides = f"{n} repetitions a side" if n == m else f"{n} and {m} repetitions"
    return (
        f"{_LEGEND} With {sides}, two cells that do not differ give ranges apart {_odds(chance)} ({float(chance):.0%}):"
        f" 'apart' alone is not enough (run {TEST_REPETITIONS} or more for the test)."
    )


def title(finding: Finding) -> str:
    return f"{_TITLES.get(finding.study, finding.study)}: {finding.subject}"


def tags(finding: Finding) -> list[str]:
    """What qualifies the finding, a few words per reason (the compact form)."""
    out = []
    for reason in finding.reasons:
        if reason.code == GENERATOR_SATURATED:
            out.append(reason.text.split(":")[0].replace(" was saturated", " saturated"))
        elif reason.code in _SHORT:  # the others (a knee above the sweep) are in the headline itself
            out.append(_SHORT[reason.code])
    return list(dict.fromkeys(out))


def to_text(findings: Sequence[Finding], markup: bool = False, note: str | None = None) -> str:
    """One paragraph per finding. With ``markup``, rich console markup (labels coloured, text escaped)."""
    if not findings:
        return "Findings: none (the run has no pair of cells that differ in one studied axis).\n" + (
            f"{note}\n" if note else ""
        )
    if markup:
        from rich.markup import escape
    else:
        escape = str  # noqa: N806 - the same name as rich's, so both branches read alike
    lines = [f"Findings ({len(findings)})", escape(legend(findings)), ""]
    for finding in findings:
        label = f"[{finding.confidence}]"
        if markup:
            style = _STYLES[finding.confidence]
            label = f"[{style}]{escape(label)}[/{style}]"
        lines.append(f"- {label} {escape(title(finding))}. {escape(finding.sentence)}")
    if note:
        lines += ["", escape(note)]
    return "\n".join(lines) + "\n"


def to_rich(findings: Sequence[Finding], note: str | None = None) -> RenderableType:
    """The compact form for the end of `grpclab run`: per finding its label, study and headline, and what
    qualifies it in a few words; the legend and the machine's line under them."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    if not findings:
        lines = ["Findings: none (the run has no pair of cells that differ in one studied axis)."]
        return Group(*(Text(line) for line in [*lines, *([note] if note else [])]))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    for finding in findings:
        style = _STYLES[finding.confidence]
        qualified = tags(finding)
        claim = escape(finding.headline) + (f" [dim]({escape('; '.join(qualified))})[/dim]" if qualified else "")
        grid.add_row(f"[{style}]{finding.confidence}[/{style}]", _TITLES.get(finding.study, finding.study), claim)
    head = Text(f"Findings ({len(findings)})", style="bold")
    head.append(": each in full, with its evidence, in findings.json and the report", style="default")
    parts: list[RenderableType] = [head, grid, Text(legend(findings))]
    if note:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)


def to_compact_text(findings: Sequence[Finding], note: str | None = None, width: int = 110) -> str:
    """The compact form as plain text at ``width`` columns: what `grpclab run` prints on a terminal that wide
    (without its colours and trailing blanks)."""
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), record=True, color_system=None, force_terminal=False)
    console.print(to_rich(findings, note))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def to_markdown(findings: Sequence[Finding], note: str | None = None) -> str:
    lines = ["## Findings", ""]
    if not findings:
        none = "None: the run has no pair of cells that differ in one studied axis."
        return "\n".join([*lines, none, *(["", note] if note else []), ""])
    lines += [legend(findings), ""]
    for finding in findings:
        lines.append(f"- **{title(finding)}** ({finding.confidence}). {finding.sentence}")
    if note:
        lines += ["", f"_{note}_"]
    return "\n".join(lines) + "\n"


def _detail_value(key: str, value: float) -> str:
    """A derived number by its name's unit: '+351 us', '2.23 Gbit/s', '77%', '105,729 B'."""
    if key.endswith("_bit_per_s"):
        return _bits_per_second(value)
    if key.endswith("_fraction"):
        return f"{value:.0%}"
    if key.endswith("_us"):
        return f"{_signed(CPU, value)} us"
    if key.startswith("wire_bytes"):
        return f"{_number(WIRE, value)} B"
    if key.endswith("_rps"):
        return f"{_number(RPS, value)} RPC/s"
    if key.endswith("_ms"):
        return f"{_number(P99, value)} ms"
    return f"{value:.3g}"


def _median_and_spread(inst: Instance, side: str) -> str:
    """'sync: 102 (99-105)': the compared metric's median on one side, and its repetitions' min-max."""
    spread = inst.spread.get(side, {}).get(inst.metric)
    median = _number(inst.metric, inst.values.get(side, {}).get(inst.metric, math.nan))
    return f"{side}: {median} ({_range_text(inst.metric, spread) if spread else '-'})"


def _details(finding: Finding) -> str:
    """Every instance of a finding as a table row: the compared sides and their cells, the compared metric's median
    (min-max) per side, the ratio and the study's derived numbers (for compression: every setting's cost, savings
    and break-even)."""
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    rows = []
    for inst in finding.instances:
        unit = _UNITS.get(inst.metric, "")
        sides = "".join(
            f"<li>{e(side)}: <code>{e(key)}</code> ({inst.repetitions.get(side, 0)} reps)</li>"
            for side, key in inst.cells.items()
        )

        values = "<br>".join(e(_median_and_spread(inst, side)) for side in inst.cells)
        derived = "<br>".join(
            f"{e(k.replace('_', ' '))}: {e(_detail_value(k, v))}"
            for k, v in inst.derived.items()
            if k != "busier_side_is_client"
        )
        ratio = _times(inst.ratio) if inst.ratio else "-"
        rows.append(
            f'<tr><td><ul class="cells">{sides}</ul></td><td>{e(_METRIC_WORDS.get(inst.metric, inst.metric))} '
            f'{e(unit)}<br>{values}</td><td class="num">{e(ratio)}</td><td>{derived}</td></tr>'
        )
    return (
        "<table><tr><th>cells compared</th><th>median (min-max)</th><th>last / first</th><th>derived</th></tr>"
        f"{''.join(rows)}</table>"
    )


def to_html(findings: Sequence[Finding], note: str | None = None) -> str:
    """A <section> for a report page: one item per finding with its confidence as a class, and a <details> with
    every compared instance (cells, medians and spreads, ratio, derived numbers)."""
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    machine = f'<p class="warn machine-note">{e(note)}</p>' if note else ""
    if not findings:
        return (
            '<section class="findings" id="findings"><h2>Findings</h2><p class="note">None: the run has no pair of '
            f"cells that differ in one studied axis.</p>{machine}</section>"
        )
    items = []
    for finding in findings:
        count = len(finding.instances)
        summary = f"{count} comparison{'s' if count != 1 else ''}, {len(finding.cells)} cells"
        items.append(
            f'<li class="finding finding-{e(finding.confidence)}" data-study="{e(finding.study)}">'
            f'<span class="confidence">{e(finding.confidence)}</span> <strong>{e(title(finding))}.</strong> '
            f'{e(finding.sentence)}<details><summary>{e(summary)}</summary><div class="scroll">{_details(finding)}'
            "</div></details></li>"
        )
    return (
        f'<section class="findings" id="findings"><h2>Findings</h2><p class="note">{e(legend(findings))}</p>'
        f'<ul class="findings">{"".join(items)}</ul>{machine}</section>'
    )
