"""The server implementations the wire-contract tests run against, as pytest parameters.

sync and aio are the Python servers; go is the grpc-go reference server (servers/go), which `make setup`
builds when Go is installed. Without it, every go parameter is skipped with the reason in the summary.
"""

from __future__ import annotations

import pytest

from servers import go_server

IMPLS = ("sync", "aio", "go")
PYTHON_IMPLS = ("sync", "aio")
GO_BUILT = go_server.find_binary() is not None
GO_MISSING = "Go server not built: install Go and run make setup"


def _skip_without_go(values: tuple) -> pytest.MarkDecorator:
    return pytest.mark.skipif("go" in values and not GO_BUILT, reason=GO_MISSING)


def param(*values: object):
    """One parameter set of a test; skipped (with the reason printed) when it needs the Go server and none is built."""
    return pytest.param(*values, id="-".join(map(str, values)), marks=_skip_without_go(values))


def fixture_param(values: tuple):
    """The same for a parametrized fixture, whose ``request.param`` is the whole tuple."""
    return pytest.param(values, id="-".join(map(str, values)), marks=_skip_without_go(values))


def impls(*names: str) -> list:
    """``names`` (default: all three) as parameters of a test's ``impl`` argument."""
    return [param(name) for name in names or IMPLS]
