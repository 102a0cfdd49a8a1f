"""Where an axis does not apply (bench.spec.cell.INAPPLICABLE): one rule for the spec, the findings and the figures,
and the committed runs still read with the cell keys they were written with. No process is started."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench import results
from bench.analysis.figures.select import _not_applying, hold_fixed
from bench.spec import AXES, DEFAULTS, Cell
from bench.spec.cell import INAPPLICABLE, applies, deciders, normalize

ROOT = Path(__file__).resolve().parent.parent
# Every committed run with a table: the test fixtures (format 1 and 2) and the runs the README quotes.
COMMITTED = sorted(
    [*(ROOT / "tests" / "data").glob("*run*"), *(ROOT / "results").glob("*")],
    key=lambda p: p.name,
)
COMMITTED = [p for p in COMMITTED if (p / "manifest.json").is_file() and any(p.glob("cells.*"))]


def cell(**axes: object) -> Cell:
    return normalize(dict(DEFAULTS) | {"payload_size": 1024} | axes)


@pytest.mark.parametrize("run_dir", COMMITTED, ids=lambda p: p.name)
def test_committed_runs_read_with_their_cell_keys(run_dir: Path) -> None:
    """A row read back (Cell.from_dict: the later axes at their defaults, INAPPLICABLE applied) has the key it was
    written with: the rules moved into INAPPLICABLE name the same cells as before."""
    df = results.load(run_dir)
    rows = df.drop_duplicates("cell_key")
    assert len(rows) >= 1
    for _, row in rows.iterrows():
        read = Cell.from_dict({axis: row[axis] for axis in AXES if axis in row})
        assert read.key() == row["cell_key"], run_dir.name


def test_the_client_side_rules_are_inapplicable_rules() -> None:
    ghz = cell(loadgen="ghz", client="sync-threads", channel="per-call")
    assert (ghz.client, ghz.channel) == ("aio", "reuse")
    assert not applies("client", ghz.to_dict()) and not applies("channel", ghz.to_dict())
    assert applies("client", cell(client="sync-future").to_dict())
    per_call = cell(channel="per-call", connections=4)
    assert per_call.connections == 1 and not applies("connections", per_call.to_dict())
    assert applies("connections", cell(connections=4).to_dict())
    # an asyncio loop runs at the aio server or at the aio client; with neither, event_loop means nothing
    assert not applies("event_loop", cell(impl="sync", client="sync-threads").to_dict())
    assert not applies("event_loop", cell(impl="go", loadgen="ghz").to_dict())
    assert applies("event_loop", cell(impl="aio", loadgen="ghz").to_dict())
    assert applies("event_loop", cell(impl="sync", client="aio").to_dict())
    bench = cell(service="benchmark", payload_kind="text")
    assert bench.payload_kind == "zeros" and not applies("payload_kind", bench.to_dict())
    # a preset valid for some cells only is sent home elsewhere; the axis itself applies (keepalive does)
    assert cell(channel_options="single-threaded-unary-stream").channel_options == "default"
    assert applies("channel_options", cell(channel_options="keepalive", loadgen="ghz").to_dict())
    assert deciders()["event_loop"] == {"impl", "loadgen", "client"}


def test_a_rule_reads_the_axes_fixed_before_it() -> None:
    """ghz fixes channel to reuse before per-call would fix connections: a ghz cell keeps its 4 connections."""
    assert cell(loadgen="ghz", channel="per-call", connections=4).connections == 4
    assert list(INAPPLICABLE).index("channel") < list(INAPPLICABLE).index("connections")


def test_the_figures_read_the_same_rule_over_a_table() -> None:
    """figures.select evaluates INAPPLICABLE over columns; row by row it must agree with applies()."""
    combos = [
        cell(**axes).to_dict()
        for axes in (
            {},
            {"impl": "aio"},
            {"impl": "go", "loadgen": "ghz"},
            {"loadgen": "ghz", "impl": "aio"},
            {"client": "sync-threads"},
            {"client": "sync-future", "impl": "aio", "event_loop": "uvloop"},
            {"channel": "per-call"},
            {"rpc": "server_stream", "client": "sync-threads", "channel_options": "single-threaded-unary-stream"},
            {"mode": "open", "rate": 100.0},
            {"service": "benchmark"},
        )
    ]
    rows = pd.DataFrame(combos)
    for axis in INAPPLICABLE:
        expected = [not applies(axis, values) for values in combos]
        assert _not_applying(rows, axis).tolist() == expected, axis


def test_a_figure_varying_the_generator_does_not_hold_the_client_of_ghz_rows() -> None:
    """Varying loadgen: ghz rows carry client aio by normalization, which must not decide which Python rows stay."""
    rows = pd.DataFrame(
        [
            cell(loadgen="ghz").to_dict() | {"cell_key": "ghz"},
            cell(client="sync-threads").to_dict() | {"cell_key": "threads"},
            cell(client="sync-threads", loadgen="ghz").to_dict() | {"cell_key": "ghz"},
        ]
    )
    sub, held = hold_fixed(rows, ["loadgen"])
    assert set(sub["cell_key"]) == {"ghz", "threads"}
    assert held.get("client") == "sync-threads"
