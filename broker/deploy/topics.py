"""Every topic a network needs, from its signed directory, with the partitions, replication and
configuration NBX itself would create it with.

The configuration comes from :func:`broker.transport.admin.new_topic` (the node's own topic
creation: LogAppendTime on inboxes and receipts, the compacted directory, bounded retention with
daily segments everywhere else), so what ``nbx deploy acls`` creates cannot drift from what a
node expects. On a production cluster the operator creates the topics (the generated script, or
the Strimzi KafkaTopic resources): the bureaus' principals get no ``Create`` right
(:mod:`broker.deploy.acls`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from broker.keys.directory import Directory
from broker.transport.admin import new_topic
from broker.transport.kafka import KafkaSettings
from broker.transport.topics import DIRECTORY_TOPIC, hold, inbox, quarantine, receipts

#: ``min.insync.replicas`` set on every topic replicated at least :data:`MIN_ISR_REPLICATION` times:
#: with ``acks=all`` a write then survives the loss of one broker
MIN_INSYNC_REPLICAS = 2
MIN_ISR_REPLICATION = 3
#: the replication a production cluster should use (``--replication``)
DEFAULT_REPLICATION = 3


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the operator creates it."""

    name: str
    partitions: int
    replicas: int
    configs: Mapping[str, str] = field(default_factory=dict)


def organisation(bureau: str) -> bool:
    """Whether ``bureau`` is a network body's id (``XA``..``XZ``): its daemon also reads its own
    holding topic (:func:`broker.transport.topics.hold`)."""
    return bureau.startswith("X")


def network_topics(directory: Directory) -> list[str]:
    """The names of every topic the bureaus of ``directory`` use: the directory, and per bureau
    its inbox, receipts and quarantine (and its holding topic for an organisation), sorted."""
    names = {DIRECTORY_TOPIC}
    for bureau in directory.bureau_ids():
        names |= {inbox(bureau), receipts(bureau), quarantine(bureau)}
        if organisation(bureau):
            names.add(hold(bureau))
    return sorted(names)


def topic_specs(
    directory: Directory,
    *,
    partitions: int = 1,
    replication: int = DEFAULT_REPLICATION,
    retention_ms: int = KafkaSettings.topic_retention_ms,
) -> list[TopicSpec]:
    """A :class:`TopicSpec` per topic of :func:`network_topics`, made by the node's own
    :func:`~broker.transport.admin.new_topic` for these settings (the directory keeps one
    partition), plus ``min.insync.replicas`` when replicated three times or more."""
    settings = KafkaSettings(
        bootstrap="-",
        topic_partitions=partitions,
        topic_replication=replication,
        topic_retention_ms=retention_ms,
    )
    specs = []
    for name in network_topics(directory):
        made = new_topic(name, settings)
        configs = dict(made.topic_configs)
        if replication >= MIN_ISR_REPLICATION:
            configs["min.insync.replicas"] = str(MIN_INSYNC_REPLICAS)
        specs.append(TopicSpec(name, made.num_partitions, made.replication_factor, configs))
    return specs
