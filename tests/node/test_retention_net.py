"""Retention and proven erasure across daemons, with fake clocks (the daemon's ``clock``, the
sink's and publisher's ``now``): a notice expires at its retain_until and not a moment before,
the purge reaches the SQLite file, the ``retention-expired`` receipts reach the sender, a
restarted daemon purges what expired while it was down; a recipient whose daemon is stopped is
overdue after the deadline, ``--resend-overdue`` reaches only it, and once it is back it purges
and the sender's list clears. In memory, and on the real broker."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.node import ConsumerDaemon, Publisher, PublishResult
from broker.sinks import SqliteSink
from broker.vocab import NoticeState, PurgeReason
from tests.audit_access import READ
from tests.node.helpers import Net, example, memory_net, read_topic, wait_for

BUREAUS = ("IT", "FR", "DE", "ES")
#: the example red notice's retain_until: the default five years (1825 days) from its created_at
#: (2025-03-01T09:00Z) come before its own retention_until (2030-03-01)
EXPIRY = datetime(2025, 3, 1, 9, tzinfo=UTC) + timedelta(days=1825)
MS = timedelta(milliseconds=1)

#: counts the records on an inbox topic (None: not checked on this broker)
Counter = Callable[[str], Awaitable[int]] | None


class Clock:
    """A fake clock the test moves; counts the daemon's sweeps."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _fast(net: Net, cc: str, clock: Clock) -> tuple[ConsumerDaemon, list[datetime]]:
    """``cc``'s daemon on ``clock``, housekeeping every loop; the times it swept at."""
    daemon = net.daemon(cc)
    daemon.clock = clock
    daemon.housekeeping_interval_s = 0.0
    swept: list[datetime] = []
    sweep = daemon.sink.sweep

    def counted(now: datetime) -> Any:
        swept.append(now)
        return sweep(now)

    daemon.sink.sweep = counted  # type: ignore[method-assign]
    return daemon, swept


async def _stop(net: Net, cc: str) -> None:
    """Stop ``cc``'s daemon (committing what it handled) and close its store."""
    daemon = net.daemons.pop(cc)
    daemon.stop()
    await net.tasks.pop(cc)
    daemon.sink.close()


def _holds(net: Net, cc: str, notice_id: str) -> bool:
    return _stored(net, cc, notice_id) is not None


def _owes_nothing(net: Net, cc: str) -> bool:
    """``cc``'s store owes no ``retention-expired`` receipt any more."""
    return net.daemon(cc).sink.sweep(EXPIRY + timedelta(days=3)) == []


def _stored(net: Net, cc: str, notice_id: str) -> dict[str, Any] | None:
    row = net.daemon(cc).sink.notice(notice_id, READ)
    return None if row is None else dict(row)


def _receipts(net: Net, cc: str, notice_id: str) -> set[tuple[str, str, str, str | None]]:
    return {
        (r["recipient"], m["msg_id"], x["status"], x["reason"])
        for r in net.daemon(cc).sink.status(notice_id)
        for m in r["messages"]
        for x in m["receipts"]
    }


