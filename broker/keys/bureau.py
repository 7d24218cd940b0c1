"""A bureau's key pair set, key ids, and the key lookup interface the envelope verifies against.

Each bureau has an Ed25519 signing key and an X25519 encryption key, each with a key id.
:class:`KeyLookup` is the interface :func:`broker.envelope.open_package` uses to find a sender's
signing key valid at a given time; :class:`StaticDirectory` is the in-memory implementation used by
unit tests, :class:`broker.keys.directory.Directory` the signed one nodes use.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from broker.errors import EnvelopeRejected, KeyDirectoryError


def key_id(public_bytes: bytes) -> str:
    """Key id: the first 16 bytes of SHA-256 of the raw public key, base64url without padding."""
    return (
        base64.urlsafe_b64encode(hashlib.sha256(public_bytes).digest()[:16]).rstrip(b"=").decode()
    )


def raw_public(key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey) -> bytes:
    """The raw 32-byte encoding of an Ed25519 or X25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class BureauKeys:
    """A bureau's private keys (never logged, never printed)."""

    bureau: str
    signing_key: ed25519.Ed25519PrivateKey = field(repr=False)
    encryption_key: x25519.X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, bureau: str) -> BureauKeys:
        """Create fresh keys for ``bureau``."""
        return cls(bureau, ed25519.Ed25519PrivateKey.generate(), x25519.X25519PrivateKey.generate())

    @functools.cached_property
    def signing_key_id(self) -> str:
        """Key id of the signing key (computed once: every seal names it)."""
        return key_id(raw_public(self.signing_key.public_key()))

    @functools.cached_property
    def encryption_key_id(self) -> str:
        """Key id of the encryption key (computed once)."""
        return key_id(raw_public(self.encryption_key.public_key()))

    def public(self) -> BureauPublicKeys:
        """The public half, as published in the directory."""
        return BureauPublicKeys(
            self.bureau,
            self.signing_key_id,
            self.signing_key.public_key(),
            self.encryption_key_id,
            self.encryption_key.public_key(),
        )


@dataclass(frozen=True)
class BureauPublicKeys:
    """A bureau's current public keys."""

    bureau: str
    signing_key_id: str
    signing_key: ed25519.Ed25519PublicKey
    encryption_key_id: str
    encryption_key: x25519.X25519PublicKey


class KeyLookup(Protocol):
    """Where the envelope finds public keys (the directory, or a fake in tests)."""

    def signing_key(self, bureau: str, kid: str, at: datetime) -> ed25519.Ed25519PublicKey:
        """The signing key ``kid`` of ``bureau`` valid at ``at``.

        Raises :class:`EnvelopeRejected` with ``key-unknown`` or ``key-revoked``.
        """
        ...

    def encryption_key(self, bureau: str) -> tuple[str, x25519.X25519PublicKey]:
        """The current encryption key id and key of ``bureau``; raises KeyDirectoryError if none."""
        ...


class StaticDirectory:
    """An in-memory directory of current keys (no rotation, no revocation)."""

    def __init__(self, bureaus: list[BureauPublicKeys]) -> None:
        """Index ``bureaus`` by id."""
        self._by_id = {b.bureau: b for b in bureaus}

    def signing_key(self, bureau: str, kid: str, at: datetime) -> ed25519.Ed25519PublicKey:
        """Return the bureau's signing key if ``kid`` matches, else reject as ``key-unknown``."""
        entry = self._by_id.get(bureau)
        if entry is None or entry.signing_key_id != kid:
            raise EnvelopeRejected("key-unknown")
        return entry.signing_key

    def encryption_key(self, bureau: str) -> tuple[str, x25519.X25519PublicKey]:
        """Return the bureau's encryption key id and key."""
        entry = self._by_id.get(bureau)
        if entry is None:
            msg = f"unknown bureau {bureau!r}: not in the directory"
            raise KeyDirectoryError(msg)
        return entry.encryption_key_id, entry.encryption_key
