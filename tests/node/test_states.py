"""Notice states at a recipient (issue 17, points 1, 2 and 5): pending-review until a
reviewer's approval of the exact statement, refusal and delete purge, blocks restrict, every
order of arrival gives the same state; attacks are quarantined with their exact reason.

The pipeline is driven directly (no broker): real sealed and opened messages, a real SQLite (or
JSON-lines) store read back after every step."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from broker.envelope import Grant, Sealed, seal
from broker.errors import EnvelopeRejected
from broker.node.pipeline import Outcome
from broker.sinks.base import Applied, Sink
from broker.sinks.sqlite import SCHEMA_VERSION, SqliteSink
from broker.vocab import MessageKind, NoticeState, Reason, ReceiptStatus, SendStatus
from tests.audit_access import READ
from tests.node.states_kit import (
    FAMILY,
    IT,
    NOTICE_ID,
    XO,
    XR,
    Inbox,
    fact_sealed,
    forged,
    notice,
    notice_sealed,
    on_disk,
    opened,
    oversight,
    pipeline,
    review,
)
from tests.sinks.conftest import (  # the PostgreSQL case's fixtures too
    ALL_STORES,
    open_store,
    pg_store_url,  # noqa: F401
    pg_template,  # noqa: F401
)

BLOCK, UNBLOCK, DELETE = MessageKind.BLOCK, MessageKind.UNBLOCK, MessageKind.DELETE


@pytest.fixture(params=ALL_STORES)
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sink]:
    s = open_store(request.param, tmp_path / f"FR.{request.param}", request)
    yield s
    s.close()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "FR.sqlite"


def state(sink: Sink) -> str:
    """The stored state of IT's notice, as `nbx inbox list` reads it."""
    rows = [r for r in sink.notices() if r["notice_id"] == NOTICE_ID]
    assert len(rows) == 1
    return rows[0]["state"]


def receipts(outcome: Outcome) -> list[tuple[str, str, str, str | None]]:
    """Every receipt the outcome owes: (to, msg id, status, reason)."""
    answers = ([outcome.answer] if outcome.answer else []) + list(outcome.extra)
    return [
        (a.sender, a.receipt["msg_id"], a.receipt["status"], a.receipt["reason"]) for a in answers
    ]


# --- transitions --------------------------------------------------------------------------


def test_a_notice_that_needs_review_is_pending_until_its_statement_is_approved(sink: Sink) -> None:
    """publish -> pending-review; XR approves that statement -> actionable; the statement hash
    is the sender's and the recipient's alike."""
    inbox = Inbox(pipeline(sink))
    sealed = notice_sealed()
    red = opened(sealed)
    assert red.statement_hash == sealed.statement_hash
    assert inbox.deliver(red).delivered == (red, Applied.DELIVERED)
    assert state(sink) == NoticeState.PENDING_REVIEW
    stored = sink.notice(NOTICE_ID, READ)
    assert stored is not None
    assert stored["view"] is not None
    assert stored["state"] == NoticeState.PENDING_REVIEW
    approval = review(red)
    out = inbox.deliver(approval)
    assert out.quarantine is None
    assert receipts(out) == [("XR", approval.msg_id, ReceiptStatus.DELIVERED, None)]
    assert state(sink) == NoticeState.ACTIONABLE


def test_without_a_review_rule_a_notice_is_actionable_at_once(sink: Sink) -> None:
    """The defaults (nobody has a role, nothing needs review) keep the old behaviour."""
    inbox = Inbox(pipeline(sink, needs_review=lambda kind, notice_type, sender: False))
    inbox.deliver(notice())
    assert state(sink) == NoticeState.ACTIONABLE


def test_an_approval_before_its_notice_is_kept_and_applied(sink: Sink) -> None:
    """Reordering across topics: the attestation first, then the notice -> actionable."""
    inbox = Inbox(pipeline(sink))
    red = notice()
    assert inbox.deliver(review(red)).quarantine is None
    assert sink.notices() == []
    inbox.deliver(red)
    assert state(sink) == NoticeState.ACTIONABLE


