"""Benchmark spec parsing: expansion, normalization, validation messages, shipped spec files."""

from __future__ import annotations

import tomllib
from dataclasses import fields, replace
from pathlib import Path

import pytest

from bench.spec import (
    ALLOWED,
    AXES,
    DEFAULTS,
    Cell,
    Settings,
    SpecError,
    filter_cells,
    load_spec,
    parse_spec,
    with_settings,
)
from bench.spec import compression as compression_axis
from bench.spec.cell import LATER_AXES
from bench.spec.compression import Compression

SPECS = Path(__file__).resolve().parent.parent / "bench" / "specs"


def spec(text: str, path: str | None = None):
    """Parse a spec body; `name` is supplied unless the text sets it."""
    data = tomllib.loads(text)
    data.setdefault("name", "t")
    return parse_spec(data, path)


def error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        spec(text)
    message = str(info.value)
    assert "\n" not in message
    return message


def keys(cells) -> list[str]:
    return [cell.key() for cell in cells]


# -- defaults and expansion --------------------------------------------------


def test_defaults_give_one_cell():
    s = spec("")
    assert s.name == "t"
    assert s.description == ""
    assert s.settings == Settings()
    assert s.cells == (
        Cell(
            impl="sync",
            rpc="unary",
            workers=4,
            processes=1,
            payload_size=0,
            payload_kind="text",
            compression="none",
            tls="off",
            concurrency=8,
            connections=1,
            stream_messages=1,  # unary: normalized from the default 10
            mode="closed",
            rate=0.0,
            arrival="constant",
            loadgen="python",
        ),
    )
    assert s.path is None


def test_axes_match_cell_fields_in_order():
    assert AXES == tuple(f.name for f in fields(Cell))
    assert AXES[:3] == ("impl", "rpc", "workers")
    # the axes of results format 1 come first; later ones are appended (LATER_AXES)
    assert AXES[: AXES.index("loadgen") + 1][-1] == "loadgen"
    assert AXES[len(AXES) - len(LATER_AXES) :] == LATER_AXES
    assert set(DEFAULTS) == set(AXES)


def test_allowed_values():
    assert ALLOWED["impl"] == ("sync", "aio", "go")
    assert ALLOWED["rpc"] == ("unary", "server_stream", "client_stream", "bidi")
    assert len(ALLOWED["compression"]) == 12
    assert ALLOWED["compression"][-1] == "app-gzip-9"


def test_settings_are_read():
    s = spec(
        """
        [settings]
        duration = 3
        warmup = 0
        repetitions = 7
        server_cpus = [2, 3]
        loadgen_cpus = [0]
        seed = 42
        """
    )
    assert s.settings.duration == 3.0
    assert isinstance(s.settings.duration, float)
    assert s.settings.warmup == 0.0
    assert s.settings.repetitions == 7
    assert s.settings.server_cpus == (2, 3)
    assert s.settings.loadgen_cpus == (0,)
    assert s.settings.seed == 42
    assert s.settings.slo_p99_ms == 50.0


def test_product_size_and_order():
    s = spec(
        """
        [axes]
        impl = ["sync"]
        rpc = ["server_stream", "bidi"]
        payload_size = [0, 1024, 2048]
        concurrency = [1, 8]
        """
    )
    assert len(s.cells) == 2 * 3 * 2
    # Later axes vary fastest; list order is kept.
    assert [(c.rpc, c.payload_size, c.concurrency) for c in s.cells[:3]] == [
        ("server_stream", 0, 1),
        ("server_stream", 0, 8),
        ("server_stream", 1024, 1),
    ]
    assert s.cells[-1].rpc == "bidi"


def test_key_format():
    cell = spec('[axes]\npayload_size = ["1KiB"]').cells[0]
    assert cell.key() == "sync/unary/w4/p1/1024B/text/none/tls-off/c8/n1/m1/closed/python"
    open_cell = spec('[axes]\nmode = ["open"]\nrate = [2500.5]\narrival = ["poisson"]').cells[0]
    assert open_cell.key() == "sync/unary/w4/p1/0B/text/none/tls-off/c8/n1/m1/open-r2500.5-poisson/python"
    assert cell.to_dict()["payload_size"] == 1024
    assert list(cell.to_dict()) == list(AXES)


