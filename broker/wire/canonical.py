"""Canonical JSON (RFC 8785 JCS), digests and base64url helpers shared by sealing and opening."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import orjson
import rfc8785

_MAX_SAFE_INT = 2**53
_SORTED = orjson.OPT_SORT_KEYS


def _encode(value: Any) -> bytes:
    """Compact UTF-8 JSON with sorted keys (orjson; about five times the C ``json`` encoder).

    Within the domain of :func:`_simple` this is RFC 8785; a string with a lone surrogate raises
    ``orjson.JSONEncodeError`` (no UTF-8 form, and no JCS form either).
    """
    return orjson.dumps(value, option=_SORTED)


_sha256 = hashlib.sha256
_b2a_base64 = binascii.b2a_base64
# what base64.urlsafe_b64encode does after b2a_base64, without its two Python call layers
# (base64url is computed ~60 times per message: salts, digests, statement and signature)
_URLSAFE = bytes.maketrans(b"+/", b"-_")


_LEAVES = frozenset((str, bool, type(None)))


def _simple(value: Any, depth: int = 0) -> bool:
    """True if :func:`_encode` writes ``value`` exactly as RFC 8785 does.

    That holds for strings without lone surrogates, booleans, null, integers strictly within
    +-2**53 (JCS writes numbers as IEEE doubles), lists, and objects whose keys are ASCII (for
    ASCII, sorting by code point equals JCS's sorting by UTF-16 code units). Floats, huge
    integers, non-ASCII keys and deep nesting take the reference implementation.
    """
    # iterative, with exact type checks, and a container whose children are all strings, booleans
    # or null is checked in C (set of their types): this runs for every digest and statement
    stack: list[tuple[Any, int]] = [(value, depth)]
    pop, push = stack.pop, stack.append
    while stack:
        item, level = pop()
        kind = type(item)
        children: Any
        if kind is list:
            children = item
        elif kind is dict:
            try:
                if not "".join(item).isascii():
                    return False
            except TypeError:  # a key that is not a string
                return False
            children = item.values()
        elif kind in _LEAVES:
            continue
        elif kind is int:
            if not -_MAX_SAFE_INT < item < _MAX_SAFE_INT:
                return False
            continue
        else:
            return False
        if level >= 64:
            return False
        if _LEAVES.issuperset(map(type, children)):
            continue
        for child in children:
            push((child, level + 1))
    return True


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value``.

    The common case (see :func:`_simple`) uses orjson, about 100 times faster than the
    pure-Python ``rfc8785`` package; everything else goes to ``rfc8785``. A test compares the
    two on generated values.
    """
    return _dump(value, _simple(value))


def _dump(value: Any, simple: bool) -> bytes:
    """JCS bytes of ``value``; ``simple`` is :func:`_simple` of it (or of a list holding it)."""
    if simple:
        try:
            return _encode(value)
        except orjson.JSONEncodeError:  # a lone surrogate, deep nesting: the reference decides
            pass
    out: bytes = rfc8785.dumps(value)
    return out


class _NeedsReferenceError(Exception):
    """A number the fast check does not cover (float or integer beyond +-2**53)."""


def _no_float(text: str) -> Any:
    raise _NeedsReferenceError


def _safe_int(text: str) -> int:
    value = int(text)
    if not -_MAX_SAFE_INT < value < _MAX_SAFE_INT:
        raise _NeedsReferenceError
    return value


def _no_constant(text: str) -> Any:
    msg = f"{text} is not JSON"
    raise ValueError(msg)


_CHECKING_DECODER = json.JSONDecoder(
    parse_float=_no_float, parse_int=_safe_int, parse_constant=_no_constant
)
_DECODER = json.JSONDecoder(parse_constant=_no_constant)
# a UTF-8 lead byte of a character beyond U+FFFF (JCS sorts keys by UTF-16 code units)
_NON_BMP = re.compile(rb"[\xf0-\xf4]")


def loads_checked(data: bytes) -> tuple[Any, bool]:
    """Parse UTF-8 JSON ``data``; return the value and whether ``data`` is exactly its JCS form.

    Equivalent to ``value = json.loads(data); jcs(value) == data`` (strict UTF-8, no NaN or
    Infinity), without walking the value: when the text has no float, no integer beyond
    +-2**53 and no character beyond U+FFFF, :func:`_encode`'s output equals RFC 8785 (for BMP
    characters, code point order equals UTF-16 code unit order), so one encode and one compare
    decide. Anything else takes :func:`jcs`. A value without a JCS form (an integer beyond
    +-2**53, a lone surrogate) is not canonical. Raises ``ValueError`` on text that is not JSON.
    """
    text = data.decode("utf-8")
    try:
        value = _CHECKING_DECODER.decode(text)
    except _NeedsReferenceError:
        value = _DECODER.decode(text)
        return value, _is_jcs(value, data)
    if not data.isascii() and _NON_BMP.search(data) is not None:
        return value, _is_jcs(value, data)
    try:
        return value, _encode(value) == data
    except orjson.JSONEncodeError:  # a lone surrogate or deep nesting: the reference decides
        return value, _is_jcs(value, data)


def _is_jcs(value: Any, data: bytes) -> bool:
    try:
        return jcs(value) == data
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):  # no JCS form at all
        return False


def b64u(data: bytes) -> str:
    """Base64url without padding."""
    return _b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


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
