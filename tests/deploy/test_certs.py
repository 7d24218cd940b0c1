"""``nbx deploy certs``: a network CA and one client certificate per bureau of the verified
directory (CN = the bureau's principal), files 0600, never overwritten. That the certificates
work is shown on the wire by tests/tls (mutual TLS through stunnel with these very files)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.cli import main
from broker.deploy.certs import CA_CERT_FILE, CA_KEY_FILE, issue, load_issued, new_ca
from broker.node.provision import provision
from broker.transport.principals import ANCHOR_PRINCIPAL, principal


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A provisioned network of FR, IT and ES (anchor, signed directory.json)."""
    folder = tmp_path_factory.mktemp("net")
    provision(folder, ["FR", "IT", "ES"], bootstrap="127.0.0.1:1")
    return folder


def _certs(network: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main,
        [
            "deploy", "certs", "--directory", str(network / "directory.json"),
            "--anchor", str(network / "anchor" / "trust-anchor.pub"), "--out", str(out), *extra,
        ],
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_one_client_certificate_per_bureau_signed_by_the_network_ca(
    network: Path, tmp_path: Path
) -> None:
    """The CA and a certificate for every listed bureau and the anchor operator; each CN the
    principal, signed by the CA, for client authentication, valid ``--days``; every file 0600."""
    out = tmp_path / "certs"
    code, stdout, stderr = _certs(network, out, "--days", "30")
    assert (code, stderr) == (0, "")
    names = [principal(cc) for cc in ("ES", "FR", "IT")] + [ANCHOR_PRINCIPAL]
    expected = [out / CA_CERT_FILE, out / CA_KEY_FILE]
    for name in names:
        expected += [out / f"{name}.pem", out / f"{name}.key"]
    assert stdout.splitlines()[:-1] == [str(p) for p in expected]
    assert stdout.splitlines()[-1] == (
        f"wrote a network CA and 4 client certificates to {out}; keep {out / CA_KEY_FILE} offline"
    )
    assert sorted(out.iterdir()) == sorted(expected)
    for path in expected:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    ca = load_issued(out / CA_CERT_FILE, out / CA_KEY_FILE)
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in names:
        client = load_issued(out / f"{name}.pem", out / f"{name}.key")
        assert _cn(client.cert) == name
        client.cert.verify_directly_issued_by(ca.cert)
        usage = client.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert not client.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        lifetime = client.cert.not_valid_after_utc - client.cert.not_valid_before_utc
        assert lifetime == timedelta(days=30, minutes=5)
        assert client.key.public_key().public_numbers() == (
            client.cert.public_key().public_numbers()  # type: ignore[union-attr]
        )


def test_it_never_overwrites(network: Path, tmp_path: Path) -> None:
    """A second run into the same folder: one line naming the first existing file, exit 1, and
    not one byte changed (nothing is written when any file exists)."""
    out = tmp_path / "certs"
    assert _certs(network, out)[0] == 0
    before = {p: p.read_bytes() for p in out.iterdir()}
    (out / "nbx-IT.key").unlink()  # even a folder missing some files is refused as a whole
    del before[out / "nbx-IT.key"]
    code, stdout, stderr = _certs(network, out)
    assert (code, stdout) == (1, "")
    assert stderr == (
        f"nbx: error: {out / CA_CERT_FILE} exists; nbx deploy certs never overwrites a "
        "certificate or key\n"
    )
    assert {p: p.read_bytes() for p in out.iterdir()} == before


def test_a_directory_the_anchor_did_not_sign_is_refused(network: Path, tmp_path: Path) -> None:
    """The certificates follow only a verified directory: a tampered one is refused and nothing
    is written."""
    tampered = tmp_path / "directory.json"
    tampered.write_bytes((network / "directory.json").read_bytes().replace(b'"ES"', b'"DE"', 1))
    out = tmp_path / "certs"
    result = CliRunner().invoke(
        main,
        [
            "deploy", "certs", "--directory", str(tampered),
            "--anchor", str(network / "anchor" / "trust-anchor.pub"), "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("nbx: error: ")
    assert not out.exists()


def test_server_certificates_name_their_hosts() -> None:
    """For the TLS tests and pilots: a server certificate lists its DNS names and IP addresses
    and is for server authentication."""
    now = datetime.now(UTC)
    ca = new_ca(now=now)
    server = issue(ca, "broker", now=now, server_names=["kafka.example", "127.0.0.1"])
    names = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kafka.example"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
