"""The daemon's receive guards (docs/security/receive-path.md: time, bounds, replay, header), end
to end: on a real broker where the broker's behaviour is what is checked (records it does not
stamp), in memory (:mod:`broker.testing`) where the daemon's logic is.

Each test plays an attacker who can write to FR's inbox (anyone with topic access) or who holds a
bureau's signing key (an insider, or a thief), and checks the exact quarantine reason, that the
genuine notices around the attack are delivered, and that the daemon keeps running.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker import devbroker
from broker.envelope import Grant, seal
from broker.ids import uuid7
from broker.keys import BureauKeys
from broker.keys.files import load_bureau_keys
from broker.schemas import NoticeBase, disclosure_units, non_redactable
from broker.testing import MemoryBroker
from tests.audit_access import READ
from tests.node.helpers import Net, example, memory_net, read_topic, wait_for


def keys_of(net: Net, cc: str) -> BureauKeys:
    """``cc``'s private keys, as an insider (or a thief) holds them."""
    return load_bureau_keys(net.configs[cc].keys.dir, cc)


def frame_for(
    sender: BureauKeys,
    recipient: BureauKeys,
    *,
    kind: str,
    notice_id: str,
    notice_type: str,
    header: dict[str, Any],
    units: dict[str, Any] | None = None,
    msg_id: str | None = None,
) -> bytes:
    """A validly signed frame from ``sender`` to ``recipient``'s inbox, every unit disclosed."""
    units = units or {}
    sealed = seal(
        signer=sender,
        kind=kind,
        notice_id=notice_id,
        notice_type=notice_type,
        header=header,
        units=units,
        grants={recipient.bureau: Grant(frozenset(units), (), "test@1")},
        handling="H1",
        msg_id=msg_id,
    )
    return sealed.package_for(
        recipient.bureau,
        topic=f"nbx.inbox.{recipient.bureau}",
        recipient_kid=recipient.encryption_key_id,
        recipient_key=recipient.encryption_key.public_key(),
    )


def notice_frame(sender: BureauKeys, recipient: BureauKeys, notice: NoticeBase, **kw: Any) -> bytes:
    """``notice`` sealed as a publish message, every unit disclosed."""
    return frame_for(
        sender,
        recipient,
        kind="publish",
        notice_id=notice.notice_id,
        notice_type=kw.pop("notice_type", str(notice.notice_type)),
        header=kw.pop("header", non_redactable(notice)),
        units={u.path: u.value for u in disclosure_units(notice)},
        **kw,
    )


def produce_in_memory(
    kafka: MemoryBroker | None, topic: str, *values: tuple[bytes, int | None]
) -> None:
    """Write each (value, timestamp_ms) as a plain producer does, in order: a given timestamp is
    the producer's (``CreateTime``, the topic re-created without LogAppendTime)."""
    assert kafka is not None
    for value, timestamp_ms in values:
        if timestamp_ms is None:
            kafka.append(topic, value, key=b"k")
        else:
            kafka.append(topic, value, key=b"k", timestamp_ms=timestamp_ms, timestamp_type=0)


async def create_topic_without_log_append_time(bootstrap: str, topic: str) -> None:
    """What someone with admin rights does after deleting an inbox: re-create it with the
    broker's default timestamp type (CreateTime, the producer's time)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


@pytest.mark.e2e
async def test_records_not_stamped_by_the_broker_are_quarantined(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR's inbox re-created without LogAppendTime: records carry the producer's time, which a
    key thief would back-date past a revocation. The daemon quarantines them as
    ``timestamp-type`` and stores nothing."""
    if not devbroker.STAMPS_LOG_APPEND_TIME[fresh_broker.impl]:
        pytest.skip("this broker never stamps records: the check is off for it")
    bootstrap = fresh_broker.bootstrap
    await create_topic_without_log_append_time(bootstrap, "nbx.inbox.FR")
    net = Net(tmp_path, ("IT", "FR"), bootstrap, idempotence=idempotence_supported)
    for i in (1, 2):
        await net.publish("IT", example("red", notice_id=f"IT-2025-{i:04d}"), ["FR"])
    await net.start("FR")
    try:
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.stats.quarantined == 2)
        assert fr.stats.reasons == {"timestamp-type": 2}
        assert fr.stats.delivered == 0
        assert fr.sink.notices() == []
    finally:
        await net.stop()
    reasons = [
        h["nbx-reason"] for _, _, h in await read_topic(bootstrap, "nbx.quarantine.FR", expect=2)
    ]
    assert reasons == [b"timestamp-type", b"timestamp-type"]


async def test_hostile_record_timestamps_do_not_stop_the_inbox(tmp_path: Path) -> None:
    """Genuine frames written again with timestamps out of any date's range (which used to raise
    before the guarded block, on every restart) and one an hour ahead of the local clock: each
    is quarantined with its reason and the notices around them are delivered."""
    net = memory_net(tmp_path, ("IT", "FR"))
    it, fr_keys = keys_of(net, "IT"), keys_of(net, "FR")
    before, after = (example("red", notice_id=f"IT-2025-{i:04d}") for i in (1, 2))
    hour_ahead = int(time.time() * 1000) + 3_600_000
    produce_in_memory(
        net.kafka,
        "nbx.inbox.FR",
        (notice_frame(it, fr_keys, before), None),
        (notice_frame(it, fr_keys, example("red", notice_id="IT-2025-0901")), 1 << 62),
        (notice_frame(it, fr_keys, example("red", notice_id="IT-2025-0902")), -(1 << 62)),
        (notice_frame(it, fr_keys, example("red", notice_id="IT-2025-0903")), hour_ahead),
        (notice_frame(it, fr_keys, after), None),
    )
    config = net.configs["FR"]
    kafka = config.kafka.model_copy(update={"require_log_append_time": False})
    net.configs["FR"] = config.model_copy(update={"kafka": kafka})
    await net.start("FR")
    try:
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.stats.delivered + fr.stats.quarantined == 5)
        assert not net.tasks["FR"].done()
        assert fr.stats.reasons == {"timestamp": 2, "clock-skew": 1}
        assert {n["notice_id"] for n in fr.sink.notices()} == {"IT-2025-0001", "IT-2025-0002"}
    finally:
        await net.stop()


