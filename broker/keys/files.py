"""Key files: private keys as PKCS#8 PEM (mode 0600, optionally encrypted), public keys as PEM.

* A private key file is created with mode 0600 and never overwritten.
* A private key file readable or writable by group or others is refused on loading, with a message
  saying which file and how to fix it (``chmod 600``).
* The passphrase, if any, comes from the environment variable :data:`PASSPHRASE_ENV`; it is never
  passed on a command line (where ``ps`` would show it) and never logged.

Bureau key files written by :func:`write_bureau_keys` in a folder ``DIR``::

    DIR/<CC>.signing.key      Ed25519 private key (0600)
    DIR/<CC>.encryption.key   X25519 private key (0600), envelope suite 1
    DIR/<CC>.hybrid.key       ML-KEM-768 + X25519 private key (0600), envelope suite 2
    DIR/<CC>.public.json      public keys with key ids, input to ``nbx directory add|rotate``
    DIR/<CC>.signing.next.key the next Ed25519 private key (0600) during a signing-key rotation
                              (``nbx keys rotate``; :mod:`broker.keys.signing`)

A bureau has at least one of the two encryption key files (``nbx keys new-bureau`` writes the
first, ``--pq`` the second); a node loads every one present, so during a migration it opens
packages of both suites.

The hybrid key file is two PKCS#8 PEM blocks, in this order, each written and read by
``cryptography`` exactly as the single-key files are (``BestAvailableEncryption`` with the
passphrase when one is set, so the blocks are ``ENCRYPTED PRIVATE KEY``)::

    -----BEGIN PRIVATE KEY-----      ML-KEM-768 private key (the 64-byte seed form, FIPS 203)
    -----BEGIN PRIVATE KEY-----      X25519 private key (RFC 8410)

Its public key, as published in the directory (alg ``MLKEM768-X25519``), is
``ML-KEM-768 public key || X25519 public key`` (:mod:`broker.keys.hybrid`).
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from broker.errors import KeyDirectoryError
from broker.keys.bureau import BureauKeys
from broker.keys.hybrid import HybridEncryptionKey
from broker.keys.key_ids import raw_public
from broker.wire.canonical import b64u

PASSPHRASE_ENV = "NBX_KEY_PASSPHRASE"  # noqa: S105 - the variable name, not a passphrase
ANCHOR_PRIVATE = "trust-anchor.key"
ANCHOR_PUBLIC = "trust-anchor.pub"
PrivateKey = ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey
_PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z ]+-----\r?\n.*?-----END [A-Z ]+-----\r?\n?", re.DOTALL)


def passphrase_from_env() -> bytes | None:
    """The key passphrase from ``NBX_KEY_PASSPHRASE``, or ``None`` when unset or empty."""
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def _create_0600(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file created with mode 0600 (refusing to overwrite)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        msg = f"{path}: already exists; refusing to overwrite a key file"
        raise KeyDirectoryError(msg) from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _pkcs8(key: PrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> None:
    """Write ``key`` as PKCS#8 PEM to a new file with mode 0600, encrypted if ``passphrase``."""
    _create_0600(path, _pkcs8(key, passphrase))


def write_hybrid_key(path: Path, key: HybridEncryptionKey, passphrase: bytes | None = None) -> None:
    """Write a hybrid key as two PKCS#8 PEM blocks (ML-KEM-768, X25519) to a new 0600 file."""
    _create_0600(path, _pkcs8(key.mlkem_key, passphrase) + _pkcs8(key.x25519_key, passphrase))