def test_cell_from_dict_round_trip():
    for cell in load_spec(SPECS / "quick.toml").cells:
        assert Cell.from_dict(cell.to_dict()) == cell
    with pytest.raises(SpecError, match=r"^cell\.tls: unknown value 'maybe'"):
        Cell.from_dict(load_spec(SPECS / "ci.toml").cells[0].to_dict() | {"tls": "maybe"})


# -- exclude / include -------------------------------------------------------


def test_exclude_removes_cells_matching_all_keys():
    s = spec(
        """
        [axes]
        impl = ["sync", "aio"]
        tls = ["off", "on", "mtls"]
        payload_size = [0, 1024]
        [[exclude]]
        impl = "aio"
        tls = ["on", "mtls"]
        """
    )
    assert len(s.cells) == 12 - 4
    assert not [c for c in s.cells if c.impl == "aio" and c.tls != "off"]
    assert len([c for c in s.cells if c.impl == "sync" and c.tls == "mtls"]) == 2


def test_multiple_excludes_are_or():
    s = spec(
        """
        [axes]
        impl = ["sync", "aio"]
        rpc = ["unary", "bidi"]
        [[exclude]]
        impl = "aio"
        rpc = "bidi"
        [[exclude]]
        impl = "sync"
        rpc = "unary"
        """
    )
    assert [(c.impl, c.rpc) for c in s.cells] == [("sync", "bidi"), ("aio", "unary")]


def test_include_takes_first_axis_values_and_expands_lists():
    s = spec(
        """
        [axes]
        impl = ["aio", "sync"]
        payload_size = [1024, 0]
        compression = ["none"]
        [[include]]
        compression = ["app-gzip-1", "app-gzip-9"]
        payload_kind = "zeros"
        """
    )
    extra = s.cells[4:]
    assert len(s.cells) == 4 + 2
    assert [(c.impl, c.payload_size, c.payload_kind, c.compression) for c in extra] == [
        ("aio", 1024, "zeros", "app-gzip-1"),
        ("aio", 1024, "zeros", "app-gzip-9"),
    ]


def test_include_uses_defaults_for_unlisted_axes():
    s = spec('[[include]]\nconcurrency = 64\ntls = ["on", "mtls"]')
    assert [(c.concurrency, c.tls, c.workers, c.payload_kind) for c in s.cells[1:]] == [
        (64, "on", 4, "text"),
        (64, "mtls", 4, "text"),
    ]


def test_include_is_never_excluded():
    s = spec(
        """
        [axes]
        impl = ["sync", "aio"]
        [[exclude]]
        impl = "aio"
        [[include]]
        impl = "aio"
        tls = "on"
        """
    )
    assert [(c.impl, c.tls) for c in s.cells] == [("sync", "off"), ("aio", "on")]


def test_exclude_matches_normalized_values():
    # aio cells have workers 0, so an exclude of workers = 1 leaves aio alone.
    s = spec(
        """
        [axes]
        impl = ["sync", "aio"]
        workers = [1, 4]
        [[exclude]]
        workers = 1
        """
    )
    assert [(c.impl, c.workers) for c in s.cells] == [("sync", 4), ("aio", 0)]


# -- normalization and de-duplication ----------------------------------------


def test_aio_workers_normalized_and_deduplicated():
    s = spec('[axes]\nimpl = ["sync", "aio"]\nworkers = [1, 2, 8]')
    assert [(c.impl, c.workers) for c in s.cells] == [("sync", 1), ("sync", 2), ("sync", 8), ("aio", 0)]


def test_go_workers_normalized_like_aio():
    s = spec('[axes]\nimpl = ["sync", "aio", "go"]\nworkers = [1, 16]')
    assert [(c.impl, c.workers) for c in s.cells] == [("sync", 1), ("sync", 16), ("aio", 0), ("go", 0)]
    go = s.cells[-1]
    assert go.key() == "go/unary/w0/p1/0B/text/none/tls-off/c8/n1/m1/closed/python"
    assert Cell.from_dict(go.to_dict()) == go  # a go row reads back (workers 0 is already normalized)


