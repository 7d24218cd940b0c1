"""Private key files: created 0600, refused when readable by others, passphrase from the env."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys
from broker.keys.files import (
    PASSPHRASE_ENV,
    init_anchor,
    load_anchor_public_key,
    load_bureau_keys,
    load_encryption_key,
    load_hybrid_key,
    load_signing_key,
    passphrase_from_env,
    public_document,
    write_bureau_keys,
    write_private_key,
)
from broker.wire.canonical import b64u


def test_private_keys_are_created_0600(tmp_path: Path) -> None:
    """Every private key file is created with mode 0600; public files are not secret."""
    write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    init_anchor(tmp_path)
    for name in ("FR.signing.key", "FR.encryption.key", "trust-anchor.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert (tmp_path / "FR.public.json").exists()
    assert (tmp_path / "trust-anchor.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_roundtrip_plain_and_encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
def test_refuses_key_readable_by_others(tmp_path: Path, mode: int) -> None:
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


def test_passphrase_errors_are_clear(tmp_path: Path) -> None:
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


def test_wrong_key_type_and_missing_file(tmp_path: Path) -> None:
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


def test_never_overwrites(tmp_path: Path) -> None:
    """Creating keys where keys exist is refused (a lost private key cannot be undone)."""
    write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    with pytest.raises(KeyDirectoryError, match="already exists"):
        write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    init_anchor(tmp_path)
    with pytest.raises(KeyDirectoryError, match="already exists"):
        init_anchor(tmp_path)


def test_key_material_is_not_in_repr() -> None:
    """A bureau's private keys never show up in its repr (and so not in tracebacks or logs)."""
    keys = BureauKeys.generate("FR")
    assert "PrivateKey" not in repr(keys)


# --- post-quantum hybrid keys (ML-KEM-768 + X25519, envelope suite 2) ---------------------------


def test_hybrid_key_file_is_0600_and_roundtrips(tmp_path: Path) -> None:
    """A bureau created with a hybrid key has FR.hybrid.key (0600) and no X25519 file; loading it
    gives the same key id, and its decryption keys hold exactly the hybrid key (suite 2)."""
    from broker.wire.suites import SUITE_MLKEM768_X25519, suite_for_private

    keys = BureauKeys.generate("FR", pq=True)
    assert keys.hybrid_key is not None
    write_bureau_keys(tmp_path, keys)
    path = tmp_path / "FR.hybrid.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "FR.encryption.key").exists()
    text = path.read_text()
    assert text.count("-----BEGIN PRIVATE KEY-----") == 2  # ML-KEM-768 seed, then X25519
    loaded = load_bureau_keys(tmp_path, "FR")
    assert loaded.hybrid_key is not None
    assert loaded.hybrid_key.key_id == keys.hybrid_key.key_id
    assert loaded.x25519_key is None
    (kid, private), *rest = loaded.decryption_keys().items()
    assert not rest
    assert kid == keys.hybrid_key.key_id
    assert suite_for_private(private) == SUITE_MLKEM768_X25519


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_hybrid_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A hybrid key file with group/other permissions is refused with one line and the fix."""
    write_bureau_keys(tmp_path, BureauKeys.generate("FR", pq=True))
    path = tmp_path / "FR.hybrid.key"
    path.chmod(mode)
    with pytest.raises(KeyDirectoryError) as info:
        load_bureau_keys(tmp_path, "FR")
    message = str(info.value)
    assert str(path) in message
    assert "chmod 600" in message
    assert "\n" not in message


def test_hybrid_key_passphrase(tmp_path: Path) -> None:
    """With a passphrase both halves are PKCS#8-encrypted; a missing, wrong or superfluous
    passphrase is refused with one line naming the file and the variable."""
    keys = BureauKeys.generate("FR", pq=True)
    assert keys.hybrid_key is not None
    write_bureau_keys(tmp_path / "enc", keys, b"s3cret")
    write_bureau_keys(tmp_path / "plain", BureauKeys.generate("FR", pq=True))
    path = tmp_path / "enc" / "FR.hybrid.key"
    text = path.read_text()
    assert text.count("-----BEGIN ENCRYPTED PRIVATE KEY-----") == 2
    assert "-----BEGIN PRIVATE KEY-----" not in text
    loaded = load_bureau_keys(tmp_path / "enc", "FR", b"s3cret")
    assert loaded.hybrid_key is not None
    assert loaded.hybrid_key.key_id == keys.hybrid_key.key_id
    cases = [
        (tmp_path / "enc", None, "is encrypted"),
        (tmp_path / "enc", b"wrong", "wrong passphrase"),
        (tmp_path / "plain", b"s3cret", "not encrypted"),
    ]
    for folder, passphrase, expected in cases:
        with pytest.raises(KeyDirectoryError, match=expected) as info:
            load_hybrid_key(folder / "FR.hybrid.key", passphrase)
        message = str(info.value)
        assert PASSPHRASE_ENV in message
        assert str(folder / "FR.hybrid.key") in message
        assert "\n" not in message


def test_hybrid_key_file_damage_is_refused(tmp_path: Path) -> None:
    """A hybrid file with one block, the halves swapped, or an X25519 file is refused."""
    from cryptography.hazmat.primitives.asymmetric import x25519

    write_bureau_keys(tmp_path, BureauKeys.generate("FR", pq=True))
    path = tmp_path / "FR.hybrid.key"
    blocks = path.read_text().split("-----END PRIVATE KEY-----\n")
    variants = {
        "one.key": blocks[0] + "-----END PRIVATE KEY-----\n",
        "swapped.key": blocks[1]
        + "-----END PRIVATE KEY-----\n"
        + blocks[0]
        + "-----END PRIVATE KEY-----\n",
        "x25519.key": "",
    }
    write_private_key(tmp_path / "x25519.key", x25519.X25519PrivateKey.generate())
    for name, text in variants.items():
        bad = tmp_path / name
        if text:
            bad.write_text(text)
            bad.chmod(0o600)
        with pytest.raises(KeyDirectoryError, match=r"not an ML-KEM-768\+X25519") as info:
            load_hybrid_key(bad)
        assert "\n" not in str(info.value)


def test_pq_public_document_lists_the_hybrid_key(tmp_path: Path) -> None:
    """The public document of a --pq bureau carries alg MLKEM768-X25519 with the hybrid key id."""
    keys = BureauKeys.generate("FR", pq=True)
    assert keys.hybrid_key is not None
    doc = public_document(keys)
    encrypt = [k for k in doc["keys"] if k["use"] == "encrypt"]
    assert encrypt == [
        {
            "use": "encrypt",
            "alg": "MLKEM768-X25519",
            "kid": keys.hybrid_key.key_id,
            "public": b64u(keys.hybrid_key.public_bytes()),
        }
    ]


def test_a_bureau_needs_an_encryption_key(tmp_path: Path) -> None:
    """A key folder with a signing key and no encryption key of any suite is refused."""
    write_bureau_keys(tmp_path, BureauKeys.generate("FR"))
    (tmp_path / "FR.encryption.key").unlink()
    with pytest.raises(KeyDirectoryError, match="no encryption key") as info:
        load_bureau_keys(tmp_path, "FR")
    assert "FR.hybrid.key" in str(info.value)


def test_cli_new_bureau_pq(tmp_path: Path) -> None:
    """`nbx keys new-bureau FR --dir D --pq` writes the hybrid key (0600) and a public document
    that `nbx directory add` accepts: the directory hands FR's hybrid key to senders."""
    import json

    from click.testing import CliRunner

    from broker.cli import main
    from broker.keys import Directory

    def run(*args: object) -> str:
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    anchor, d, fr = tmp_path / "anchor", tmp_path / "directory.json", tmp_path / "fr"
    run("keys", "init-anchor", anchor)
    out = run("keys", "new-bureau", "FR", "--dir", fr, "--pq")
    assert stat.S_IMODE((fr / "FR.hybrid.key").stat().st_mode) == 0o600
    doc = json.loads((fr / "FR.public.json").read_text())
    [encrypt] = [k for k in doc["keys"] if k["use"] == "encrypt"]
    assert encrypt["alg"] == "MLKEM768-X25519"
    assert f"encryption key {encrypt['kid']} (MLKEM768-X25519)" in out
    run(
        "directory",
        "add",
        "FR",
        "--keys",
        fr / "FR.public.json",
        "--name",
        "NCB Paris",
        "--file",
        d,
        "--anchor-key",
        anchor / "trust-anchor.key",
    )
    loaded = Directory.load(d, load_anchor_public_key(anchor / "trust-anchor.pub"))
    kid, key = loaded.recipient_key("FR")
    assert kid == encrypt["kid"]
    assert type(key).__name__ == "MLKEM768X25519PublicKey"