def test_an_update_needs_a_new_approval(sink: Sink) -> None:
    """v1 approved, then v2 arrives: pending-review again; the v1 approval replayed in a new
    message does not cover v2; an approval of v2 does."""
    inbox = Inbox(pipeline(sink))
    v1, v2 = notice(1), notice(2)
    inbox.deliver(v1)
    inbox.deliver(review(v1))
    assert state(sink) == NoticeState.ACTIONABLE
    inbox.deliver(v2)
    assert state(sink) == NoticeState.PENDING_REVIEW
    again = inbox.deliver(review(v1))  # a fresh attestation of the old statement
    assert again.quarantine is None
    assert state(sink) == NoticeState.PENDING_REVIEW
    inbox.deliver(review(v2))
    assert state(sink) == NoticeState.ACTIONABLE


def test_a_refusal_purges_the_notice_and_tells_its_sender_the_ground(
    sqlite_path: Path,
) -> None:
    """refused: view and manifest gone from the file and the WAL, state refused with the
    grounds; IT gets a purged receipt for the refused message, reason = the grounds."""
    sink = SqliteSink(sqlite_path)
    try:
        inbox = Inbox(pipeline(sink))
        red = notice()
        inbox.deliver(red)
        assert FAMILY.encode() in on_disk(sqlite_path)
        refusal = review(red, "refused", grounds=("art3", "art2"))
        out = inbox.deliver(refusal)
        assert out.delivered == (refusal, Applied.PURGED)
        assert receipts(out) == [
            ("XR", refusal.msg_id, ReceiptStatus.PURGED, None),
            ("IT", red.msg_id, ReceiptStatus.PURGED, "art3,art2"),
        ]
        stored = sink.notice(NOTICE_ID, READ)
        assert stored is not None
        assert (stored["state"], stored["state_reason"]) == ("refused", "art3,art2")
        assert stored["view"] is None
        assert stored["withheld"] is None
    finally:
        sink.close()
    assert FAMILY.encode() not in on_disk(sqlite_path)


def test_a_refusal_before_its_notice_stores_it_without_personal_data(sqlite_path: Path) -> None:
    """The refusal first: the notice is answered purged (the ground) and never stored."""
    sink = SqliteSink(sqlite_path)
    try:
        inbox = Inbox(pipeline(sink))
        red = notice()
        inbox.deliver(review(red, "refused", grounds=("refugee",)))
        out = inbox.deliver(red)
        assert out.delivered == (red, Applied.PURGED)
        assert receipts(out) == [("IT", red.msg_id, ReceiptStatus.PURGED, "refugee")]
        assert state(sink) == NoticeState.REFUSED
        # a redelivery after a crash is answered the same way
        again = inbox.pipe.sink.seen("IT", red.msg_id)
        assert again is not None
        assert again.reason == "refugee"
    finally:
        sink.close()
    assert FAMILY.encode() not in on_disk(sqlite_path)


def test_a_refusal_is_final(sink: Sink) -> None:
    """Neither an unblock nor an approval nor a new version brings a refused notice back."""
    inbox = Inbox(pipeline(sink))
    v1 = notice(1)
    inbox.deliver(v1)
    inbox.deliver(review(v1, "refused", grounds=("art3",)))
    inbox.deliver(oversight(UNBLOCK))
    assert state(sink) == NoticeState.REFUSED
    v2 = notice(2)
    assert inbox.deliver(v2).delivered == (v2, Applied.PURGED)
    inbox.deliver(review(v2))
    assert state(sink) == NoticeState.REFUSED
    stored = sink.notice(NOTICE_ID, READ)
    assert stored is not None
    assert stored["view"] is None