def _on_disk(net: Net, cc: str) -> bytes:
    path = net.configs[cc].sink_path()
    files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def _retention_story(net: Net) -> None:
    red = example("red")
    family = red.person.family_name.encode()  # type: ignore[attr-defined]
    fr_clock, de_clock = Clock(EXPIRY - timedelta(days=40)), Clock(EXPIRY - timedelta(days=40))
    _, fr_swept = _fast(net, "FR", fr_clock)
    _fast(net, "DE", de_clock)
    _fast(net, "ES", Clock(EXPIRY - timedelta(days=40)))
    await net.start("IT", "FR", "DE", "ES")
    published: PublishResult = await net.publish("IT", red, ["FR", "DE", "ES"])
    for cc in ("FR", "DE", "ES"):
        assert await wait_for(functools.partial(_holds, net, cc, red.notice_id))
        # the daemon's own connection sees its batch before the commit reaches the file
        assert await wait_for(functools.partial(lambda c: family in _on_disk(net, c), cc))
    # a moment before: swept, nothing purged
    fr_clock.at = EXPIRY - MS
    count = len(fr_swept)
    assert await wait_for(lambda: len(fr_swept) >= count + 3 and fr_swept[-1] == EXPIRY - MS)
    assert (_stored(net, "FR", red.notice_id) or {}).get("state") == NoticeState.ACTIONABLE
    # DE and ES go down before the notice expires
    await _stop(net, "DE")
    await _stop(net, "ES")
    fr_clock.at = EXPIRY
    assert await wait_for(
        lambda: (_stored(net, "FR", red.notice_id) or {}).get("state") == NoticeState.PURGED
    )
    fr = _stored(net, "FR", red.notice_id)
    assert fr is not None
    assert (fr["state_reason"], fr["view"]) == (PurgeReason.RETENTION_EXPIRED, None)
    assert family not in _on_disk(net, "FR")  # the file, not only the view
    expired = ("FR", published.msg_id, "purged", PurgeReason.RETENTION_EXPIRED.value)
    assert await wait_for(lambda: expired in _receipts(net, "IT", red.notice_id))
    # DE restarts a day after: its first sweep purges what expired while it was down
    assert family in _on_disk(net, "DE")
    _fast(net, "DE", Clock(EXPIRY + timedelta(days=1)))
    await net.start("DE")
    from_de = ("DE", published.msg_id, "purged", PurgeReason.RETENTION_EXPIRED.value)
    assert await wait_for(lambda: from_de in _receipts(net, "IT", red.notice_id))
    de = _stored(net, "DE", red.notice_id)
    assert de is not None
    assert (de["state"], de["state_reason"]) == (NoticeState.PURGED, "retention-expired")
    assert family not in _on_disk(net, "DE")
    # ES crashed after its sweep committed the purge, before its receipt went out: the store
    # still owes it, and the restarted daemon answers it
    store = SqliteSink(net.configs["ES"].sink_path())
    try:
        assert [e.notice_id for e in store.sweep(EXPIRY)] == [red.notice_id]
    finally:
        store.close()
    assert family not in _on_disk(net, "ES")
    _fast(net, "ES", Clock(EXPIRY + timedelta(days=2)))
    await net.start("ES")
    from_es = ("ES", published.msg_id, "purged", PurgeReason.RETENTION_EXPIRED.value)
    assert await wait_for(lambda: from_es in _receipts(net, "IT", red.notice_id))
    # each purged once: one retention receipt per recipient, none owed any more
    retention = {x for x in _receipts(net, "IT", red.notice_id) if x[3] == "retention-expired"}
    assert retention == {expired, from_de, from_es}
    for cc in ("FR", "DE", "ES"):
        assert await wait_for(functools.partial(_owes_nothing, net, cc))


