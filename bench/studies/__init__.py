"""Benchmarks of the lab itself (its overhead, long soaks): studies that measure the harness, not a server."""