def test_go_with_more_than_one_process_is_an_error_naming_the_key():
    both = '[axes]\nimpl = ["sync", "go"]\nprocesses = [1, 2]'
    assert error(both) == (
        "axes.processes: 2 with impl 'go': the Go server runs one process (GOMAXPROCS follows the server CPUs); "
        "exclude these cells or use processes = 1"
    )
    # an exclude that removes the impossible cells makes the spec valid
    s = spec(both + '\n[[exclude]]\nimpl = "go"\nprocesses = 2')
    assert [(c.impl, c.processes) for c in s.cells] == [("sync", 1), ("sync", 2), ("go", 1)]
    assert error('[axes]\nimpl = ["sync"]\n[[include]]\nimpl = "go"\nprocesses = 3').startswith(
        "include[0].processes: 3 with impl 'go'"
    )
    with pytest.raises(SpecError, match=r"^cell\.processes: 2 with impl 'go'"):
        Cell.from_dict(
            Cell("go", "unary", 0, 2, 0, "text", "none", "off", 8, 1, 1, "closed", 0.0, "constant", "python").to_dict()
        )


def test_go_cells_run_with_either_load_generator():
    s = spec('[axes]\nimpl = ["go"]\nloadgen = ["python", "ghz"]\nrpc = ["unary", "bidi"]')
    assert {(c.loadgen, c.rpc) for c in s.cells} == {(g, r) for g in ("python", "ghz") for r in ("unary", "bidi")}


def test_unary_stream_messages_normalized():
    s = spec('[axes]\nrpc = ["unary", "bidi"]\nstream_messages = [10, 100]')
    assert [(c.rpc, c.stream_messages) for c in s.cells] == [("unary", 1), ("bidi", 10), ("bidi", 100)]


def test_closed_rate_and_arrival_normalized():
    s = spec(
        """
        [axes]
        mode = ["closed", "open"]
        rate = [100, 200.5]
        arrival = ["poisson", "constant"]
        """
    )
    assert [(c.mode, c.rate, c.arrival) for c in s.cells] == [
        ("closed", 0.0, "constant"),
        ("open", 100.0, "poisson"),
        ("open", 100.0, "constant"),
        ("open", 200.5, "poisson"),
        ("open", 200.5, "constant"),
    ]
    assert all(isinstance(c.rate, float) for c in s.cells)


def test_include_duplicates_are_dropped_in_first_position():
    s = spec("[axes]\nconcurrency = [1, 8]\n[[include]]\nconcurrency = 1\n[[include]]\nconcurrency = 2")
    assert [c.concurrency for c in s.cells] == [1, 8, 2]


def test_same_size_written_two_ways_is_one_cell():
    s = spec('[axes]\npayload_size = ["1KiB", 1024, "1024B"]')
    assert [c.payload_size for c in s.cells] == [1024]


# -- sizes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "size"),
    [
        (0, 0),
        (1000, 1000),
        ('"1KiB"', 1024),
        ('"64KiB"', 65536),
        ('"1MiB"', 1048576),
        ('"7B"', 7),
        ('"16MiB"', 16 * 1048576),
        ('"2048"', 2048),
    ],
)
def test_size_units(written, size):
    assert spec(f"[axes]\npayload_size = [{written}]").cells[0].payload_size == size


@pytest.mark.parametrize("written", ['"1KB"', '"1kib"', '"1.5KiB"', '"1 GiB"', "-1", "1.0", "true", '"KiB"'])
def test_bad_sizes(written):
    message = error(f"[axes]\npayload_size = [{written}]")
    assert message.startswith("axes.payload_size[0]: expected a size in bytes")
    assert "KiB" in message


def test_size_limit():
    assert error('[axes]\npayload_size = [0, "17MiB"]').startswith("axes.payload_size[1]: '17MiB' is larger")


