"""In-memory stand-ins for Kafka, to run a node's logic without a broker (as faststream's
``TestKafkaBroker`` or httpx's ``MockTransport``).

A :class:`MemoryBroker` keeps a log per topic (one partition each): records get consecutive
offsets and the broker's own timestamp (``LogAppendTime``, as NBX's inbox and receipts topics
are configured), and each consumer group's committed offsets. Its :meth:`~MemoryBroker.transport`
is a :class:`~broker.transport.Transport` that :class:`~broker.node.Publisher` and
:class:`~broker.node.ConsumerDaemon` accept as ``transport=``; what one publishes, the other
consumes::

    kafka = MemoryBroker()
    pub = Publisher(it_keys, directory, settings, policies=p, transport=kafka.transport())
    async with pub:
        await pub.publish(notice, ["FR"])
    daemon = ConsumerDaemon(fr_keys, directory, settings, sink, transport=kafka.transport())
    await daemon.run(until_idle_s=0.2)

What it does not model, and what therefore stays tested against a real broker: group membership
and rebalances, restarts and lost connections, several partitions, record size limits, topic
configuration. The in-memory clients never fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import ConsumerRecord, TopicPartition

from broker.transport.factory import Consumer, Producer, TopicEnsurer
from broker.transport.kafka import LOG_APPEND_TIME

__all__ = [
    "LOG_APPEND_TIME",
    "InstantProducer",
    "KnownTopics",
    "MemoryBroker",
    "MemoryConsumer",
    "MemoryTransport",
    "RecordMetadata",
]


@dataclass(frozen=True)
class RecordMetadata:
    """What a producer's acknowledgement carries."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class _TrackingClient:
    """Every topic is tracked already (what ``track_topics`` asks of aiokafka's client)."""

    def add_topic(self, _topic: str) -> asyncio.Future[bool]:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(True)
        return done


class MemoryBroker:
    """Topic logs and committed offsets in memory; see the module docstring."""

    def __init__(self) -> None:
        """An empty broker (topics are created on first use)."""
        self.logs: dict[str, list[ConsumerRecord[bytes, bytes]]] = {}
        self.committed: dict[tuple[str, TopicPartition], int] = {}
        self._waiters: list[asyncio.Future[None]] = []

    def transport(self) -> MemoryTransport:
        """A transport whose clients all talk to this broker."""
        return MemoryTransport(self)

    def log(self, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
        """The records of ``topic`` in offset order (created empty if missing)."""
        return self.logs.setdefault(topic, [])

    def values(self, topic: str) -> list[bytes]:
        """The record values of ``topic`` in offset order."""
        return [r.value or b"" for r in self.log(topic)]

    def append(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
        timestamp_type: int = LOG_APPEND_TIME,
    ) -> RecordMetadata:
        """Append one record, stamped with the broker's time unless told otherwise (a record
        whose producer chose its time: ``timestamp_type=0``)."""
        log = self.log(topic)
        at = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
            topic,
            0,
            len(log),
            at,
            timestamp_type,
            key,
            value,
            None,
            len(key or b""),
            len(value),
            list(headers or []),
        )
        log.append(record)
        self._notify()
        return RecordMetadata(topic, 0, record.offset, at)

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, timeout_s: float) -> None:
        """Return when a record is appended or ``timeout_s`` passed."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)


class MemoryProducer:
    """A producer that appends to a :class:`MemoryBroker`; acknowledged at the next loop turn."""

    def __init__(self, broker: MemoryBroker) -> None:
        """Produce to ``broker``."""
        self.broker = broker
        self.client = _TrackingClient()

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to flush."""

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Append the record; the returned future is its acknowledgement."""
        meta = self.broker.append(topic, value, key=key, headers=headers)
        ack: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        ack.set_result(meta)
        return ack

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> RecordMetadata:
        """Append the record and yield once, as a real acknowledgement would."""
        meta = self.broker.append(topic, value, key=key, headers=headers)
        await asyncio.sleep(0)
        return meta


#: the producer the in-process benchmarks use: every record kept, acknowledged at once
InstantProducer = MemoryProducer


class MemoryConsumer:
    """A group consumer of a :class:`MemoryBroker`: every topic's one partition is assigned to
    it; it reads from the group's committed offset (or the beginning) and commits when told."""

    def __init__(self, broker: MemoryBroker, topics: Sequence[str], group_id: str) -> None:
        """Consume ``topics`` as ``group_id``."""
        self.broker = broker
        self.group_id = group_id
        self.partitions = [TopicPartition(t, 0) for t in topics]
        self.positions: dict[TopicPartition, int] = {}
        self.paused_partitions: set[TopicPartition] = set()

    async def start(self) -> None:
        """Take every partition, at the group's committed offsets."""
        for tp in self.partitions:
            self.broker.log(tp.topic)
            self.positions[tp] = self.broker.committed.get((self.group_id, tp), 0)

    async def stop(self) -> None:
        """Nothing to leave."""

    async def getmany(
        self, *, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """Up to ``max_records`` records from the unpaused partitions; waits up to
        ``timeout_ms`` for one if there is none."""
        got = self._take(max_records)
        if not got and timeout_ms > 0:
            await self.broker.wait(timeout_ms / 1000)
            got = self._take(max_records)
        return got

    def _take(
        self, max_records: int | None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        room = max_records if max_records is not None else 1 << 30
        out: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp in self.partitions:
            if tp in self.paused_partitions or room <= 0:
                continue
            at = self.positions.get(tp, 0)
            records = self.broker.log(tp.topic)[at : at + room]
            if records:
                out[tp] = records
                self.positions[tp] = at + len(records)
                room -= len(records)
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (default: the current positions) for the group."""
        for tp, offset in (offsets if offsets is not None else self.positions).items():
            self.broker.committed[(self.group_id, tp)] = offset

    async def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed offset of ``partition``."""
        return self.broker.committed.get((self.group_id, partition))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` next."""
        self.positions[partition] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Read ``partitions`` from offset 0 next."""
        for tp in partitions:
            self.positions[tp] = 0

    def assignment(self) -> set[TopicPartition]:
        """Every partition of the subscribed topics."""
        return set(self.partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        """Fetch nothing from ``partitions`` until resumed."""
        self.paused_partitions |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        """Fetch from ``partitions`` again."""
        self.paused_partitions -= set(partitions)

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        return set(self.paused_partitions)


class KnownTopics:
    """A topic manager for which every topic exists (a :class:`MemoryBroker` creates logs on
    first use); ``ensure`` reports nothing created."""

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        """Create ``broker``'s logs on ``ensure`` (none: just say every topic exists)."""
        self.broker = broker

    async def ensure(self, names: Iterable[str]) -> set[str]:
        """Every topic exists already."""
        if self.broker is not None:
            for name in names:
                self.broker.log(name)
        return set()

    async def close(self) -> None:
        """Nothing to close."""


class MemoryTransport:
    """A :class:`~broker.transport.Transport` whose clients talk to one :class:`MemoryBroker`."""

    bootstrap = "memory"

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        """Clients of ``broker`` (default: a new one)."""
        self.broker = broker if broker is not None else MemoryBroker()

    def producer(self) -> Producer:
        """A :class:`MemoryProducer`."""
        return MemoryProducer(self.broker)

    def consumer(self, *topics: str, group_id: str) -> Consumer:
        """A :class:`MemoryConsumer` of ``topics`` in ``group_id``."""
        return MemoryConsumer(self.broker, topics, group_id)

    def topics(self) -> TopicEnsurer:
        """A :class:`KnownTopics` of the broker."""
        return KnownTopics(self.broker)
