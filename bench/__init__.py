"""grpclab's harness, in folders by stage: spec -> run -> load -> analysis -> gate (README, "Architecture").

``from bench import results`` (the documented reading API) is an alias of bench.analysis.results, resolved
on first use (PEP 562): `grpclab serve` and the load-generator workers import this package and must not
pay for pandas.
"""

from __future__ import annotations

from types import ModuleType


def __getattr__(name: str) -> ModuleType:
    if name == "results":
        from .analysis import results

        return results
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
