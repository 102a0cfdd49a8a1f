"""TLS material for the lab, generated per run with `cryptography` (no private key is ever committed).

`generate(DIR)` writes a throwaway CA certificate plus a server and a client certificate signed by it:

    ca.crt                     CN "grpclab test CA", CA:true, keyCertSign
    server.crt / server.key    CN localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1, IP:198.18.0.1, EKU serverAuth
    client.crt / client.key    CN "grpclab client", EKU clientAuth

The CA key only lives in memory while the set is signed: it is never written, so nothing on disk can mint
further certificates. To add a certificate, regenerate the whole set (`overwrite=True`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# ECDSA P-256 rather than RSA: key generation is instant and the handshake's signature is far cheaper
# (connection-setup benchmarks measure the lab, not RSA-2048 private-key operations). Results record it.
KEY_TYPE = "ecdsa-p256"
_CURVE = ec.SECP256R1

CA_CN = "grpclab test CA"
SERVER_CN = "localhost"
CLIENT_CN = "grpclab client"
# 198.18.0.1: the server's address in its own network namespace (link cells, bench.run.netns; RFC 2544's
# benchmarking range), so TLS verifies across the lab's veth links too.
SERVER_SAN = ("localhost", "127.0.0.1", "::1", "198.18.0.1")

_KEY_MODE = 0o600
_CERT_MODE = 0o644
_DIR_MODE = 0o700
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences between processes/hosts


class CertError(Exception):
    """A one-line, user-facing message that names the offending path."""


@dataclass(frozen=True)
class CertPaths:
    dir: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def in_dir(cls, d: str | Path) -> CertPaths:
        d = Path(d)
        return cls(
            dir=d,
            ca_cert=d / "ca.crt",
            server_cert=d / "server.crt",
            server_key=d / "server.key",
            client_cert=d / "client.crt",
            client_key=d / "client.key",
        )

    def files(self) -> dict[str, Path]:
        """The five files by field name, in write order (ca.crt last: it completes the set)."""
        return {
            "server_key": self.server_key,
            "server_cert": self.server_cert,
            "client_key": self.client_key,
            "client_cert": self.client_cert,
            "ca_cert": self.ca_cert,
        }


def generate(directory: str | Path, *, days: int = 30, overwrite: bool = False) -> CertPaths:
    """Write a fresh CA + server + client set into `directory` (created 0700 if missing); return its paths.

    A complete, consistent, unexpired set is left alone unless `overwrite`; a partial or broken set is
    replaced as a whole. Raises CertError.
    """
    if days < 1:
        raise CertError(f"certificate validity must be at least 1 day (got --days {days})")
    paths = CertPaths.in_dir(directory)
    _ensure_dir(paths.dir)
    if not overwrite and _complete(paths):
        return paths
    material = _build(days)
    try:
        # Drop the old set first, so a crash part-way leaves an incomplete set (regenerated next time)
        # instead of a mix of old and new files that would fail only at handshake time.
        for path in paths.files().values():
            path.unlink(missing_ok=True)
        for field, path in paths.files().items():
            _write_atomic(path, material[field], _KEY_MODE if field.endswith("_key") else _CERT_MODE)
        _fsync_dir(paths.dir)
    except OSError as exc:
        where = exc.filename or paths.dir
        raise CertError(f"cannot write TLS files in {paths.dir}: {where}: {exc.strerror or exc}") from None
    return paths


def load(directory: str | Path, *, need_client: bool = False) -> CertPaths:
    """The paths of an existing set, after checking that the needed files exist and are readable.

    Always needed: ca.crt, server.crt, server.key; with `need_client` also client.crt, client.key.
    """
    paths = CertPaths.in_dir(directory)
    hint = f"(run: grpclab certs {paths.dir})"
    if not paths.dir.exists():
        raise CertError(f"--tls {paths.dir}: no such directory {hint}")
    if not paths.dir.is_dir():
        raise CertError(f"--tls {paths.dir}: not a directory")
    needed = [paths.ca_cert, paths.server_cert, paths.server_key]
    if need_client:
        needed += [paths.client_cert, paths.client_key]
    for path in needed:
        try:
            with path.open("rb"):
                pass
        except FileNotFoundError:
            raise CertError(f"--tls {paths.dir}: missing {path.name} in {paths.dir} {hint}") from None
        except OSError as exc:
            raise CertError(f"--tls {paths.dir}: cannot read {path.name} in {paths.dir}: {exc.strerror}") from None
        if not path.is_file():
            raise CertError(f"--tls {paths.dir}: {path.name} in {paths.dir} is not a regular file")
    return paths


def read_bytes(paths: CertPaths) -> dict[str, bytes]:
    """The contents of the files present, keyed by field name ("ca_cert", "server_key", ...)."""
    out = {}
    for field, path in paths.files().items():
        try:
            out[field] = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CertError(f"cannot read {path}: {exc.strerror}") from None
    return out


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- building ---------------------------------------------------------------------------------------


def _build(days: int) -> dict[str, bytes]:
    now = _now()
    not_before, not_after = now - _BACKDATE, now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(_CURVE())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_CN)])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        _base(ca_name, ca_name, ca_key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, eku: x509.ObjectIdentifier, san: x509.SubjectAlternativeName | None):
        key = ec.generate_private_key(_CURVE())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        builder = (
            _base(name, ca_name, key.public_key(), not_before, not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server_san = x509.SubjectAlternativeName([_general_name(n) for n in SERVER_SAN])
    server_key, server_cert = leaf(SERVER_CN, ExtendedKeyUsageOID.SERVER_AUTH, server_san)
    client_key, client_cert = leaf(CLIENT_CN, ExtendedKeyUsageOID.CLIENT_AUTH, None)
    return {
        "ca_cert": _cert_pem(ca_cert),
        "server_cert": _cert_pem(server_cert),
        "server_key": _key_pem(server_key),
        "client_cert": _cert_pem(client_cert),
        "client_key": _key_pem(client_key),
    }


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _base(subject, issuer, public_key, not_before, not_after) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- checking an existing set -----------------------------------------------------------------------


def _complete(paths: CertPaths) -> bool:
    """All five files present, parseable, signed by this ca.crt, keys matching, none expired."""
    try:
        ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        now = _now()
        pairs = ((paths.server_cert, paths.server_key), (paths.client_cert, paths.client_key))
        for cert_path, key_path in pairs:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert.verify_directly_issued_by(ca)
            if cert.public_key() != key.public_key() or cert.not_valid_after_utc <= now:
                return False
        return ca.not_valid_after_utc > now
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False


# --- writing ----------------------------------------------------------------------------------------


def _ensure_dir(d: Path) -> None:
    try:
        if d.exists():
            if not d.is_dir():
                raise CertError(f"cannot write TLS files: {d} exists and is not a directory")
            return
        d.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(d, _DIR_MODE)
        os.chmod(d, _DIR_MODE)  # the umask can only have removed bits; make it exactly 0700
    except FileExistsError:
        if not d.is_dir():  # lost a race with something that is not a directory
            raise CertError(f"cannot write TLS files: {d} exists and is not a directory") from None
    except OSError as exc:
        raise CertError(f"cannot create TLS directory {d}: {exc.strerror or exc}") from None


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temp file created with `mode` (O_EXCL: never an existing file or symlink), then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    try:
        try:
            # Created with `mode` already, so a key is never more open than 0600; this only puts back
            # bits a strict umask removed (certificates stay 0644).
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened/fsynced
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
