"""The Kafka clients that carry the signed directory (``nbx.directory``), built from
:class:`~broker.transport.kafka.KafkaSettings` like every other NBX client: TLS and SASL apply to
the directory exactly as to the inboxes (docs/security/directory.md).
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from broker.transport.kafka import KafkaSettings, PacedConsumer, make_producer, security_kwargs


def make_directory_reader(settings: KafkaSettings) -> AIOKafkaConsumer:
    """A consumer outside any group (partitions are assigned, nothing is committed), reading from
    the beginning, whose empty fetches are paced (:class:`~broker.transport.kafka.PacedConsumer`)
    so that a reader kept open for the node's lifetime does not spin on a broker that answers
    empty fetches at once."""
    return PacedConsumer(
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