# -- error messages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[axes]\ncompression = ["none", "grpc-gzip", "gzp"]',
            "axes.compression[2]: unknown value 'gzp'; allowed: none, grpc-gzip, grpc-deflate, app-gzip-1..9",
        ),
        ('[axes]\nworkers = ["four"]', "axes.workers[0]: expected a positive integer, got 'four'"),
        ("[axes]\nworkers = [true]", "axes.workers[0]: expected a positive integer, got true"),
        ("[axes]\nworkers = [4.0]", "axes.workers[0]: expected a positive integer, got 4.0"),
        ("[axes]\nconcurrency = [8, 0]", "axes.concurrency[1]: expected a positive integer, got 0"),
        ("[axes]\nprocesses = [-1]", "axes.processes[0]: expected a positive integer, got -1"),
        ("[axes]\nrate = [-5]", "axes.rate[0]: expected a number >= 0 (RPC/s), got -5"),
        ("[axes]\nrate = [nan]", "axes.rate[0]: expected a number >= 0 (RPC/s), got nan"),
        ('[axes]\nimpl = ["sync", 3]', "axes.impl[1]: unknown value 3; allowed: sync, aio, go"),
        ("[axes]\nimpl = []", "axes.impl: expected a non-empty list"),
        ('[axes]\nimpl = "sync"', "axes.impl: expected a non-empty list, got 'sync'"),
        ("[settings]\nduration = -1", "settings.duration: expected a number > 0, got -1"),
        ("[settings]\nduration = 0", "settings.duration: expected a number > 0, got 0"),
        ("[settings]\nduration = inf", "settings.duration: expected a number > 0, got inf"),
        ('[settings]\nwarmup = "1s"', "settings.warmup: expected a number >= 0, got '1s'"),
        ("[settings]\nrepetitions = 0", "settings.repetitions: expected a positive integer, got 0"),
        ("[settings]\nrepetitions = true", "settings.repetitions: expected a positive integer, got true"),
        ("[settings]\nslo_p99_ms = 0", "settings.slo_p99_ms: expected a number > 0, got 0"),
        ("[settings]\nseed = -1", "settings.seed: expected an integer >= 0, got -1"),
        (
            "[settings]\nloadgen_processes = 0",
            "settings.loadgen_processes: expected a positive integer, got 0",
        ),
        ("[settings]\ncell_timeout = 0", "settings.cell_timeout: expected a number > 0, got 0"),
        (
            "[settings]\nduration = 10\nwarmup = 2\ncell_timeout = 12",
            "settings.cell_timeout: 12 s must exceed warmup + duration (12 s)",
        ),
        (
            'exclude = [{impl = "sync"}, {impl = "asio"}]',
            "exclude[1].impl: unknown value 'asio'; allowed: sync, aio, go",
        ),
        (
            '[[exclude]]\ntls = ["on", "tls"]',
            "exclude[0].tls[1]: unknown value 'tls'; allowed: off, on, mtls",
        ),
        ("[[exclude]]\nworkers = []", "exclude[0].workers: expected a non-empty list"),
        ("[[exclude]]", "exclude[0]: empty table; name at least one axis"),
        ('exclude = {impl = "aio"}', "exclude: expected an array of tables ([[exclude]]), got a table"),
        ("exclude = [1]", "exclude[0]: expected a table, got 1"),
        (
            '[[include]]\nmode = "open"',
            "include[0].rate: open mode needs rate > 0, got 0 (inherited from [axes])",
        ),
        ('[[include]]\nmode = "open"\nrate = [10, 0]', "include[0].rate: open mode needs rate > 0, got 0"),
        ("[[include]]\nworkers = 0", "include[0].workers: expected a positive integer, got 0"),
        ('[axes]\nmode = ["closed", "open"]\nrate = [0, 10]', "axes.rate: mode 'open' needs rate > 0, got 0"),
        (
            '[axes]\nmode = ["open"]',
            "axes.rate: mode 'open' needs rate > 0, got 0 (the default; set axes.rate)",
        ),
        ("foo = 1", "foo: unknown key; allowed: name, description, settings, axes, exclude, include, hosts"),
        ("axes = 1", "axes: expected a table, got 1"),
        ("settings = [1]", "settings: expected a table, got a list"),
        ("description = 1", "description: expected a string, got 1"),
        ('name = "a b"', "name: expected letters, digits, '.', '_' or '-' (it names results), got 'a b'"),
        ('name = "../x"', "name: expected letters, digits, '.', '_' or '-' (it names results), got '../x'"),
        ('[axes]\nmode = ["open"]\nrate = [inf]', "axes.rate[0]: expected a number >= 0 (RPC/s), got inf"),
    ],
)
def test_error_messages(text, expected):
    assert error(text) == expected


