"""pytest-benchmark micro-benchmarks (files bench_*.py): `pytest bench/micro`, or `tox -e micro` for a JSON."""
