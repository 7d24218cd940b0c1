"""Bounded retention reaches the broker: the topics a node creates carry ``retention.ms`` and
``segment.ms`` (docs/safeguards.md, "Erasure on the broker"), on the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.transport import DIRECTORY_TOPIC, KafkaSettings
from broker.transport.admin import TopicManager, record_lifetime_ms
from broker.transport.topics import hold, inbox, quarantine, receipts

pytestmark = pytest.mark.e2e


async def test_every_topic_but_the_directory_is_created_with_a_bounded_retention(
    kafka_bootstrap: str,
) -> None:
    """Inbox, receipts, quarantine and holding topics are created with the configured
    ``retention.ms`` and a segment age of at most a day; the directory stays compacted."""
    three_days = 3 * 86_400_000
    settings = KafkaSettings(
        bootstrap=kafka_bootstrap, client_id="test-retention", topic_retention_ms=three_days
    )
    bounded = [inbox("TV"), receipts("TV"), quarantine("TV"), hold("XQ")]
    topics = TopicManager(settings)
    try:
        created = await topics.ensure([*bounded, DIRECTORY_TOPIC])
        assert set(bounded) <= created
        described = await topics.describe([*bounded, DIRECTORY_TOPIC])
    finally:
        await topics.close()
    for name in bounded:
        assert described[name]["retention.ms"] == str(three_days), name
        assert described[name]["segment.ms"] == str(86_400_000), name
    for name in (inbox("TV"), receipts("TV")):
        assert described[name]["message.timestamp.type"] == "LogAppendTime"
    # the directory is compacted and not bounded (tansu lists only the settings given)
    directory = described[DIRECTORY_TOPIC]
    assert directory.get("cleanup.policy", "compact") == "compact"
    assert directory.get("retention.ms") != str(three_days)
    assert record_lifetime_ms(three_days) == 4 * 86_400_000


def test_the_node_setting_sets_the_retention_of_the_topics_it_creates(tmp_path: Path) -> None:
    """``[shredding] topic_retention_days`` becomes ``KafkaSettings.topic_retention_ms``
    (default 7 days)."""
    path = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    assert NodeConfig.load(path).kafka_settings().topic_retention_ms == 7 * 86_400_000
    path.write_text(path.read_text() + "\n[shredding]\ntopic_retention_days = 1.5\n")
    assert NodeConfig.load(path).kafka_settings().topic_retention_ms == 36 * 3_600_000
