"""Heightened supervision (`pre`): a supervised sender's person-targeting messages wait on the
reviewer's holding topic and reach no national bureau before the reviewer approves them; on
refusal they never do; a held package injected straight into an inbox, or altered by the
reviewer, is refused (in-memory broker; the same daemons and publishers as on Kafka)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from broker.node import Publisher, PublishResult
from broker.testing import MemoryBroker
from broker.transport import hold, inbox
from tests.audit_access import READ
from tests.node.helpers import Net, example, memory_net, wait_for

BUREAUS = ("IT", "FR", "DE", "XR")
ROLES = {"XR": ["reviewer"]}


def _net(tmp_path: Path) -> Net:
    return memory_net(tmp_path, BUREAUS, roles=ROLES, supervise={"IT": "pre"})


def _kafka(net: Net) -> MemoryBroker:
    assert net.kafka is not None
    return net.kafka


def _state(net: Net, cc: str, notice_id: str) -> str | None:
    stored = net.daemon(cc).sink.notice(notice_id, READ)
    return None if stored is None else stored["state"]


def _in_state(net: Net, cc: str, state: str) -> Callable[[], bool]:
    return lambda: _state(net, cc, "IT-2025-0001") == state


def _has_facts(net: Net, cc: str, count: int) -> Callable[[], bool]:
    return lambda: len(net.daemon(cc).sink.facts("IT", "IT-2025-0001")) == count


async def _held_publish(net: Net) -> PublishResult:
    """IT publishes the red notice to FR and DE: XR's copy goes to its inbox (added to the
    audience), FR's and DE's wait on XR's holding topic."""
    await net.start("FR", "DE", "XR", "IT")
    published: PublishResult = await net.publish("IT", example("red"), ["FR", "DE"])
    status = {o.recipient: (o.status, o.topic) for o in published.outcomes}
    assert status == {
        "DE": ("held-for-review", hold("XR")),
        "FR": ("held-for-review", hold("XR")),
        "XR": ("sent", inbox("XR")),
    }
    xr = net.daemon("XR")
    assert await wait_for(lambda: xr.stats.held == 2)
    assert await wait_for(lambda: _state(net, "XR", "IT-2025-0001") == "pending-review")
    for cc in ("FR", "DE"):  # nothing reached a national bureau (the broker acknowledged
        # their packages on the holding topic, above; in memory, their inboxes are read too)
        assert net.daemon(cc).sink.notice("IT-2025-0001", READ) is None
        if net.kafka is not None:
            assert net.kafka.log(inbox(cc)) == []
    return published


async def _review(net: Net, published: PublishResult, decision: str) -> None:
    statement_hash = published.statement_hash
    assert statement_hash is not None

    async def review(pub: Publisher) -> None:
        result = await pub.review(
            subject_sender="IT",
            subject_msg_id=published.msg_id,
            notice_id=published.notice_id,
            notice_type="red",
            statement_hash=statement_hash,
            decision="approved" if decision == "approved" else "refused",
            grounds=() if decision == "approved" else ("art3",),
            reason="checked",
            to=["DE", "FR", "IT"],
        )
        assert sorted(result.sent) == ["DE", "FR", "IT"]
        if decision == "approved":
            forwarded = await pub.forward_held(statement_hash, published.notice_id)
            assert sorted((o.recipient, o.status) for o in forwarded) == [
                ("DE", "sent"),
                ("FR", "sent"),
            ]
        else:
            assert pub.store is not None
            pub.store.drop_held(statement_hash)
        assert pub.store is not None
        assert pub.store.held(statement_hash) == []

    await net.with_publisher("XR", review)


