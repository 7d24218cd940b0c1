"""Kafka wiring, the one door to the broker: every aiokafka client NBX builds (producer,
consumer, admin, the directory topic's reader and producer) is made here from
:class:`KafkaSettings`; topic names and how each topic is created; opaque record keys; and the
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
from broker.transport.topics import DIRECTORY_TOPIC, hold, inbox, quarantine, receipts

__all__ = [
    "DIRECTORY_TOPIC",
    "LOG_APPEND_TIME",
    "KafkaSettings",
    "KafkaTransport",
    "Transport",
    "connect_error",
    "hold",
    "inbox",
    "list_topics",
    "make_consumer",
    "make_producer",
    "quarantine",
    "receipts",
    "track_topics",
]
