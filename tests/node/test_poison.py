"""A poison message in the middle of a stream is quarantined; everything after it is delivered."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from broker import devbroker
from tests.node.helpers import Net, example, read_topic, wait_for

pytestmark = pytest.mark.e2e


async def test_garbage_and_tampered_frames_are_quarantined_and_the_stream_goes_on(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Garbage bytes and a frame with one flipped bit sit between valid notices on FR's inbox:
    they land in nbx.quarantine.FR with reasons 'frame' and 'decrypt' (raw bytes kept), and every
    valid notice after them is delivered."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    bootstrap = fresh_broker.bootstrap
    notices = [example("red", notice_id=f"IT-2025-{i:04d}") for i in range(1, 7)]
    async with net.publisher("IT") as pub:
        for n in notices[:2]:
            await pub.publish(n, ["FR"])
    # capture a valid frame, then write poison by hand with a plain producer
    first_value = (await read_topic(bootstrap, "nbx.inbox.FR", expect=2))[0][1]
    raw = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await raw.start()
    try:
        tampered = bytearray(first_value)
        tampered[len(tampered) // 2] ^= 0x01
        garbage = b"\x00garbage, not a frame\xff" * 3
        await raw.send_and_wait("nbx.inbox.FR", garbage, key=b"x")
        await raw.send_and_wait("nbx.inbox.FR", bytes(tampered), key=b"y")
    finally:
        await raw.stop()
    async with net.publisher("IT") as pub:
        for n in notices[2:]:
            await pub.publish(n, ["FR"])
    await net.start("FR")
    try:
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.stats.delivered == 6 and fr.stats.quarantined == 2)
        assert {r["notice_id"] for r in fr.sink.notices()} == {n.notice_id for n in notices}
        assert fr.stats.reasons == {"frame": 1, "decrypt": 1}
    finally:
        await net.stop()
    quarantined = [
        (headers["nbx-reason"].decode(), value)
        for _, value, headers in await read_topic(bootstrap, "nbx.quarantine.FR", expect=2)
    ]
    assert sorted(quarantined) == sorted([("frame", garbage), ("decrypt", bytes(tampered))])


async def test_replayed_record_is_quarantined_as_replay(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """A valid package copied and written again to the same inbox (a replay) is not delivered a
    second time: it is quarantined with reason 'replay'."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    await net.publish("IT", example("red"), ["FR"])
    bootstrap = fresh_broker.bootstrap
    key, value, _ = (await read_topic(bootstrap, "nbx.inbox.FR", expect=1))[0]
    raw = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await raw.start()
    await raw.send_and_wait("nbx.inbox.FR", value, key=key)
    await raw.stop()
    await net.start("FR")
    try:
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.stats.delivered + fr.stats.quarantined == 2)
        assert fr.stats.delivered == 1
        assert fr.stats.reasons == {"replay": 1}
    finally:
        await net.stop()
