"""gRPC's benchmark histogram (grpc.testing.HistogramData) and the lab's HDR histograms, both ways.

gRPC's workers and drivers share one histogram shape, in nanoseconds: log buckets of a growth
``1 + resolution``. A value x is clamped to [1, max_possible] and counted in bucket
``floor(log(x) / log(1 + resolution))``, so bucket i holds [(1+r)^i, (1+r)^(i+1)) (bucket 0 also
everything below 1 + r), and there are ``bucket(max_possible) + 1`` buckets. Two histograms merge
only with the same resolution and max_possible, which the driver sets in ClientConfig.histogram_params
(a driver that leaves them unset gets the C++ driver's defaults here: 1 % and 60 s).

The lab records latency in HdrHistogram, microseconds, 3 significant digits (bench.load.histogram).
Converting HDR -> log buckets (what the lab's worker answers a Mark with): every HDR bucket's count goes
to the log bucket of the HDR bucket's midpoint in ns. HDR buckets are at most 0.1 % wide and log
buckets 1 % (at the default resolution), so a value lands in the log bucket of its true value except when it
lies within 0.05 % of a log-bucket boundary, where it may land in the neighbouring one; count, min,
max, sum and sum of squares are those of the HDR midpoints. Converting log buckets -> HDR (what the lab's
driver does with a foreign worker's latencies): each bucket's count is recorded at the bucket's midpoint,
so a percentile read from the result is within resolution/2 of the true value.

:func:`percentile` is gRPC's own reading of a log-bucket histogram (linear inside the bucket, clamped
to [min_seen, max_seen]), so the lab reports what qps_json_driver would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from bench.load import histogram as hdr
from protos.grpc.testing import stats_pb2

DEFAULT_RESOLUTION = 0.01  # what gRPC's C++ driver uses when histogram_params is unset
DEFAULT_MAX_POSSIBLE = 60e9  # ns: 60 s
NS_PER_US = 1000


@dataclass
class LogHistogram:
    """gRPC's log-bucket histogram (values in ns)."""

    resolution: float = DEFAULT_RESOLUTION
    max_possible: float = DEFAULT_MAX_POSSIBLE
    buckets: list[int] = field(default_factory=list)
    count: float = 0.0
    sum: float = 0.0
    sum_of_squares: float = 0.0
    min_seen: float = math.inf
    max_seen: float = 0.0

    def __post_init__(self) -> None:
        check_params(self.resolution, self.max_possible)
        size = self.bucket_for(self.max_possible) + 1
        if not self.buckets:
            self.buckets = [0] * size
        elif len(self.buckets) != size:
            raise ValueError(
                f"histogram has {len(self.buckets)} buckets; resolution {self.resolution:g} and "
                f"max_possible {self.max_possible:g} need {size}"
            )

    @property
    def multiplier(self) -> float:
        return 1.0 + self.resolution

    def bucket_for(self, value: float) -> int:
        clamped = min(max(value, 1.0), self.max_possible)
        return int(math.log(clamped) / math.log(self.multiplier))

    def bucket_start(self, index: float) -> float:
        return self.multiplier**index

    def add(self, value: float, count: int = 1) -> None:
        if count <= 0:
            return
        self.buckets[self.bucket_for(value)] += count
        self.count += count
        self.sum += value * count
        self.sum_of_squares += value * value * count
        self.min_seen = min(self.min_seen, value)
        self.max_seen = max(self.max_seen, value)

    def merge(self, other: LogHistogram) -> None:
        if (other.resolution, other.max_possible) != (self.resolution, self.max_possible):
            raise ValueError("cannot merge histograms with different resolution or max_possible")
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.count += other.count
        self.sum += other.sum
        self.sum_of_squares += other.sum_of_squares
        self.min_seen = min(self.min_seen, other.min_seen)
        self.max_seen = max(self.max_seen, other.max_seen)

    def percentile(self, pct: float) -> float:
        """gRPC's percentile of a log-bucket histogram, in ns (0 for an empty one)."""
        return _threshold_for_count_below(self, self.count * pct / 100.0)

    def to_proto(self) -> stats_pb2.HistogramData:
        return stats_pb2.HistogramData(
            bucket=self.buckets,
            min_seen=self.min_seen if self.count else self.max_possible,
            max_seen=self.max_seen,
            sum=self.sum,
            sum_of_squares=self.sum_of_squares,
            count=self.count,
        )

    @classmethod
    def from_proto(
        cls,
        data: stats_pb2.HistogramData,
        resolution: float = DEFAULT_RESOLUTION,
        max_possible: float = DEFAULT_MAX_POSSIBLE,
    ) -> LogHistogram:
        """A HistogramData read back with the parameters it was made with (ValueError: its size does not fit)."""
        hist = cls(resolution, max_possible, buckets=list(data.bucket))
        hist.count, hist.sum, hist.sum_of_squares = data.count, data.sum, data.sum_of_squares
        hist.min_seen, hist.max_seen = (data.min_seen, data.max_seen) if data.count else (math.inf, 0.0)
        return hist


