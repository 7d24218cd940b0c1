"""Batch signatures end to end, on the real broker: publishes in flight share one signature, the
daemon delivers each message, and a batched record replayed or with a swapped proof is quarantined
with its exact reason."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from broker import devbroker
from broker.envelope.seal import hpke_info
from broker.node.runtime import load_node
from broker.wire import frame
from broker.wire.suites import HPKE_SUITES, SUITE_X25519
from tests.node.helpers import Net, example, read_topic, wait_for

pytestmark = pytest.mark.e2e
TOPIC = "nbx.inbox.FR"


async def test_batched_records_are_delivered_and_a_replay_or_swapped_proof_is_quarantined(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Five notices published at once reach FR's inbox under one signature with proofs 0..4 of
    5; FR's daemon delivers all five, quarantines a copy of one as 'replay' and a package whose
    proof was swapped with another's (re-encrypted to FR, as anyone can) as 'signature'."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    notices = [example("red", notice_id=f"IT-2025-{i:04d}") for i in range(1, 6)]

    async def publish_all(pub: Any) -> None:
        await asyncio.gather(*(pub.publish(n, ["FR"]) for n in notices))

    await net.with_publisher("IT", publish_all)
    records = await read_topic(fresh_broker.bootstrap, TOPIC, expect=5)
    assert len(records) == 5
    fr = load_node(net.configs["FR"]).keys
    packages = [json.loads(_decrypt(fr, value)) for _, value, _ in records]
    assert len({p["signature"] for p in packages}) == 1
    assert sorted((p["proof"]["index"], p["proof"]["size"]) for p in packages) == [
        (i, 5) for i in range(5)
    ]
    swapped = {**packages[1], "proof": packages[2]["proof"]}
    forged = _encrypt(fr, json.dumps(swapped).encode())
    raw = AIOKafkaProducer(bootstrap_servers=fresh_broker.bootstrap)
    await raw.start()
    try:
        key, value, _ = records[3]
        await raw.send_and_wait(TOPIC, value, key=key)  # replay
        await raw.send_and_wait(TOPIC, forged, key=records[1][0])
    finally:
        await raw.stop()
    await net.start("FR")
    try:
        daemon = net.daemon("FR")
        assert await wait_for(lambda: daemon.stats.delivered + daemon.stats.quarantined == 7)
        assert daemon.stats.delivered == 5
        assert daemon.stats.reasons == {"replay": 1, "signature": 1}
        assert {r["notice_id"] for r in daemon.sink.notices()} == {n.notice_id for n in notices}
    finally:
        await net.stop()


def _decrypt(keys: Any, value: bytes) -> bytes:
    parsed = frame.decode(value)
    info = hpke_info(TOPIC, "FR", parsed.recipient_kid, parsed.suite)
    plaintext: bytes = HPKE_SUITES[parsed.suite].decrypt(
        parsed.ciphertext, keys.encryption_key, info=info
    )
    return plaintext


def _encrypt(keys: Any, plaintext: bytes) -> bytes:
    suite = SUITE_X25519
    info = hpke_info(TOPIC, "FR", keys.encryption_key_id, suite)
    ciphertext = HPKE_SUITES[suite].encrypt(plaintext, keys.encryption_key.public_key(), info=info)
    return frame.encode(suite, keys.encryption_key_id, ciphertext)
