"""The directory's Kafka clients are built from KafkaSettings, TLS and SASL included."""

from __future__ import annotations

import ssl
from pathlib import Path

import broker.keys
from broker.cli.keys_cmds import kafka_settings
from broker.transport import KafkaSettings
from broker.transport.directory import make_directory_producer, make_directory_reader

SASL = KafkaSettings(
    bootstrap="kafka.example:9093",
    client_id="nbx-FR",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="nbx-fr",
    sasl_password="secret",
)


async def test_directory_reader_and_producer_use_the_security_settings() -> None:
    """Both clients carry the protocol, a TLS context and the SASL credentials of the settings
    (built, not started: the client's own configuration is what it would connect with)."""
    for client in (make_directory_reader(SASL), make_directory_producer(SASL)):
        conf = getattr(client, "_client", None) or client.client
        assert conf._security_protocol == "SASL_SSL"
        assert isinstance(conf._ssl_context, ssl.SSLContext)
        assert conf._sasl_mechanism == "SCRAM-SHA-512"
        assert conf._sasl_plain_username == "nbx-fr"
        assert conf._sasl_plain_password == "secret"
        assert conf._bootstrap_servers == "kafka.example:9093"
        assert conf._client_id == "nbx-FR"
        await client.stop()


def test_no_kafka_client_is_built_outside_transport() -> None:
    """broker/keys builds no aiokafka client of its own (they would skip TLS and SASL)."""
    for path in Path(broker.keys.__file__).parent.glob("*.py"):
        text = path.read_text()
        for name in ("AIOKafkaConsumer(", "AIOKafkaProducer(", "AIOKafkaAdminClient("):
            assert name not in text, f"{path.name} builds {name}) itself"
        assert "bootstrap_servers" not in text, f"{path.name} builds a client itself"


def test_directory_cli_connects_with_a_node_configs_security_settings(tmp_path: Path) -> None:
    """``nbx directory publish|fetch --config node.toml`` take the node's [kafka] settings;
    ``--bootstrap`` alone is plaintext, as before."""
    (tmp_path / "ca.pem").write_text("unused")
    config = tmp_path / "node.toml"
    config.write_text(
        'bureau = "FR"\n[keys]\ndir = "keys"\n[trust]\nanchor = "a.pub"\ndirectory = "topic"\n'
        '[kafka]\nbootstrap = "kafka.example:9093"\nsecurity_protocol = "SSL"\n'
        'ssl_cafile = "ca.pem"\n[policy]\ndir = "p"\n[sink]\nurl = "sqlite:///FR.sqlite"\n'
    )
    settings = kafka_settings(None, config)
    assert settings.security_protocol == "SSL"
    assert settings.ssl_cafile == str(tmp_path / "ca.pem")
    assert kafka_settings("other:9093", config).bootstrap == "other:9093"
    plain = kafka_settings("127.0.0.1:9092")
    assert plain.security_protocol == "PLAINTEXT"
    assert plain.bootstrap == "127.0.0.1:9092"
