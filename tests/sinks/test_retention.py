"""Retention and proven erasure in both sinks, with fake times (``now`` arguments): the three
bounds of ``retain_until``, the sweep (purged like a cancel, gone from the file, not a moment
early), the sender's bookkeeping, overdue purge confirmations and resends; the duration parser
and the policy's ``[retention]`` setting."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.policy import PolicyInvalid, parse_policy
from broker.sinks import Position, ReceiptRecord, Sink, SqliteSink
from broker.sinks.retention import (
    DEFAULT_CONFIRM_WITHIN,
    DEFAULT_MAX_RETENTION,
    notice_expiry,
    parse_duration,
    retain_until,
)
from broker.vocab import MessageKind, NoticeState, PurgeReason, ReceiptStatus, SendStatus
from tests.audit_access import READ
from tests.sinks.conftest import ALL_STORES, on_disk, open_store, purged_from_disk
from tests.sinks.test_sinks import CANARY, TOPIC, package

CREATED = datetime(2030, 1, 1, tzinfo=UTC)
EXPIRY = datetime(2030, 1, 10, tzinfo=UTC)  # the start of retention_until's day
MS = timedelta(milliseconds=1)


def dated_view(p: Any, *, retention_until: str = "2030-01-10") -> dict[str, Any]:
    """The disclosed view of ``p`` with its header dates (what the sink reads)."""
    return {
        "notice_id": p.notice_id,
        "version": p.header["version"],
        "created_at": CREATED.isoformat(),
        "retention_until": retention_until,
        "review_due": "2030-01-05",
        "person": {"family_name": CANARY},
    }


@pytest.fixture(params=ALL_STORES)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Sink, Path]]:
    path = tmp_path / f"FR.{kind}"
    s = open_store(kind, path, request)
    yield s, path
    s.close()


# --- retain_until: each bound wins once -------------------------------------------------


def test_the_notice_s_own_expiry_wins() -> None:
    assert (
        retain_until(expiry=EXPIRY, created=CREATED, max_retention=DEFAULT_MAX_RETENTION) == EXPIRY
    )


def test_the_policy_s_maximum_wins() -> None:
    got = retain_until(expiry=EXPIRY, created=CREATED, max_retention=timedelta(days=3))
    assert got == datetime(2030, 1, 4, tzinfo=UTC)


def test_an_erasure_order_s_erase_by_wins() -> None:
    erase_by = datetime(2030, 1, 2, 12, tzinfo=UTC)
    got = retain_until(
        expiry=EXPIRY, created=CREATED, max_retention=timedelta(days=3), erase_by=erase_by
    )
    assert got == erase_by


def test_without_an_expiry_the_default_is_five_years() -> None:
    got = retain_until(expiry=None, created=CREATED, max_retention=DEFAULT_MAX_RETENTION)
    assert got == CREATED + timedelta(days=1825)
    assert notice_expiry({"retention_until": "2030-01-10"}) == EXPIRY
    assert notice_expiry({"retention_until": "not a date"}) is None


@pytest.mark.parametrize(
    ("text", "span"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2)),
     (" 7D ", timedelta(days=7)), ("72h", DEFAULT_CONFIRM_WITHIN)],
)  # fmt: skip
def test_durations(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


@pytest.mark.parametrize("text", ["30", "d", "0d", "-1d", "3m", "1.5d", "30 days", ""])
def test_bad_durations_are_one_line_errors(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive duration like 30d, 12h or 2w") as e:
        parse_duration(text)
    assert "\n" not in str(e.value)


# --- the policy setting -----------------------------------------------------------------

MINIMAL = b'schema = "nbx-policy/1"\ncountry = "FR"\n'


def test_the_policy_sets_the_maximum_per_type() -> None:
    policy = parse_policy(
        MINIMAL + b"[retention]\nmax_days = 365\n[retention.by_type]\nyellow = 30\n",
        source="FR.toml",
    )
    assert policy.max_retention("yellow") == timedelta(days=30)
    assert policy.max_retention("red") == timedelta(days=365)
    assert parse_policy(MINIMAL, source="FR.toml").max_retention("red") is None


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (b"[retention]\nmax_days = 0\n",
         "FR.toml:4: [retention]: max_days: Input should be greater than or equal to 1"),
        (b'[retention]\nmax_days = "5y"\n',
         "FR.toml:4: [retention]: max_days: Input should be a valid integer"),
        (b"[retention]\nmax_days = 1\n[retention.by_type]\nyellow = -1\n",
         "FR.toml:6: [retention]: by_type.yellow: Input should be greater than or equal to 1"),
        (b"[retention]\nmax_day = 3\n",
         "FR.toml:4: [retention]: unknown key 'max_day' (allowed: max_days, by_type)"),
    ],
)  # fmt: skip
def test_bad_retention_settings_are_clear_one_line_errors(extra: bytes, error: str) -> None:
    with pytest.raises(PolicyInvalid) as e:
        parse_policy(MINIMAL + extra, source="FR.toml")
    assert str(e.value) == error


def test_an_unknown_notice_type_is_named() -> None:
    with pytest.raises(PolicyInvalid) as e:
        parse_policy(MINIMAL + b"[retention.by_type]\nbogus = 3\n", source="FR.toml")
    assert str(e.value).startswith("FR.toml:4: [retention]: by_type.bogus: Input should be 'red'")
    assert str(e.value).endswith("(got 'bogus')")


# --- the sweep --------------------------------------------------------------------------


def test_a_notice_expires_at_its_retain_until_and_not_a_moment_before(
    store: tuple[Sink, Path],
) -> None:
    sink, _ = store
    p = package()
    sink.apply(p, dated_view(p), Position(TOPIC, 0, 1))
    assert [
        e.notice_id for e in sink.expiring(EXPIRY - timedelta(days=30) - MS, timedelta(days=30))
    ] == []
    assert [
        e.notice_id for e in sink.expiring(EXPIRY - timedelta(days=30), timedelta(days=30))
    ] == ["IT-1"]
    assert sink.sweep(EXPIRY - MS) == []
    assert sink.state("IT", "IT-1").state == NoticeState.ACTIONABLE  # type: ignore[union-attr]
    assert CANARY.encode() in on_disk(sink)
    expired = sink.sweep(EXPIRY)
    assert [(e.sender, e.notice_id, e.msg_id) for e in expired] == [("IT", "IT-1", p.msg_id)]
    state = sink.state("IT", "IT-1")
    assert state is not None
    assert (state.state, state.reason) == (NoticeState.PURGED, PurgeReason.RETENTION_EXPIRED)
    record = sink.notice("IT-1", READ)
    assert record is not None
    assert (record["status"], record["view"], record["withheld"]) == ("expired", None, None)
    assert purged_from_disk(sink, CANARY)  # gone from the file, not only the view
    # owed until its receipt is acknowledged (a crash in between: answered after the restart)
    assert sink.sweep(EXPIRY + timedelta(days=1)) == expired
    sink.answered(expired, EXPIRY)
    assert sink.sweep(EXPIRY + timedelta(days=2)) == []
    assert sink.expiring(EXPIRY, timedelta(days=30)) == []
    # an update after the purge stores nothing again
    update = package("update", 2)
    sink.apply(update, dated_view(update, retention_until="2031-01-01"), Position(TOPIC, 0, 2))
    assert sink.state("IT", "IT-1").state == NoticeState.PURGED  # type: ignore[union-attr]
    assert purged_from_disk(sink, CANARY)


def test_the_policy_limit_sets_an_earlier_retain_until(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sink = open_store(
        kind, tmp_path / f"FR.{kind}", request, retention=lambda t, s: timedelta(days=3)
    )
    try:
        p = package()
        sink.apply(p, dated_view(p), Position(TOPIC, 0, 1))
        limit = CREATED + timedelta(days=3)
        assert sink.sweep(limit - MS) == []
        assert [e.notice_id for e in sink.sweep(limit)] == ["IT-1"]
    finally:
        sink.close()


def test_refused_or_cancelled_notices_are_not_swept_again(store: tuple[Sink, Path]) -> None:
    sink, _ = store
    p = package()
    sink.apply(p, dated_view(p), Position(TOPIC, 0, 1))
    sink.apply(package("cancel"), {}, Position(TOPIC, 0, 2))
    assert sink.sweep(EXPIRY) == []
    assert sink.state("IT", "IT-1").state == NoticeState.CANCELLED  # type: ignore[union-attr]


def test_a_store_of_schema_4_gets_retain_until_at_migration(tmp_path: Path) -> None:
    path = tmp_path / "FR.sqlite"
    sink = SqliteSink(path)
    p = package()
    sink.apply(p, dated_view(p), Position(TOPIC, 0, 1))
    sink.close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX notices_retain")  # as schema 4 had neither
    db.execute("ALTER TABLE notices DROP COLUMN retain_until")
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    again = SqliteSink(path)
    try:
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 6
        assert again.sweep(EXPIRY - MS) == []
        assert [e.notice_id for e in again.sweep(EXPIRY)] == ["IT-1"]
    finally:
        again.close()


# --- the sender's side: overdue and bookkeeping -----------------------------------------

SENT = datetime(2030, 2, 1, tzinfo=UTC)
DEADLINE = "2030-02-04T00:00:00.000+00:00"


def _order(sink: Sink, msg_id: str, recipients: list[str], origin: str | None = None) -> None:
    for r in recipients:
        sink.record_sent(
            msg_id, "IT-1", r, MessageKind.ERASURE, SendStatus.SENT, None,
            notice_type="red", deadline=DEADLINE, retain_until="2035-01-01T00:00:00.000+00:00",
            origin=origin, body={"notice_id": "IT-1", "reason": "r"},
        )  # fmt: skip


def _purged(sink: Sink, msg_id: str, recipient: str) -> None:
    sink.record_receipt(
        ReceiptRecord(msg_id, "IT-1", recipient, ReceiptStatus.PURGED, None, SENT.isoformat())
    )


def test_an_unconfirmed_purge_is_overdue_after_its_deadline(store: tuple[Sink, Path]) -> None:
    sink, _ = store
    _order(sink, "m1", ["FR", "ES"])
    deadline = datetime.fromisoformat(DEADLINE)
    assert sink.overdue(deadline) == []  # at the deadline: not yet
    assert [(r["recipient"], r["msg_id"]) for r in sink.overdue(deadline + MS)] == [
        ("ES", "m1"),
        ("FR", "m1"),
    ]
    _purged(sink, "m1", "FR")
    rows = sink.overdue(deadline + MS)
    assert rows == [
        {
            "notice_id": "IT-1",
            "notice_type": "red",
            "recipient": "ES",
            "msg_id": "m1",
            "kind": "erasure",
            "sent_at": rows[0]["sent_at"],
            "deadline": DEADLINE,
        }
    ]
    # a resend to ES: listed as the order's latest message; its purged receipt clears both
    _order(sink, "m2", ["ES"], origin="m1")
    assert [(r["recipient"], r["msg_id"]) for r in sink.overdue(deadline + MS)] == [("ES", "m2")]
    orders = sink.pending_orders(deadline + MS)
    assert [(o.recipient, o.origin, o.body["reason"]) for o in orders] == [("ES", "m1", "r")]
    _purged(sink, "m2", "ES")
    assert sink.overdue(deadline + MS) == []
    status = {r["recipient"]: r for r in sink.status("IT-1")}
    assert [m["deadline"] for m in status["ES"]["messages"]] == [DEADLINE, DEADLINE]


def test_the_sender_s_bookkeeping_is_swept_but_an_unconfirmed_purge_stays(
    store: tuple[Sink, Path],
) -> None:
    sink, _ = store
    until = "2031-01-01T00:00:00.000+00:00"
    for r in ("FR", "ES"):
        sink.record_sent("p1", "IT-1", r, MessageKind.PUBLISH, SendStatus.SENT, None,
                         notice_type="red", retain_until=until)  # fmt: skip
    _order(sink, "m1", ["FR", "ES"])
    _purged(sink, "m1", "FR")
    sink.sweep(datetime.fromisoformat(until) - MS)
    assert {(m["msg_id"], r["recipient"]) for r in sink.status("IT-1") for m in r["messages"]} == {
        ("p1", "FR"), ("p1", "ES"), ("m1", "FR"), ("m1", "ES"),
    }  # fmt: skip
    sink.sweep(datetime.fromisoformat(until))
    # what is left: the erasure ES has not confirmed (the proof is still owed)
    assert [
        (r["recipient"], [m["msg_id"] for m in r["messages"]]) for r in sink.status("IT-1")
    ] == [("ES", ["m1"])]
    assert [r["recipient"] for r in sink.overdue(datetime.fromisoformat(until))] == ["ES"]


def test_the_node_defaults_are_the_documented_ones() -> None:
    """`[retention]` defaults: warn 30 days before, purged receipts due within 72 hours."""
    from broker.node.config import RetentionConfig

    assert RetentionConfig().warn_days == 30
    assert RetentionConfig().confirm_within_delta() == DEFAULT_CONFIRM_WITHIN == timedelta(hours=72)
    assert timedelta(days=1825) == DEFAULT_MAX_RETENTION
