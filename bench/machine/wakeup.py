"""What waking an idle CPU costs here: a pipe ping-pong between two pinned processes, with idle gaps.

With one RPC in flight, the server's CPU and the load generator's CPU take turns: each idles while
the other works, and each message wakes the idle one. How long a wake-up takes depends on how deep
the CPU went to sleep (its cpuidle state), which the kernel's reported exit latencies do not always
tell (a halted vCPU is woken through the hypervisor, whatever the guest driver reports).

The probe measures it directly. Two processes, pinned to two CPUs, pass one byte back and forth
through pipes. Before each round trip the pinging side sleeps ``gap_s``, so both CPUs have been idle
long enough to sleep as deep as they do between a low-load cell's RPCs; the round trip then includes
two wake-ups. It runs twice: with the machine as it is, and with this process holding
/dev/cpu_dma_latency at 0 us (idle CPUs then poll instead of sleeping). Half the difference of the
medians is the cost of one wake-up. A busy machine makes the numbers meaningless: run it idle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from . import cpu_latency

ROUNDS = 200
GAP_S = 0.002  # idle time before each round trip: enough for any governor to choose its deepest state
TIMEOUT_S = 30.0

# Run in a fresh interpreter (no threads, so fork is safe): the parent pings from CPU a, the child
# pongs from CPU b. Prints the sorted round trips in ns as JSON.
_PING_PONG = """
import json, os, sys, time
a, b, rounds, gap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
to_child, from_parent = os.pipe()
to_parent, from_child = os.pipe()
pid = os.fork()
if pid == 0:
    os.sched_setaffinity(0, {b})
    while os.read(to_child, 1) == b"p":
        os.write(from_child, b"p")
    os._exit(0)
os.sched_setaffinity(0, {a})
times = []
for _ in range(rounds):
    time.sleep(gap)
    began = time.perf_counter_ns()
    os.write(from_parent, b"p")
    os.read(to_parent, 1)
    times.append(time.perf_counter_ns() - began)
os.write(from_parent, b"q")
os.waitpid(pid, 0)
print(json.dumps(sorted(times)))
"""


class WakeupError(Exception):
    """The probe could not run (CPU not available, the child failed)."""


@dataclass(frozen=True)
class RoundTrips:
    """Round trips between the two CPUs, each after an idle gap (us)."""

    median_us: float
    p10_us: float
    p90_us: float

    @classmethod
    def of(cls, sorted_ns: list[int]) -> RoundTrips:
        n = len(sorted_ns)
        return cls(
            median_us=sorted_ns[n // 2] / 1000, p10_us=sorted_ns[n // 10] / 1000, p90_us=sorted_ns[9 * n // 10] / 1000
        )


@dataclass(frozen=True)
class WakeupProbe:
    """The probe's result: round trips as the machine is, and with idle CPUs kept polling (if it could hold)."""

    cpus: tuple[int, int]
    rounds: int
    gap_ms: float
    request_us: int | None  # the PM QoS request already in effect during the as-is measurement (someone's hold)
    as_is: RoundTrips
    held: RoundTrips | None  # None: /dev/cpu_dma_latency could not be held (see hold_reason)
    hold_reason: str | None = None

    @property
    def wakeup_us(self) -> float | None:
        """What one wake-up costs beyond a polling CPU's: half the difference of the median round trips."""
        if self.held is None:
            return None
        return max(0.0, (self.as_is.median_us - self.held.median_us) / 2)

    def to_json(self) -> dict:
        return {**asdict(self), "cpus": list(self.cpus), "wakeup_us": self.wakeup_us}

    @classmethod
    def from_json(cls, data: dict) -> WakeupProbe:
        held = data.get("held")
        return cls(
            cpus=(int(data["cpus"][0]), int(data["cpus"][1])),
            rounds=int(data["rounds"]),
            gap_ms=float(data["gap_ms"]),
            request_us=data.get("request_us"),
            as_is=RoundTrips(**data["as_is"]),
            held=RoundTrips(**held) if held else None,
            hold_reason=data.get("hold_reason"),
        )

    def describe(self) -> str:
        held = (
            f"{self.held.median_us:.0f} us with /dev/cpu_dma_latency held at 0 (idle CPUs poll)"
            if self.held
            else f"not measured with a hold ({self.hold_reason})"
        )
        text = (
            f"CPU {self.cpus[0]} <-> {self.cpus[1]} round trip after {self.gap_ms:g} ms idle, median of "
            f"{self.rounds}: {self.as_is.median_us:.0f} us as the machine is"
        )
        if self.request_us is not None and self.request_us < cpu_latency.NO_REQUEST_US:
            text += f" (a {self.request_us} us request was already held)"
        text += f", {held}"
        if self.wakeup_us is not None:
            text += f": one wake-up costs ~{self.wakeup_us:.0f} us"
        return text


def _round_trips(cpus: tuple[int, int], rounds: int, gap_s: float) -> RoundTrips:
    command = [sys.executable, "-c", _PING_PONG, str(cpus[0]), str(cpus[1]), str(rounds), str(gap_s)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise WakeupError(f"wake-up probe did not finish within {TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise WakeupError(f"wake-up probe failed: {last}")
    return RoundTrips.of(json.loads(done.stdout))


def probe(cpus: tuple[int, int] = (0, 1), rounds: int = ROUNDS, gap_s: float = GAP_S) -> WakeupProbe:
    """Measure cross-CPU round trips after idle gaps, as is and with a cpu_dma_latency hold (about 1 s)."""
    available = os.sched_getaffinity(0)
    if cpus[0] == cpus[1] or not set(cpus) <= available:
        raise WakeupError(f"wake-up probe needs two different available CPUs, got {cpus} (available: {available})")
    request = cpu_latency.read_request_us()
    as_is = _round_trips(cpus, rounds, gap_s)
    with cpu_latency.hold(0) as state:
        held = _round_trips(cpus, rounds, gap_s) if state.held else None
    return WakeupProbe(
        cpus=cpus,
        rounds=rounds,
        gap_ms=gap_s * 1000,
        request_us=request,
        as_is=as_is,
        held=held,
        hold_reason=state.reason,
    )
