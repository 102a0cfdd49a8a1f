"""servers.certs: the generated TLS set is complete, private, valid, idempotent, and works for real mTLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from servers import certs
from servers.certs import CertError, CertPaths

NAMES = {"ca.crt", "server.crt", "server.key", "client.crt", "client.key"}


@pytest.fixture
def tls(tmp_path: Path) -> CertPaths:
    return certs.generate(tmp_path / "tls")


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _snapshot(paths: CertPaths) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes()) for p in paths.files().values()}


# --- files and permissions ----------------------------------------------------------------------------


def test_paths_in_dir(tmp_path: Path) -> None:
    paths = CertPaths.in_dir(str(tmp_path))
    assert paths.dir == tmp_path
    assert {p.name for p in paths.files().values()} == NAMES
    assert paths.server_key == tmp_path / "server.key"
    assert paths.ca_cert == tmp_path / "ca.crt"


def test_generate_writes_exactly_the_five_files(tls: CertPaths) -> None:
    # No CA key and no leftover temp files.
    assert {p.name for p in tls.dir.iterdir()} == NAMES
    for path in tls.files().values():
        assert path.stat().st_size > 0


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_modes_are_exact_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        paths = certs.generate(tmp_path / "a" / "tls")
    finally:
        os.umask(old)
    assert _mode(paths.dir) == 0o700
    assert _mode(paths.server_key) == 0o600
    assert _mode(paths.client_key) == 0o600
    for crt in (paths.ca_cert, paths.server_cert, paths.client_cert):
        assert _mode(crt) == 0o644


def test_keys_are_created_private_not_chmodded_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, int, int]] = []
    chmodded: list[str] = []
    real_open, real_chmod = os.open, os.chmod

    def spy_open(path, flags, mode=0o777, *args, **kwargs):
        opened.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    def spy_chmod(path, mode, *args, **kwargs):
        chmodded.append(os.fspath(path))
        return real_chmod(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "chmod", spy_chmod)
    certs.generate(tmp_path / "tls")
    monkeypatch.undo()

    key_opens = [(p, f, m) for p, f, m in opened if ".key." in Path(p).name]
    assert len(key_opens) == 2
    for _path, flags, mode in key_opens:
        assert flags & os.O_CREAT and flags & os.O_EXCL and flags & os.O_WRONLY
        assert mode == 0o600
    assert not [p for p in chmodded if p.endswith(".key") or ".key." in p]


def test_existing_directory_mode_is_left_alone(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    paths = certs.generate(d)
    assert _mode(d) == 0o755
    assert _mode(paths.server_key) == 0o600


# --- certificate contents -----------------------------------------------------------------------------


def test_ca_certificate(tls: CertPaths) -> None:
    ca = _cert(tls.ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "grpclab test CA"
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)  # self-signed
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign


def test_server_certificate(tls: CertPaths) -> None:
    ca, server = _cert(tls.ca_cert), _cert(tls.server_cert)
    server.verify_directly_issued_by(ca)
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("198.18.0.1"),  # the server's address in its namespace (link cells)
    }
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert ExtendedKeyUsageOID.CLIENT_AUTH not in eku
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_client_certificate(tls: CertPaths) -> None:
    ca, client = _cert(tls.ca_cert), _cert(tls.client_cert)
    client.verify_directly_issued_by(ca)
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "grpclab client"
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert ExtendedKeyUsageOID.SERVER_AUTH not in eku


def test_leaf_not_issued_by_a_different_ca(tmp_path: Path) -> None:
    a, b = certs.generate(tmp_path / "a"), certs.generate(tmp_path / "b")
    with pytest.raises(Exception):  # noqa: B017 - InvalidSignature (same issuer name, different key)
        _cert(a.server_cert).verify_directly_issued_by(_cert(b.ca_cert))


def test_keys_are_unencrypted_pkcs8_p256_matching_their_certs(tls: CertPaths) -> None:
    assert certs.KEY_TYPE == "ecdsa-p256"
    for key_path, cert_path in ((tls.server_key, tls.server_cert), (tls.client_key, tls.client_cert)):
        pem = key_path.read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, not "EC PRIVATE KEY" / "ENCRYPTED"
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert isinstance(key.curve, ec.SECP256R1)
        assert key.public_key() == _cert(cert_path).public_key()


def test_validity_window(tmp_path: Path) -> None:
    before = dt.datetime.now(dt.UTC)
    paths = certs.generate(tmp_path / "tls", days=3)
    after = dt.datetime.now(dt.UTC)
    for crt in (paths.ca_cert, paths.server_cert, paths.client_cert):
        cert = _cert(crt)
        assert before - dt.timedelta(minutes=5, seconds=2) <= cert.not_valid_before_utc
        assert cert.not_valid_before_utc <= after - dt.timedelta(minutes=4)
        assert before + dt.timedelta(days=3, seconds=-2) <= cert.not_valid_after_utc
        assert cert.not_valid_after_utc <= after + dt.timedelta(days=3)


@pytest.mark.parametrize("days", [0, -1])
def test_bad_days(tmp_path: Path, days: int) -> None:
    with pytest.raises(CertError, match="--days"):
        certs.generate(tmp_path / "tls", days=days)
    assert not (tmp_path / "tls").exists()


# --- idempotence and repair ---------------------------------------------------------------------------


def test_second_generate_leaves_a_complete_set_alone(tls: CertPaths) -> None:
    before = _snapshot(tls)
    again = certs.generate(tls.dir)
    assert again == tls
    assert _snapshot(tls) == before


def test_overwrite_regenerates(tls: CertPaths) -> None:
    before = _snapshot(tls)
    certs.generate(tls.dir, overwrite=True)
    after = _snapshot(tls)
    for name in NAMES:
        assert after[name][2] != before[name][2], name
    _cert(tls.server_cert).verify_directly_issued_by(_cert(tls.ca_cert))


@pytest.mark.parametrize("missing", sorted(NAMES))
def test_partial_set_is_regenerated_as_a_whole(tls: CertPaths, missing: str) -> None:
    before = _snapshot(tls)
    (tls.dir / missing).unlink()
    certs.generate(tls.dir)
    after = _snapshot(tls)
    assert set(after) == NAMES
    for name in NAMES:
        assert after[name][2] != before[name][2], name
    ca = _cert(tls.ca_cert)
    _cert(tls.server_cert).verify_directly_issued_by(ca)
    _cert(tls.client_cert).verify_directly_issued_by(ca)
    assert _mode(tls.server_key) == _mode(tls.client_key) == 0o600


def test_mismatched_set_is_regenerated(tmp_path: Path) -> None:
    a, b = certs.generate(tmp_path / "a"), certs.generate(tmp_path / "b")
    a.ca_cert.write_bytes(b.ca_cert.read_bytes())  # server/client certs no longer chain to ca.crt
    certs.generate(a.dir)
    ca = _cert(a.ca_cert)
    _cert(a.server_cert).verify_directly_issued_by(ca)
    _cert(a.client_cert).verify_directly_issued_by(ca)


def test_truncated_file_is_regenerated(tls: CertPaths) -> None:
    tls.server_key.write_bytes(tls.server_key.read_bytes()[:40])
    certs.generate(tls.dir)
    key = serialization.load_pem_private_key(tls.server_key.read_bytes(), password=None)
    assert key.public_key() == _cert(tls.server_cert).public_key()


def test_crash_mid_write_leaves_no_half_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "tls"
    real_replace = os.replace
    calls = 0

    def failing_replace(src, dst, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device", os.fspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(CertError, match="No space left") as info:
        certs.generate(d)
    assert str(d) in str(info.value)
    monkeypatch.undo()
    present = {p.name for p in d.iterdir()}
    assert present < NAMES  # only whole files, no temp files, and the set is incomplete
    with pytest.raises(CertError):
        certs.load(d, need_client=True)
    paths = certs.generate(d)
    assert {p.name for p in d.iterdir()} == NAMES
    _cert(paths.client_cert).verify_directly_issued_by(_cert(paths.ca_cert))


def test_crash_while_overwriting_never_leaves_a_mixed_set(tls: CertPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    old = _snapshot(tls)
    real_replace = os.replace
    calls = 0

    def failing_replace(src, dst, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(5, "Input/output error", os.fspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(CertError):
        certs.generate(tls.dir, overwrite=True)
    monkeypatch.undo()
    # The old set was removed before the new one was written: what is left is visibly incomplete.
    present = {p.name for p in tls.dir.iterdir()}
    assert present < NAMES
    assert all(old[name][2] != (tls.dir / name).read_bytes() for name in present)
    certs.generate(tls.dir)
    assert {p.name for p in tls.dir.iterdir()} == NAMES


def test_expired_set_is_regenerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = certs.generate(tmp_path / "tls", days=1)
    before = _snapshot(paths)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    monkeypatch.setattr(certs, "_now", lambda: later)
    certs.generate(paths.dir, days=1)
    after = _snapshot(paths)
    assert all(after[name][2] != before[name][2] for name in NAMES)
    assert _cert(paths.server_cert).not_valid_after_utc > later


def test_generate_into_a_file_path_fails_cleanly(tmp_path: Path) -> None:
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    with pytest.raises(CertError, match="not-a-dir"):
        certs.generate(f)


# --- load ---------------------------------------------------------------------------------------------


def test_load_ok(tls: CertPaths) -> None:
    assert certs.load(tls.dir) == tls
    assert certs.load(str(tls.dir), need_client=True) == tls


def test_load_missing_directory(tmp_path: Path) -> None:
    d = tmp_path / "nope"
    with pytest.raises(CertError) as info:
        certs.load(d)
    msg = str(info.value)
    assert str(d) in msg and "grpclab certs" in msg and "\n" not in msg


@pytest.mark.parametrize("missing", ["ca.crt", "server.crt", "server.key"])
def test_load_names_the_missing_server_file(tls: CertPaths, missing: str) -> None:
    (tls.dir / missing).unlink()
    with pytest.raises(CertError) as info:
        certs.load(tls.dir)
    d = tls.dir
    assert str(info.value) == f"--tls {d}: missing {missing} in {d} (run: grpclab certs {d})"


@pytest.mark.parametrize("missing", ["client.crt", "client.key"])
def test_client_files_needed_only_on_request(tls: CertPaths, missing: str) -> None:
    (tls.dir / missing).unlink()
    assert certs.load(tls.dir) == tls
    with pytest.raises(CertError, match=f"missing {missing} in "):
        certs.load(tls.dir, need_client=True)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read mode-000 files")
def test_load_unreadable_file(tls: CertPaths) -> None:
    os.chmod(tls.server_key, 0)
    try:
        with pytest.raises(CertError, match="cannot read server.key"):
            certs.load(tls.dir)
    finally:
        os.chmod(tls.server_key, 0o600)


def test_load_a_directory_where_a_file_should_be(tls: CertPaths) -> None:
    tls.server_key.unlink()
    tls.server_key.mkdir()
    with pytest.raises(CertError, match="server.key"):
        certs.load(tls.dir)


def test_read_bytes(tls: CertPaths) -> None:
    data = certs.read_bytes(tls)
    assert set(data) == {"ca_cert", "server_cert", "server_key", "client_cert", "client_key"}
    assert data["server_key"] == tls.server_key.read_bytes()
    tls.client_key.unlink()
    assert "client_key" not in certs.read_bytes(tls)


# --- a real handshake ---------------------------------------------------------------------------------

_METHOD = "/grpclab.test.Echo/Echo"


@pytest.fixture
def mtls_server(tls: CertPaths):
    data = certs.read_bytes(tls)
    creds = grpc.ssl_server_credentials(
        [(data["server_key"], data["server_cert"])],
        root_certificates=data["ca_cert"],
        require_client_auth=True,
    )
    handler = grpc.method_handlers_generic_handler(
        "grpclab.test.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)},
    )
    executor = futures.ThreadPoolExecutor(max_workers=2)
    server = grpc.server(executor)
    try:
        server.add_generic_rpc_handlers((handler,))
        port = server.add_secure_port("127.0.0.1:0", creds)
        assert port
        server.start()
        yield port, data
    finally:
        server.stop(None).wait(5)
        executor.shutdown(wait=True)


def _call(port: int, creds: grpc.ChannelCredentials, payload: bytes) -> bytes:
    with grpc.secure_channel(f"localhost:{port}", creds) as channel:
        echo = channel.unary_unary(_METHOD, request_serializer=None, response_deserializer=None)
        return echo(payload, timeout=10)


@pytest.mark.slow
def test_mtls_echo(mtls_server) -> None:
    port, data = mtls_server
    creds = grpc.ssl_channel_credentials(data["ca_cert"], data["client_key"], data["client_cert"])
    assert _call(port, creds, b"hello over mTLS") == b"hello over mTLS"


@pytest.mark.slow
def test_client_without_certificate_is_refused(mtls_server) -> None:
    port, data = mtls_server
    with pytest.raises(grpc.RpcError) as info:
        _call(port, grpc.ssl_channel_credentials(data["ca_cert"]), b"x")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.slow
def test_client_trusting_another_ca_is_refused(mtls_server, tmp_path: Path) -> None:
    port, data = mtls_server
    other = certs.read_bytes(certs.generate(tmp_path / "other"))
    creds = grpc.ssl_channel_credentials(other["ca_cert"], data["client_key"], data["client_cert"])
    with pytest.raises(grpc.RpcError) as info:
        _call(port, creds, b"x")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.slow
def test_client_certificate_from_another_ca_is_refused(mtls_server, tmp_path: Path) -> None:
    port, data = mtls_server
    other = certs.read_bytes(certs.generate(tmp_path / "other"))
    creds = grpc.ssl_channel_credentials(data["ca_cert"], other["client_key"], other["client_cert"])
    with pytest.raises(grpc.RpcError) as info:
        _call(port, creds, b"x")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
