"""Hold /dev/cpu_dma_latency at 0 while a study measures: idle CPUs then wake in microseconds, not ~0.7 ms.

On a KVM guest with cpuidle haltpoll an idle vCPU halts, and waking it costs about 0.7 ms. A server that
waits for each request between two bursts of work pays that on every wake-up, and how often it waits
differs between two servers, so wake-ups blur a CPU-per-RPC comparison. The kernel keeps the latency
limit written to /dev/cpu_dma_latency (a 4-byte integer, microseconds) for as long as the file stays open.

A stand-in until the lab's own hold (bench/machine/cpu_latency.py, issue 11) is in this tree; it only
needs root (or write access to the device) and restores itself when the process ends, however it ends.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager

DEVICE = "/dev/cpu_dma_latency"


@contextmanager
def hold(wanted: bool = True, device: str = DEVICE) -> Iterator[str]:
    """Hold the limit at 0 us inside the block; yields what happened: "on", "off" or "unavailable: why"."""
    if not wanted:
        yield "off"
        return
    try:
        fd = os.open(device, os.O_WRONLY)
    except OSError as exc:
        yield f"unavailable: {device}: {exc.strerror}"
        return
    try:
        os.write(fd, struct.pack("i", 0))
    except OSError as exc:
        os.close(fd)
        yield f"unavailable: {device}: {exc.strerror}"
        return
    try:
        yield "on"
    finally:
        os.close(fd)  # closing the file is what ends the hold
