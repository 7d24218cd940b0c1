"""Walking skeleton on the real broker: signed, encrypted, delivered, no plaintext on the wire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from broker.demo import SAMPLE_UNITS, run_skeleton

pytestmark = pytest.mark.e2e


async def _raw_records(
    bootstrap: str, topic: str
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            for record in batch.get(tp, []):
                out.append((record.key or b"", record.value or b"", list(record.headers)))
        return out
    finally:
        await consumer.stop()


async def test_skeleton_delivers_and_the_wire_holds_no_plaintext(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """XA publishes one notice to nbx.inbox.XB; XB stores the granted view; the raw record on the
    broker, read by a plain aiokafka consumer, contains none of the notice's values."""
    lines: list[str] = []
    out = await run_skeleton(
        kafka_bootstrap,
        tmp_path,
        enable_idempotence=idempotence_supported,
        echo=lines.append,
        sender="XA",
        recipient="XB",
    )
    (stored,) = out["stored"]
    assert stored["sender"] == "XA"
    assert stored["view"]["person"]["family_name"] == "ROSSI"
    assert "biometrics" not in stored["view"]["person"]
    assert stored["withheld"] == [["person.biometrics.fingerprints", "default-deny-biometric"]]
    assert out["stats"].quarantined == 0

    records = await _raw_records(kafka_bootstrap, "nbx.inbox.XB")
    assert len(records) == 1
    key, value, headers = records[0]
    wire = key + value + b"".join(k.encode() + v for k, v in headers)
    secrets = ["ROSSI", "MARIO", "1971-03-02", "afis:IT/1234", "family_name", "red", "person"]
    for text in secrets:
        assert text.encode() not in wire, text
        assert json.dumps(text).encode()[1:-1] not in wire
    assert value.startswith(b"NBX\x00")
    assert {k for k, _ in headers} == {"nbx-format", "nbx-kid"}
    assert set(SAMPLE_UNITS) >= {"person.family_name"}
