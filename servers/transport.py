"""Binding a server's port (plaintext or TLS) and enabling reflection, for both server models."""

from __future__ import annotations

import grpc
from grpc_reflection.v1alpha import reflection

from . import certs, logic
from .config import ServerConfig


class BindError(RuntimeError):
    """The server could not bind its address (the message says which and why)."""


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials:
    paths = certs.load(config.tls_dir)
    return grpc.ssl_server_credentials(
        [(paths.server_key.read_bytes(), paths.server_cert.read_bytes())],
        # --mtls: the server asks for a client certificate and verifies it against the lab CA.
        root_certificates=paths.ca_cert.read_bytes() if config.mtls else None,
        require_client_auth=config.mtls,
    )


def add_port(server: grpc.Server | grpc.aio.Server, config: ServerConfig) -> int:
    address = f"[{config.host}]:{config.port}" if ":" in config.host else f"{config.host}:{config.port}"
    try:
        if config.tls_dir is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, server_credentials(config))
    except RuntimeError as exc:  # grpcio raises on a failed bind
        raise BindError(f"cannot bind {address}: port in use or address unavailable ({exc})") from None
    if not port:  # older grpcio returned 0 instead of raising
        raise BindError(f"cannot bind {address}: port in use or address unavailable")
    return port


def served_names(config: ServerConfig) -> tuple[str, ...]:
    """The full names of the services a server of ``config`` serves (health reports SERVING for each)."""
    names = (*logic.SERVICE_NAMES, logic.CONTROL_SERVICE_NAME)
    if config.benchmark_service:
        from .benchmark_service import SERVICE_NAME

        names += (SERVICE_NAME,)
    return names


def enable_reflection(server: grpc.Server | grpc.aio.Server, config: ServerConfig) -> None:
    """Reflection lets ghz and grpcurl call the lab without its .proto files."""
    names = (*served_names(config), "grpc.health.v1.Health", reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
