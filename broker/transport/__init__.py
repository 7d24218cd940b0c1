"""Kafka wiring: topic names, record headers, producer and consumer construction, and the
transport seam (:class:`Transport`, :class:`KafkaTransport`)."""

from broker.transport.factory import KafkaTransport, Transport
from broker.transport.kafka import (
    LOG_APPEND_TIME,
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
    "LOG_APPEND_TIME",
    "KafkaSettings",
    "KafkaTransport",
    "Transport",
    "connect_error",
    "inbox",
    "list_topics",
    "make_consumer",
    "make_producer",
    "quarantine",
    "receipts",
    "track_topics",
]
