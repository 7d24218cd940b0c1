"""Key ids and raw public key bytes: what a frame, a statement and the directory name keys by.

Both :mod:`broker.keys.bureau` and :mod:`broker.keys.hybrid` derive key ids here, so neither
imports the other's module for it.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519


def key_id(public_bytes: bytes) -> str:
    """Key id: the first 16 bytes of SHA-256 of the raw public key, base64url without padding."""
    return (
        base64.urlsafe_b64encode(hashlib.sha256(public_bytes).digest()[:16]).rstrip(b"=").decode()
    )


def raw_public(key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey) -> bytes:
    """The raw 32-byte encoding of an Ed25519 or X25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
