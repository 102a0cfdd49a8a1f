"""The tutorial's contract: its verbatim .proto files and client code work unchanged against the lab.

tests/tutorial_protos/ holds the tutorial's four .proto files as printed and its four client programs
merged into tutorial_client.py. Their stubs are generated at test time and only ever used in
subprocesses (their message names would clash with the lab's in protobuf's default pool).
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from server_impls import impls

from protos import chat_pb2, generate, greet_pb2, number_stream_pb2, sum_stream_pb2
from servers.config import ServerConfig

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = Path(__file__).resolve().parent / "tutorial_protos"
TUTORIAL_PROTOS = ("greet.proto", "number_stream.proto", "sum_stream.proto", "chat.proto")
LAB_MODULES = {"greet.proto": greet_pb2, "number_stream.proto": number_stream_pb2}
LAB_MODULES |= {"sum_stream.proto": sum_stream_pb2, "chat.proto": chat_pb2}
FULL_METHOD_NAMES = {
    "/greet.Greeter/SayHello",
    "/number_stream.NumberService/GetNumbers",
    "/sum_stream.SumService/CalculateSum",
    "/chat.ChatService/Chat",
}
# What the tutorial's four client programs print, in order, against a correct server.
TUTORIAL_LINES = (TUTORIAL / "expected_output.txt").read_text().splitlines()


def protoc(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{TUTORIAL}", *args, *TUTORIAL_PROTOS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def tutorial_stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """greet_pb2.py, greet_pb2_grpc.py, ... generated from the tutorial's .proto files, as the tutorial says."""
    out = tmp_path_factory.mktemp("tutorial-stubs")
    protoc(f"--python_out={out}", f"--grpc_python_out={out}")
    return out


@pytest.fixture(scope="module")
def tutorial_descriptors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """The tutorial's .proto files compiled by protoc, read as plain messages (nothing enters the default pool)."""
    out = tmp_path_factory.mktemp("tutorial-descriptors") / "set.pb"
    protoc(f"--descriptor_set_out={out}")
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return {f.name: f for f in files}


def lab_descriptor(name: str) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    LAB_MODULES[name].DESCRIPTOR.CopyToProto(proto)
    return proto


