"""Reading a bureau's quarantine topic (``nbx quarantine list|show``).

The daemon (:mod:`broker.node.consumer`) puts every record it does not store on
``nbx.quarantine.<CC>`` with a reason code in the ``nbx-reason`` header (docs/reason-codes.md).
This module reads that topic from its beginning with a consumer of its own, assigned to every
partition (no consumer group: it commits nothing and never disturbs the daemon), until each
partition is read to its end, and describes each record from its headers. It never decrypts a
value: a quarantined value is either evidence of a failure or empty (a valid package this bureau
chose not to receive, :data:`~broker.vocab.NOT_KEPT`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from broker.errors import TransportError
from broker.transport import KafkaSettings, quarantine
from broker.transport.directory import make_directory_reader
from broker.transport.kafka import connect_error
from broker.vocab import REASON_HELP, Reason

#: the record headers the daemon writes (:mod:`broker.node.consumer`): the reason code, the
#: position read at, the original size of a value cut to ``max_frame_bytes``, and the size of a
#: package not kept (:data:`~broker.vocab.NOT_KEPT`: the record's value is empty)
REASON_HEADER = "nbx-reason"
SOURCE_HEADER = "nbx-source"
TRUNCATED_HEADER = "nbx-truncated-from"
DROPPED_HEADER = "nbx-dropped"
#: what ``explanation`` says of a code this node does not know (a newer node's)
UNKNOWN_REASON = "A reason code this version of NBX does not know."


@dataclass(frozen=True)
class QuarantineRecord:
    """One quarantined record, as its headers describe it."""

    partition: int
    offset: int
    #: the broker's time of the record (when it was quarantined)
    at: datetime
    reason: str
    #: ``topic:partition:offset`` the record was read at, if the header is there
    source: str | None
    #: the bytes kept in the quarantine (0 for a package not kept)
    size: int
    #: the original size, when the value was not kept (:data:`~broker.vocab.NOT_KEPT`)
    dropped: int | None
    #: the original size, when the value was cut to ``[limits] max_frame_bytes``
    truncated_from: int | None
    #: every header, as text
    headers: tuple[tuple[str, str], ...]

    @property
    def kept(self) -> bool:
        """Whether the record's value (the raw package) is kept in the quarantine."""
        return self.dropped is None

    @property
    def explanation(self) -> str:
        """What the reason code means (:data:`~broker.vocab.REASON_HELP`)."""
        try:
            return REASON_HELP[Reason(self.reason)]
        except ValueError:
            return UNKNOWN_REASON

    def to_json(self) -> dict[str, Any]:
        """The record as ``nbx quarantine --json`` prints it."""
        return {
            "partition": self.partition,
            "offset": self.offset,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "reason": self.reason,
            "explanation": self.explanation,
            "source": self.source,
            "size": self.size,
            "kept": self.kept,
            "dropped": self.dropped,
            "truncated_from": self.truncated_from,
            "headers": dict(self.headers),
        }


def _int(value: str | None) -> int | None:
    """A header's integer, or ``None`` (absent or not a number)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def describe(record: ConsumerRecord[bytes, bytes]) -> QuarantineRecord:
    """A quarantine record from what the broker returned (headers decoded leniently: the
    topic is the bureau's own, but a header is never trusted to be ASCII)."""
    headers = tuple(
        (key, (value or b"").decode("ascii", "replace")) for key, value in record.headers or ()
    )
    found = dict(headers)
    reason = found.get(REASON_HEADER, "")
    return QuarantineRecord(
        partition=record.partition,
        offset=record.offset,
        at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        reason=reason,
        source=found.get(SOURCE_HEADER),
        size=len(record.value or b""),
        dropped=_int(found.get(DROPPED_HEADER)),
        truncated_from=_int(found.get(TRUNCATED_HEADER)),
        headers=headers,
    )


def select(
    records: Iterable[QuarantineRecord],
    *,
    since: datetime | None = None,
    reason: str | None = None,
) -> list[QuarantineRecord]:
    """The records at or after ``since`` with ``reason`` (either ``None``: any), by time."""
    chosen = [
        r
        for r in records
        if (since is None or r.at >= since) and (reason is None or r.reason == reason)
    ]
    return sorted(chosen, key=lambda r: (r.at, r.partition, r.offset))


async def read_quarantine(
    settings: KafkaSettings, bureau: str, *, timeout_s: float = 30.0
) -> list[QuarantineRecord]:
    """Every record of ``nbx.quarantine.<bureau>``, read from the beginning to the end of each
    partition (empty if the topic does not exist: nothing was ever quarantined).
    :class:`~broker.errors.TransportError` if the broker cannot be reached, or the end is not
    reached within ``timeout_s``."""
    topic = quarantine(bureau)
    # the directory's reader is the transport's consumer outside any group, from the beginning
    consumer = make_directory_reader(settings)
    try:
        await consumer.start()
    except (KafkaError, OSError) as exc:
        raise connect_error(settings.bootstrap, exc, settings) from exc
    try:
        await consumer.topics()  # refresh the metadata so the partitions are known
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            return []
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: list[QuarantineRecord] = []
        deadline = time.monotonic() + timeout_s
        while True:
            batch = await consumer.getmany(*assigned, timeout_ms=200)
            found += [describe(r) for records in batch.values() for r in records]
            if await _at_end(consumer, assigned):
                return found
            if time.monotonic() > deadline:
                msg = f"{topic}: not read to its end within {timeout_s:g} s"
                raise TransportError(msg)
    except KafkaError as exc:
        raise connect_error(settings.bootstrap, exc, settings) from exc
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    """Whether every partition is read up to the end the last fetch reported (its high
    watermark: known only once the broker answered a fetch of it)."""
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
