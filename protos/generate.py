"""Regenerate the stubs for protos/*.proto: ``python -m protos.generate`` (Python), ``--go`` (the Go server's).

protoc writes ``import lab_pb2 as lab__pb2``, a top-level import that only works
when protos/ itself is on sys.path; the stubs live in the ``protos`` package, so
that line is rewritten to a relative import. The same goes for gRPC's benchmark
protocol under protos/grpc/ (``from grpc.testing import ...`` would import from the
grpc package itself): it becomes ``from ..testing import ...``. ``--check`` compares
instead of writing and exits 1 when the checked-in stubs are stale.

``--go`` writes servers/go/gen/<package>pb/ with protoc-gen-go and protoc-gen-go-grpc
from .venv/bin (``make go-protos`` installs the pinned versions there). The Go
package of each file is given on the command line (``M`` options), so the .proto
files carry no ``go_package`` option and stay exactly the tutorial's contract.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILES = ("lab.proto", "greet.proto", "number_stream.proto", "sum_stream.proto", "chat.proto")
_TOP_LEVEL_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)
# gRPC's benchmark protocol (grpc.testing, grpc.core), Python only: the Go server does not speak it.
BENCHMARK_PROTO_FILES = (
    "grpc/core/stats.proto",
    "grpc/testing/payloads.proto",
    "grpc/testing/messages.proto",
    "grpc/testing/stats.proto",
    "grpc/testing/control.proto",
    "grpc/testing/benchmark_service.proto",
    "grpc/testing/worker_service.proto",
)
# The lab's own service beside WorkerService on a lab worker's driver port (package grpclab).
LAB_WORKER_PROTO_FILES = ("grpclab/facts.proto",)
_PACKAGE_IMPORT = re.compile(r"^from grpc\.(testing|core) import (\w+_pb2) as (\w+)$", re.MULTILINE)
_LAB_PACKAGE_IMPORT = re.compile(r"^from grpclab import (\w+_pb2) as (\w+)$", re.MULTILINE)

GO_MODULE = "grpclab/servers/go"
GO_DIR = PROTO_DIR.parent / "servers" / "go"
# .proto file -> Go package directory under servers/go (number_stream and sum_stream both define NumberRequest).
GO_PACKAGES = {
    "lab.proto": "gen/labpb",
    "greet.proto": "gen/greetpb",
    "number_stream.proto": "gen/numberstreampb",
    "sum_stream.proto": "gen/sumstreampb",
    "chat.proto": "gen/chatpb",
}
GO_PLUGINS = ("protoc-gen-go", "protoc-gen-go-grpc")


def _protoc(args: list[str]) -> None:
    import grpc_tools
    from grpc_tools import protoc  # build-time dependency only

    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    if protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", *args]) != 0:
        raise SystemExit("protoc failed")


def render() -> dict[str, str]:
    """Run protoc into a temporary directory and return {file name: fixed text}."""
    with tempfile.TemporaryDirectory() as out:
        _protoc(
            [
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                *(str(PROTO_DIR / name) for name in (*PROTO_FILES, *BENCHMARK_PROTO_FILES, *LAB_WORKER_PROTO_FILES)),
            ]
        )
        rendered = {}
        for p in sorted(Path(out).rglob("*.py*")):
            text = _TOP_LEVEL_IMPORT.sub(r"from . import \1 as \2", p.read_text())
            text = _LAB_PACKAGE_IMPORT.sub(r"from . import \1 as \2", text)
            rendered[str(p.relative_to(out))] = _PACKAGE_IMPORT.sub(r"from ..\1 import \2 as \3", text)
        return rendered


def go_plugins(bin_dir: Path | None = None) -> dict[str, Path] | None:
    """The two Go plugins in ``bin_dir`` (default: next to this interpreter, i.e. .venv/bin), or None."""
    bin_dir = bin_dir or Path(sys.executable).parent  # not resolved: sys.executable is .venv/bin/python
    found = {name: bin_dir / name for name in GO_PLUGINS}
    return found if all(p.is_file() for p in found.values()) else None


def render_go() -> dict[str, str]:
    """Run protoc with the Go plugins; return {path relative to servers/go: text}."""
    plugins = go_plugins()
    if plugins is None:
        raise SystemExit(f"{' and '.join(GO_PLUGINS)} not found next to {sys.executable}: run make go-protos")
    mappings = [f"M{name}={GO_MODULE}/{package}" for name, package in GO_PACKAGES.items()]
    with tempfile.TemporaryDirectory() as out:
        _protoc(
            [
                *(f"--plugin={name}={path}" for name, path in plugins.items()),
                f"--go_out={out}",
                f"--go-grpc_out={out}",
                f"--go_opt=module={GO_MODULE}",
                f"--go-grpc_opt=module={GO_MODULE}",
                *(f"--go_opt={m}" for m in mappings),
                *(f"--go-grpc_opt={m}" for m in mappings),
                *(str(PROTO_DIR / name) for name in PROTO_FILES),
            ]
        )
        return {str(p.relative_to(out)): p.read_text() for p in sorted(Path(out).rglob("*.go"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in stubs are stale")
    parser.add_argument("--go", action="store_true", help="the Go server's stubs (servers/go/gen) instead")
    args = parser.parse_args(argv)
    target_dir, rendered = (GO_DIR, render_go()) if args.go else (PROTO_DIR, render())
    stale = []
    for name, text in rendered.items():
        target = target_dir / name
        if target.exists() and target.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    if args.check and stale:
        flag = " --go" if args.go else ""
        print(f"stale generated stubs: {', '.join(stale)} (run: python -m protos.generate{flag})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