# --- the tutorial's client against the lab's servers ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize("security", ["plaintext", "tls"])
@pytest.mark.parametrize("impl", impls())
def test_tutorial_client_gets_the_tutorial_answers(
    server, lab_certs, tutorial_stubs: Path, impl: str, security: str, compression: str
) -> None:
    args = ["--impl", impl, "--compression", compression]
    client = []
    if security == "tls":
        args += ["--tls", str(lab_certs.dir)]
        client += ["--ca", str(lab_certs.ca_cert)]
    if compression == "gzip":
        client.append("--gzip")
    srv = server(*args)
    result = subprocess.run(
        [sys.executable, str(TUTORIAL / "tutorial_client.py"), "--target", srv.target, *client],
        cwd=tutorial_stubs,
        env={**os.environ, "PYTHONPATH": str(tutorial_stubs)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == TUTORIAL_LINES
    assert result.stderr == ""


@pytest.mark.slow
def test_tutorial_client_reports_an_error_status(tutorial_stubs: Path) -> None:
    # The client's own error handling works: a server that is not there is an RpcError, not a hang.
    with socket.socket() as bound_not_listening:  # connecting to it is refused
        bound_not_listening.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{bound_not_listening.getsockname()[1]}"
        result = subprocess.run(
            [sys.executable, str(TUTORIAL / "tutorial_client.py"), "--target", target],
            env={**os.environ, "PYTHONPATH": str(tutorial_stubs)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout.startswith("Error occurred:  StatusCode.UNAVAILABLE")


# --- names and numbers ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "language",
    [
        "python",
        pytest.param(
            "go",
            marks=pytest.mark.skipif(
                generate.go_plugins() is None, reason="protoc-gen-go(-grpc) not installed: run make setup with Go"
            ),
        ),
    ],
)
def test_generated_stubs_are_fresh(language: str) -> None:
    flags = ["--go"] if language == "go" else []
    result = subprocess.run(
        [sys.executable, "-m", "protos.generate", "--check", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_go_stubs_cover_every_proto_and_no_proto_names_a_go_package() -> None:
    # The Go package of each file comes from protos.generate's M options, so the .proto files stay the contract.
    assert set(generate.GO_PACKAGES) == set(generate.PROTO_FILES)
    for name in generate.PROTO_FILES:
        assert "go_package" not in (REPO / "protos" / name).read_text(), name
        stem = name.removesuffix(".proto")
        package_dir = REPO / "servers" / "go" / generate.GO_PACKAGES[name]
        assert {p.name for p in package_dir.iterdir()} == {f"{stem}.pb.go", f"{stem}_grpc.pb.go"}


def _full_method_names(files) -> set[str]:
    return {f"/{f.package}.{s.name}/{m.name}" for f in files for s in f.service for m in s.method}


@pytest.mark.slow
def test_full_method_names(tutorial_descriptors) -> None:
    lab = [lab_descriptor(name) for name in TUTORIAL_PROTOS]
    assert _full_method_names(lab) == FULL_METHOD_NAMES
    assert _full_method_names(tutorial_descriptors.values()) == FULL_METHOD_NAMES
    # The checked-in client stubs call exactly these paths.
    stubs = "".join((REPO / "protos" / name.replace(".proto", "_pb2_grpc.py")).read_text() for name in TUTORIAL_PROTOS)
    for method in FULL_METHOD_NAMES:
        assert f"'{method}'" in stubs or f'"{method}"' in stubs, method


@pytest.mark.slow
@pytest.mark.parametrize("name", TUTORIAL_PROTOS)
def test_tutorial_definitions_are_unchanged(tutorial_descriptors, name: str) -> None:
    tutorial, lab = tutorial_descriptors[name], lab_descriptor(name)
    assert lab.name == tutorial.name and lab.package == tutorial.package and lab.syntax == tutorial.syntax == "proto3"
    lab_messages = {m.name: m for m in lab.message_type}
    for message in tutorial.message_type:
        assert message.name in lab_messages, message.name
        lab_fields = {f.name: f for f in lab_messages[message.name].field}
        for field in message.field:
            ours = lab_fields.get(field.name)
            assert ours is not None, f"{message.name}.{field.name} is gone"
            # Same number, type and label: the tutorial's wire format and its clients still work.
            same = (ours.number, ours.type, ours.label, ours.type_name)
            assert same == (field.number, field.type, field.label, field.type_name), f"{message.name}.{field.name}"
        # Every lab addition has a number of its own, above the tutorial's.
        tutorial_numbers = {f.number for f in message.field}
        extra = [f.number for f in lab_messages[message.name].field if f.name not in {g.name for g in message.field}]
        assert not set(extra) & tutorial_numbers and all(n > max(tutorial_numbers) for n in extra)
    assert [s.name for s in lab.service] == [s.name for s in tutorial.service]
    for ours, theirs in zip(lab.service, tutorial.service, strict=True):
        assert len(ours.method) == len(theirs.method)
        for a, b in zip(ours.method, theirs.method, strict=True):
            assert (a.name, a.input_type, a.output_type, a.client_streaming, a.server_streaming) == (
                b.name,
                b.input_type,
                b.output_type,
                b.client_streaming,
                b.server_streaming,
            )


@pytest.mark.slow
def test_tutorial_field_one_of_each_message(tutorial_descriptors) -> None:
    """The tutorial's field 1 of each message, spelled out (independent of the copies in tutorial_protos/)."""
    expected = {
        "greet.HelloRequest": ("name", "string"),
        "greet.HelloReply": ("message", "string"),
        "number_stream.NumberRequest": ("limit", "int32"),
        "number_stream.NumberResponse": ("number", "int32"),
        "sum_stream.NumberRequest": ("number", "int32"),
        "sum_stream.SumResponse": ("sum", "int32"),
        "chat.ChatRequest": ("message", "string"),
        "chat.ChatResponse": ("message", "string"),
    }
    types = {
        descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
        descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    }
    for files in (tutorial_descriptors.values(), [lab_descriptor(name) for name in TUTORIAL_PROTOS]):
        found = {}
        for f in files:
            for message in f.message_type:
                (first,) = [field for field in message.field if field.number == 1]
                found[f"{f.package}.{message.name}"] = (first.name, types.get(first.type, str(first.type)))
        assert found == expected


# --- what the tutorial got wrong stays out of the lab -----------------------------------------------------


def _code_text(path: Path) -> str:
    """The file's Python code without comments: string literals and names only."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return " ".join(t.string for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE))


def test_no_private_grpc_api_and_no_wildcard_bind() -> None:
    offenders = []
    files = [p for d in ("protos", "servers", "bench") for p in sorted((REPO / d).rglob("*")) if p.is_file()]
    assert len(files) > 20
    for path in files:
        if path.suffix not in (".py", ".proto", ".toml", ".pyi"):
            continue
        text = _code_text(path) if path.suffix == ".py" else path.read_text()
        for needle in ("grpc._cython", "cygrpc", "[::]", "0.0.0.0"):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []


def test_default_bind_address_is_loopback() -> None:
    from bench.cli import build_parser

    assert ServerConfig().host == "127.0.0.1"
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert build_parser().parse_args(["call"]).target.startswith("127.0.0.1:")