def test_unknown_axis_lists_axes():
    message = error('[axes]\ncolour = ["red"]')
    assert message == f"axes.colour: unknown axis; axes: {', '.join(AXES)}"
    assert message.startswith("axes.colour: unknown axis; axes: impl, rpc, workers, ")
    assert error("[[include]]\ncolour = 1").startswith("include[0].colour: unknown axis; axes: impl, rpc")
    assert error("[[exclude]]\nspeed = 1").startswith("exclude[0].speed: unknown axis; axes: impl, rpc")


def test_unknown_setting_lists_settings():
    message = error("[settings]\nspeed = 3")
    assert message.startswith("settings.speed: unknown key; allowed: duration, warmup, repetitions, ")
    assert message.endswith("loadgen_processes, cell_timeout, cpu_latency_hold, calibrate")


def test_missing_name():
    with pytest.raises(SpecError, match=r"^name: required"):
        parse_spec({})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server_cpus = []", "settings.server_cpus: expected a non-empty list of CPU ids"),
        ("server_cpus = 0", "settings.server_cpus: expected a non-empty list of CPU ids"),
        ("loadgen_cpus = [1, -2]", "settings.loadgen_cpus[1]: expected a CPU id (integer >= 0), got -2"),
        ("loadgen_cpus = [1, true]", "settings.loadgen_cpus[1]: expected a CPU id (integer >= 0), got true"),
        ("server_cpus = [0, 2, 2]", "settings.server_cpus[2]: CPU 2 is listed twice"),
        (
            "server_cpus = [0, 1]\nloadgen_cpus = [1, 2]",
            "settings.loadgen_cpus: overlaps settings.server_cpus (honest numbers need separate CPUs)",
        ),
        # loadgen_cpus defaults to [1]
        ("server_cpus = [1]", "settings.loadgen_cpus: overlaps settings.server_cpus"),
    ],
)
def test_cpu_lists(text, expected):
    assert error(f"[settings]\n{text}").startswith(expected)


def test_cpus_are_not_checked_against_this_machine():
    s = spec("[settings]\nserver_cpus = [1000]\nloadgen_cpus = [1001, 1002]")
    assert s.settings.loadgen_cpus == (1001, 1002)


def test_exclude_that_matches_nothing_is_an_error():
    message = error('[axes]\nimpl = ["sync"]\n[[exclude]]\nimpl = "aio"')
    assert message.startswith("exclude[0]: matches no cell of the [axes] product")
    # aio cells carry workers 0 after normalization, never the listed workers
    assert error('[axes]\nimpl = ["aio"]\n[[exclude]]\nworkers = 4').startswith("exclude[0]: matches no cell")


def test_no_cells():
    text = '[axes]\nimpl = ["sync"]\n[[exclude]]\nimpl = "sync"'
    assert error(text) == "the spec selects no cells"
    with pytest.raises(SpecError, match=r"^my\.toml: the spec selects no cells$"):
        spec(text, "my.toml")


def test_huge_product_is_refused():
    axes = ("workers", "concurrency", "connections", "processes")
    lists = [f"{axis} = {list(range(1, 41))}" for axis in axes]
    text = "[axes]\n" + "\n".join(lists)
    assert error(text).startswith("axes: the product has 2560000 cells")


# -- files ---------------------------------------------------------------------


