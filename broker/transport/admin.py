"""Topic creation: NBX creates the topics it needs when they are missing.

Inboxes and receipt topics use ``message.timestamp.type=LogAppendTime``: the broker, not the
producer, stamps each record, and the consumer checks key revocation against that time (a sender
cannot back-date a message past its key's revocation). ``nbx.directory`` is compacted and kept.

Every other NBX topic (inbox, receipts, quarantine, holding) has a bounded retention
(``retention.ms``, ``KafkaSettings.topic_retention_ms``, default 7 days) and rolls a new log
segment at least daily (``segment.ms``): Kafka deletes whole closed segments only, so without a
bounded segment age a record could outlive ``retention.ms`` by the default 7-day segment age. A
record therefore leaves the broker's log at most :func:`record_lifetime_ms` after it was appended;
the node destroys an old encryption key only after that (:mod:`broker.keys.epochs`).
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


#: the longest a log segment of a bounded topic stays open (``segment.ms``): one day, or the
#: retention when that is shorter
MAX_SEGMENT_MS = 24 * 3600 * 1000
#: topics whose records are deleted after ``retention.ms`` (everything but the directory)
BOUNDED_PREFIXES = ("nbx.inbox.", "nbx.receipts.", "nbx.quarantine.", "nbx.hold.")


def segment_ms(retention_ms: int) -> int:
    """``segment.ms`` for a topic kept ``retention_ms``: at most a day, at most the retention."""
    return min(MAX_SEGMENT_MS, retention_ms)


def record_lifetime_ms(retention_ms: int) -> int:
    """The longest a record of a bounded topic stays on the log: ``retention.ms`` after the
    newest record of its segment, whose segment closes at most ``segment.ms`` after it opened
    (the broker's periodic retention check, 5 minutes by default, comes on top: see the grace
    in :mod:`broker.keys.epochs`)."""
    return retention_ms + segment_ms(retention_ms)


def topic_config(name: str, retention_ms: int = KafkaSettings.topic_retention_ms) -> dict[str, str]:
    """Broker-side configuration for an NBX topic (``retention_ms`` for the bounded ones)."""
    if name == DIRECTORY_TOPIC:
        return {"cleanup.policy": "compact"}
    config: dict[str, str] = {}
    if name.startswith(("nbx.inbox.", "nbx.receipts.")):
        config["message.timestamp.type"] = "LogAppendTime"
    if name.startswith(BOUNDED_PREFIXES):
        config["cleanup.policy"] = "delete"
        config["retention.ms"] = str(retention_ms)
        config["segment.ms"] = str(segment_ms(retention_ms))
    return config


def new_topic(name: str, settings: KafkaSettings) -> NewTopic:
    """How NBX creates topic ``name``: partitions, replication and :func:`topic_config`."""
    # one partition keeps the directory's records in one order
    partitions = 1 if name == DIRECTORY_TOPIC else settings.topic_partitions
    return NewTopic(
        name,
        partitions,
        settings.topic_replication,
        topic_configs=topic_config(name, settings.topic_retention_ms),
    )


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
            raise connect_error(self.settings.bootstrap, exc, self.settings) from None
        for topic in created:
            get_logger().info("transport.topic-created", topic=topic)
        self._known |= set(missing)
        return created

    async def describe(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        """The broker's configuration of each topic of ``names`` (name -> setting -> value), as
        ``kafka-configs --describe`` shows it: how to check what a cluster really keeps."""
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        try:
            if self._admin is None:
                admin = make_admin(self.settings)
                await admin.start()
                self._admin = admin
            responses = await self._admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
            )
        except (KafkaError, OSError) as exc:
            raise connect_error(self.settings.bootstrap, exc, self.settings) from None
        found: dict[str, dict[str, str]] = {}
        for response in responses:
            for _code, _message, _type, name, entries in response.resources:
                found[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
        return found

    async def close(self) -> None:
        """Close the admin client."""
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
