"""SIGTERM/SIGINT for a process whose main thread only waits to be stopped: a handler that takes no lock.

A Python signal handler runs on the main thread between bytecodes, also in the middle of another run of the
same handler and inside threading code that holds a lock. ``threading.Event.set()`` from a handler takes the
Event's lock, so a second SIGTERM arriving while the first handler holds it (a harness that stops a server from
two threads sends two), or one arriving while the main thread's ``Event.wait()`` holds it, deadlocks the main
thread: the process then ignores every later SIGTERM and lives until SIGKILL. Here the handler only writes a
byte to a pipe (one system call, no lock) and the main thread waits on the pipe.

The pipe is also the process's signal wakeup fd: a signal the kernel hands to one of gRPC's threads wakes the
main thread's wait as well (Python runs handlers on the main thread only, when it runs). An asyncio server waits
with ``wait_async`` (the loop watches the pipe) instead of ``loop.add_signal_handler``, so the handler stays
installed after ``asyncio.run`` returns and a late SIGTERM cannot kill the process on its way out (asyncio puts
back the default action, which would). Once a stop came, SIGTERM is ignored: the stop is under way and bounded by
its grace (a harness that wants it over sooner sends SIGKILL), and Python's own exit puts back the default action
of every signal it handles, so a SIGTERM in the last milliseconds of the exit would otherwise kill the process.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
from collections.abc import Iterable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Installs the handlers (main thread only, as signal.signal requires); ``wait`` says whether one came."""

    def __init__(self, signals: Iterable[signal.Signals] = STOP_SIGNALS) -> None:
        self._signals = tuple(signals)
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for sig in self._signals:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.request()

    def request(self) -> None:
        """Stop as a signal would (also from another thread: a QuitWorker RPC's handler)."""
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:  # the pipe is full of earlier requests: it already says stop
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop signal came (True) or ``timeout`` seconds passed (False); None: no timeout."""
        readable, _, _ = select.select([self._read], [], [], timeout)
        if readable:
            self._stopping()
        return bool(readable)

    async def wait_async(self) -> None:
        """Wait on the running event loop until a stop signal came."""
        loop = asyncio.get_running_loop()
        came = loop.create_future()
        loop.add_reader(self._read, lambda: came.done() or came.set_result(None))
        try:
            await came
        finally:
            loop.remove_reader(self._read)
        self._stopping()

    def _stopping(self) -> None:
        if signal.SIGTERM in self._signals:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
