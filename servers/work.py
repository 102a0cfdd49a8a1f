"""Work a handler does before it answers a message: what a request's ``lab.Work`` asks for (the handler_* axes).

Three kinds, because each one meets a server model differently (issue 18):

- **wait**: a wait the handler yields during, like a database call. The sync server sleeps in its pool thread
  (the thread is taken, the GIL is not); the aio server awaits ``asyncio.sleep`` (the event loop serves others).
- **block**: a blocking call that does not yield. In the sync server the same as a wait; in the aio server a
  ``time.sleep`` on the event loop, which holds every other RPC of the process: the common mistake.
- **cpu**: pure-Python CPU work holding the GIL, measured on the thread's own CPU clock, so it costs exactly that
  much CPU even when the thread is preempted. More threads cannot run it in parallel.

The test-only fault knob ``GRPCLAB_INJECT_CPU_US`` burns CPU with the same :func:`burn_cpu`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass

# Per message. Bounded so one request cannot hold a server for hours; beyond: INVALID_ARGUMENT (the Go server too).
MAX_WAIT_US = 10_000_000
MAX_BLOCK_US = 10_000_000
MAX_CPU_US = 1_000_000


def burn_cpu(seconds: float) -> None:
    """Spin in Python (holding the GIL) until this thread has used ``seconds`` of its CPU clock."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@dataclass(frozen=True, slots=True)
class Work:
    """One message's work, in seconds; never all zero (:func:`checked` returns None for no work)."""

    wait_s: float
    block_s: float
    cpu_s: float

    def hold(self) -> None:
        """The part that does not yield: burn the CPU, then block (on an event loop this holds the loop)."""
        if self.cpu_s:
            burn_cpu(self.cpu_s)
        if self.block_s:
            time.sleep(self.block_s)

    def on_thread(self) -> None:
        """All of it on the calling thread (the sync server's pool thread): there a wait blocks like a block."""
        self.hold()
        if self.wait_s:
            time.sleep(self.wait_s)

    async def on_loop(self) -> None:
        """On the event loop (the aio server): CPU and block hold the loop, the wait is awaited."""
        self.hold()
        if self.wait_s:
            await asyncio.sleep(self.wait_s)


class WorkError(ValueError):
    """Work beyond the per-message bounds (the message names the field)."""


@functools.lru_cache(maxsize=64)
def checked(wait_us: int, block_us: int, cpu_us: int) -> Work | None:
    """The work for these ``lab.Work`` fields (microseconds), None when there is none; WorkError beyond the bounds."""
    for name, value, limit in (("wait_us", wait_us, MAX_WAIT_US), ("block_us", block_us, MAX_BLOCK_US)):
        if value > limit:
            raise WorkError(f"work.{name} {value} > {limit}")
    if cpu_us > MAX_CPU_US:
        raise WorkError(f"work.cpu_us {cpu_us} > {MAX_CPU_US}")
    if not (wait_us or block_us or cpu_us):
        return None
    return Work(wait_us / 1e6, block_us / 1e6, cpu_us / 1e6)