async def test_validly_signed_poison_pills_do_not_stop_the_inbox(tmp_path: Path) -> None:
    """An insider's validly signed notice whose header nests 500 levels (it used to pass opening
    and crash view assembly on every restart) is quarantined as ``malformed``; a record whose
    handling raises something unexpected is quarantined as ``internal`` (the exception class is
    logged); the notices around them are delivered, and after a restart nothing is read again."""
    net = memory_net(tmp_path, ("IT", "FR"))
    it, fr_keys = keys_of(net, "IT"), keys_of(net, "FR")
    deep: Any = "x"
    for _ in range(500):
        deep = [deep]
    first, trips, last = (example("red", notice_id=f"IT-2025-{i:04d}") for i in (1, 2, 3))
    header = {**non_redactable(first), "notice_id": "IT-2025-0666", "deep": deep}
    poison = frame_for(
        it, fr_keys, kind="publish", notice_id="IT-2025-0666", notice_type="red", header=header
    )
    await net.publish("IT", first, ["FR"])
    produce_in_memory(net.kafka, "nbx.inbox.FR", (poison, None))
    await net.publish("IT", trips, ["FR"])
    await net.publish("IT", last, ["FR"])
    fr = net.daemon("FR")
    validate = fr.validate

    def trip_on_second(view: dict[str, Any]) -> Any:
        if view.get("notice_id") == trips.notice_id:
            msg = "a bug met by one record"
            raise RuntimeError(msg)
        return validate(view)

    fr.validate = trip_on_second
    await net.start("FR")
    try:
        assert await wait_for(lambda: fr.stats.delivered + fr.stats.quarantined == 4)
        assert not net.tasks["FR"].done()
        assert fr.stats.reasons == {"malformed": 1, "internal": 1}
        assert {n["notice_id"] for n in fr.sink.notices()} == {first.notice_id, last.notice_id}
    finally:
        await net.stop()
    again = net.daemon("FR")
    stats = await again.run(until_idle_s=0.5)  # in memory: the first poll has them all
    again.sink.close()
    net.daemons.clear()
    assert (stats.delivered, stats.quarantined, stats.redelivered) == (0, 0, 0)


async def test_a_co_recipient_cannot_spend_another_senders_msg_id(tmp_path: Path) -> None:
    """ES learns the msg id of IT's cancel (ES is a recipient of it too) and gets its own
    message under that id into FR's inbox first. With the replay guard keyed by msg id alone,
    IT's cancel was then quarantined as a replay and the data it should purge stayed; keyed by
    (sender, msg id), both are handled and IT's notice is purged."""
    net = memory_net(tmp_path, ("IT", "ES", "FR"))
    it, es, fr_keys = keys_of(net, "IT"), keys_of(net, "ES"), keys_of(net, "FR")
    red = example("red")
    await net.publish("IT", red, ["FR", "ES"])
    cancel_id = uuid7()
    cancel = frame_for(
        it,
        fr_keys,
        kind="cancel",
        notice_id=red.notice_id,
        notice_type="red",
        header={
            "notice_id": red.notice_id,
            "notice_type": "red",
            "cancel": {"notice_id": red.notice_id, "reason": "withdrawn by the issuer"},
        },
        msg_id=cancel_id,
    )
    es_notice = example("red", issuing_bureau="ES", notice_id="ES-2025-0001")
    squatter = notice_frame(es, fr_keys, es_notice, msg_id=cancel_id)
    produce_in_memory(net.kafka, "nbx.inbox.FR", (squatter, None), (cancel, None))
    await net.start("FR")
    try:
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.stats.delivered + fr.stats.purged == 3)
        assert fr.stats.quarantined == 0, fr.stats.reasons
        stored = fr.sink.notice(red.notice_id, READ)
        assert stored is not None
        assert (stored["status"], stored["view"]) == ("cancelled", None)
    finally:
        await net.stop()


async def test_statement_and_header_must_agree(tmp_path: Path) -> None:
    """A UN special notice whose signed statement says "red": inbound declines read the
    statement, the store reads the header, so such a package is quarantined as
    ``header-mismatch`` and nothing is stored (it used to be delivered past a bureau's decline
    of UN notices). The same with a header naming another notice id."""
    net = memory_net(tmp_path, ("IT", "FR"))
    it, fr_keys = keys_of(net, "IT"), keys_of(net, "FR")
    un = example("un", issuing_bureau="IT", notice_id="IT-2025-0010")
    red = example("red", notice_id="IT-2025-0007")
    other_id = {**non_redactable(red), "notice_id": "IT-2025-0008"}
    await net.publish("IT", example("red"), ["FR"])  # creates FR's inbox as nodes do
    produce_in_memory(
        net.kafka,
        "nbx.inbox.FR",
        (notice_frame(it, fr_keys, un, notice_type="red"), None),
        (notice_frame(it, fr_keys, red, header=other_id), None),
    )
    await net.start("FR")
    try:
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.stats.delivered + fr.stats.quarantined == 3)
        assert fr.stats.reasons == {"header-mismatch": 2}
        assert [n["notice_id"] for n in fr.sink.notices()] == [example("red").notice_id]
    finally:
        await net.stop()
