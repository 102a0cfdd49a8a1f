"""Regenerate the Python stubs for protos/*.proto: ``python -m protos.generate``.

protoc writes ``import lab_pb2 as lab__pb2``, a top-level import that only works
when protos/ itself is on sys.path; the stubs live in the ``protos`` package, so
that line is rewritten to a relative import. ``--check`` compares instead of
writing and exits 1 when the checked-in stubs are stale.
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


def render() -> dict[str, str]:
    """Run protoc into a temporary directory and return {file name: fixed text}."""
    import grpc_tools
    from grpc_tools import protoc  # build-time dependency only

    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as out:
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *(str(PROTO_DIR / name) for name in PROTO_FILES),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        return {
            p.name: _TOP_LEVEL_IMPORT.sub(r"from . import \1 as \2", p.read_text())
            for p in sorted(Path(out).iterdir())
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in stubs are stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        target = PROTO_DIR / name
        if target.exists() and target.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            target.write_text(text)
    if args.check and stale:
        print(f"stale generated stubs: {', '.join(stale)} (run: python -m protos.generate)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