async def test_held_until_approved_then_actionable_everywhere(tmp_path: Path) -> None:
    """The held packages reach FR and DE only after XR's approval, unchanged (they open them
    as sealed by IT), after the attestation: actionable at once."""
    net = _net(tmp_path)
    try:
        published = await _held_publish(net)
        held = [r.value for r in _kafka(net).log(hold("XR"))]
        await _review(net, published, "approved")
        for cc in ("FR", "DE"):
            assert await wait_for(_in_state(net, cc, "actionable"))
            values = [r.value for r in _kafka(net).log(inbox(cc))]
            assert values[-1] in held  # forwarded byte for byte, after the attestation
            assert net.daemon(cc).stats.reasons == {}
    finally:
        await net.stop()


async def test_refused_while_held_never_reaches_a_national_bureau(tmp_path: Path) -> None:
    """XR refuses: FR and DE receive only the refusal (a fact, no personal data), never the
    notice; the sender holds the refusal."""
    net = _net(tmp_path)
    try:
        published = await _held_publish(net)
        await _review(net, published, "refused")
        it = net.daemon("IT").sink
        assert await wait_for(lambda: len(it.facts("IT", "IT-2025-0001")) == 1)
        assert it.facts("IT", "IT-2025-0001")[0].decision == "refused"
        for cc in ("FR", "DE"):
            sink = net.daemon(cc).sink
            assert await wait_for(_has_facts(net, cc, 1))
            assert sink.notice("IT-2025-0001", READ) is None
            assert len(_kafka(net).log(inbox(cc))) == 1  # the attestation only
    finally:
        await net.stop()


async def test_a_held_package_injected_into_an_inbox_is_refused(tmp_path: Path) -> None:
    """Whoever copies a held package straight into FR's inbox (the broker operator, a topic
    writer, the sender itself) gets it quarantined as review-required at FR."""
    net = _net(tmp_path)
    try:
        await _held_publish(net)
        kafka = _kafka(net)
        for_fr = next(r for r in kafka.log(hold("XR")) if ("nbx-to", b"FR") in r.headers)
        kafka.append(inbox("FR"), for_fr.value or b"", key=for_fr.key, headers=for_fr.headers)
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.stats.quarantined == 1)
        assert fr.stats.reasons == {"review-required": 1}
        assert fr.sink.notice("IT-2025-0001", READ) is None
    finally:
        await net.stop()


async def test_a_reviewer_cannot_alter_a_held_package(tmp_path: Path) -> None:
    """A reviewer that changes one byte of a held package before forwarding it (after a valid
    approval) gets it quarantined at the recipient: it cannot open or re-seal IT's package."""
    net = _net(tmp_path)
    try:
        published = await _held_publish(net)
        kafka = _kafka(net)
        for_fr = next(r for r in kafka.log(hold("XR")) if ("nbx-to", b"FR") in r.headers)
        await _review(net, published, "approved")
        fr = net.daemon("FR")
        assert await wait_for(lambda: _state(net, "FR", "IT-2025-0001") == "actionable")
        value = bytearray(for_fr.value or b"")
        value[-1] ^= 0x01  # the AEAD tag
        kafka.append(inbox("FR"), bytes(value), key=for_fr.key, headers=for_fr.headers)
        assert await wait_for(lambda: fr.stats.quarantined == 1)
        assert fr.stats.reasons == {"decrypt": 1}
    finally:
        await net.stop()


@pytest.mark.e2e
async def test_held_until_approved_on_the_real_broker(
    tmp_path: Path, kafka_bootstrap: str, idempotence_supported: bool
) -> None:
    """The approval story on the real broker (noida-db and tansu): nothing in FR's or DE's
    inbox while held; actionable at both after the approval."""
    net = Net(
        tmp_path,
        BUREAUS,
        kafka_bootstrap,
        idempotence=idempotence_supported,
        roles=ROLES,
        supervise={"IT": "pre"},
    )
    await net.ensure_topics(*BUREAUS)
    try:
        published = await _held_publish(net)
        await _review(net, published, "approved")
        for cc in ("FR", "DE"):
            assert await wait_for(_in_state(net, cc, "actionable"))
            assert net.daemon(cc).stats.reasons == {}
    finally:
        await net.stop()
