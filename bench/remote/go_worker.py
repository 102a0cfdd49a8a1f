"""grpc-go's benchmark worker (google.golang.org/grpc/benchmark/worker): where it is and how it is started.

`make setup` builds it when Go is installed, at the grpc-go version servers/go/go.mod pins (the Makefile reads it
from there, so the reference server and this worker are always the same grpc-go), into .venv/bin under the
name :data:`BINARY_NAME`.

What it does with a driver's configs (read in its v1.85.0 sources, benchmark/worker/*.go), which is what the
lab's configs (bench.remote.configs) must fit:

* ServerConfig: ``server_type`` SYNC_SERVER, ASYNC_SERVER or ASYNC_GENERIC_SERVER (all run the same grpc-go
  server; anything else, OTHER_SERVER included, is INVALID_ARGUMENT), ``async_server_threads`` and
  ``core_list`` ignored, ``core_limit`` -> GOMAXPROCS, ``security_params`` -> TLS with grpc-go's test
  certificates, ``payload_config`` simple or bytebuf; its stats carry only wall, user and system time
  (getrusage of the whole worker), no ``total_cpu_time``/``idle_cpu_time`` and no core_stats.
* ClientConfig: ``client_type`` SYNC_CLIENT or ASYNC_CLIENT (the same goroutine client), ``rpc_type`` UNARY or
  STREAMING (ping-pong on one long-lived stream per outstanding RPC; ``messages_per_stream`` ignored),
  ``client_channels`` x ``outstanding_rpcs_per_channel`` goroutines, closed loop or Poisson, the latency
  histogram from ``histogram_params`` (the same log buckets as gRPC's C++ worker), ``channel_args`` ignored
  (so the lab's ``grpclab.*`` arguments are too: its load is bounded by the driver closing the stream), no
  ``request_results`` (a failed RPC is not counted at all; every latency is a successful RPC).
* The worker and every benchmark server it starts listen on all addresses (``:PORT``): on this machine it is
  only ever started inside a lab network namespace (bench.remote.fleet), never on the host.

Pinning: it ignores ``core_list``, so the fleet pins the whole worker process (taskset) at launch; with one CPU
Go's runtime.NumCPU() is 1 and GOMAXPROCS follows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINARY_NAME = "grpc-go-benchmark-worker"
PACKAGE = "google.golang.org/grpc/benchmark/worker"
GO_MOD = REPO / "servers" / "go" / "go.mod"
DEFAULT_DRIVER_PORT = 10000  # the worker's own default; each namespace has its own ports, so it is always free


def pinned_version(go_mod: Path = GO_MOD) -> str | None:
    """The grpc-go version servers/go pins (the worker is built at the same one), or None if go.mod says none."""
    for line in go_mod.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "google.golang.org/grpc":
            return fields[1]
        if len(fields) >= 3 and fields[:2] == ["require", "google.golang.org/grpc"]:
            return fields[2]
    return None


def binary() -> Path | None:
    """The built worker (in this checkout's .venv/bin, else on PATH), or None."""
    local = REPO / ".venv" / "bin" / BINARY_NAME
    if local.is_file():
        return local
    found = shutil.which(BINARY_NAME)
    return Path(found) if found else None


def missing() -> str | None:
    """Why the grpc-go worker cannot run here (one line), or None when it can."""
    if binary() is None:
        return f"{BINARY_NAME} not built: `make setup` builds {PACKAGE}@{pinned_version()} when Go >= 1.26 is installed"
    return None


def command(driver_port: int = DEFAULT_DRIVER_PORT) -> list[str]:
    """The command line of a grpc-go worker serving WorkerService on ``:driver_port`` (all addresses)."""
    path = binary()
    if path is None:
        raise FileNotFoundError(missing())
    return [str(path), f"--driver_port={driver_port}"]
