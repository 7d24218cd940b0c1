"""Helpers for the node tests: a provisioned network of bureaus on a real broker, or on an
in-memory one (:mod:`broker.testing`) for the tests of the node's logic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from broker.examples import notices_dir
from broker.examples import policies_dir as example_policies_dir
from broker.keys.rules import SupervisionLevel
from broker.node import ConsumerDaemon, Publisher
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.schemas import NoticeBase, parse_notice
from broker.testing import MemoryBroker

EXAMPLES = notices_dir()


def example(name: str, **changes: Any) -> NoticeBase:
    """An example notice with top-level fields changed (e.g. issuing_bureau, notice_id)."""
    import json

    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    data.update(changes)
    return parse_notice(data)


async def wait_for(check: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    """Poll ``check`` until it is true or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


#: the bootstrap of a network on an in-memory broker (never contacted)
NO_BROKER = "127.0.0.1:1"


def memory_net(folder: Path, bureaus: Sequence[str], **kw: Any) -> Net:
    """A :class:`Net` whose nodes all talk to one new in-memory broker (``net.kafka``)."""
    return Net(folder, bureaus, NO_BROKER, idempotence=False, kafka=MemoryBroker(), **kw)


class Net:
    """Provisioned bureaus with their configs; daemons run as asyncio tasks on demand."""

    def __init__(
        self,
        folder: Path,
        bureaus: Sequence[str],
        bootstrap: str,
        *,
        idempotence: bool,
        policies: Path | None = None,
        sink: str = "sqlite",
        kafka: MemoryBroker | None = None,
        roles: Mapping[str, Sequence[str]] | None = None,
        supervise: Mapping[str, SupervisionLevel] | None = None,
    ) -> None:
        """Provision ``bureaus`` in ``folder``; with ``kafka``, every node talks to that in-memory
        broker instead of ``bootstrap`` (which is then never contacted)."""
        self.kafka = kafka
        paths = provision(
            folder,
            bureaus,
            bootstrap=bootstrap,
            policies=policies or example_policies_dir(),
            enable_idempotence=idempotence,
            session_timeout_ms=6_000,
            sink=sink,
            roles=roles,
            supervise=supervise,
        )
        self.paths = paths
        self.configs = {cc: NodeConfig.load(p) for cc, p in paths.items()}
        self.daemons: dict[str, ConsumerDaemon] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def daemon(self, cc: str) -> ConsumerDaemon:
        if cc not in self.daemons:
            self.daemons[cc] = ConsumerDaemon.from_config(
                self.configs[cc], transport=self.kafka.transport() if self.kafka else None
            )
        return self.daemons[cc]

    async def start(self, *bureaus: str) -> None:
        for cc in bureaus:
            self.tasks[cc] = asyncio.create_task(self.daemon(cc).run())

    async def stop(self) -> None:
        for cc in list(self.tasks):
            self.daemons[cc].stop()
        results = await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        for d in self.daemons.values():
            d.sink.close()
        self.daemons.clear()
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def ensure_topics(self, *bureaus: str) -> None:
        """Create the inbox, receipts and quarantine topics of ``bureaus`` as a node does
        (inbox and receipts with LogAppendTime), for tests that write records before any node
        ran: a topic the broker auto-creates keeps the producer's timestamps, which daemons
        refuse (``timestamp-type``)."""
        if self.kafka is not None:  # in memory, every topic exists
            return
        from broker.transport import inbox, quarantine, receipts
        from broker.transport.admin import TopicManager

        manager = TopicManager(self.configs[bureaus[0]].kafka_settings())
        try:
            await manager.ensure(f(cc) for cc in bureaus for f in (inbox, receipts, quarantine))
        finally:
            await manager.close()

    def publisher(self, cc: str) -> Publisher:
        return Publisher.from_config(
            self.configs[cc], transport=self.kafka.transport() if self.kafka else None
        )

    async def publish(self, cc: str, notice: NoticeBase, to: Any = "all", **kw: Any) -> Any:
        async with self.publisher(cc) as pub:
            return await pub.publish(notice, to, **kw)

    async def with_publisher(self, cc: str, fn: Callable[[Publisher], Awaitable[Any]]) -> Any:
        async with self.publisher(cc) as pub:
            return await fn(pub)


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout_s: float = 30.0
) -> list[tuple[bytes, bytes, dict[str, bytes]]]:
    """Read ``topic`` from the beginning with a plain aiokafka consumer in a fresh group until
    ``expect`` records arrived (or ``timeout_s``); returns (key, value, headers) per record.

    A group subscription rather than assign/end_offsets: tansu answers ListOffsets with 0.
    """
    import uuid

    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6_000,
    )
    await consumer.start()
    out: list[tuple[bytes, bytes, dict[str, bytes]]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += [(r.key or b"", r.value or b"", dict(r.headers)) for r in records]
        # one more short poll: anything beyond ``expect`` is reported too
        for records in (await consumer.getmany(timeout_ms=300)).values():
            out += [(r.key or b"", r.value or b"", dict(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return out


#: committed offsets moved for this long; a batch of hostile records takes seconds
STALL_S = 300.0


async def wait_until_idle(
    daemon: ConsumerDaemon,
    task: asyncio.Task[Any],
    bootstrap: str,
    group: str,
    topics: tuple[str, ...],
) -> bool:
    """Wait until ``daemon`` has handled every record of ``topics``: its group's committed
    offsets reach the end of every partition (the daemon commits a record only once it was
    delivered or quarantined and its quarantine record and receipt were acknowledged, so its
    counts are final then). No wall-clock deadline: a slow machine only makes this slower.
    False when the daemon stopped, or when neither its counts nor its committed offsets moved
    for :data:`STALL_S` seconds."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    try:
        await reader.topics()  # metadata for partitions_for_topic
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(reader.partitions_for_topic(topic) or {0})
        ]
        ends = await reader.end_offsets(partitions)  # nothing more is written to them
        seen: tuple[Any, ...] = ()
        moved = time.monotonic()
        while not task.done():
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
            # a partition never committed reads as offset 0 (-1 or absent in the answer)
            committed = {
                tp: max(0, offsets[tp].offset) if tp in offsets else 0 for tp in partitions
            }
            if all(committed[tp] >= ends[tp] for tp in partitions):
                return True
            now = (daemon.stats.delivered, daemon.stats.quarantined, tuple(committed.values()))
            if now != seen:
                seen, moved = now, time.monotonic()
            elif time.monotonic() - moved > STALL_S:
                return False
            await asyncio.sleep(0.5)
        return False
    finally:
        await reader.stop()
        await admin.close()