def test_load_spec_file_errors(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(SpecError, match=r"^spec file not found: .*nope\.toml"):
        load_spec(missing)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[axes\n')
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert str(info.value).startswith(f"{bad}: invalid TOML: ")
    assert "\n" not in str(info.value)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"name = '\xff'")
    with pytest.raises(SpecError, match="invalid TOML: not UTF-8"):
        load_spec(binary)
    empty = tmp_path / "empty.toml"
    empty.write_text('name = "e"\n[[exclude]]\nimpl = "sync"\n')
    with pytest.raises(SpecError, match=r"empty\.toml: the spec selects no cells$"):
        load_spec(empty)
    with pytest.raises(SpecError, match="^spec file not found: no-such-spec"):
        load_spec("no-such-spec")


def test_key_errors_are_not_prefixed_with_the_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n[axes]\nimpl = ["asio"]\n')
    with pytest.raises(SpecError, match=r"^axes\.impl\[0\]: unknown value 'asio'; allowed: sync, aio, go$"):
        load_spec(str(path))


def test_load_spec_records_source_and_path(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\ndescription = "d"\n[axes]\npayload_size = ["1KiB"]\n')
    s = load_spec(path)
    assert s.path == str(path)
    assert s.source == {"name": "s", "description": "d", "axes": {"payload_size": ["1KiB"]}}
    assert s.description == "d"


def test_builtin_spec_by_name():
    assert load_spec("ci").path == str(SPECS / "ci.toml")


# -- filter_cells --------------------------------------------------------------


@pytest.fixture
def grid():
    return spec(
        """
        [axes]
        impl = ["sync", "aio"]
        rpc = ["unary", "bidi"]
        payload_size = [0, 1024, 65536]
        mode = ["closed", "open"]
        rate = [100, 2.5]
        """
    ).cells


def test_filter_matches(grid):
    assert len(grid) == 2 * 2 * 3 * 3
    picked = filter_cells(grid, "impl=aio,rpc=unary")
    assert len(picked) == 9
    assert {(c.impl, c.rpc) for c in picked} == {("aio", "unary")}


def test_filter_alternatives_and_units(grid):
    picked = filter_cells(grid, "payload_size=0|1KiB, mode=open")
    assert {c.payload_size for c in picked} == {0, 1024}
    assert len(picked) == 2 * 2 * 2 * 2
    assert len(filter_cells(grid, "rate=2.5")) == 12
    assert len(filter_cells(grid, "workers=0")) == 18  # aio cells
    assert filter_cells(grid, "") == tuple(grid)
    assert filter_cells(grid, " impl = aio | sync ") == tuple(grid)


def test_filter_empty_result_is_fine(grid):
    assert filter_cells(grid, "tls=mtls") == ()


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("foo=1", "--filter: unknown axis 'foo'; axes: impl, rpc, workers"),
        ("impl=asio", "--filter: impl: unknown value 'asio'; allowed: sync, aio, go"),
        ("compression=gzp", "--filter: compression: unknown value 'gzp'; allowed: none, grpc-gzip"),
        ("workers=four", "--filter: workers: expected a positive integer, got 'four'"),
        ("payload_size=1KB", "--filter: payload_size: expected a size in bytes"),
        ("rate=fast", "--filter: rate: expected a number >= 0 (RPC/s), got 'fast'"),
        ("impl", "--filter: expected axis=value[|value...], got 'impl'"),
        ("impl=", "--filter: expected axis=value[|value...], got 'impl='"),
        ("impl=sync,,rpc=unary", "--filter: expected axis=value[|value...], got ''"),
        ("impl=sync,impl=aio", "--filter: axis 'impl' given twice; use '|' for alternatives"),
    ],
)
def test_filter_errors(grid, expr, expected):
    with pytest.raises(SpecError) as info:
        filter_cells(grid, expr)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


# -- with_settings -------------------------------------------------------------


def test_with_settings_overrides_and_validates():
    s = spec("[settings]\nduration = 3")
    t = with_settings(s, duration=1, repetitions=1, seed=None)
    assert t.settings.duration == 1.0
    assert t.settings.repetitions == 1
    assert t.settings.seed == 1  # None keeps the spec's value
    assert t.cells == s.cells
    assert s.settings.duration == 3.0  # the original is unchanged
    with pytest.raises(SpecError, match=r"^settings\.duration: expected a number > 0, got -2$"):
        with_settings(s, duration=-2)
    with pytest.raises(SpecError, match=r"^settings\.speed: unknown key; allowed: duration, "):
        with_settings(s, speed=2)
    with pytest.raises(SpecError, match=r"^settings\.loadgen_cpus: overlaps settings\.server_cpus"):
        with_settings(s, loadgen_cpus=(0,))
    with pytest.raises(SpecError, match=r"^settings\.cell_timeout: 120 s must exceed"):
        with_settings(s, duration=200)
    assert with_settings(s, duration=200, cell_timeout=300).settings.cell_timeout == 300.0
    assert with_settings(s, server_cpus=[4, 5], loadgen_cpus=[6]).settings.server_cpus == (4, 5)


# -- the shipped specs ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.stem for p in SPECS.glob("*.toml")))
def test_shipped_specs_load(name):
    s = load_spec(SPECS / f"{name}.toml")
    assert s.name == name
    assert s.description
    assert len(s.cells) >= 3  # floor.toml, the smallest: one cell per generator and client


