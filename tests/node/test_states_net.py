"""Safeguard messages across daemons (in-memory broker; one e2e test on the real broker): the
Publisher seals reviews and oversight decisions, recipients derive the state, and the purged
receipts reach the notice's sender and the oversight body."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.node import Publisher, PublishResult
from broker.vocab import NoticeState
from tests.node.helpers import Net, example, memory_net, wait_for
from tests.node.states_kit import needs_review, roles

BUREAUS = ("IT", "FR", "DE", "XR", "XO")


def _with_safeguards(net: Net, *bureaus: str) -> None:
    """Give the daemons the directory's roles and the review rule (the lead wires these to
    KeyLookup.roles / rules().needs_review)."""
    for cc in bureaus:
        daemon = net.daemon(cc)
        daemon.roles = roles
        daemon.needs_review = needs_review


def _state(net: Net, cc: str, notice_id: str) -> str | None:
    stored = net.daemon(cc).sink.notice(notice_id)
    return None if stored is None else stored["state"]


def _everywhere(net: Net, notice_id: str, state: str) -> bool:
    """Whether FR and DE both hold ``notice_id`` in ``state``."""
    return all(_state(net, cc, notice_id) == state for cc in ("FR", "DE"))


def _receipts(net: Net, cc: str, notice_id: str) -> set[tuple[str, str, str, str | None]]:
    """(recipient, msg id, status, reason) of every receipt ``cc`` holds for ``notice_id``."""
    return {
        (r["recipient"], m["msg_id"], x["status"], x["reason"])
        for r in net.daemon(cc).sink.status(notice_id)
        for m in r["messages"]
        for x in m["receipts"]
    }


async def _story(net: Net) -> None:
    """IT publishes a red notice to FR and DE: pending-review; XR approves: actionable; XO
    blocks: blocked; XO deletes: purged, with purged receipts to IT and XO."""
    red = example("red")
    _with_safeguards(net, "FR", "DE", "IT", "XO")
    await net.start("FR", "DE", "IT", "XO")
    published: PublishResult = await net.publish("IT", red, ["FR", "DE"])
    assert published.statement_hash is not None
    sent = [m for r in net.daemon("IT").sink.status(red.notice_id) for m in r["messages"]]
    assert [m["statement_hash"] for m in sent] == [published.statement_hash] * 2
    assert await wait_for(lambda: _everywhere(net, red.notice_id, NoticeState.PENDING_REVIEW))

    async def approve(pub: Publisher) -> PublishResult:
        assert published.statement_hash is not None
        return await pub.review(
            subject_sender="IT",
            subject_msg_id=published.msg_id,
            notice_id=red.notice_id,
            notice_type="red",
            statement_hash=published.statement_hash,
            decision="approved",
            reason="meets the criteria",
            to=["FR", "DE", "IT"],
        )

    for cc in ("FR", "DE"):  # the hash every recipient verified is the sender's
        hashed = net.daemon(cc).sink.statement("IT", published.msg_id)
        assert hashed == (red.notice_id, published.statement_hash)
    approval = await net.with_publisher("XR", approve)
    assert sorted(approval.sent) == ["DE", "FR", "IT"]
    assert await wait_for(lambda: _everywhere(net, red.notice_id, NoticeState.ACTIONABLE))

    async def decide(kind: str, case: str, reason: str | None) -> PublishResult:
        async def send(pub: Publisher) -> PublishResult:
            return await pub.oversight(
                kind,  # type: ignore[arg-type]
                subject_sender="IT",
                notice_id=red.notice_id,
                notice_type="red",
                case_ref=case,
                reason=reason,
                to=["FR", "DE", "IT"],
            )

        result: PublishResult = await net.with_publisher("XO", send)
        return result

    await decide("block", "CCF-2026-1", "challenge pending")
    assert await wait_for(lambda: _everywhere(net, red.notice_id, NoticeState.BLOCKED))
    deleted = await decide("delete", "CCF-2026-1", "not compliant with Art. 3")
    assert await wait_for(lambda: _everywhere(net, red.notice_id, NoticeState.PURGED))
    want_it = {(cc, published.msg_id, "purged", "delete:CCF-2026-1") for cc in ("FR", "DE")}
    assert await wait_for(lambda: want_it <= _receipts(net, "IT", red.notice_id))
    want_xo = {(cc, deleted.msg_id, "purged", None) for cc in ("FR", "DE")}
    assert await wait_for(lambda: want_xo <= _receipts(net, "XO", red.notice_id))
    family = red.person.family_name.encode()  # type: ignore[attr-defined]
    for cc in ("FR", "DE"):
        stored = net.daemon(cc).sink.notice(red.notice_id)
        assert stored is not None
        assert stored["view"] is None
        path = net.configs[cc].sink_path()
        files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
        assert family not in b"".join(f.read_bytes() for f in files if f.exists())


async def test_review_block_and_delete_between_daemons(tmp_path: Path) -> None:
    net = memory_net(tmp_path, BUREAUS)
    try:
        await _story(net)
    finally:
        await net.stop()


@pytest.mark.e2e
async def test_review_block_and_delete_on_the_real_broker(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    net = Net(tmp_path, BUREAUS, kafka_bootstrap, idempotence=True)
    await net.ensure_topics(*BUREAUS)
    try:
        await _story(net)
    finally:
        await net.stop()
