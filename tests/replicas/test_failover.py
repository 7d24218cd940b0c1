"""Failover between two daemon replicas of one bureau (issue 23): FR runs ``nbx consume
--replica 1`` and ``--replica 2`` on a two-partition inbox, sharing one PostgreSQL database; IT
and DE send a stream of 2,000 notices; replica 1 is SIGKILLed mid-stream. Replica 2 takes over
its partitions (after the group's session timeout: static membership), re-reads what replica 1
had not committed, and the store recognises each redelivery. At the end the store holds every
notice exactly once, each sender has one receipt per notice, and nothing was quarantined.

The broker is tansu (tests/replicas/conftest.py: noida-db never expires a dead member)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from broker import devbroker
from tests.node.helpers import Net
from tests.replicas.support import (
    SLOW,
    Replicas,
    Store,
    partitioned,
    publish_stream,
    receipts_from,
    stream,
    until,
    use_store,
)

#: notices per sender (two senders: 2,000 in all; the slow profile sends 5,000 each)
PER_SENDER = 5_000 if SLOW else 1_000
#: partitions of FR's inbox and receipts topics (each replica reads one of each)
PARTITIONS = 2
#: the group's session timeout for FR's replicas (ms)
SESSION_TIMEOUT_MS = 15_000


async def quarantined(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (its end offsets; 0 if it has none)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        await reader.topics()
        parts = reader.partitions_for_topic(topic) or set()
        ends = await reader.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await reader.stop()


async def failover_run(bootstrap: str, idempotence: bool, tmp_path: Path, url: str | None) -> None:
    """The failover scenario on the broker at ``bootstrap``; FR's store is ``url`` (None: its
    SQLite file)."""
    net = Net(tmp_path, ("IT", "DE", "FR"), bootstrap, idempotence=idempotence)
    if url is not None:
        use_store(net.paths["FR"], url)
    await net.ensure_topics("IT", "DE", "FR")
    replicas = Replicas(net.paths["FR"])
    store = Store(net.paths["FR"])
    total = 2 * PER_SENDER
    one, two = replicas.start("1"), replicas.start("2")
    try:
        await until(lambda: one.assigned() > 0 and two.assigned() > 0, "both replicas assigned")
        await net.start("IT", "DE")
        publishing = asyncio.gather(
            publish_stream(net, "IT", stream("IT", PER_SENDER, "F")),
            publish_stream(net, "DE", stream("DE", PER_SENDER, "F")),
        )
        await until(lambda: store.stored() >= total // 4, "a quarter of the stream stored")
        one.proc.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(one.proc.wait) == -signal.SIGKILL
        sent_it, sent_de = await publishing
        await until(lambda: store.stored() >= total, "every notice stored")
        await until(
            lambda: (
                len(receipts_from(net.paths["IT"], "FR")) >= len(sent_it)
                and len(receipts_from(net.paths["DE"], "FR")) >= len(sent_de)
            ),
            "every receipt recorded by the senders",
        )
        took_over = two.assigned()
        assert two.stop() == 0, two.err.read_text()[-2000:]
    finally:
        replicas.stop_all()
        await net.stop()
    sent = sorted(sent_it + sent_de)
    assert len(sent) == total, "the senders could not send every notice"
    assert one.events("package.delivered"), "replica 1 was killed before it delivered anything"
    assert took_over == 2 * PARTITIONS, "replica 2 did not take over replica 1's partitions"
    assert store.notice_ids() == sent, "a notice was lost or stored twice"
    delivered = store.delivered()
    assert sorted(delivered) == sent
    assert [n for n, c in delivered.items() if c != 1] == [], "a notice was delivered twice"
    for sender, ids in (("IT", sent_it), ("DE", sent_de)):
        receipts = receipts_from(net.paths[sender], "FR")
        assert sorted(receipts) == sorted(ids), f"{sender} lacks a receipt"
        assert set(receipts.values()) == {1}
    assert await quarantined(bootstrap, "nbx.quarantine.FR") == 0


@pytest.mark.broker
async def test_sigkill_one_of_two_replicas_mid_stream_on_postgresql(
    failover_broker: devbroker.DevBroker,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failover scenario with FR's store in a PostgreSQL database both replicas share (the
    production set-up: the store's advisory locks serialise them per message)."""
    partitioned(monkeypatch, PARTITIONS)
    # A session long enough that a replica busy with a batch on this loaded machine is not taken
    # for dead (each false expiry is a rebalance); the killed one's partitions move after it.
    monkeypatch.setenv("NBX_KAFKA__SESSION_TIMEOUT_MS", str(SESSION_TIMEOUT_MS))
    await failover_run(failover_broker.bootstrap, False, tmp_path, pg_url)
