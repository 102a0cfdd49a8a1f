"""Client channels, the same for `grpclab call` and the load generator."""

from __future__ import annotations

from pathlib import Path

import grpc

from servers import certs
from servers.config import COMPRESSIONS, DEFAULT_MAX_MESSAGE_BYTES, channel_preset


def channel_credentials(tls_dir: str | Path) -> grpc.ChannelCredentials:
    """Trust the lab CA; present the client certificate when the directory has one (mTLS servers ask for it)."""
    paths = certs.CertPaths.in_dir(tls_dir)
    if not paths.ca_cert.is_file():  # a client needs only the CA (and its own pair for mTLS), never server.key
        raise certs.CertError(f"--tls {tls_dir}: missing ca.crt in {tls_dir} (run: grpclab certs {tls_dir})")
    client = paths.client_key.is_file() and paths.client_cert.is_file()
    return grpc.ssl_channel_credentials(
        root_certificates=paths.ca_cert.read_bytes(),
        private_key=paths.client_key.read_bytes() if client else None,
        certificate_chain=paths.client_cert.read_bytes() if client else None,
    )


def channel_options(own_connection: bool = True, preset: str = "default") -> list[tuple[str, int]]:
    """The lab's channel arguments, then the ``channel_options`` preset's (servers.config.CHANNEL_PRESETS)."""
    options = [
        ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        *channel_preset(preset),
    ]
    if own_connection:
        # Channels with equal arguments share one TCP connection through the global
        # subchannel pool; a local pool gives every channel its own, so the
        # `connections` axis really means connections.
        options.append(("grpc.use_local_subchannel_pool", 1))
    return options


def open_channel(
    target: str,
    *,
    tls_dir: str | Path | None = None,
    compression: str = "none",
    aio: bool = False,
    preset: str = "default",
) -> grpc.Channel | grpc.aio.Channel:
    """A channel with its own TCP connection; ``preset``: a channel options preset."""
    module = grpc.aio if aio else grpc
    kwargs = {"options": channel_options(preset=preset), "compression": COMPRESSIONS[compression]}
    if tls_dir is None:
        return module.insecure_channel(target, **kwargs)
    return module.secure_channel(target, channel_credentials(tls_dir), **kwargs)
