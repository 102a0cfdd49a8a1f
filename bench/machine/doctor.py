"""`grpclab doctor`: what the lab will run with, and what is missing (with what to install)."""

from __future__ import annotations

import os
import shutil
import subprocess

from servers import go_server

from . import environment


def _tool_version(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if out.returncode == 0 and text else None


def _ghz() -> str | None:
    from ..load.ghz import find_ghz

    return find_ghz()


def checks() -> list[tuple[str, str | None, str]]:
    """(name, found version or None, what to do when missing)."""
    versions = environment.versions()
    ghz = _ghz()
    go = shutil.which("go")
    return [
        ("python", versions["python"], "Python >= 3.11"),
        ("grpcio", versions["grpcio"], "make setup"),
        ("protobuf", versions["protobuf"], "make setup"),
        (
            "ghz",
            _tool_version([ghz, "--version"]) if ghz else None,
            "make setup (needs Go); the Python load generator works without it",
        ),
        ("go-server", go_server.version(), "make setup (needs Go >= 1.26); only --impl go needs it"),
        ("go", _tool_version([go, "version"]) if go else None, "install Go (>= 1.23: ghz; >= 1.26: the Go server)"),
        (
            "taskset",
            shutil.which("taskset"),
            "util-linux (CPU pinning; without it the runner pins via sched_setaffinity)",
        ),
        ("pyroute2", versions.get("pyroute2") or _version("pyroute2"), "make setup (netlink: wire bytes, link cells)"),
        ("nsenter", shutil.which("nsenter"), "util-linux (starts server and generators inside link cells' namespaces)"),
        ("link cells", _link_privilege(), "run as root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN"),
    ]


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _link_privilege() -> str | None:
    from ..run.netns import privilege_problem

    return "can create network namespaces" if privilege_problem() is None else None


def main() -> int:
    missing = 0
    for name, found, fix in checks():
        if found:
            print(f"{name:9} {found}")
        else:
            missing += 1
            print(f"{name:9} MISSING: {fix}")
    cpus = sorted(os.sched_getaffinity(0))
    print(f"{'cpus':9} {len(cpus)} usable ({','.join(map(str, cpus))}); {environment.cpu_model()}")
    if len(cpus) < 2:
        print("          WARNING: server and load generator need separate CPUs; results on 1 CPU are not comparable")
    from .system import collect

    warnings = collect().warnings()
    print(f"{'system':9} {len(warnings) or 'no'} warning{'s' if len(warnings) != 1 else ''} (details: grpclab system)")
    for check in warnings:
        print(f"          WARNING {check.name}: {check.value}")
    return 0