def test_block_restricts_unblock_lifts_and_an_update_stays_blocked(sink: Sink) -> None:
    """block -> blocked (reason shown, view kept); an update of the blocked notice stays
    blocked; unblock of the case -> back to what the review says."""
    inbox = Inbox(pipeline(sink))
    v1 = notice(1)
    inbox.deliver(v1)
    inbox.deliver(review(v1))
    inbox.deliver(oversight(BLOCK))
    stored = sink.notice(NOTICE_ID, READ)
    assert stored is not None
    assert (stored["state"], stored["state_reason"]) == (
        "blocked",
        "CCF-2026-7: challenge pending",
    )
    assert stored["view"] is not None  # kept, restricted
    v2 = notice(2)
    inbox.deliver(v2)
    inbox.deliver(review(v2))
    assert state(sink) == NoticeState.BLOCKED
    inbox.deliver(oversight(UNBLOCK, "CCF-1999-1"))  # another case: still blocked
    assert state(sink) == NoticeState.BLOCKED
    inbox.deliver(oversight(UNBLOCK))
    assert state(sink) == NoticeState.ACTIONABLE


def test_a_block_before_its_notice_applies_on_arrival(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink))
    inbox.deliver(oversight(BLOCK))
    red = notice()
    inbox.deliver(red)
    inbox.deliver(review(red))
    assert state(sink) == NoticeState.BLOCKED
    # an unblock that overtook its block lifts it whatever the order
    inbox.deliver(oversight(UNBLOCK))
    assert state(sink) == NoticeState.ACTIONABLE


def test_an_unblock_before_its_block_lifts_it(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink, needs_review=lambda kind, notice_type, sender: False))
    inbox.deliver(notice())
    inbox.deliver(oversight(UNBLOCK))
    inbox.deliver(oversight(BLOCK))
    assert state(sink) == NoticeState.ACTIONABLE


def test_suspend_and_cancel_are_states_too(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink, needs_review=lambda kind, notice_type, sender: False))
    inbox.deliver(notice())
    suspend = opened(fact_sealed_lifecycle("suspend"))
    inbox.deliver(suspend)
    assert state(sink) == NoticeState.SUSPENDED
    inbox.deliver(opened(fact_sealed_lifecycle("cancel")))
    assert state(sink) == NoticeState.CANCELLED


def fact_sealed_lifecycle(kind: str) -> Sealed:
    """IT's suspend / cancel of its notice (a lifecycle message, no personal data)."""
    return seal(
        signer=IT,
        kind=kind,
        notice_id=NOTICE_ID,
        notice_type="red",
        header={"notice_id": NOTICE_ID, "notice_type": "red", kind: {"reason": "x"}},
        units={},
        grants={"FR": Grant(frozenset(), (), f"lifecycle:{kind}")},
        handling="H0",
    )


def test_delete_purges_and_answers_the_sender_and_the_oversight_body(sqlite_path: Path) -> None:
    sink = SqliteSink(sqlite_path)
    try:
        inbox = Inbox(pipeline(sink))
        red = notice()
        inbox.deliver(red)
        inbox.deliver(review(red))
        delete = oversight(DELETE, "CCF-2026-9")
        out = inbox.deliver(delete)
        assert receipts(out) == [
            ("XO", delete.msg_id, ReceiptStatus.PURGED, None),
            ("IT", red.msg_id, ReceiptStatus.PURGED, "delete:CCF-2026-9"),
        ]
        stored = sink.notice(NOTICE_ID, READ)
        assert stored is not None
        assert (stored["state"], stored["state_reason"]) == ("purged", "delete:CCF-2026-9")
        assert stored["view"] is None
    finally:
        sink.close()
    assert FAMILY.encode() not in on_disk(sqlite_path)


def test_a_delete_before_its_notice_answers_both_when_it_arrives(sqlite_path: Path) -> None:
    sink = SqliteSink(sqlite_path)
    try:
        inbox = Inbox(pipeline(sink))
        delete = oversight(DELETE, "CCF-2026-9")
        inbox.deliver(delete)
        red = notice()
        out = inbox.deliver(red)
        assert receipts(out) == [
            ("IT", red.msg_id, ReceiptStatus.PURGED, "delete:CCF-2026-9"),
            ("XO", delete.msg_id, ReceiptStatus.PURGED, None),
        ]
        assert state(sink) == NoticeState.PURGED
    finally:
        sink.close()
    assert FAMILY.encode() not in on_disk(sqlite_path)


