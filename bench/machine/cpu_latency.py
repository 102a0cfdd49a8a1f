"""Hold /dev/cpu_dma_latency: ask the kernel to keep idle CPUs out of slow-to-wake idle states.

An idle CPU enters an idle state (C-state; in a VM, usually a halt that exits to the hypervisor),
and waking it costs that state's exit latency. With one RPC in flight the server's and the load
generator's CPUs idle between messages, so every round trip pays two wake-ups. A PM QoS request
written to /dev/cpu_dma_latency limits the exit latency cpuidle may choose: at 0 us it only polls.

The request lives exactly as long as the file descriptor that made it: the kernel removes it when
the descriptor is closed, and the kernel closes every descriptor of a process that exits, however it
exits (SIGKILL included). So a hold is never left behind. The descriptor is opened non-inheritable
(Python's default), so processes the holder starts do not keep the request alive after it.

Reading the device returns the *effective* value: the lowest of all requests held on the machine,
or NO_REQUEST_US (2,000 s: the kernel's default) when there is none.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

DEVICE = Path("/dev/cpu_dma_latency")
# PM_QOS_CPU_LATENCY_DEFAULT_VALUE: what the device reads back when nobody holds a request.
NO_REQUEST_US = 2_000_000_000
_INT32 = struct.Struct("=i")  # the kernel takes and returns a native-endian s32 (microseconds)


@dataclass(frozen=True)
class HoldState:
    """What a hold achieved: held or not (and why not), and the machine's effective request while held.

    Also what a run records in its manifest (``cpu_latency_hold``): ``requested`` False when the run was told not
    to hold (settings.cpu_latency_hold = false), and then ``effective_us`` is what others held meanwhile.
    """

    requested_us: int
    held: bool
    effective_us: int | None  # the device's value after the request was made (None: not readable)
    reason: str | None = None  # why it is not held
    requested: bool = True  # False: a run with the hold turned off (nothing was asked of the device)

    @classmethod
    def not_requested(cls, reason: str, device: Path | None = None) -> HoldState:
        """A run that does not hold: what the machine's request was anyway (someone else's hold, or none)."""
        return cls(requested_us=0, held=False, effective_us=read_request_us(device), reason=reason, requested=False)

    @classmethod
    def from_json(cls, data: dict) -> HoldState:
        return cls(
            requested_us=int(data["requested_us"]),
            held=bool(data["held"]),
            effective_us=None if data.get("effective_us") is None else int(data["effective_us"]),
            reason=data.get("reason"),
            requested=bool(data.get("requested", True)),
        )

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def polling(self) -> bool | None:
        """Were idle CPUs kept polling (an effective request of 0 us, by this holder or another)? None: unknown."""
        if self.effective_us is not None:
            return self.effective_us == 0
        return True if self.held and self.requested_us == 0 else None

    def regime(self) -> str:
        """What idle CPUs could do during the run, for comparing runs: equal text, same regime."""
        if self.effective_us is not None:
            return f"effective request {format_request(self.effective_us)}"
        return f"held at {self.requested_us} us" if self.held else "not held, effective request unknown"

    def describe(self) -> str:
        """One line: what is held, or why nothing is (a warning, not an error)."""
        if self.held:
            return (
                f"holding /dev/cpu_dma_latency at {self.requested_us} us "
                f"(effective request: {format_request(self.effective_us)}); released when this process ends"
            )
        if self.polling:
            return (
                f"/dev/cpu_dma_latency not held by this process ({self.reason}), but another process holds a "
                "request of 0 us: idle CPUs poll anyway"
            )
        return f"warning: /dev/cpu_dma_latency not held: {self.reason}; idle CPUs may enter slow-to-wake states"

    @property
    def warns(self) -> bool:
        """A run whose idle CPUs may have slept (or nobody knows): its describe() line is a warning."""
        return not self.held and not self.polling


def format_request(value: int | None) -> str:
    if value is None:
        return "unknown"
    return "none" if value >= NO_REQUEST_US else f"{value} us"


def read_request_us(device: Path | None = None) -> int | None:
    """The machine's effective PM QoS CPU latency request in us (NO_REQUEST_US: none); None if unreadable.

    Opening the device adds a request at the default value, which constrains nothing; it goes with the close.
    """
    device = device or DEVICE
    try:
        fd = os.open(device, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_value(fd)
    finally:
        os.close(fd)


def _read_value(fd: int) -> int | None:
    try:
        data = os.pread(fd, _INT32.size, 0)  # pread: the device keeps a file position, reads past 4 bytes are empty
    except OSError:
        return None
    return _INT32.unpack(data)[0] if len(data) == _INT32.size else None


def _reason(exc: OSError, device: Path) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{device} does not exist (not Linux, or no PM QoS)"
    if isinstance(exc, PermissionError):
        return f"cannot open {device}: permission denied (it needs root)"
    return f"cannot open {device}: {exc.strerror or exc}"


@contextmanager
def hold(us: int = 0, device: Path | None = None) -> Iterator[HoldState]:
    """Hold the CPU latency request at ``us`` microseconds for the with-block.

    Never raises for a device that cannot be opened or written: the yielded state says held=False and why.
    """
    device = device or DEVICE
    if not 0 <= us <= NO_REQUEST_US:
        raise ValueError(f"cpu latency request must be 0..{NO_REQUEST_US} us, got {us}")
    try:
        fd = os.open(device, os.O_RDWR)
    except OSError as exc:
        fd, why = None, _reason(exc, device)
    if fd is None:
        # (yielded outside the except block: an error in the with-body is not chained to this one)
        yield HoldState(requested_us=us, held=False, effective_us=read_request_us(device), reason=why)
        return
    try:
        try:
            written = os.write(fd, _INT32.pack(us))
        except OSError as exc:
            written, why = 0, f"writing {device}: {exc.strerror or exc}"
        else:
            why = f"writing {device}: {written} of {_INT32.size} bytes written"
        if written != _INT32.size:
            state = HoldState(requested_us=us, held=False, effective_us=_read_value(fd), reason=why)
        else:
            state = HoldState(requested_us=us, held=True, effective_us=_read_value(fd))
        yield state
    finally:
        os.close(fd)  # the kernel drops the request here (or when the process dies, whichever comes first)


def tune(us: int = 0, seconds: float | None = None) -> int:
    """`grpclab system tune`: hold the request until Ctrl-C or SIGTERM (or for ``seconds``), saying what it holds.

    Exit 0 when the hold ends as asked, 1 when it cannot be held (the one warning line says why).
    """
    import signal
    import sys
    import time

    from .system import collect

    # SIGTERM ends the hold like Ctrl-C, as bench.run.executor.sigterm_interrupts does for runs; not imported from
    # there: bench.machine sits below bench.run, and this command would load the whole harness (grpc, pyarrow).
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with hold(us) as state:
            if not state.held:
                print(state.describe(), file=sys.stderr)
                return 1
            idle = next(c for c in collect(steal_interval_s=0).checks if c.name == "cpuidle")
            until = f"for {seconds:g} s" if seconds is not None else "until Ctrl-C or SIGTERM"
            # The wait begins with these lines: whoever reads them may stop it at once, before the next bytecode.
            try:
                print(f"{state.describe()}; {until}")
                print(f"cpuidle: {idle.value}" + (f"\n  -> {idle.effect}" if idle.effect else ""), flush=True)
                if seconds is None:
                    while True:
                        time.sleep(3600)
                time.sleep(seconds)
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"released; effective request now: {format_request(read_request_us())}", flush=True)
    return 0