async def _overdue_story(net: Net, inbox_records: Counter) -> None:
    red = example("red")
    await net.start("IT", "FR", "DE", "ES")
    published: PublishResult = await net.publish("IT", red, ["FR", "DE", "ES"])
    for cc in ("FR", "DE", "ES"):
        assert await wait_for(functools.partial(_holds, net, cc, red.notice_id))
    await _stop(net, "ES")  # ES's daemon is down

    async def cancel(pub: Publisher) -> PublishResult:
        return await pub.lifecycle(
            "cancel", red.notice_id, "red", ["FR", "DE", "ES"],
            details={"notice_id": red.notice_id, "reason": "arrested", "withdraw": True},
        )  # fmt: skip

    sent_at = datetime.now(UTC)
    cancelled: PublishResult = await net.with_publisher("IT", cancel)
    assert sorted(cancelled.sent) == ["DE", "ES", "FR"]
    it = net.daemon("IT").sink
    confirmed = {(cc, cancelled.msg_id, "purged", None) for cc in ("FR", "DE")}
    assert await wait_for(lambda: confirmed <= _receipts(net, "IT", red.notice_id))
    after = sent_at + timedelta(hours=72, minutes=1)  # the default confirm_within has passed
    assert it.overdue(sent_at) == []  # before the deadline: awaiting, not overdue
    overdue = it.overdue(after)
    assert [(r["recipient"], r["msg_id"], r["kind"]) for r in overdue] == [
        ("ES", cancelled.msg_id, "cancel")
    ]
    deadline = datetime.fromisoformat(overdue[0]["deadline"])
    assert timedelta(hours=72) <= deadline - sent_at < timedelta(hours=72, seconds=30)
    before = {cc: len(net.daemon(cc).sink.delivery_log()) for cc in ("FR", "DE")}  # type: ignore[attr-defined]
    counted = {cc: await inbox_records(cc) for cc in ("FR", "DE")} if inbox_records else {}

    async def resend(pub: Publisher) -> list[PublishResult]:
        return await pub.resend_overdue(after)

    (again,) = await net.with_publisher("IT", resend)
    assert again.msg_id != cancelled.msg_id
    assert (again.kind, again.notice_id) == ("cancel", red.notice_id)
    assert [(o.recipient, o.status) for o in again.outcomes] == [("ES", "sent")]
    # still overdue (the same deadline), now listed with the resend
    assert [(r["recipient"], r["msg_id"], r["deadline"]) for r in it.overdue(after)] == [
        ("ES", again.msg_id, overdue[0]["deadline"])
    ]
    # ES comes back: it purges, confirms both messages, the list clears
    await net.start("ES")
    assert await wait_for(
        lambda: (_stored(net, "ES", red.notice_id) or {}).get("state") == NoticeState.CANCELLED
    )
    assert await wait_for(lambda: it.overdue(after) == [])
    want = {("ES", cancelled.msg_id, "purged", None), ("ES", again.msg_id, "purged", None)}
    assert await wait_for(lambda: want <= _receipts(net, "IT", red.notice_id))
    # the others got nothing new
    assert {cc: len(net.daemon(cc).sink.delivery_log()) for cc in ("FR", "DE")} == before  # type: ignore[attr-defined]
    if inbox_records is not None:
        assert {cc: await inbox_records(cc) for cc in ("FR", "DE")} == counted
    assert published.msg_id  # the publish went to all three


async def test_retention_between_daemons(tmp_path: Path) -> None:
    net = memory_net(tmp_path, BUREAUS)
    try:
        await _retention_story(net)
    finally:
        await net.stop()


async def test_overdue_and_resend_between_daemons(tmp_path: Path) -> None:
    net = memory_net(tmp_path, BUREAUS)
    kafka = net.kafka
    assert kafka is not None

    async def count(cc: str) -> int:
        return len(kafka.values(f"nbx.inbox.{cc}"))

    try:
        await _overdue_story(net, count)
    finally:
        await net.stop()


@pytest.mark.e2e
async def test_retention_on_the_real_broker(
    tmp_path: Path, kafka_bootstrap: str, idempotence_supported: bool
) -> None:
    net = Net(tmp_path, BUREAUS, kafka_bootstrap, idempotence=idempotence_supported)
    await net.ensure_topics(*BUREAUS)
    try:
        await _retention_story(net)
    finally:
        await net.stop()


@pytest.mark.e2e
async def test_overdue_and_resend_on_the_real_broker(
    tmp_path: Path, kafka_bootstrap: str, idempotence_supported: bool
) -> None:
    net = Net(tmp_path, BUREAUS, kafka_bootstrap, idempotence=idempotence_supported)
    await net.ensure_topics(*BUREAUS)

    async def count(cc: str) -> int:
        return len(await read_topic(kafka_bootstrap, f"nbx.inbox.{cc}", expect=2))

    try:
        await _overdue_story(net, count)
    finally:
        await net.stop()