def test_a_redelivery_after_a_crash_answers_the_purge_again(sink: Sink) -> None:
    """A refusal, or a notice that arrived deleted, read again at the same offset (its commit
    was lost): the same receipts, the purged ones to the sender and the oversight body too."""
    inbox = Inbox(pipeline(sink))
    red = notice()
    inbox.deliver(red)
    refusal = review(red, "refused", grounds=("criteria",))
    first = receipts(inbox.deliver(refusal))
    assert receipts(inbox.at(refusal, inbox.offset)) == first
    assert ("IT", red.msg_id, ReceiptStatus.PURGED, "criteria") in first


def test_a_redelivered_notice_that_arrived_deleted_answers_both_again(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink))
    inbox.deliver(oversight(DELETE, "CCF-2026-9"))
    red = notice()
    first = receipts(inbox.deliver(red))
    assert len(first) == 2
    assert receipts(inbox.at(red, inbox.offset)) == first


# --- attacks ------------------------------------------------------------------------------


def test_a_forged_attestation_is_refused_at_the_signature() -> None:
    """A refusal turned into an approval (statement changed, signature kept) fails the
    signature check; so does a review claiming to come from XR signed by IT's key."""
    red = notice()
    refusal = fact_sealed(
        MessageKind.REVIEW,
        {
            "subject_sender": "IT",
            "subject_msg_id": red.msg_id,
            "statement_hash": red.statement_hash,
            "decision": "refused",
            "grounds": ["art3"],
            "reason": "political",
        },
        signer=XR,
    )
    with pytest.raises(EnvelopeRejected) as caught:
        forged(refusal, decision="approved", grounds=[])
    assert caught.value.reason == Reason.SIGNATURE


def test_an_attestation_from_a_bureau_without_the_role_is_quarantined(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink))
    red = notice()
    inbox.deliver(red)
    for signer in (IT, XO):
        out = inbox.deliver(review(red, signer=signer))
        assert out.quarantine == Reason.NOT_REVIEWER
        assert receipts(out)[0][2:] == (ReceiptStatus.REJECTED, Reason.NOT_REVIEWER)
    assert state(sink) == NoticeState.PENDING_REVIEW


def test_oversight_decisions_from_others_are_quarantined(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink, needs_review=lambda kind, notice_type, sender: False))
    inbox.deliver(notice())
    for kind in (BLOCK, UNBLOCK, DELETE):
        for signer in (IT, XR):
            assert inbox.deliver(oversight(kind, signer=signer)).quarantine == (
                Reason.NOT_OVERSIGHT
            )
    assert state(sink) == NoticeState.ACTIONABLE


def test_an_attestation_of_another_statement_is_quarantined(sink: Sink) -> None:
    """The msg id of the stored message with a different statement hash: review-mismatch;
    the notice stays pending (also for a refusal: nothing is purged)."""
    inbox = Inbox(pipeline(sink))
    red, other = notice(1), notice(2)
    inbox.deliver(red)
    for decision, grounds in (("approved", ()), ("refused", ("art3",))):
        out = inbox.deliver(
            review(red, decision, grounds=grounds, statement_hash=other.statement_hash)
        )
        assert out.quarantine == Reason.REVIEW_MISMATCH
    assert state(sink) == NoticeState.PENDING_REVIEW
    stored = sink.notice(NOTICE_ID, READ)
    assert stored is not None
    assert stored["view"] is not None


def test_a_mismatched_attestation_before_its_notice_never_applies(sink: Sink) -> None:
    """Arriving first it cannot be checked yet: it is kept, but it names another statement,
    so it neither approves nor refuses the notice when that arrives."""
    inbox = Inbox(pipeline(sink))
    red, other = notice(1), notice(2)
    inbox.deliver(review(red, statement_hash=other.statement_hash))
    inbox.deliver(review(red, "refused", grounds=("art3",), statement_hash=other.statement_hash))
    inbox.deliver(red)
    assert state(sink) == NoticeState.PENDING_REVIEW


