"""Payload bodies and the lab's app-level gzip, shared by the servers and the load generator.

gRPC core compresses with a fixed zlib level and exposes no level knob, so gzip
level sweeps are done in the application: the sender really compresses the
payload at level 1-9 and the receiver really decompresses it. Both ends use the
functions here so the CPU they spend is the same code.
"""

from __future__ import annotations

import functools
import json
import random
import zlib

from protos import lab_pb2

KINDS = ("random", "text", "zeros")
KIND_TO_PROTO = {
    "zeros": lab_pb2.PAYLOAD_KIND_ZEROS,
    "random": lab_pb2.PAYLOAD_KIND_RANDOM,
    "text": lab_pb2.PAYLOAD_KIND_TEXT,
}
PROTO_TO_KIND = {v: k for k, v in KIND_TO_PROTO.items()}

# gzip container (zlib wbits 16+15): the same framing grpc-gzip puts on the wire.
_GZIP_WBITS = 31
# Refuse to inflate a payload past this many bytes: a tiny gzip bomb must not take
# the server's memory. Large enough for the 16 MiB payloads the lab sweeps.
MAX_INFLATED_BYTES = 64 * 1024 * 1024


class PayloadError(ValueError):
    """A payload the receiver cannot accept (corrupt gzip, bad level, too large)."""


@functools.lru_cache(maxsize=64)
def make(kind: str, size: int, seed: int = 0) -> bytes:
    """Deterministic payload of ``size`` bytes; cached, so steady-state RPCs pay no generation cost."""
    if size < 0:
        raise PayloadError(f"payload size must be >= 0, got {size}")
    if kind == "zeros":
        return bytes(size)
    rng = random.Random(seed)
    if kind == "random":
        return rng.randbytes(size)
    if kind == "text":
        return _text(rng, size)
    raise PayloadError(f"unknown payload kind {kind!r}; allowed: {', '.join(KINDS)}")


def _text(rng: random.Random, size: int) -> bytes:
    # JSON-lines records with repeated keys, small vocabularies and random numbers:
    # gzip shrinks them about as much as it shrinks real API traffic (3-6x), unlike
    # zeros (trivial) or random bytes (incompressible).
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    cities = ["Berlin", "Lagos", "Lima", "Osaka", "Pune", "Quito", "Riga", "Seoul", "Tunis", "Oslo"]
    chunks: list[bytes] = []
    total = 0
    i = 0
    while total < size:
        record = {
            "id": 100000 + i,
            "user": f"{rng.choice(words)}_{rng.randrange(10**6)}",
            "email": f"{rng.choice(words)}.{rng.randrange(1000)}@example.com",
            "city": rng.choice(cities),
            "active": rng.random() < 0.7,
            "score": round(rng.uniform(0, 1000), 2),
            "tags": rng.sample(words, 3),
            "note": " ".join(rng.choice(words) for _ in range(rng.randrange(3, 9))),
        }
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        chunks.append(line)
        total += len(line)
        i += 1
    return b"".join(chunks)[:size]


def check_level(level: int) -> None:
    if not 0 <= level <= 9:
        raise PayloadError(f"payload_gzip_level must be 0-9, got {level}")


def encode(raw: bytes, level: int) -> bytes:
    """Level 0 sends ``raw`` as is; 1-9 gzip-compresses it at that zlib level."""
    check_level(level)
    if level == 0:
        return raw
    return zlib.compress(raw, level, wbits=_GZIP_WBITS)


def decode(data: bytes, level: int, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Inverse of :func:`encode`; raises PayloadError on corrupt or oversized data."""
    check_level(level)
    if level == 0:
        return data
    inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
    try:
        raw = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise PayloadError(f"payload is not valid gzip data: {exc}") from None
    if inflater.unconsumed_tail:
        raise PayloadError(f"payload inflates past {limit} bytes")
    if not inflater.eof:
        raise PayloadError("payload gzip stream is truncated")
    return raw
