"""Benchmarks of the lab itself (its overhead, long soaks): studies that measure the harness, not a server.

Each study is a command, ``python -m bench.studies.NAME``. What they share is here: a bad option is one line
naming it and exit 2 (:class:`UsageError`), the output directory must be new (:func:`new_out_dir`), and the
server's and the load generator's CPUs must be available (:func:`check_cpus`).
"""

from __future__ import annotations

import os
from pathlib import Path


class UsageError(Exception):
    """A bad option (one line, naming it): exit 2."""


def new_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` (and its parents); UsageError when it exists already or cannot be created."""
    try:
        out_dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise UsageError(f"--out {out_dir}: already exists") from None
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: {exc.strerror}") from None


def check_cpus(server_cpu: int, loadgen_cpu: int) -> None:
    """UsageError naming --server-cpu or --loadgen-cpu when that CPU is not available to this process."""
    available = os.sched_getaffinity(0)
    for flag, cpu in (("--server-cpu", server_cpu), ("--loadgen-cpu", loadgen_cpu)):
        if cpu not in available:
            raise UsageError(f"{flag}: CPU {cpu} is not available here ({sorted(available)})")
