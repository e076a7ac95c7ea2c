"""TLS to the database against a real PostgreSQL serving a certificate from a test CA.

``REPOHOST_DB_TLS`` requires TLS with the server's certificate verified;
``REPOHOST_DB_CA_FILE`` names the CAs to verify it with (Amazon RDS's bundle for
a direct connection on AWS, whose CAs no system store holds).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from repohost.config import Settings
from repohost.db.engine import make_engine
from tests.conftest import require_postgres
from tests.support.postgres import PostgresServer


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signs for 127.0.0.1: (CA file, certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "repohost test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.crt", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[str, Path]]:
    """Its own PostgreSQL with ``ssl = on``; (app URL, CA file)."""
    require_postgres()
    with PostgresServer() as server:
        assert server.tmpdir is not None
        ca_file, cert, key = _certificates(server.tmpdir)
        for path in (cert, key):
            path.chmod(0o600)
            if os.geteuid() == 0:  # the server runs as the postgres OS user
                stat = server.tmpdir.stat()
                os.chown(path, stat.st_uid, stat.st_gid)
        admin = server.admin_connection()
        try:
            admin.run(f"ALTER SYSTEM SET ssl_cert_file = '{cert}'")
            admin.run(f"ALTER SYSTEM SET ssl_key_file = '{key}'")
            admin.run("ALTER SYSTEM SET ssl = on")
            admin.run("SELECT pg_reload_conf()")
        finally:
            admin.close()
        yield server.url, ca_file


def _uses_tls(settings: Settings) -> bool:
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                ).scalar()
            )
    finally:
        engine.dispose()


def test_tls_with_the_ca_file_is_verified_and_used(tls_server: tuple[str, Path]) -> None:
    url, ca_file = tls_server
    assert _uses_tls(Settings(database_url=url, db_tls=True, db_ca_file=str(ca_file)))


def test_a_certificate_the_trusted_cas_did_not_sign_is_refused(
    tls_server: tuple[str, Path],
) -> None:
    url, _ca_file = tls_server
    with pytest.raises(ssl.SSLCertVerificationError):
        _uses_tls(Settings(database_url=url, db_tls=True))  # the system's store only


def test_without_db_tls_the_connection_is_plain(tls_server: tuple[str, Path]) -> None:
    url, _ca_file = tls_server
    assert not _uses_tls(Settings(database_url=url))
