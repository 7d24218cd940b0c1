"""One transport door: every Kafka client of ``broker/`` is built in ``broker/transport/`` from
``KafkaSettings``, the directory topic is named once, and aiokafka's internals are patched
(``PacedConsumer``) only when the settings ask for it."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from broker import devbroker
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.transport import DIRECTORY_TOPIC, KafkaSettings, make_consumer
from broker.transport.admin import new_topic
from broker.transport.directory import make_directory_reader
from broker.transport.kafka import PacedConsumer, consumer_class

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "NewTopic"}


def _calls_and_literals(path: Path) -> tuple[set[str], set[str]]:
    """The names called and the string constants (docstrings aside) of one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    called = {
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
    }
    literals = {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    }
    return called, literals


def test_every_kafka_client_and_the_directory_topic_name_live_in_transport() -> None:
    """No module outside broker/transport/ builds an aiokafka client or a NewTopic itself, and
    only broker/transport/topics.py spells the directory topic's name."""
    builders: list[str] = []
    spellers: list[str] = []
    for path in sorted((ROOT / "broker").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        called, literals = _calls_and_literals(path)
        if not rel.startswith("broker/transport/") and called & CLIENTS:
            builders.append(f"{rel}: {sorted(called & CLIENTS)}")
        if DIRECTORY_TOPIC in literals and rel != "broker/transport/topics.py":
            spellers.append(rel)
    assert not builders, builders
    assert not spellers, spellers


def test_one_helper_decides_how_every_topic_is_created() -> None:
    """Partitions, replication and configuration of each kind of topic come from new_topic."""
    settings = KafkaSettings(bootstrap="k:9092", topic_partitions=6, topic_replication=3)
    directory = new_topic(DIRECTORY_TOPIC, settings)
    inbox = new_topic("nbx.inbox.FR", settings)
    quarantine = new_topic("nbx.quarantine.FR", settings)
    assert (directory.num_partitions, directory.replication_factor) == (1, 3)
    assert directory.topic_configs == {"cleanup.policy": "compact"}
    assert (inbox.num_partitions, inbox.replication_factor) == (6, 3)
    week, day = str(7 * 86_400_000), str(86_400_000)
    bounded = {"cleanup.policy": "delete", "retention.ms": week, "segment.ms": day}
    assert inbox.topic_configs == {"message.timestamp.type": "LogAppendTime", **bounded}
    assert new_topic("nbx.receipts.FR", settings).topic_configs == inbox.topic_configs
    assert quarantine.topic_configs == bounded
    assert new_topic("nbx.hold.XR", settings).topic_configs == bounded
    hour = replace(settings, topic_retention_ms=3_600_000)
    assert new_topic("nbx.inbox.FR", hour).topic_configs == {
        "message.timestamp.type": "LogAppendTime",
        "cleanup.policy": "delete",
        "retention.ms": "3600000",
        "segment.ms": "3600000",  # a segment never stays open longer than the retention
    }
    assert new_topic(DIRECTORY_TOPIC, hour).topic_configs == {"cleanup.policy": "compact"}


async def test_the_fetch_pacing_patch_is_off_unless_the_settings_ask_for_it() -> None:
    """Default settings (Apache Kafka) give aiokafka's plain consumer, for the daemon and the
    directory reader alike; ``pace_empty_fetches`` gives the PacedConsumer."""
    plain = KafkaSettings(bootstrap="127.0.0.1:1")
    paced = KafkaSettings(bootstrap="127.0.0.1:1", pace_empty_fetches=True)
    assert plain.pace_empty_fetches is False
    assert consumer_class(plain) is AIOKafkaConsumer
    assert consumer_class(paced) is PacedConsumer
    for settings, kind in ((plain, AIOKafkaConsumer), (paced, PacedConsumer)):
        for client in (make_consumer(settings, "t", group_id="g"), make_directory_reader(settings)):
            assert type(client) is kind
            await client.stop()


def test_a_node_paces_only_when_its_configuration_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[kafka] pace_empty_fetches`` reaches the node's settings; provision writes it, off by
    default; the development brokers say which of them need it (noida-db, not tansu)."""
    monkeypatch.delenv("NBX_KAFKA__PACE_EMPTY_FETCHES", raising=False)
    off = provision(tmp_path / "off", ["FR"], bootstrap="127.0.0.1:9092")
    on = provision(tmp_path / "on", ["FR"], bootstrap="127.0.0.1:9092", pace_empty_fetches=True)
    assert NodeConfig.load(off["FR"]).kafka_settings().pace_empty_fetches is False
    assert NodeConfig.load(on["FR"]).kafka_settings().pace_empty_fetches is True
    monkeypatch.setenv("NBX_KAFKA__PACE_EMPTY_FETCHES", "true")
    assert NodeConfig.load(off["FR"]).kafka_settings().pace_empty_fetches is True
    assert devbroker.NEEDS_FETCH_PACING == {"noida": True, "tansu": False}
