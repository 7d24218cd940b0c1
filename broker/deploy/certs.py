"""Certificates for a network (``nbx deploy certs``): a network CA and one TLS client certificate
per bureau of the signed directory, for test networks and small pilots.

The CA signs each bureau's client certificate with the bureau's Kafka principal as its common
name (``CN=nbx-FR``, :func:`broker.transport.principals.principal`), so that the broker, mapping
the certificate's distinguished name to its CN, sees the principal the ACLs of ``nbx deploy acls``
name. An organisation with its own PKI issues the same certificates from it instead: nothing in
NBX depends on this module's CA (docs/security/transport.md).

Keys are ECDSA P-256 in unencrypted PKCS#8 PEM; every file is created 0600 and never overwritten.
The same functions make the server certificates of the TLS tests (``server_names``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.errors import ConfigError
from broker.transport.principals import ANCHOR_PRINCIPAL, principal

#: the validity of a network CA and of a client certificate (days), unless told otherwise
CA_DAYS = 3 * 365
CERT_DAYS = 365
#: the common name of a network CA
CA_NAME = "NBX network CA"
#: the file names ``nbx deploy certs`` writes in its output folder
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key in unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NBX"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def new_ca(*, now: datetime, days: int = CA_DAYS, name: str = CA_NAME) -> Issued:
    """A self-signed CA certificate valid from ``now`` for ``days`` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    common_name: str,
    *,
    now: datetime,
    days: int = CERT_DAYS,
    server_names: Sequence[str] = (),
    not_before: datetime | None = None,
) -> Issued:
    """A certificate for ``common_name`` signed by ``ca``: a client certificate, or, with
    ``server_names`` (DNS names or IP addresses), a server certificate for those names.
    ``not_before`` (default: five minutes before ``now``) lets a test make an expired one."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before if not_before is not None else now - timedelta(minutes=5)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
        )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def load_issued(cert: Path, key: Path) -> Issued:
    """A certificate and its key from PEM files (a CA written by :func:`network_certs`)."""
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        msg = f"{key}: not an EC private key"
        raise ConfigError(msg)
    return Issued(x509.load_pem_x509_certificate(cert.read_bytes()), loaded)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and write ``data``; refuse if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        msg = f"{path} exists; nbx deploy certs never overwrites a certificate or key"
        raise ConfigError(msg) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def cert_files(out: Path, name: str) -> tuple[Path, Path]:
    """The certificate and key paths of principal ``name`` in ``out``."""
    return out / f"{name}.pem", out / f"{name}.key"


def network_certs(
    bureaus: Iterable[str], out: Path, *, now: datetime, days: int = CERT_DAYS
) -> list[Path]:
    """Write a new network CA and a client certificate for each bureau (and the anchor
    operator, ``nbx-anchor``) into ``out``; return the files written, CA first.

    Refuses (before writing anything) when any of the files exists."""
    names = [*(principal(b) for b in sorted(set(bureaus))), ANCHOR_PRINCIPAL]
    paths = [out / CA_CERT_FILE, out / CA_KEY_FILE]
    for name in names:
        paths.extend(cert_files(out, name))
    existing = [p for p in paths if p.exists()]
    if existing:
        msg = f"{existing[0]} exists; nbx deploy certs never overwrites a certificate or key"
        raise ConfigError(msg)
    out.mkdir(parents=True, exist_ok=True)
    ca = new_ca(now=now, days=max(days, CA_DAYS))
    write_private(out / CA_CERT_FILE, ca.cert_pem())
    write_private(out / CA_KEY_FILE, ca.key_pem())
    for name in names:
        issued = issue(ca, name, now=now, days=days)
        cert, key = cert_files(out, name)
        write_private(cert, issued.cert_pem())
        write_private(key, issued.key_pem())
    return paths
