"""Receipts on the real broker: one signed receipt message per sender per consumer batch, and the
sender's daemon refuses receipt messages that do not have exactly the shape it signs."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from broker import devbroker
from broker.envelope import Grant, open_package, seal
from broker.ids import uuid7
from broker.node.runtime import load_node
from broker.schemas import MAX_RECEIPTS_PER_MESSAGE
from broker.transport import make_consumer, make_producer
from tests.node.helpers import Net, example, read_topic, wait_for

pytestmark = pytest.mark.e2e


Batch = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


async def _poll(net: Net, cc: str, count: int) -> Batch:
    """``count`` records of ``cc``'s inbox, read as its daemon would, merged by partition."""
    consumer = make_consumer(
        net.configs[cc].kafka_settings(), f"nbx.inbox.{cc}", group_id=f"test-{cc}-{uuid7()}"
    )
    await consumer.start()
    merged: Batch = {}
    try:
        for _ in range(200):
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                merged.setdefault(tp, []).extend(records)
            if sum(len(r) for r in merged.values()) >= count:
                break
    finally:
        await consumer.stop()
    return merged


async def test_a_batch_is_answered_with_one_signed_receipt_message_per_sender(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Eight notices from IT and one garbage record handled by FR's daemon in one batch produce
    one quarantine record and one record on nbx.receipts.IT carrying eight answers under one
    signature; IT's daemon records all eight as delivered."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR"), bootstrap, idempotence=idempotence_supported)
    notices = [example("red", notice_id=f"IT-2025-{i:04d}") for i in range(1, 9)]
    async with net.publisher("IT") as pub:
        for n in notices:
            await pub.publish(n, ["FR"])
    fr = net.daemon("FR")
    producer = make_producer(fr.settings)
    await producer.start()
    try:
        await producer.send_and_wait("nbx.inbox.FR", b"not a frame", key=b"x")
        batch = await _poll(net, "FR", len(notices) + 1)
        # the quarantine topic exists before the producer starts (as in a restarted daemon): the
        # quarantine record and the receipt to a new topic must both go out, none may stall
        manager = fr.transport.topics()
        try:
            await manager.ensure(["nbx.quarantine.FR"])
        finally:
            await manager.close()
        await producer.stop()
        producer = make_producer(fr.settings)
        await producer.start()
        offsets = await asyncio.wait_for(fr.process(producer, batch), timeout=20)
    finally:
        await producer.stop()
        await fr.close()
    assert sum(offsets.values()) == len(notices) + 1  # one partition: the next offset
    assert fr.stats.delivered == len(notices)
    assert fr.stats.receipts_sent == len(notices)
    assert fr.stats.reasons == {"frame": 1}
    quarantined = await read_topic(bootstrap, "nbx.quarantine.FR", expect=1, timeout_s=10)
    assert [value for _, value, _ in quarantined] == [b"not a frame"]

    records = await read_topic(bootstrap, "nbx.receipts.IT", expect=1, timeout_s=10)
    assert len(records) == 1
    it = load_node(net.configs["IT"])
    key, value, _ = records[0]
    package = open_package(
        value,
        topic="nbx.receipts.IT",
        recipient="IT",
        decryption_keys=it.decryption_keys,
        directory=it.directory,
    )
    assert package.kind == "receipt"
    assert package.sender == "FR"
    from broker.transport.record_keys import record_key

    # an opaque key of the receipt message's own id: it names none of the notices answered
    assert key == record_key(fr.keys, "IT", package.msg_id)
    answers = package.header["receipts"]
    assert sorted(a["notice_id"] for a in answers) == [n.notice_id for n in notices]
    assert {a["status"] for a in answers} == {"delivered"}

    await net.start("IT")
    try:
        assert await wait_for(lambda: net.daemon("IT").stats.receipts_received == len(notices))
        store = net.daemon("IT").sink
        for n in notices:
            (row,) = store.status(n.notice_id)
            assert [x["status"] for m in row["messages"] for x in m["receipts"]] == ["delivered"]
    finally:
        await net.stop()
    fr.sink.close()


async def test_receipt_messages_of_the_wrong_shape_are_quarantined_and_none_of_their_answers_kept(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR signs receipt messages to IT: one also answering for DE ('not-addressed'), one with an
    extra header field, one with no answer and one with one answer too many ('schema'); only the
    well-formed one is recorded."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR", "DE"), bootstrap, idempotence=idempotence_supported)
    fr = load_node(net.configs["FR"])

    def answer(recipient: str = "FR") -> dict[str, Any]:
        return {
            "msg_id": uuid7(),
            "notice_id": "IT-2025-0001",
            "recipient": recipient,
            "status": "delivered",
            "reason": None,
            "at": datetime.now(UTC).isoformat(),
        }

    def frame(header: dict[str, Any]) -> bytes:
        sealed = seal(
            signer=fr.keys,
            kind="receipt",
            notice_id="receipts",
            notice_type="receipt",
            header=header,
            units={},
            grants={"IT": Grant(frozenset(), (), "receipt")},
            handling="H0",
        )
        kid, key = fr.directory.encryption_key("IT")
        return sealed.package_for(
            "IT", topic="nbx.receipts.IT", recipient_kid=kid, recipient_key=key
        )

    good = answer()
    bad: list[dict[str, Any]] = [
        {"receipts": [answer(), answer("DE")]},
        {"receipts": [answer()], "note": "extra"},
        {"receipts": []},
        {"receipts": [answer() for _ in range(MAX_RECEIPTS_PER_MESSAGE + 1)]},
    ]
    await net.ensure_topics("IT")
    producer = make_producer(net.configs["FR"].kafka_settings())
    await producer.start()
    try:
        for header in [*bad, {"receipts": [good]}]:
            value = await asyncio.to_thread(frame, header)
            await producer.send_and_wait("nbx.receipts.IT", value, key=b"k")
    finally:
        await producer.stop()

    await net.start("IT")
    it = net.daemon("IT")
    try:
        assert await wait_for(lambda: it.stats.quarantined == 4 and it.stats.receipts_received > 0)
        assert it.stats.reasons == {"not-addressed": 1, "schema": 3}
        assert it.stats.receipts_received == 1
        path = it.sink.path  # type: ignore[attr-defined]
    finally:
        await net.stop()
    with sqlite3.connect(path) as db:
        kept = db.execute("SELECT msg_id, recipient FROM receipts").fetchall()
    assert kept == [(good["msg_id"], "FR")]