def test_cli_add_pq_and_add_key_refusals(tmp_path: Path) -> None:
    """`nbx keys add-pq` needs the bureau's existing keys and never overwrites; `nbx directory
    add-key` takes encryption keys only and not twice; each refusal is one `nbx: error:` line."""
    from click.testing import CliRunner

    from broker.cli import main

    def run(*args: object, ok: bool = True) -> str:
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert (result.exit_code == 0) == ok, result.output
        if not ok:  # one line
            assert result.output.startswith("nbx: error: "), result.output
            assert result.output.count("\n") == 1, result.output
        return result.output

    anchor, d, fr = tmp_path / "anchor", tmp_path / "directory.json", tmp_path / "fr"
    ak = anchor / "trust-anchor.key"
    run("keys", "init-anchor", anchor)
    out = run("keys", "add-pq", "FR", "--dir", fr, ok=False)
    assert "add-pq adds to an existing bureau" in out
    run("keys", "new-bureau", "FR", "--dir", fr)
    run("directory", "add", "FR", "--keys", fr / "FR.public.json", "--name", "N", "--file", d,
        "--anchor-key", ak)  # fmt: skip
    run("keys", "add-pq", "FR", "--dir", fr)
    assert stat.S_IMODE((fr / "FR.hybrid.key").stat().st_mode) == 0o600
    assert "already exists" in run("keys", "add-pq", "FR", "--dir", fr, ok=False)
    out = run("directory", "add-key", "FR", "--keys", fr / "FR.public.json", "--file", d,
              "--anchor-key", ak, ok=False)  # fmt: skip
    assert "encryption keys only" in out
    hybrid = fr / "FR.hybrid.public.json"
    run("directory", "add-key", "FR", "--keys", hybrid, "--file", d, "--anchor-key", ak)
    out = run("directory", "add-key", "FR", "--keys", hybrid, "--file", d, "--anchor-key", ak,
              ok=False)  # fmt: skip
    assert "already in the directory" in out
    loaded = load_bureau_keys(fr, "FR")
    assert len(loaded.decryption_keys()) == 2  # X25519 and hybrid, both opened during migration
