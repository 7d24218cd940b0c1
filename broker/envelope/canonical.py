"""Canonical JSON (RFC 8785 JCS), digests and base64url helpers shared by sealing and opening."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import rfc8785


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value``."""
    out: bytes = rfc8785.dumps(value)
    return out


def b64u(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Inverse of :func:`b64u`; raises ``ValueError`` on bad input."""
    if not isinstance(text, str):
        msg = "expected a base64url string"
        raise TypeError(msg)
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode((text + pad).encode("ascii"))


def digest(value: Any) -> str:
    """``b64u(SHA-256(JCS(value)))``."""
    return b64u(hashlib.sha256(jcs(value)).digest())
