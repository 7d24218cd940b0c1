"""Producing to a topic known from start-up metadata, then to a new one, on the real broker."""

from __future__ import annotations

import asyncio

import pytest

from broker.transport import KafkaSettings, make_producer, track_topics
from broker.transport.admin import TopicManager

pytestmark = pytest.mark.e2e


async def test_records_for_an_older_topic_are_not_stalled_by_a_new_topic(
    kafka_bootstrap: str, idempotence_supported: bool
) -> None:
    """The daemon's pattern: a quarantine record (topic known since start-up), then a receipt to a
    sender whose topic is new. With both topics tracked, both are acknowledged at once instead of
    the first stalling until the 30 s request timeout (aiokafka forgets untracked topics)."""
    settings = KafkaSettings(
        bootstrap=kafka_bootstrap, client_id="test-topics", enable_idempotence=idempotence_supported
    )
    topics = TopicManager(settings)
    try:
        await topics.ensure(["test.track.old"])
        producer = make_producer(settings)
        await producer.start()
        try:
            await topics.ensure(["test.track.new"])
            await track_topics(producer, ["test.track.old", "test.track.new"])
            first = await producer.send("test.track.old", b"quarantined", key=b"a")
            second = await producer.send("test.track.new", b"receipt", key=b"b")
            acked = await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        finally:
            await producer.stop()
    finally:
        await topics.close()
    assert [m.topic for m in acked] == ["test.track.old", "test.track.new"]
    assert all(m.offset >= 0 for m in acked)