def test_go_reference_spec_pairs_every_python_cell_with_a_go_cell():
    s = load_spec(SPECS / "go_reference.toml")
    go = {replace(c, workers=0) for c in s.cells if c.impl == "go"}
    python = [c for c in s.cells if c.impl != "go"]
    assert len(python) == 8 and {c.loadgen for c in s.cells} == {"ghz"}
    assert all(replace(c, impl="go", workers=0) in go for c in python)
    assert {(c.rpc, c.payload_size) for c in python} == {(r, n) for r in ("unary", "server_stream") for n in (0, 65536)}


def test_grpc_bench_spec_is_its_published_setup():
    s = load_spec(SPECS / "grpc_bench.toml")
    assert {(c.impl, c.workers) for c in s.cells} == {("sync", 1), ("sync", 16), ("aio", 0), ("go", 0)}
    for c in s.cells:  # ghz, 50 connections, 1,000 in flight, closed loop, a ~100 B unary request
        assert (c.loadgen, c.connections, c.concurrency, c.mode, c.rpc, c.payload_size) == (
            "ghz",
            50,
            1000,
            "closed",
            "unary",
            100,
        )
    assert (s.settings.warmup, s.settings.duration, s.settings.server_cpus) == (5.0, 20.0, (0,))


@pytest.mark.parametrize("name", ["quick", "full", "ci"])
def test_keys_are_unique(name):
    cells = load_spec(SPECS / f"{name}.toml").cells
    assert len(set(keys(cells))) == len(cells) == len(set(cells))


def test_quick_covers_every_value_in_few_cells():
    s = load_spec(SPECS / "quick.toml")
    assert len(s.cells) == 73  # the count and time estimate in quick.toml's header
    assert len(s.cells) <= 74
    for axis, allowed in ALLOWED.items():
        seen = {getattr(c, axis) for c in s.cells}
        expected = set(allowed)  # every value, ghz included
        assert seen == expected, axis
    assert {c.workers for c in s.cells if c.impl == "sync"} >= {1, 4}
    assert {c.processes for c in s.cells} == {1, 2}
    assert {c.payload_size for c in s.cells} == {0, 1024, 64 * 1024, 1024 * 1024}
    assert {1, 16} <= {c.concurrency for c in s.cells}
    assert {c.connections for c in s.cells} == {1, 4}
    assert len({c.stream_messages for c in s.cells if c.rpc != "unary"}) >= 2
    assert len({c.rate for c in s.cells if c.mode == "open"}) >= 2
    # the Go reference: unary and server streaming with ghz, each with its sync and aio partner (the report's ratios)
    go = [c for c in s.cells if c.impl == "go" and c.handler_wait_ms == 0]
    assert {(c.rpc, c.payload_size, c.loadgen) for c in go} == {
        ("unary", 1024, "ghz"),
        ("server_stream", 1024, "ghz"),
        ("unary", 64 * 1024, "ghz"),
    }
    for cell in go:
        for impl, workers in (("sync", 4), ("aio", 0)):
            assert replace(cell, impl=impl, workers=workers) in s.cells
    heavy = [c for c in s.cells if c.payload_size >= 1024 * 1024 and c.compression == "app-gzip-9"]
    assert len(heavy) == 1
    assert (s.settings.duration, s.settings.warmup, s.settings.repetitions) == (2.0, 0.5, 2)
    # under 10 minutes on 2 cores: twice the harness overhead quick.toml's header measured (0.45 s per repetition),
    # and about a minute for the calibration before the first cell
    per_repetition = s.settings.warmup + s.settings.duration + 2 * 0.45
    assert len(s.cells) * s.settings.repetitions * per_repetition + 60 < 600


def test_ci_spec_is_small_and_repeated():
    s = load_spec(SPECS / "ci.toml")
    assert len(s.cells) == 6
    assert {c.rpc for c in s.cells} == {"unary", "bidi"}
    assert {c.impl for c in s.cells} == {"sync", "aio"}
    assert {c.compression for c in s.cells} == {"none", "app-gzip-6"}
    assert {(c.payload_size, c.payload_kind) for c in s.cells} == {(1024, "text")}
    assert (s.settings.duration, s.settings.warmup, s.settings.repetitions) == (2.0, 0.5, 5)
    # base and head runs together fit in 10 minutes on 2 cores
    per_repetition = s.settings.warmup + s.settings.duration + 2.0
    assert 2 * len(s.cells) * s.settings.repetitions * per_repetition < 600