async def test_review_due_is_logged_once_within_the_warning_window(tmp_path: Path) -> None:
    """`retention.review-due` (ids, type and retain_until only: every key on the log allow-list)
    is logged once per run when a notice's retain_until is within `[retention] warn_days` (30),
    not before."""
    from structlog.testing import capture_logs

    from broker.logging import ALLOWED_KEYS

    net = memory_net(tmp_path, BUREAUS)
    red = example("red")
    clock = Clock(EXPIRY - timedelta(days=30) - MS)
    _, swept = _fast(net, "FR", clock)
    assert net.daemon("FR").retention_warning == timedelta(days=30)
    try:
        with capture_logs() as logs:
            await net.start("FR")
            await net.publish("IT", red, ["FR"])
            assert await wait_for(functools.partial(_holds, net, "FR", red.notice_id))
            count = len(swept)
            assert await wait_for(lambda: len(swept) >= count + 3)
            assert [e for e in logs if e["event"] == "retention.review-due"] == []
            clock.at = EXPIRY - timedelta(days=30)
            count = len(swept)
            assert await wait_for(lambda: len(swept) >= count + 5)
        due = [e for e in logs if e["event"] == "retention.review-due"]
        assert due == [
            {
                "event": "retention.review-due",
                "log_level": "warning",
                "bureau": "FR",
                "sender": "IT",
                "notice_id": red.notice_id,
                "notice_type": "red",
                "retain_until": "2030-02-28T09:00:00.000+00:00",
            }
        ]
        assert set(due[0]) - {"log_level"} <= ALLOWED_KEYS
    finally:
        await net.stop()


async def test_an_overdue_refusal_is_sent_again_as_the_same_decision(tmp_path: Path) -> None:
    """A reviewer's refusal is a purging message too: FR confirms it, DE (down) is overdue once
    the deadline passed (the notice's own sender IT is not expected to confirm); the resend is
    the same refusal, to DE only; DE comes back, purges, confirms, and nothing is overdue."""
    net = memory_net(tmp_path, (*BUREAUS, "XR"), roles={"XR": ["reviewer"]})
    red = example("red")
    try:
        await net.start("IT", "FR", "DE", "XR")
        published: PublishResult = await net.publish("IT", red, ["FR", "DE"])
        for cc in ("FR", "DE"):
            assert await wait_for(functools.partial(_holds, net, cc, red.notice_id))
        await _stop(net, "DE")
        assert published.statement_hash is not None
        statement_hash = published.statement_hash

        async def refuse(pub: Publisher) -> PublishResult:
            return await pub.review(
                subject_sender="IT", subject_msg_id=published.msg_id, notice_id=red.notice_id,
                notice_type="red", statement_hash=statement_hash, decision="refused",
                reason="political character", grounds=["art3"], to=["FR", "DE", "IT"],
            )  # fmt: skip

        sent_at = datetime.now(UTC)
        refusal: PublishResult = await net.with_publisher("XR", refuse)
        xr = net.daemon("XR").sink
        assert await wait_for(
            lambda: ("FR", refusal.msg_id, "purged", None) in _receipts(net, "XR", red.notice_id)
        )
        after = sent_at + timedelta(hours=73)
        assert [(r["recipient"], r["kind"]) for r in xr.overdue(after)] == [("DE", "review")]

        async def resend(pub: Publisher) -> list[PublishResult]:
            return await pub.resend_overdue(after)

        (again,) = await net.with_publisher("XR", resend)
        assert (again.kind, [o.recipient for o in again.outcomes]) == ("review", ["DE"])
        await net.start("DE")
        assert await wait_for(
            lambda: (_stored(net, "DE", red.notice_id) or {}).get("state") == NoticeState.REFUSED
        )
        assert await wait_for(lambda: xr.overdue(after) == [])
        facts = net.daemon("DE").sink.facts("IT", red.notice_id)
        assert sorted((f.msg_id, f.decision, f.grounds) for f in facts) == sorted(
            [(refusal.msg_id, "refused", "art3"), (again.msg_id, "refused", "art3")]
        )
    finally:
        await net.stop()
