"""broker.node.quarantine: a quarantine record described from its headers, and the filters."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from broker.node.quarantine import (
    DROPPED_HEADER,
    REASON_HEADER,
    SOURCE_HEADER,
    TRUNCATED_HEADER,
    UNKNOWN_REASON,
    describe,
    select,
)
from broker.vocab import REASON_HELP, Reason


def record(
    offset: int, ms: int, value: bytes, *headers: tuple[str, bytes]
) -> ConsumerRecord[bytes, bytes]:
    """A record of CH's quarantine topic as aiokafka returns it."""
    return ConsumerRecord(
        topic="nbx.quarantine.CH",
        partition=0,
        offset=offset,
        timestamp=ms,
        timestamp_type=1,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=list(headers),
    )


def test_records_are_described_from_their_headers_and_filtered() -> None:
    """Reason, source, kept or not, truncated size and explanation come from the headers; an
    unknown code and a header that is not a number do not break the listing; ``select``
    filters by time and reason and sorts by time."""
    dropped = record(
        0, 2_000, b"", (REASON_HEADER, b"declined-by-policy"),
        (SOURCE_HEADER, b"nbx.inbox.CH:0:7"), (DROPPED_HEADER, b"4096"),
    )  # fmt: skip
    cut = record(1, 1_000, b"x" * 10, (REASON_HEADER, b"signature"), (TRUNCATED_HEADER, b"99"))
    odd = record(2, 3_000, b"\xff", (REASON_HEADER, b"from-the-future"), (DROPPED_HEADER, b"x"))
    a, b, c = describe(dropped), describe(cut), describe(odd)
    assert (a.reason, a.source, a.size, a.dropped, a.kept) == (
        "declined-by-policy", "nbx.inbox.CH:0:7", 0, 4096, False,
    )  # fmt: skip
    assert a.explanation == REASON_HELP[Reason.DECLINED_BY_POLICY]
    assert (b.kept, b.truncated_from, b.size, b.source) == (True, 99, 10, None)
    assert c.explanation == UNKNOWN_REASON
    assert c.dropped is None
    assert a.to_json()["at"] == "1970-01-01T00:00:02Z"
    assert [r.offset for r in select([a, b, c])] == [1, 0, 2]
    assert [r.offset for r in select([a, b, c], reason="signature")] == [1]
    since = datetime.fromtimestamp(2, UTC)
    assert [r.offset for r in select([a, b, c], since=since)] == [0, 2]
