"""What a result was measured on: machine, software versions, code version. Recorded in every manifest."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

PACKAGES = ("grpcio", "protobuf", "grpcio-tools", "hdrhistogram", "pandas", "pyarrow", "uvloop")
REPO = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state(repo: Path = REPO) -> dict:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def protobuf_runtime() -> str | None:
    """The protobuf runtime (upb, cpp, python) of this interpreter, which the servers and the Python
    generator run with too (their ready line reports theirs: servers.serve.protobuf_runtime)."""
    from servers.serve import protobuf_runtime as runtime

    return runtime()


def ghz_version() -> str | None:
    from ..load.ghz import find_ghz
    from ..load.ghz import ghz_version as version

    return version(find_ghz()) if find_ghz() else None


def describe() -> dict:
    return {
        "ghz": ghz_version(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cpus_available": sorted(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python_executable": sys.executable,
        "versions": versions(),
        "protobuf_runtime": protobuf_runtime(),
        "git": git_state(),
    }
