"""The transport seam: where a node gets its producer, its consumer and its topic manager.

:class:`~broker.node.Publisher` and :class:`~broker.node.ConsumerDaemon` take a
``transport=`` (as httpx's clients do): :class:`KafkaTransport`, the default, builds the aiokafka
clients from :class:`~broker.transport.kafka.KafkaSettings`; :mod:`broker.testing` has an
in-memory one, so that the node's logic runs end to end without a broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from broker.transport.admin import TopicManager
from broker.transport.kafka import KafkaSettings, make_consumer, make_producer


class Producer(Protocol):
    """What a node asks of a producer (aiokafka's ``AIOKafkaProducer`` is one).

    ``client.add_topic(topic)`` is what :func:`~broker.transport.kafka.track_topics` calls.
    """

    client: Any

    async def start(self) -> None:
        """Connect."""

    async def stop(self) -> None:
        """Flush and disconnect."""

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = ...,
        headers: Sequence[tuple[str, bytes]] | None = ...,
    ) -> Awaitable[Any]:
        """Queue one record; the awaitable resolves to its metadata (``offset``) once acked."""

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = ...,
        headers: Sequence[tuple[str, bytes]] | None = ...,
    ) -> Any:
        """Send one record and wait for the broker's acknowledgement (its metadata)."""


class Consumer(Protocol):
    """What the daemon asks of a group consumer (aiokafka's ``AIOKafkaConsumer`` is one)."""

    async def start(self) -> None:
        """Join the group."""

    async def stop(self) -> None:
        """Leave the group."""

    async def getmany(self, *, timeout_ms: int = ..., max_records: int | None = ...) -> Any:
        """Records by topic partition (empty after ``timeout_ms`` without any)."""

    async def commit(self, offsets: Mapping[Any, int] | None = ...) -> None:
        """Commit the next offset to read per partition."""

    async def committed(self, partition: Any) -> int | None:
        """The group's committed offset of ``partition``."""

    def seek(self, partition: Any, offset: int) -> None:
        """Read ``partition`` from ``offset`` next."""

    async def seek_to_beginning(self, *partitions: Any) -> Any:
        """Read ``partitions`` from their first record next."""

    def assignment(self) -> Any:
        """The partitions assigned to this member."""

    def pause(self, *partitions: Any) -> None:
        """Fetch nothing from ``partitions`` until resumed."""

    def resume(self, *partitions: Any) -> None:
        """Fetch from ``partitions`` again."""

    def paused(self) -> Any:
        """The paused partitions."""


class TopicEnsurer(Protocol):
    """Creates missing topics (:class:`~broker.transport.admin.TopicManager` is one)."""

    async def ensure(self, names: Iterable[str]) -> set[str]:
        """Create those of ``names`` that do not exist; return the ones created."""

    async def close(self) -> None:
        """Release the admin connection."""


class Transport(Protocol):
    """A factory of the clients one node uses; see the module docstring."""

    @property
    def bootstrap(self) -> str:
        """Where the clients connect (for log lines and errors)."""

    def producer(self) -> Producer:
        """A new producer (not started)."""

    def consumer(self, *topics: str, group_id: str) -> Consumer:
        """A new consumer of ``topics`` in ``group_id`` with manual commits (not started)."""

    def topics(self) -> TopicEnsurer:
        """A topic manager (connects on first use)."""


class KafkaTransport:
    """The default transport: aiokafka clients built from ``settings`` (see
    :func:`~broker.transport.kafka.make_producer`, :func:`~broker.transport.kafka.make_consumer`,
    :class:`~broker.transport.admin.TopicManager`)."""

    def __init__(self, settings: KafkaSettings) -> None:
        """Build clients for ``settings``."""
        self.settings = settings

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers of the settings."""
        return self.settings.bootstrap

    def producer(self) -> Producer:
        """An ``acks=all`` producer."""
        producer: Producer = make_producer(self.settings)
        return producer

    def consumer(self, *topics: str, group_id: str) -> Consumer:
        """A group consumer with manual commits, from the earliest offset."""
        consumer: Consumer = make_consumer(self.settings, *topics, group_id=group_id)
        return consumer

    def topics(self) -> TopicEnsurer:
        """A :class:`~broker.transport.admin.TopicManager` for the settings."""
        return TopicManager(self.settings)


def settings_of(transport: Transport) -> KafkaSettings | None:
    """The Kafka settings of ``transport`` when it is a :class:`KafkaTransport` (for
    :func:`~broker.transport.kafka.connect_error`'s TLS diagnosis), else None."""
    return transport.settings if isinstance(transport, KafkaTransport) else None
