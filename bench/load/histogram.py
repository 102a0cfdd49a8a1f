"""The lab's one latency histogram: HdrHistogram in microseconds, 1 us .. 60 s, 3 significant digits."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_ns(hist: HdrHistogram, nanoseconds: int) -> None:
    # Clamp into range: a 0-us RPC is recorded as 1 us, a > 60 s one as 60 s, never dropped.
    hist.record_value(min(max(nanoseconds // 1000, LOWEST_US), HIGHEST_US))


def encode(hist: HdrHistogram) -> str:
    """Compressed, base64 text (HdrHistogram's own interchange format)."""
    return hist.encode().decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: list[str]) -> HdrHistogram:
    total = new()
    for text in encoded:
        total.add(decode(text))
    return total


def summary_ms(hist: HdrHistogram) -> dict[str, float]:
    """mean, p50, p90, p99, p99.9 and max in milliseconds; NaN for an empty histogram."""
    if hist.get_total_count() == 0:
        nan = float("nan")
        return {"mean": nan, "p50": nan, "p90": nan, "p99": nan, "p999": nan, "max": nan}
    out = {"mean": hist.get_mean_value() / 1000.0, "max": hist.get_max_value() / 1000.0}
    for p in PERCENTILES:
        name = "p" + f"{p:g}".replace(".", "")
        out[name] = hist.get_value_at_percentile(p) / 1000.0
    return out
