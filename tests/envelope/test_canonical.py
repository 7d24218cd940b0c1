"""The fast canonical-JSON path produces exactly the bytes of the reference RFC 8785 encoder."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.wire.canonical import b64u, b64u_decode, jcs, loads_checked

scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _reference(value: Any) -> bytes | type[BaseException]:
    try:
        out: bytes = rfc8785.dumps(value)
    except Exception as exc:  # the reference refuses: so must jcs
        return type(exc)
    return out


@settings(max_examples=500)
@given(values)
def test_fast_path_equals_reference(value: Any) -> None:
    """For any JSON value (any text, including control characters, non-ASCII keys and lone
    surrogates; integers of any size; floats), jcs() returns the reference bytes, or raises
    where the reference raises."""
    expected = _reference(value)
    if isinstance(expected, bytes):
        assert jcs(value) == expected
    else:
        with pytest.raises(expected):
            jcs(value)


# the messages of json's decoder, of UTF-8 decoding and of loads_checked for NaN / Infinity
NOT_JSON = r"Expecting|Extra data|Unterminated|Invalid|can't decode|is not JSON"


def _reference_check(data: bytes) -> bool | None:
    """What the statement check meant before the fast path: ``jcs(json.loads(data)) == data``
    (``None``: not JSON at all)."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_refuse)
    except ValueError:
        return None
    try:
        return bool(rfc8785.dumps(value) == data)
    except Exception:  # the reference cannot encode it (lone surrogate): not canonical
        return False


def _refuse(text: str) -> Any:
    raise ValueError(text)


def _texts(value: Any) -> list[bytes]:
    """The canonical bytes of ``value`` (when it has them) and a few non-canonical spellings."""
    out = [
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace"),
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode(),
    ]
    reference = _reference(value)
    if isinstance(reference, bytes):
        out.append(reference)
    return out


@settings(max_examples=500)
@given(values)
def test_loads_checked_equals_reference_check(value: Any) -> None:
    """loads_checked(data) says "canonical" exactly when the reference encoder reproduces data,
    for canonical texts and for differently spelled ones (spaces, key order, escapes)."""
    for data in _texts(value):
        expected = _reference_check(data)
        if expected is None:
            with pytest.raises(ValueError, match=NOT_JSON):
                loads_checked(data)
            continue
        parsed, canonical = loads_checked(data)
        assert canonical is expected, data
        if canonical:
            assert rfc8785.dumps(parsed) == data


@pytest.mark.parametrize(
    ("data", "canonical"),
    [
        (b'{"a":1,"b":[true,null,"x"]}', True),
        (b'{"b":1,"a":2}', False),  # key order
        (b'{"a": 1}', False),  # whitespace
        (b'{"a":1,"a":1}', False),  # duplicate key
        (b'{"a":1.0}', False),  # JCS writes 1
        (b'{"a":1}', True),
        (b'{"a":1e2}', False),  # JCS writes 100
        (b'{"a":100}', True),
        (b'{"a":-0}', False),
        (b'{"a":9007199254740993}', False),  # beyond 2**53: JCS writes the nearest double
        (b'{"a":"\\u00e9"}', False),  # JCS writes the character itself
        ('{"a":"é"}'.encode(), True),
        ('{"\U0001f600":1,"\ue000":2}'.encode(), True),  # UTF-16 order: U+1F600 before U+E000
        ('{"\ue000":2,"\U0001f600":1}'.encode(), False),  # code point order is not JCS
        (b'{"a":"\\ud800"}', False),  # lone surrogate
        (b"[" * 300 + b"]" * 300, True),  # deeper than the fast encoder goes: the reference decides
        (b"[" * 300 + b"] " + b"]" * 299, False),
    ],
)
def test_loads_checked_known_cases(data: bytes, canonical: bool) -> None:
    """Spellings JCS forbids are reported, including the cases the fast path hands on."""
    assert loads_checked(data)[1] is canonical
    assert _reference_check(data) is canonical


@pytest.mark.parametrize("data", [b'{"a":NaN}', b'{"a":Infinity}', b"\xff{}", b"{", b""])
def test_loads_checked_refuses_non_json(data: bytes) -> None:
    """NaN, Infinity, bytes that are not UTF-8 and broken text raise ValueError."""
    with pytest.raises(ValueError, match=NOT_JSON):
        loads_checked(data)


def test_jcs_of_deep_nesting_equals_the_reference() -> None:
    """Nesting beyond the fast encoder's depth is written by the reference implementation."""
    value: Any = "x"
    for _ in range(300):
        value = [value]
    assert jcs(value) == rfc8785.dumps(value) == b"[" * 300 + b'"x"' + b"]" * 300


@given(st.binary(max_size=200))
def test_b64u_is_unpadded_base64url_and_round_trips(data: bytes) -> None:
    """``b64u`` writes what ``base64.urlsafe_b64encode`` writes, less the padding."""
    text = b64u(data)
    assert text == base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    assert "=" not in text
    assert b64u_decode(text) == data


def test_b64u_uses_the_url_safe_alphabet() -> None:
    """Bytes whose standard base64 holds ``+`` and ``/`` come out as ``-`` and ``_``."""
    assert base64.b64encode(b"\xfb\xff") == b"+/8="
    assert b64u(b"\xfb\xff") == "-_8"