def create_private_atomic(path: Path, data: bytes) -> None:
    """Create the private file ``path`` (mode 0600) with ``data`` in one step, refusing to
    overwrite: a running node reading the folder sees no file or the whole file, never a part
    (written to a temporary 0600 file, fsync, then hard-linked to ``path``)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            msg = f"{path}: already exists; refusing to overwrite a key file"
            raise KeyDirectoryError(msg) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_next_signing_key(
    path: Path, key: ed25519.Ed25519PrivateKey, passphrase: bytes | None = None
) -> None:
    """Write the next signing key as PKCS#8 PEM (0600, encrypted if ``passphrase``) atomically,
    refusing to overwrite (:func:`create_private_atomic`)."""
    create_private_atomic(path, _pkcs8(key, passphrase))


def write_public_key(path: Path, key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey) -> None:
    """Write a public key as SubjectPublicKeyInfo PEM (refusing to overwrite)."""
    if path.exists():
        msg = f"{path}: already exists; refusing to overwrite a key file"
        raise KeyDirectoryError(msg)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path.write_bytes(pem)


def _read_private(path: Path) -> bytes:
    """The bytes of a private key file, refusing one that group or others may access."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        msg = f"{path}: private key file not found"
        raise KeyDirectoryError(msg) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        msg = (
            f"{path}: private key is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )
        raise KeyDirectoryError(msg)
    return path.read_bytes()


def _load_private(path: Path, passphrase: bytes | None) -> PrivateKeyTypes:
    return _parse_private(path, _read_private(path), passphrase)


def _parse_private(path: Path, data: bytes, passphrase: bytes | None) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        if passphrase is None:
            msg = f"{path}: private key is encrypted; set {PASSPHRASE_ENV}"
        else:
            msg = f"{path}: private key is not encrypted but {PASSPHRASE_ENV} is set"
        raise KeyDirectoryError(msg) from None
    except ValueError:
        msg = f"{path}: not a PEM private key, or wrong passphrase in {PASSPHRASE_ENV}"
        raise KeyDirectoryError(msg) from None


def load_signing_key(path: Path, passphrase: bytes | None = None) -> ed25519.Ed25519PrivateKey:
    """Load an Ed25519 private key, refusing a file readable by group or others."""
    key = _load_private(path, passphrase)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        msg = f"{path}: not an Ed25519 private key"
        raise KeyDirectoryError(msg)
    return key


def load_encryption_key(path: Path, passphrase: bytes | None = None) -> x25519.X25519PrivateKey:
    """Load an X25519 private key, refusing a file readable by group or others."""
    key = _load_private(path, passphrase)
    if not isinstance(key, x25519.X25519PrivateKey):
        msg = f"{path}: not an X25519 private key"
        raise KeyDirectoryError(msg)
    return key


def load_hybrid_key(path: Path, passphrase: bytes | None = None) -> HybridEncryptionKey:
    """Load an ML-KEM-768 + X25519 key written by :func:`write_hybrid_key` (mode checked as for
    every private key; a missing, wrong or superfluous passphrase is refused in one line)."""
    return parse_hybrid(path, _read_private(path), passphrase)


#: the bytes of a private key file, refusing one group or others may access (for
#: :mod:`broker.keys.epochs`)
read_private = _read_private
#: parse one PKCS#8 PEM private key read from ``path`` (errors name ``path``)
parse_private = _parse_private


def parse_hybrid(path: Path, data: bytes, passphrase: bytes | None) -> HybridEncryptionKey:
    """Parse the two PEM blocks of a hybrid key read from ``path`` (errors name ``path``)."""
    blocks = _PEM_BLOCK.findall(data)
    keys = [_parse_private(path, block, passphrase) for block in blocks]
    if (
        len(keys) != 2
        or not isinstance(keys[0], mlkem.MLKEM768PrivateKey)
        or not isinstance(keys[1], x25519.X25519PrivateKey)
    ):
        msg = (
            f"{path}: not an ML-KEM-768+X25519 private key "
            "(expected two PKCS#8 PEM blocks: ML-KEM-768, then X25519)"
        )
        raise KeyDirectoryError(msg)
    return HybridEncryptionKey(keys[0], keys[1])


def load_anchor_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    """Load the pinned trust-anchor public key (PEM SubjectPublicKeyInfo)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        msg = f"{path}: trust-anchor public key not found"
        raise KeyDirectoryError(msg) from None
    except ValueError:
        msg = f"{path}: not a PEM public key"
        raise KeyDirectoryError(msg) from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        msg = f"{path}: the trust anchor must be an Ed25519 public key"
        raise KeyDirectoryError(msg)
    return key


def init_anchor(folder: Path, passphrase: bytes | None = None) -> ed25519.Ed25519PrivateKey:
    """Create ``folder/trust-anchor.key`` (0600) and ``folder/trust-anchor.pub``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    write_private_key(folder / ANCHOR_PRIVATE, key, passphrase)
    write_public_key(folder / ANCHOR_PUBLIC, key.public_key())
    return key


def public_document(keys: BureauKeys) -> dict[str, Any]:
    """The ``<CC>.public.json`` document: the bureau's public keys with their key ids."""
    entries: list[dict[str, str]] = [
        {
            "use": "sign",
            "alg": "Ed25519",
            "kid": keys.signing_key_id,
            "public": b64u(raw_public(keys.signing_key.public_key())),
        }
    ]
    if keys.x25519_key is not None:
        entries.append(
            {
                "use": "encrypt",
                "alg": "X25519",
                "kid": keys.encryption_key_id,
                "public": b64u(raw_public(keys.x25519_key.public_key())),
            }
        )
    if keys.hybrid_key is not None:
        entries.append(hybrid_public_entry(keys.hybrid_key))
    return {"bureau": keys.bureau, "keys": entries}


def hybrid_public_entry(key: HybridEncryptionKey) -> dict[str, str]:
    """The public document's entry for a hybrid key (alg ``MLKEM768-X25519``)."""
    return {
        "use": "encrypt",
        "alg": "MLKEM768-X25519",
        "kid": key.key_id,
        "public": b64u(key.public_bytes()),
    }


def bureau_paths(folder: Path, bureau: str) -> tuple[Path, Path, Path]:
    """Paths of a bureau's signing key, encryption key and public document in ``folder``."""
    return (
        folder / f"{bureau}.signing.key",
        folder / f"{bureau}.encryption.key",
        folder / f"{bureau}.public.json",
    )


def next_signing_path(folder: Path, bureau: str) -> Path:
    """Path of a bureau's next signing key (``nbx keys rotate``) in ``folder``."""
    return folder / f"{bureau}.signing.next.key"


def hybrid_path(folder: Path, bureau: str) -> Path:
    """Path of a bureau's ML-KEM-768 + X25519 private key in ``folder``."""
    return folder / f"{bureau}.hybrid.key"


def write_bureau_keys(folder: Path, keys: BureauKeys, passphrase: bytes | None = None) -> None:
    """Write a bureau's private keys (0600) and public document into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    signing, encryption, public = bureau_paths(folder, keys.bureau)
    hybrid = hybrid_path(folder, keys.bureau)
    for path in (signing, encryption, hybrid, public):
        if path.exists():
            msg = f"{path}: already exists; refusing to overwrite a key file"
            raise KeyDirectoryError(msg)
    write_private_key(signing, keys.signing_key, passphrase)
    if keys.x25519_key is not None:
        write_private_key(encryption, keys.x25519_key, passphrase)
    if keys.hybrid_key is not None:
        write_hybrid_key(hybrid, keys.hybrid_key, passphrase)
    public.write_text(json.dumps(public_document(keys), indent=2) + "\n")


def load_bureau_keys(folder: Path, bureau: str, passphrase: bytes | None = None) -> BureauKeys:
    """Load the private keys that :func:`write_bureau_keys` wrote for ``bureau``: the signing key
    (and the next one during a signing-key rotation, as a spare) and every encryption key file
    present (X25519, hybrid, or both during a migration)."""
    signing, encryption, _ = bureau_paths(folder, bureau)
    hybrid = hybrid_path(folder, bureau)
    if not encryption.exists() and not hybrid.exists():
        msg = f"{folder}: no encryption key for {bureau} ({encryption.name} or {hybrid.name})"
        raise KeyDirectoryError(msg)
    following = next_signing_path(folder, bureau)
    return BureauKeys(
        bureau,
        load_signing_key(signing, passphrase),
        load_encryption_key(encryption, passphrase) if encryption.exists() else None,
        load_hybrid_key(hybrid, passphrase) if hybrid.exists() else None,
        spare_signing=((load_signing_key(following, passphrase),) if following.exists() else ()),
    )