def test_full_spec_sweeps():
    s = load_spec(SPECS / "full.toml")
    assert len(s.cells) == 627  # the count in full.toml's header
    assert {c.workers for c in s.cells} == {0, 1, 2, 4, 8, 16, 32}
    assert {c.processes for c in s.cells} == {1, 2}
    assert {c.tls for c in s.cells} == {"off", "on", "mtls"}
    gzip_grid = {(c.compression, c.payload_kind, c.payload_size) for c in s.cells if c.rpc == "unary"}
    for compression in ALLOWED["compression"]:
        for kind in ("text", "random", "zeros"):  # the bytes payloads (records cells have their own study)
            for size in (1024, 16 * 1024, 64 * 1024, 1024 * 1024):
                assert (compression, kind, size) in gzip_grid
    assert len({c.rate for c in s.cells if c.mode == "open"}) >= 5
    assert {c.arrival for c in s.cells if c.mode == "open"} == {"constant", "poisson"}


def test_crosscheck_spec_pairs_every_cell_with_both_generators():
    s = load_spec(SPECS / "crosscheck.toml")
    assert len(s.cells) == 16  # the count in crosscheck.toml's header
    by_generator = {g: {c.key().replace(f"/{g}", "") for c in s.cells if c.loadgen == g} for g in ("python", "ghz")}
    assert by_generator["python"] == by_generator["ghz"] and len(by_generator["python"]) == 8
    assert {(c.payload_size, c.concurrency) for c in s.cells} == {(0, 1), (0, 16), (1024, 1), (1024, 16)}


# -- the compression axis ------------------------------------------------------


def test_every_allowed_compression_parses_and_nothing_else_does():
    assert ALLOWED["compression"] == compression_axis.VALUES
    for value in compression_axis.VALUES:
        assert Compression.parse(value).value == value
    for bad in ("gzip", "app-gzip-0", "app-gzip-10", "app-gzip-", "grpc-zstd", ""):
        with pytest.raises(ValueError, match="allowed: none, grpc-gzip, grpc-deflate, app-gzip-1..9"):
            Compression.parse(bad)


@pytest.mark.parametrize(
    ("value", "grpc", "app_level", "zlib_level", "server_args", "ghz_flags"),
    [
        ("none", "none", 0, 0, [], []),
        ("grpc-gzip", "gzip", 0, 6, ["--compression", "gzip"], ["-e"]),
        ("grpc-deflate", "deflate", 0, 6, ["--compression", "deflate"], None),
        ("app-gzip-1", "none", 1, 1, [], []),
        ("app-gzip-9", "none", 9, 9, [], []),
    ],
)
def test_what_each_side_does_with_a_compression(value, grpc, app_level, zlib_level, server_args, ghz_flags):
    comp = Compression.parse(value)
    assert (comp.grpc, comp.app_level, comp.zlib_level) == (grpc, app_level, zlib_level)
    assert comp.is_app_gzip == (app_level > 0)
    assert comp.server_args() == server_args
    assert comp.ghz_flags() == ghz_flags


def test_payload_ratio_is_the_payload_s_own_compressibility():
    text_1, text_9 = (Compression.parse(f"app-gzip-{n}").payload_ratio("text", 65536) for n in (1, 9))
    assert 2 < text_1 < text_9  # JSON-like text compresses, more at a higher level
    assert Compression.parse("grpc-gzip").payload_ratio("text", 65536) == Compression.parse("app-gzip-6").payload_ratio(
        "text", 65536
    )  # gRPC's gzip is zlib level 6
    assert Compression.parse("app-gzip-6").payload_ratio("random", 65536) < 1.0  # random grows under gzip
    assert Compression.parse("app-gzip-6").payload_ratio("zeros", 65536) > 100
    assert Compression.parse("none").payload_ratio("text", 65536) == 1.0
    assert Compression.parse("app-gzip-6").payload_ratio("text", 0) == 1.0
