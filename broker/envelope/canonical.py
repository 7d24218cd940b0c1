"""Canonical JSON (RFC 8785 JCS), digests and base64url helpers shared by sealing and opening."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import rfc8785

_MAX_SAFE_INT = 2**53
# One encoder for every call: ``json.dumps`` with arguments builds a new encoder each time.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_encode = _ENCODER.encode
_sha256 = hashlib.sha256
_b64encode = base64.urlsafe_b64encode


def _simple(value: Any, depth: int = 0) -> bool:
    """True if ``json.dumps`` writes ``value`` exactly as RFC 8785 does.

    That holds for strings without lone surrogates, booleans, null, integers strictly within
    +-2**53 (JCS writes numbers as IEEE doubles), lists, and objects whose keys are ASCII (for
    ASCII, sorting by code point equals JCS's sorting by UTF-16 code units). Floats, huge
    integers, non-ASCII keys and deep nesting take the reference implementation.
    """
    # iterative, with exact type checks: this runs for every digest, so it must stay cheap
    stack: list[tuple[Any, int]] = [(value, depth)]
    pop, push = stack.pop, stack.append
    while stack:
        item, level = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_MAX_SAFE_INT < item < _MAX_SAFE_INT:
                return False
            continue
        if level >= 64:
            return False
        if kind is list:
            for child in item:
                push((child, level + 1))
        elif kind is dict:
            for key, child in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                push((child, level + 1))
        else:
            return False
    return True


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value``.

    The common case (see :func:`_simple`) uses the C ``json`` encoder, about 20 times faster than
    the pure-Python ``rfc8785`` package; everything else goes to ``rfc8785``. A test compares the
    two on generated values.
    """
    return _dump(value, _simple(value))


def _dump(value: Any, simple: bool) -> bytes:
    """JCS bytes of ``value``; ``simple`` is :func:`_simple` of it (or of a list holding it)."""
    if simple:
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the reference implementation refuse it
            pass
    out: bytes = rfc8785.dumps(value)
    return out


def b64u(data: bytes) -> str:
    """Base64url without padding."""
    return _b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Inverse of :func:`b64u`; raises ``ValueError`` on bad input."""
    if not isinstance(text, str):
        msg = "expected a base64url string"
        raise TypeError(msg)
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode((text + pad).encode("ascii"))


def digest(value: Any) -> str:
    """``b64u(SHA-256(JCS(value)))``."""
    return b64u(_sha256(jcs(value)).digest())


def digests(values: Sequence[Any]) -> list[str]:
    """``[digest(v) for v in values]``, checking the fast path's domain once for all of them.

    Sealing and opening digest every disclosure of a message (about 25 for a red notice); one
    walk over the whole list and a direct call of the shared encoder per value costs about half
    of 25 separate :func:`digest` calls.
    """
    if not _simple(values, -1):  # -1: the list itself does not count as a nesting level
        return [digest(v) for v in values]
    return [b64u(_sha256(_dump(v, True)).digest()) for v in values]
