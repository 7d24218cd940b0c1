"""The Kafka clients that carry the signed directory (``nbx.directory``), built from
:class:`~broker.transport.kafka.KafkaSettings` like every other NBX client: TLS and SASL apply to
the directory exactly as to the inboxes (docs/security/directory.md).
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from broker.transport.kafka import KafkaSettings, consumer_class, make_producer, security_kwargs


def make_directory_reader(settings: KafkaSettings) -> AIOKafkaConsumer:
    """A consumer outside any group (partitions are assigned, nothing is committed), reading from
    the beginning. It stays open for the node's lifetime, so with ``pace_empty_fetches`` its empty
    fetches are paced as the daemon's are (:func:`~broker.transport.kafka.consumer_class`)."""
    return consumer_class(settings)(
        **security_kwargs(settings),
        bootstrap_servers=settings.bootstrap,
        client_id=settings.client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=settings.request_timeout_ms,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
    )


def make_directory_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    """The producer ``nbx directory publish`` uses (``acks=all``, see
    :func:`~broker.transport.kafka.make_producer`)."""
    return make_producer(settings)
