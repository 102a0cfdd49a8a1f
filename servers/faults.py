"""Test-only fault injection, read from the environment once at server start.

These knobs let the measurement-validity tests put a *known* cost into the server
(a sleep, CPU time, a stall) and check that the harness measures it back. They
are off unless the variables are set; production-like runs never set them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_DELAY_US = "GRPCLAB_INJECT_DELAY_US"  # sleep this long at the start of every RPC
ENV_CPU_US = "GRPCLAB_INJECT_CPU_US"  # burn this much thread CPU time at the start of every RPC
ENV_STALL = "GRPCLAB_INJECT_STALL"  # "AFTER_RPCS:MILLISECONDS": once, stall every RPC start for that long
ENV_LEAK_BYTES = "GRPCLAB_INJECT_LEAK_BYTES"  # keep this many bytes per RPC forever (the soak test's leak)


class FaultConfigError(ValueError):
    """A malformed injection variable (the message names it)."""


def _non_negative_int(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()):  # isdigit() alone accepts '²', which int() rejects
        raise FaultConfigError(f"{name}: expected a non-negative integer, got {raw!r}")
    return int(raw)


@dataclass
class Faults:
    delay_s: float = 0.0
    cpu_s: float = 0.0
    stall_after_rpcs: int = 0
    stall_s: float = 0.0
    leak_bytes: int = 0
    _stall_until: float = 0.0
    _started: int = 0  # RPCs started (counted only when a knob is set: the stall comes after the Nth)
    _leaked: list[bytes] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Faults:
        stall_after, stall_ms = 0, 0
        raw_stall = env.get(ENV_STALL, "").strip()
        if raw_stall:
            after, _, ms = raw_stall.partition(":")
            if not (f"{after}{ms}".isascii() and after.isdigit() and ms.isdigit() and int(after) > 0):
                raise FaultConfigError(f"{ENV_STALL}: expected AFTER_RPCS:MILLISECONDS, got {raw_stall!r}")
            stall_after, stall_ms = int(after), int(ms)
        return cls(
            delay_s=_non_negative_int(env, ENV_DELAY_US) / 1e6,
            cpu_s=_non_negative_int(env, ENV_CPU_US) / 1e6,
            stall_after_rpcs=stall_after,
            stall_s=stall_ms / 1e3,
            leak_bytes=_non_negative_int(env, ENV_LEAK_BYTES),
        )

    @property
    def active(self) -> bool:
        return bool(self.delay_s or self.cpu_s or self.stall_after_rpcs or self.leak_bytes)

    def on_rpc_start(self) -> float:
        """Count an RPC start and burn the injected CPU now; return how long the caller must wait (sleep or await).

        The server adapters call it only when ``active``: with every knob off the servers skip it entirely.
        """
        with self._lock:
            self._started += 1
            rpc_number = self._started
            if self.leak_bytes:
                # Filled, not zeroed: the pages must really be touched to show in RSS.
                self._leaked.append(b"\x01" * self.leak_bytes)
        if self.cpu_s:
            # thread CPU time, not wall time: the knob must cost exactly this much CPU
            # even when the thread is preempted while burning.
            end = time.thread_time() + self.cpu_s
            while time.thread_time() < end:
                pass
        wait = self.delay_s
        if self.stall_after_rpcs:
            now = time.monotonic()
            with self._lock:
                if rpc_number == self.stall_after_rpcs:
                    self._stall_until = now + self.stall_s
                stall_left = self._stall_until - now
            wait += max(0.0, stall_left)
        return wait
