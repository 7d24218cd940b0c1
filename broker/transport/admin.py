"""Topic creation: NBX creates the topics it needs when they are missing.

Inboxes and receipt topics use ``message.timestamp.type=LogAppendTime``: the broker, not the
producer, stamps each record, and the consumer checks key revocation against that time (a sender
cannot back-date a message past its key's revocation). ``nbx.directory`` is compacted.
Partitions and replication come from the node's settings (1 and 1 on the development brokers;
set ``kafka.topic_replication`` to 3 on a production cluster).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from broker.logging import get_logger
from broker.transport.kafka import KafkaSettings, connect_error, make_admin
from broker.transport.topics import DIRECTORY_TOPIC

_TOPIC_EXISTS = 36


def topic_config(name: str) -> dict[str, str]:
    """Broker-side configuration for an NBX topic."""
    if name == DIRECTORY_TOPIC:
        return {"cleanup.policy": "compact"}
    if name.startswith(("nbx.inbox.", "nbx.receipts.")):
        return {"message.timestamp.type": "LogAppendTime"}
    return {}


def new_topic(name: str, settings: KafkaSettings) -> NewTopic:
    """How NBX creates topic ``name``: partitions, replication and :func:`topic_config`."""
    # one partition keeps the directory's records in one order
    partitions = 1 if name == DIRECTORY_TOPIC else settings.topic_partitions
    return NewTopic(name, partitions, settings.topic_replication, topic_configs=topic_config(name))


class TopicManager:
    """Creates missing topics once per process (remembering what exists)."""

    def __init__(self, settings: KafkaSettings) -> None:
        """Prepare; the admin client connects on first use."""
        self.settings = settings
        self._known: set[str] = set()
        self._admin: AIOKafkaAdminClient | None = None

    async def ensure(self, names: Iterable[str]) -> set[str]:
        """Create every topic of ``names`` that does not exist yet; return those created."""
        missing = sorted(set(names) - self._known)
        if not missing:
            return set()
        try:
            if self._admin is None:
                admin = make_admin(self.settings)
                await admin.start()
                self._admin = admin
            existing = set(await self._admin.list_topics())
            to_create = [n for n in missing if n not in existing]
            created: set[str] = set()
            if to_create:
                response = await self._admin.create_topics(
                    [new_topic(n, self.settings) for n in to_create]
                )
                for topic, code, *_ in response.topic_errors:
                    if code == 0:
                        created.add(topic)
                    elif code != _TOPIC_EXISTS:
                        get_logger().warning(
                            "transport.topic-create-failed", topic=topic, reason=str(code)
                        )
        except (KafkaError, OSError) as exc:
            raise connect_error(self.settings.bootstrap, exc) from None
        for topic in created:
            get_logger().info("transport.topic-created", topic=topic)
        self._known |= set(missing)
        return created

    async def close(self) -> None:
        """Close the admin client."""
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
