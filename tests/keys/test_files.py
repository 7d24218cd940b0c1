"""Private key files: created 0600, refused when readable by others, passphrase from the env."""

from __future__ import annotations

import stat

import pytest

from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys
from broker.keys.files import (
    PASSPHRASE_ENV,
    init_anchor,
    load_anchor_public_key,
    load_bureau_keys,
    load_encryption_key,
    load_signing_key,
    passphrase_from_env,
    write_bureau_keys,
)


def test_private_keys_are_created_0600(tmp_path):
    """Every private key file is created with mode 0600; public files are not secret."""
    write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    init_anchor(tmp_path)
    for name in ("FR.signing.key", "FR.encryption.key", "trust-anchor.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert (tmp_path / "FR.public.json").exists()
    assert (tmp_path / "trust-anchor.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_roundtrip_plain_and_encrypted(tmp_path, monkeypatch):
    """Keys written with a passphrase load with it, and give the same key ids."""
    keys = BureauKeys.generate("DE")
    write_bureau_keys(tmp_path / "plain", keys)
    write_bureau_keys(tmp_path / "enc", keys, b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "enc" / "DE.signing.key").read_bytes()
    plain = load_bureau_keys(tmp_path / "plain", "DE")
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    enc = load_bureau_keys(tmp_path / "enc", "DE", passphrase_from_env())
    for loaded in (plain, enc):
        assert loaded.signing_key_id == keys.signing_key_id
        assert loaded.encryption_key_id == keys.encryption_key_id


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o700])
def test_refuses_key_readable_by_others(tmp_path, mode):
    """A private key with any group/other permission is refused, naming the file and the fix."""
    write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    path = tmp_path / "FR.signing.key"
    path.chmod(mode)
    if mode == 0o700:
        assert load_signing_key(path)  # owner-only execute bit is harmless
        return
    with pytest.raises(KeyDirectoryError) as info:
        load_signing_key(path)
    message = str(info.value)
    assert str(path) in message
    assert "chmod 600" in message
    assert "\n" not in message


def test_passphrase_errors_are_clear(tmp_path):
    """Missing, wrong or superfluous passphrases give one line naming the file and the env var."""
    write_bureau_keys(tmp_path / "enc", BureauKeys.generate("FR"), b"s3cret")
    write_bureau_keys(tmp_path / "plain", BureauKeys.generate("FR"))
    cases = [
        (tmp_path / "enc" / "FR.signing.key", None, "is encrypted"),
        (tmp_path / "enc" / "FR.signing.key", b"wrong", "wrong passphrase"),
        (tmp_path / "plain" / "FR.signing.key", b"s3cret", "not encrypted"),
    ]
    for path, passphrase, expected in cases:
        with pytest.raises(KeyDirectoryError, match=expected) as info:
            load_signing_key(path, passphrase)
        assert PASSPHRASE_ENV in str(info.value)
        assert str(path) in str(info.value)


def test_wrong_key_type_and_missing_file(tmp_path):
    """Loading an encryption key as a signing key, or a missing file, fails with one line."""
    write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    with pytest.raises(KeyDirectoryError, match="not an Ed25519"):
        load_signing_key(tmp_path / "FR.encryption.key")
    with pytest.raises(KeyDirectoryError, match="not an X25519"):
        load_encryption_key(tmp_path / "FR.signing.key")
    with pytest.raises(KeyDirectoryError, match="not found"):
        load_signing_key(tmp_path / "nope.key")
    with pytest.raises(KeyDirectoryError, match="not found"):
        load_anchor_public_key(tmp_path / "nope.pub")


def test_never_overwrites(tmp_path):
    """Creating keys where keys exist is refused (a lost private key cannot be undone)."""
    write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    with pytest.raises(KeyDirectoryError, match="already exists"):
        write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    init_anchor(tmp_path)
    with pytest.raises(KeyDirectoryError, match="already exists"):
        init_anchor(tmp_path)


def test_key_material_is_not_in_repr():
    """A bureau's private keys never show up in its repr (and so not in tracebacks or logs)."""
    keys = BureauKeys.generate("FR")
    assert "PrivateKey" not in repr(keys)
