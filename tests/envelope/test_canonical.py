"""The fast canonical-JSON path produces exactly the bytes of the reference RFC 8785 encoder."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.envelope.canonical import jcs

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