def test_a_replayed_attestation_is_quarantined_and_does_not_cover_an_update(sink: Sink) -> None:
    """The v1 approval frame read again at another offset: replay; v2 stays pending."""
    inbox = Inbox(pipeline(sink))
    v1, v2 = notice(1), notice(2)
    inbox.deliver(v1)
    approval = review(v1)
    inbox.deliver(approval)
    inbox.deliver(v2)
    assert inbox.deliver(approval).quarantine == Reason.REPLAY
    assert state(sink) == NoticeState.PENDING_REVIEW


def test_a_review_without_grounds_or_with_a_bad_body_is_a_schema_rejection(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink))
    red = notice()
    inbox.deliver(red)
    body = {
        "subject_sender": "IT",
        "subject_msg_id": red.msg_id,
        "statement_hash": red.statement_hash,
        "decision": "refused",
        "grounds": [],
        "reason": "no grounds",
    }
    out = inbox.deliver(opened(fact_sealed(MessageKind.REVIEW, body, signer=XR)))
    assert out.quarantine == Reason.SCHEMA
    assert state(sink) == NoticeState.PENDING_REVIEW


# --- the store ----------------------------------------------------------------------------

V2_NOTICES = """
CREATE TABLE notices (
    notice_id TEXT NOT NULL, sender TEXT NOT NULL, notice_type TEXT NOT NULL,
    version INTEGER NOT NULL, status TEXT NOT NULL, view TEXT, withheld TEXT,
    policy TEXT NOT NULL, msg_id TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (sender, notice_id)
);
INSERT INTO notices VALUES ('IT-A', 'IT', 'red', 1, 'active', '{}', '[]', 'p', 'm1', '2026');
INSERT INTO notices VALUES ('IT-B', 'IT', 'red', 1, 'suspended', '{}', '[]', 'p', 'm2', '2026');
INSERT INTO notices VALUES ('IT-C', 'IT', 'red', 1, 'erased', NULL, NULL, 'p', 'm3', '2026');
CREATE TABLE sent (
    msg_id TEXT NOT NULL, notice_id TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, at TEXT NOT NULL, PRIMARY KEY (msg_id, recipient)
);
INSERT INTO sent VALUES ('m0', 'IT-X', 'DE', 'publish', 'sent', NULL, '2026');
PRAGMA user_version = 2;
"""


def test_a_store_of_schema_2_is_migrated_with_derived_states(sqlite_path: Path) -> None:
    db = sqlite3.connect(sqlite_path)
    db.executescript(V2_NOTICES)
    db.close()
    sqlite_path.chmod(0o600)
    sink = SqliteSink(sqlite_path)
    try:
        states = {r["notice_id"]: r["state"] for r in sink.notices()}
        assert states == {"IT-A": "actionable", "IT-B": "suspended", "IT-C": "purged"}
        red = notice()
        Inbox(pipeline(sink)).deliver(red)
        assert state(sink) == NoticeState.PENDING_REVIEW
        sink.record_sent(
            "m1", "IT-X", "FR", MessageKind.PUBLISH, SendStatus.SENT, None, statement_hash="h"
        )
        sent = {
            m["msg_id"]: m["statement_hash"] for r in sink.status("IT-X") for m in r["messages"]
        }
        assert sent == {"m0": None, "m1": "h"}
    finally:
        sink.close()
    version = sqlite3.connect(sqlite_path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == 6


def test_the_refusal_rate_counts_the_recent_reviews_of_a_sender(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """None without reviews; 0.5 after one approval and one refusal of IT's messages; reviews
    older than the window no longer count (the window shrunk to nothing instead of waiting)."""
    inbox = Inbox(pipeline(sink))
    assert sink.refusal_rate("IT") is None
    first, second = notice(), notice(2)
    inbox.deliver(first)
    inbox.deliver(review(first, "approved"))
    inbox.deliver(second)
    inbox.deliver(review(second, "refused", grounds=("art3",)))
    assert sink.refusal_rate("IT") == 0.5
    assert sink.refusal_rate("DE") is None
    monkeypatch.setattr("broker.sinks.base.REFUSAL_WINDOW", timedelta(days=-1))
    assert sink.refusal_rate("IT") is None