def check_params(resolution: float, max_possible: float) -> None:
    """ValueError naming the parameter when a histogram of these parameters cannot be built."""
    if not (math.isfinite(resolution) and 0 < resolution <= 1):
        raise ValueError(f"histogram_params.resolution: must be in (0, 1], got {resolution:g}")
    if not (math.isfinite(max_possible) and max_possible > 1):
        raise ValueError(f"histogram_params.max_possible: must be > 1 (ns), got {max_possible:g}")
    if math.log(max_possible) / math.log(1 + resolution) > 1_000_000:
        raise ValueError("histogram_params: more than a million buckets; raise resolution or lower max_possible")


def _threshold_for_count_below(h: LogHistogram, count_below: float) -> float:
    if h.count == 0:
        return 0.0
    if count_below <= 0:
        return h.min_seen
    if count_below >= h.count:
        return h.max_seen
    so_far = 0.0
    lower = 0
    for lower, bucket in enumerate(h.buckets):  # noqa: B007 - the index where the loop stops is the answer
        so_far += bucket
        if so_far >= count_below:
            break
    if so_far == count_below:
        # Exactly at a bucket's end: midway through the run of empty buckets that follows.
        upper = next((i for i in range(lower + 1, len(h.buckets)) if h.buckets[i]), len(h.buckets))
        return (h.bucket_start(lower) + h.bucket_start(upper)) / 2.0
    low, high = h.bucket_start(lower), h.bucket_start(lower + 1)
    value = high - (high - low) * (so_far - count_below) / h.buckets[lower]
    return min(max(value, h.min_seen), h.max_seen)


def _hdr_cells(hist: HdrHistogram) -> Iterable[tuple[int, int, int]]:
    """(lowest, highest equivalent value, count) of each HDR bucket that holds values, in us."""
    for item in hist.get_recorded_iterator():
        high = item.value_iterated_to
        yield hist.get_lowest_equivalent_value(high), high, item.count_added_in_this_iter_step


def from_hdr(
    hist: HdrHistogram, resolution: float = DEFAULT_RESOLUTION, max_possible: float = DEFAULT_MAX_POSSIBLE
) -> LogHistogram:
    """The lab's HDR histogram (us) as gRPC's log buckets (ns); see the module doc for the accuracy."""
    out = LogHistogram(resolution, max_possible)
    for low, high, count in _hdr_cells(hist):
        out.add((low + high + 1) / 2.0 * NS_PER_US, count)
    if out.count:
        # The HDR's own extremes are exact to its precision; the midpoints would widen them.
        out.min_seen = hist.get_lowest_equivalent_value(hist.get_min_value()) * NS_PER_US
        out.max_seen = hist.get_max_value() * NS_PER_US
    return out


def to_hdr(hist: LogHistogram) -> HdrHistogram:
    """gRPC's log buckets (ns) as the lab's HDR histogram (us): each bucket's count at its midpoint."""
    out = hdr.new()
    for index, count in enumerate(hist.buckets):
        if not count:
            continue
        low = 0.0 if index == 0 else hist.bucket_start(index)
        high = hist.bucket_start(index + 1)
        middle = min(max((low + high) / 2.0, hist.min_seen), hist.max_seen)
        out.record_value(min(max(int(middle) // NS_PER_US, hdr.LOWEST_US), hdr.HIGHEST_US), count)
    return out


# -- the lab's HDR histograms, whole, through grpc.core.Histogram (lab worker -> lab driver) --------------


def hdr_buckets(hist: HdrHistogram) -> list[tuple[float, int]]:
    """(start in us, count) of each HDR bucket that holds values: what a grpc.core.Histogram carries."""
    return [(float(low), count) for low, _, count in _hdr_cells(hist)]


def hdr_from_buckets(buckets: Iterable[tuple[float, int]]) -> HdrHistogram:
    """The HDR histogram :func:`hdr_buckets` described (the same counts in the same HDR buckets)."""
    out = hdr.new()
    for start, count in buckets:
        out.record_value(int(start), count)
    return out
