"""Kafka wiring: topic names, record headers, producer and consumer construction."""

from broker.transport.kafka import (
    KafkaSettings,
    connect_error,
    list_topics,
    make_consumer,
    make_producer,
    track_topics,
)
from broker.transport.topics import DIRECTORY_TOPIC, inbox, quarantine, receipts

__all__ = [
    "DIRECTORY_TOPIC",
    "KafkaSettings",
    "connect_error",
    "inbox",
    "list_topics",
    "make_consumer",
    "make_producer",
    "quarantine",
    "receipts",
    "track_topics",
]
