"""The lab's app-level gzip (servers.payloads): compress and decompress 64 KiB per zlib level and payload kind."""

from __future__ import annotations

import pytest

from servers import payloads

SIZE = 64 * 1024
LEVELS = list(range(1, 10))


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"level{level}")
@pytest.mark.parametrize("kind", payloads.KINDS)
def test_compress(benchmark, kind, level):
    benchmark.group = f"app-gzip compress 64KiB {kind}"
    raw = payloads.make(kind, SIZE)
    data = benchmark(payloads.encode, raw, level)
    benchmark.extra_info["ratio"] = round(len(raw) / len(data), 3)


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: f"level{level}")
@pytest.mark.parametrize("kind", payloads.KINDS)
def test_decompress(benchmark, kind, level):
    benchmark.group = f"app-gzip decompress 64KiB {kind}"
    raw = payloads.make(kind, SIZE)
    data = payloads.encode(raw, level)
    assert benchmark(payloads.decode, data, level) == raw
