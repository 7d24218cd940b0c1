"""Message ids are RFC 9562 UUIDv7 strings: time-ordered, version 7, variant 10."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from broker.ids import uuid7


@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_uuid7_is_the_canonical_text_of_a_version_7_uuid(now_ms: int) -> None:
    """The text is what ``uuid.UUID`` prints for the same value, with version 7, variant RFC
    4122/9562 and the milliseconds in the first 48 bits."""
    text = uuid7(now_ms)
    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == now_ms


def test_uuid7_orders_by_time_and_is_random_within_a_millisecond() -> None:
    """Ids of later milliseconds sort after earlier ones; ids of one millisecond differ."""
    assert uuid7(1_700_000_000_000) < uuid7(1_700_000_000_001)
    assert len({uuid7(1_700_000_000_000) for _ in range(100)}) == 100
