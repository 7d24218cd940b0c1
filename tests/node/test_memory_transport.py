"""broker.testing: the in-memory transport behaves as the node expects of Kafka (offsets, the
broker's timestamps, group commits, pausing), and a Publisher and a ConsumerDaemon given it
exchange a notice end to end without a broker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka import TopicPartition

from broker.examples import policies_dir
from broker.keys import BureauKeys
from broker.keys.bureau import StaticDirectory
from broker.node import ConsumerDaemon, Publisher
from broker.policy import load_policies
from broker.sinks.sqlite import SqliteSink
from broker.testing import LOG_APPEND_TIME, MemoryBroker, MemoryTransport
from broker.transport import KafkaSettings, KafkaTransport, Transport
from broker.transport.admin import TopicManager
from tests.audit_access import READ
from tests.node.helpers import example

NO_BROKER = KafkaSettings(bootstrap="127.0.0.1:1")
TP = TopicPartition("nbx.inbox.FR", 0)


async def test_records_get_offsets_and_the_brokers_time() -> None:
    """Appended records get consecutive offsets and a LogAppendTime stamp of now."""
    kafka = MemoryBroker()
    producer = kafka.transport().producer()
    before = int(time.time() * 1000)
    first = await producer.send_and_wait("nbx.inbox.FR", b"a", key=b"k")
    second = await (await producer.send("nbx.inbox.FR", b"b"))
    assert (first.offset, second.offset) == (0, 1)
    records = kafka.log("nbx.inbox.FR")
    assert [(r.offset, r.value, r.key) for r in records] == [(0, b"a", b"k"), (1, b"b", None)]
    assert all(r.timestamp_type == LOG_APPEND_TIME for r in records)
    assert all(before <= r.timestamp <= int(time.time() * 1000) for r in records)


async def test_a_group_resumes_at_its_committed_offset() -> None:
    """A consumer reads from the beginning, commits; a later member of the group starts after the
    commit, another group from the beginning; max_records and pause are honoured."""
    kafka = MemoryBroker()
    for value in (b"a", b"b", b"c"):
        kafka.append("nbx.inbox.FR", value)
    first = kafka.transport().consumer("nbx.inbox.FR", group_id="nbx.FR")
    await first.start()
    got = await first.getmany(timeout_ms=0, max_records=2)
    assert [r.value for r in got[TP]] == [b"a", b"b"]
    await first.commit({TP: 2})
    assert await first.committed(TP) == 2
    again = kafka.transport().consumer("nbx.inbox.FR", group_id="nbx.FR")
    await again.start()
    again.pause(TP)
    assert await again.getmany(timeout_ms=10) == {}
    again.resume(*again.paused())
    assert [r.value for r in (await again.getmany(timeout_ms=0))[TP]] == [b"c"]
    other = kafka.transport().consumer("nbx.inbox.FR", group_id="nbx.DE")
    await other.start()
    assert len((await other.getmany(timeout_ms=0))[TP]) == 3


async def test_a_waiting_poll_wakes_when_a_record_arrives() -> None:
    """getmany waits for a record up to its timeout and returns as soon as one is appended."""
    kafka = MemoryBroker()
    consumer = kafka.transport().consumer("nbx.inbox.FR", group_id="g")
    await consumer.start()
    poll = asyncio.create_task(consumer.getmany(timeout_ms=30_000))
    await asyncio.sleep(0.01)
    kafka.append("nbx.inbox.FR", b"x")
    got = await asyncio.wait_for(poll, 5)
    assert [r.value for r in got[TP]] == [b"x"]


def test_both_transports_fit_the_protocol() -> None:
    """The default and the in-memory transport are both a Transport."""
    transports: list[Transport] = [KafkaTransport(NO_BROKER), MemoryTransport()]
    assert [t.bootstrap for t in transports] == ["127.0.0.1:1", "memory"]
    assert isinstance(transports[0].topics(), TopicManager)


async def test_a_publisher_and_a_daemon_exchange_a_notice_in_memory(tmp_path: Path) -> None:
    """What the publisher produces the daemon consumes, stores and answers with a receipt (on
    IT's receipts topic, under an opaque key), and its offset is committed."""
    it, fr = BureauKeys.generate("IT"), BureauKeys.generate("FR")
    directory = StaticDirectory([it.public(), fr.public()])
    kafka = MemoryBroker()
    red = example("red")
    policies = load_policies(policies_dir())
    pub = Publisher(it, directory, NO_BROKER, policies=policies, transport=kafka.transport())
    async with pub:
        result = await pub.publish(red, ["FR"])
    assert result.sent == ["FR"]
    sink = SqliteSink(tmp_path / "fr.sqlite")
    daemon = ConsumerDaemon(fr, directory, NO_BROKER, sink, transport=kafka.transport())
    try:
        stats = await daemon.run(until_idle_s=0.3)
        assert (stats.delivered, stats.quarantined, stats.receipts_sent) == (1, 0, 1)
        stored = sink.notice(red.notice_id, READ)
        assert stored is not None
        assert stored["version"] == 1
    finally:
        sink.close()
    assert kafka.committed[("nbx.FR", TP)] == 1
    (receipt,) = kafka.log("nbx.receipts.IT")
    assert receipt.key is not None
    assert red.notice_id.encode() not in receipt.key
