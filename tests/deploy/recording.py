"""Recording wrappers of the transport seams: every Kafka operation a node's code path performs,
as the broker would authorize it (resource type, name, operation), per principal.

The node's clients come from :class:`~broker.transport.Transport` (producer, group consumer,
topic manager); the directory's reader and producer, the anchor's topic creation and the
quarantine reader are built in :mod:`broker.transport.directory` and
:mod:`broker.transport.admin`, which the tests replace with :class:`AssignedConsumer`,
:class:`RecordingProducer` and :class:`RecordingTopics` over the same in-memory broker.

What each client call asks of the broker (Kafka's protocol, KIP-11 / the authorizer's table):
a produce is ``Write`` on the topic (its metadata ``Describe``; idempotent producers
``IdempotentWrite`` on the cluster at InitProducerId); joining a group, fetching, committing and
heartbeats are ``Read`` on the group and the topic; ``committed`` (OffsetFetch) is ``Describe``
on the group and the topic; a fetch outside any group (assign, ListOffsets, Fetch) is
``Describe`` and ``Read`` on the topic; a topic manager's check (Metadata) is ``Describe`` on
each topic it names (every one of them exists: the operator created them, so no CreateTopics).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from aiokafka import ConsumerRecord, TopicPartition

from broker.deploy.acls import CLUSTER_NAME, Access, Operation, ResourceType
from broker.testing import MemoryBroker, MemoryTransport
from broker.transport.factory import Consumer, Producer, TopicEnsurer

Ops = set[Access]


def topic(name: str, operation: Operation) -> Access:
    """An operation on topic ``name``."""
    return Access(ResourceType.TOPIC, name, operation)


def group(name: str, operation: Operation) -> Access:
    """An operation on consumer group ``name``."""
    return Access(ResourceType.GROUP, name, operation)


IDEMPOTENT = Access(ResourceType.CLUSTER, CLUSTER_NAME, Operation.IDEMPOTENT_WRITE)


class RecordingProducer:
    """A producer that records ``Write`` (and its metadata ``Describe``) per topic it sends to,
    and ``IdempotentWrite`` at start when idempotent."""

    def __init__(self, inner: Any, ops: Ops, *, idempotent: bool) -> None:
        self._inner = inner
        self._ops = ops
        self._idempotent = idempotent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _write(self, name: str) -> None:
        self._ops |= {topic(name, Operation.DESCRIBE), topic(name, Operation.WRITE)}

    async def start(self) -> None:
        if self._idempotent:
            self._ops.add(IDEMPOTENT)
        await self._inner.start()

    async def send(self, name: str, value: bytes, **kw: Any) -> Any:
        self._write(name)
        return await self._inner.send(name, value, **kw)

    async def send_and_wait(self, name: str, value: bytes, **kw: Any) -> Any:
        self._write(name)
        return await self._inner.send_and_wait(name, value, **kw)


class RecordingConsumer:
    """A group consumer that records what joining, fetching and committing ask for."""

    def __init__(self, inner: Any, ops: Ops, topics: Sequence[str], group_id: str) -> None:
        self._inner = inner
        self._ops = ops
        self._topics = list(topics)
        self._group = group_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _read(self) -> None:
        self._ops.add(group(self._group, Operation.READ))
        for name in self._topics:
            self._ops |= {topic(name, Operation.DESCRIBE), topic(name, Operation.READ)}

    async def start(self) -> None:
        self._read()  # Metadata, FindCoordinator, JoinGroup, SyncGroup
        await self._inner.start()

    async def getmany(self, **kw: Any) -> Any:
        self._read()  # Fetch, Heartbeat
        return await self._inner.getmany(**kw)

    async def commit(self, offsets: Mapping[Any, int] | None = None) -> None:
        self._read()  # OffsetCommit
        await self._inner.commit(offsets)

    async def committed(self, partition: TopicPartition) -> int | None:
        self._ops |= {
            group(self._group, Operation.DESCRIBE),
            topic(partition.topic, Operation.DESCRIBE),
        }
        result: int | None = await self._inner.committed(partition)
        return result


class RecordingTopics:
    """A topic manager that records the metadata check of every topic it ensures, and which
    topics it was asked to ensure (the test checks the operator created all of them)."""

    def __init__(self, inner: TopicEnsurer, ops: Ops, ensured: set[str]) -> None:
        self._inner = inner
        self._ops = ops
        self._ensured = ensured

    async def ensure(self, names: Iterable[str]) -> set[str]:
        wanted = set(names)
        self._ensured |= wanted
        self._ops |= {topic(name, Operation.DESCRIBE) for name in wanted}
        return await self._inner.ensure(wanted)

    async def close(self) -> None:
        await self._inner.close()


class RecordingTransport(MemoryTransport):
    """An in-memory transport whose clients record into ``ops`` (one principal's)."""

    def __init__(
        self, broker: MemoryBroker, ops: Ops, ensured: set[str], *, idempotent: bool
    ) -> None:
        super().__init__(broker)
        self._ops = ops
        self._ensured = ensured
        self._idempotent = idempotent

    def producer(self) -> Producer:
        return cast(
            Producer, RecordingProducer(super().producer(), self._ops, idempotent=self._idempotent)
        )

    def consumer(self, *topics: str, group_id: str) -> Consumer:
        inner = super().consumer(*topics, group_id=group_id)
        return cast(Consumer, RecordingConsumer(inner, self._ops, topics, group_id))

    def topics(self) -> TopicEnsurer:
        return RecordingTopics(super().topics(), self._ops, self._ensured)


class AssignedConsumer:
    """What :func:`broker.transport.directory.make_directory_reader` builds (a consumer outside
    any group: assign, seek, fetch), over ``broker``'s logs, recording per topic it assigns."""

    def __init__(self, broker: MemoryBroker, ops: Ops) -> None:
        self._broker = broker
        self._ops = ops
        self._position: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def topics(self) -> set[str]:
        return set(self._broker.logs)  # Metadata: Kafka lists only what the principal may see

    def partitions_for_topic(self, name: str) -> set[int]:
        self._ops.add(topic(name, Operation.DESCRIBE))
        return {0} if name in self._broker.logs else set()

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        self._position = dict.fromkeys(partitions, 0)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._ops.add(topic(tp.topic, Operation.DESCRIBE))  # ListOffsets
            self._position[tp] = 0

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp in partitions or tuple(self._position):
            self._ops.add(topic(tp.topic, Operation.READ))  # Fetch
            records = self._broker.log(tp.topic)[self._position[tp] :]
            if records:
                batch[tp] = list(records)
                self._position[tp] += len(records)
        return batch

    def highwater(self, tp: TopicPartition) -> int:
        return len(self._broker.log(tp.topic))

    def last_poll_timestamp(self, _tp: TopicPartition) -> int:
        return int(time.time() * 1000)

    async def position(self, tp: TopicPartition) -> int:
        return self._position[tp]
