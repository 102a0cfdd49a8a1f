"""Structured payloads (payload kind ``records``): lab.Records of typed fields instead of a bytes payload.

A bytes payload costs protobuf one length and one copy; a message of many typed fields costs it work per
field (varints, zigzag, doubles, strings, a nested message, a map entry) on both ends. ``build(size)`` makes
the Records message whose serialized size is closest to ``size`` bytes: records are added while the next
one brings the size closer, so it is within half a record (~100 B) of ``size`` (0 records below ~90 B).
It is built once per size and cached, like the bytes payloads, so steady-state RPCs pay encoding and
decoding, not building.

Every record is a function of its index only, with integer arithmetic and values every language represents
exactly (doubles from integers divided by powers of ten, a float that is a multiple of 1/8), so the Go
server's records (servers/go/records.go) are the same messages: same count, same serialized size. The
load generator checks a reply's count and its last record.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from protos import lab_pb2

KIND = "records"
PROTO_KIND = lab_pb2.PAYLOAD_KIND_RECORDS

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
STREETS = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliet")
CITIES = ("Berlin", "Lagos", "Lima", "Osaka", "Pune", "Quito", "Riga", "Seoul", "Tunis", "Oslo")
PLANS = ("free", "team", "enterprise")
REGIONS = ("eu-west", "us-east", "ap-south", "sa-east")
SOURCES = ("web", "ios", "android", "api", "import")
EPOCH_MS = 1_700_000_000_000


def record(i: int) -> lab_pb2.Record:
    """Record number ``i`` (the Go server's recordAt(i) is the same message)."""
    return lab_pb2.Record(
        id=100_000 + i,
        user=f"{WORDS[i % 10]}_{i * 7919 % 1_000_000}",
        email=f"{WORDS[i * 3 % 10]}.{i % 1000}@example.com",
        active=i % 10 < 7,
        score=(i * 7919 % 100_000) / 100,
        age=18 + i % 60,
        created_at_ms=EPOCH_MS + i * 1000,
        balance_cents=i * 7919 % 200_001 - 100_000,
        ratio=(i % 64) / 8,
        tags=[WORDS[(i + k) % 10] for k in range(3)],
        counts=[i * k * 31 % 1000 for k in range(1, 5)],
        address=lab_pb2.Address(
            street=f"{i * 13 % 999 + 1} {STREETS[i * 7 % 10]} Street",
            city=CITIES[i % 10],
            postcode=f"{i * 7907 % 100_000:05d}",
            latitude=(i * 104_729 % 180_000) / 1000 - 90,
            longitude=(i * 15_485_863 % 360_000) / 1000 - 180,
        ),
        attributes={"plan": PLANS[i % 3], "region": REGIONS[i % 4], "source": SOURCES[i % 5]},
    )


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


@dataclass(frozen=True)
class RecordSet:
    """The Records message of one size, and what a receiver checks of it."""

    message: lab_pb2.Records
    count: int  # records in it
    size: int  # its serialized size in bytes (within half a record of the size asked for)
    last: lab_pb2.Record | None  # the last record (None when empty)


@functools.lru_cache(maxsize=16)
def build(size: int) -> RecordSet:
    """The records for ``size`` bytes; cached (each entry keeps its message alive, up to ~32 MiB)."""
    if size < 0:
        raise ValueError(f"records size must be >= 0, got {size}")
    items: list[lab_pb2.Record] = []
    total = 0
    while total < size:
        item = record(len(items))
        length = item.ByteSize()
        grown = total + 1 + _varint_size(length) + length  # tag of field 1, length, body
        if grown - size >= size - total:
            break  # one more record would land further from the size than we are
        items.append(item)
        total = grown
    return RecordSet(lab_pb2.Records(records=items), len(items), total, items[-1] if items else None)
