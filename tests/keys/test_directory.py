"""The signed directory: verification, serials, key windows, rotation and revocation lookups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.errors import EnvelopeRejected, KeyDirectoryError
from broker.keys import BureauKeys, Directory, DirectoryBody, sign_directory
from broker.keys.directory_edit import (
    PublicDocument,
    add_bureau,
    empty_directory,
    revoke_key,
    rotate_keys,
)
from broker.keys.files import public_document

T0 = datetime(2025, 6, 1, tzinfo=UTC)
#: the trust anchor, bureau FR's keys, and a directory listing FR
Setup = tuple[ed25519.Ed25519PrivateKey, BureauKeys, DirectoryBody]


def doc(keys: BureauKeys) -> PublicDocument:
    return PublicDocument.model_validate(public_document(keys))


@pytest.fixture
def setup() -> Setup:
    anchor = ed25519.Ed25519PrivateKey.generate()
    fr = BureauKeys.generate("FR")
    body = add_bureau(empty_directory(anchor.public_key(), T0), doc(fr), name="NCB Paris", now=T0)
    return anchor, fr, body


def test_serial_increments_on_every_change(setup: Setup) -> None:
    """add, rotate and revoke each produce the next serial."""
    _anchor, fr, body = setup
    assert body.serial == 2
    rotated = rotate_keys(body, doc(BureauKeys.generate("FR")), now=T0 + timedelta(days=1))
    revoked = revoke_key(rotated, "FR", fr.signing_key_id, at=T0, reason="superseded", now=T0)
    assert (rotated.serial, revoked.serial) == (3, 4)


def test_lookup_windows(setup: Setup) -> None:
    """A signing key is unknown before its directory entry exists, expired outside its window."""
    anchor, fr, body = setup
    d = Directory.from_signed(sign_directory(body, anchor), anchor.public_key())
    assert d.signing_key("FR", fr.signing_key_id, T0 + timedelta(days=1))
    with pytest.raises(EnvelopeRejected) as info:
        d.signing_key("FR", fr.signing_key_id, T0 - timedelta(seconds=1))
    assert info.value.reason == "key-expired"
    for bureau, kid in (("DE", fr.signing_key_id), ("FR", "nope"), ("FR", fr.encryption_key_id)):
        with pytest.raises(EnvelopeRejected) as info:
            d.signing_key(bureau, kid, T0 + timedelta(days=1))
        assert info.value.reason == "key-unknown"


def test_revocation_time_is_the_boundary(setup: Setup) -> None:
    """Before the revocation instant the key is valid; at and after it, revoked."""
    _anchor, fr, body = setup
    at = T0 + timedelta(days=10)
    body = revoke_key(body, "FR", fr.signing_key_id, at=at, reason="key-compromise", now=T0)
    d = Directory(body)
    assert d.signing_key("FR", fr.signing_key_id, at - timedelta(microseconds=1))
    for t in (at, at + timedelta(days=1)):
        with pytest.raises(EnvelopeRejected) as info:
            d.signing_key("FR", fr.signing_key_id, t)
        assert info.value.reason == "key-revoked"


def test_revoked_encryption_key_is_not_handed_out(setup: Setup) -> None:
    """After its encryption key is revoked, senders get no key for the bureau (fail closed)."""
    _anchor, fr, body = setup
    body = revoke_key(body, "FR", fr.encryption_key_id, at=T0, reason="key-compromise", now=T0)
    with pytest.raises(KeyDirectoryError, match="no valid X25519 key"):
        Directory(body).encryption_key("FR", T0 + timedelta(seconds=1))


def test_forged_tampered_rolled_back_and_garbage(setup: Setup, tmp_path: Path) -> None:
    """Every way a directory can be bad gives one line naming the source and the problem."""
    anchor, _fr, body = setup
    good = sign_directory(body, anchor)
    other = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(KeyDirectoryError, match="does not verify"):
        Directory.from_signed(good, other.public_key())
    with pytest.raises(KeyDirectoryError, match="rollback"):
        Directory.from_signed(good, anchor.public_key(), min_serial=body.serial + 1)
    for garbage in (b"", b"[]", b"{}", b'{"directory": 1, "signature": "x"}', b"\xff" * 10):
        with pytest.raises(KeyDirectoryError, match="not a signed NBX directory"):
            Directory.from_signed(garbage, anchor.public_key())
    path = tmp_path / "d.json"
    path.write_bytes(good)
    assert Directory.load(path, anchor.public_key()).serial == body.serial
    with pytest.raises(KeyDirectoryError, match=str(tmp_path)):
        Directory.load(tmp_path / "missing.json", anchor.public_key())


def test_signed_but_inconsistent_body_is_refused(setup: Setup) -> None:
    """Even a body the anchor signed is refused if a key id does not match its public key."""
    anchor, _fr, body = setup
    content = body.to_json()
    content["bureaus"][0]["keys"][0]["kid"] = "AAAAAAAAAAAAAAAAAAAAAA"
    from broker.keys.directory import DIRECTORY_DOMAIN
    from broker.wire.canonical import b64u, jcs

    signed = json.dumps(
        {"directory": content, "signature": b64u(anchor.sign(DIRECTORY_DOMAIN + jcs(content)))}
    ).encode()
    with pytest.raises(KeyDirectoryError, match="key id does not match"):
        Directory.from_signed(signed, anchor.public_key())


def test_edit_errors(setup: Setup) -> None:
    """Adding twice, rotating or revoking an unknown bureau or key, revoking twice: clear errors."""
    _anchor, fr, body = setup
    with pytest.raises(KeyDirectoryError, match="already in the directory"):
        add_bureau(body, doc(fr), name="x", now=T0)
    with pytest.raises(KeyDirectoryError, match="unknown bureau"):
        rotate_keys(body, doc(BureauKeys.generate("DE")), now=T0)
    with pytest.raises(KeyDirectoryError, match="has no key"):
        revoke_key(body, "FR", "nope", at=T0, reason="x", now=T0)
    once = revoke_key(body, "FR", fr.signing_key_id, at=T0, reason="x", now=T0)
    with pytest.raises(KeyDirectoryError, match="already revoked"):
        revoke_key(once, "FR", fr.signing_key_id, at=T0, reason="x", now=T0)
    with pytest.raises(KeyDirectoryError, match="already in the directory"):
        rotate_keys(body, doc(fr), now=T0)


def test_example_directory_in_repository_verifies() -> None:
    """``keys/example-directory.json`` verifies against the example ``keys/trust-anchor.pub``."""
    from pathlib import Path

    from broker.keys.files import load_anchor_public_key

    root = Path(__file__).resolve().parents[2] / "keys"
    d = Directory.load(
        root / "example-directory.json", load_anchor_public_key(root / "trust-anchor.pub")
    )
    assert d.bureau_ids() == ["DE", "FR", "IT", "XI"]
    assert not list(root.glob("*.key")), "private keys must never be in keys/"
