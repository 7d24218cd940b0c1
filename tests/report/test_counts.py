"""The transparency report's counting, from audit entries built here (no store, no broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from broker.errors import NbxError
from broker.report import (
    SUPPRESSED,
    THRESHOLD,
    count_entries,
    parse_time,
    published,
    render_html,
    shown,
)
from broker.report.counts import percentile
from broker.sinks.base import AuditEntry, OverdueRow
from broker.vocab import AuditAction, Ground, MessageKind, NoticeState, PurgeReason, Reason

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    """The store time ``minutes`` after T0."""
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


class Log:
    """Builds audit entries as the plan's rule 1 fills them, one per call, in order."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self._seq: Iterator[int] = count(1)
        self._msg: Iterator[int] = count(1)
        self.clock = 0.0

    def add(
        self,
        action: AuditAction,
        *,
        sender: str | None,
        notice_id: str | None,
        notice_type: str | None = "red",
        kind: str | None = None,
        bureaus: tuple[str, ...] = (),
        operator: str | None = None,
        outcome: str | None = None,
        reason: str | None = None,
        msg_id: str | None = None,
        minutes: float | None = None,
    ) -> AuditEntry:
        """Append one entry (a minute after the previous one unless ``minutes`` says when)."""
        self.clock = self.clock + 1 if minutes is None else minutes
        seq = next(self._seq)
        entry = AuditEntry(
            seq=seq,
            at=at(self.clock),
            action=action.value,
            notice_id=notice_id,
            msg_id=msg_id or f"m{next(self._msg)}",
            sender=sender,
            notice_type=notice_type,
            kind=kind,
            bureaus=bureaus,
            operator=operator,
            purpose=None,
            outcome=outcome,
            reason=reason,
            prev="0" * 64,
            hash=f"{seq:064x}",
        )
        self.entries.append(entry)
        return entry

    def publish(self, sender: str, notice_id: str, notice_type: str = "red", **kw: object) -> None:
        """A publish received and stored."""
        self.add(
            AuditAction.COLLECTION,
            sender=sender,
            notice_id=notice_id,
            notice_type=notice_type,
            kind=MessageKind.PUBLISH,
            outcome="delivered",
            bureaus=(sender,),
            **kw,  # type: ignore[arg-type]
        )

    def review(
        self,
        sender: str,
        notice_id: str,
        decision: str,
        grounds: str | None = None,
        *,
        own: bool = False,
        **kw: object,
    ) -> None:
        """A review decision received from XR (or taken here, ``own``: with an operator)."""
        self.add(
            AuditAction.DECISION,
            sender=sender,
            notice_id=notice_id,
            kind=MessageKind.REVIEW,
            bureaus=("FR", "DE") if own else ("XR",),
            operator="alice" if own else None,
            outcome=decision,
            reason=grounds,
            **kw,  # type: ignore[arg-type]
        )

    def purge(self, sender: str, notice_id: str, reason: PurgeReason, kind: str | None) -> None:
        """A purge that is not a cancel / erasure message (refusal, delete, retention)."""
        self.add(
            AuditAction.ERASURE,
            sender=sender,
            notice_id=notice_id,
            kind=kind,
            outcome="purged",
            reason=reason,
        )


def test_shown_suppresses_one_to_four_and_keeps_zero_and_five() -> None:
    """The threshold: 0 is published (nothing happened), 1..4 read "<5", 5 and above exact."""
    assert THRESHOLD == 5
    assert SUPPRESSED == "<5"
    assert [shown(n) for n in range(7)] == [0, "<5", "<5", "<5", "<5", 5, 6]


def test_percentile_is_the_nearest_rank() -> None:
    """p95 of 1..20 is 19, of 1..10 is 10; the median of two values is not a percentile here."""
    assert percentile([float(i) for i in range(20, 0, -1)], 95) == 19.0
    assert percentile([float(i) for i in range(1, 11)], 95) == 10.0
    assert percentile([3.0], 95) == 3.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_every_count_of_one_sender_and_type() -> None:
    """Every kind of entry lands in its own count of the sender's row (exact before
    publication)."""
    log = Log()
    for i in range(7):
        log.publish("IT", f"IT-{i}")
    log.add(
        AuditAction.ALTERATION, sender="IT", notice_id="IT-0", kind=MessageKind.UPDATE,
        outcome="delivered", bureaus=("IT",),
    )  # fmt: skip
    log.add(
        AuditAction.ALTERATION, sender="IT", notice_id="IT-1", kind=MessageKind.SUSPEND,
        outcome="suspended", bureaus=("IT",),
    )  # fmt: skip
    # a refusal on two grounds, received, and the purge it causes
    log.review("IT", "IT-2", "refused", "art2,art3")
    log.purge("IT", "IT-2", PurgeReason.REFUSED, MessageKind.REVIEW)
    # an approval changes no count
    log.review("IT", "IT-0", "approved")
    # oversight: block, unblock, delete (and the delete's purge)
    for kind in (MessageKind.BLOCK, MessageKind.UNBLOCK, MessageKind.DELETE):
        log.add(
            AuditAction.DECISION, sender="IT", notice_id="IT-3", kind=kind, bureaus=("XO",),
            outcome=kind, reason="CCF-1",
        )  # fmt: skip
    log.purge("IT", "IT-3", PurgeReason.DELETE, MessageKind.DELETE)
    # a cancel message, an erasure message, a retention sweep
    for kind in (MessageKind.CANCEL, MessageKind.ERASURE):
        log.add(
            AuditAction.ERASURE, sender="IT", notice_id="IT-4", kind=kind, outcome="purged",
            reason=kind, bureaus=("IT",),
        )  # fmt: skip
    log.purge("IT", "IT-5", PurgeReason.RETENTION_EXPIRED, None)
    # declined by inbound policy, a stale version, two quarantined records
    log.add(
        AuditAction.REJECTION, sender="IT", notice_id="IT-9", kind=MessageKind.PUBLISH,
        outcome="rejected", reason=Reason.DECLINED_BY_POLICY,
    )  # fmt: skip
    log.add(
        AuditAction.REJECTION, sender="IT", notice_id="IT-0", kind=MessageKind.UPDATE,
        outcome="stale", reason="stale",
    )  # fmt: skip
    log.add(AuditAction.QUARANTINE, sender="IT", notice_id=None, reason=Reason.SIGNATURE)
    log.add(
        AuditAction.QUARANTINE, sender=None, notice_id=None, notice_type=None, reason=Reason.FRAME
    )
    # what is not counted: a consultation and a disclosure
    log.add(AuditAction.CONSULTATION, sender="IT", notice_id="IT-0", operator="bob")
    log.add(AuditAction.DISCLOSURE, sender="FR", notice_id="FR-1", bureaus=("IT", "DE"))

    states = {("IT", f"IT-{i}"): NoticeState.ACTIONABLE.value for i in (0, 6)}
    states |= {("IT", "IT-1"): NoticeState.SUSPENDED, ("IT", "IT-2"): NoticeState.REFUSED}
    tally = count_entries(log.entries, states)

    assert set(tally.rows) == {("IT", "red"), (None, None)}
    c = tally.rows[("IT", "red")]
    # 7 publishes + update + suspend + cancel + erasure + 2 rejections
    assert c.received == 13
    assert c.actionable == 2  # IT-0 and IT-6, IT-0 counted once though updated
    assert c.refusals == 1
    assert dict(c.refused) == {Ground.ART2: 1, Ground.ART3: 1}
    assert c.declined == 1
    assert dict(c.quarantined) == {Reason.SIGNATURE: 1}
    assert (c.blocked, c.deleted) == (1, 1)
    assert dict(c.purged) == {
        PurgeReason.REFUSED: 1,
        PurgeReason.DELETE: 1,
        PurgeReason.CANCEL: 1,
        PurgeReason.ERASURE: 1,
        PurgeReason.RETENTION_EXPIRED: 1,
    }
    assert c.overdue == 0
    assert c.review_times == []  # the reviews were received, not taken here
    unknown = tally.rows[(None, None)]
    assert dict(unknown.quarantined) == {Reason.FRAME: 1}
    assert unknown.received == 0


def test_rows_are_per_sender_and_notice_type_and_totals_add_up() -> None:
    """Two senders, two types: four rows; the totals are their sums."""
    log = Log()
    for sender, notice_type, n in [("IT", "red", 6), ("IT", "blue", 2), ("DE", "red", 5)]:
        for i in range(n):
            log.publish(sender, f"{sender}-{notice_type}-{i}", notice_type)
    log.review("DE", "DE-red-0", "refused", "criteria")
    tally = count_entries(log.entries, {})
    assert {k: c.received for k, c in tally.rows.items()} == {
        ("IT", "red"): 6,
        ("IT", "blue"): 2,
        ("DE", "red"): 5,
    }
    totals = tally.totals()
    assert totals.received == 13
    assert dict(totals.refused) == {Ground.CRITERIA: 1}


def test_the_period_bounds_what_is_counted() -> None:
    """Entries before ``since`` or at / after ``until`` are not counted."""
    log = Log()
    for minute in range(10):
        log.publish("IT", f"IT-{minute}", minutes=minute)
    tally = count_entries(log.entries, {}, since=at(2), until=at(7))
    assert tally.rows[("IT", "red")].received == 5  # minutes 2, 3, 4, 5, 6


@pytest.mark.parametrize("own_first", [True, False])
def test_a_decision_sent_and_received_back_counts_once(own_first: bool) -> None:
    """The same refusal (one msg id) taken here and received back here, in either order, is
    one refusal, and its review time is counted (from the entry with the operator)."""
    log = Log()
    log.publish("IT", "IT-1", minutes=0)
    for own in (own_first, not own_first):
        log.review("IT", "IT-1", "refused", "art3", own=own, msg_id="r1", minutes=2)
    c = count_entries(log.entries, {}).rows[("IT", "red")]
    assert c.refusals == 1
    assert dict(c.refused) == {Ground.ART3: 1}
    assert c.review_times == [120.0]


def test_a_verified_message_rejected_counts_as_received_and_quarantined() -> None:
    """A rejection (schema, review-mismatch, ...) is on the quarantine topic too; a declined
    one is counted as declined only, a stale one as received only."""
    log = Log()
    for reason in (Reason.SCHEMA, Reason.DECLINED_BY_POLICY, "stale"):
        log.add(
            AuditAction.REJECTION, sender="IT", notice_id="IT-1", kind=MessageKind.PUBLISH,
            outcome="rejected", reason=reason,
        )  # fmt: skip
    c = count_entries(log.entries, {}).rows[("IT", "red")]
    assert (c.received, c.declined) == (3, 1)
    assert dict(c.quarantined) == {Reason.SCHEMA: 1}


def test_unknown_or_missing_grounds_count_as_other() -> None:
    """A refusal whose grounds the vocabulary does not know, or that has none, is "other"."""
    log = Log()
    log.review("IT", "IT-1", "refused", "bogus")
    log.review("IT", "IT-2", "refused", None)
    log.review("IT", "IT-3", "refused", "art2, art2")
    c = count_entries(log.entries, {}).rows[("IT", "red")]
    assert c.refusals == 3
    assert dict(c.refused) == {Ground.OTHER: 2, Ground.ART2: 1}


def test_review_times_are_from_arrival_to_this_nodes_decision() -> None:
    """On a reviewer node: from the version's collection (or update) to the decision taken
    here, also when the message arrived before the period; received reviews are not timed."""
    log = Log()
    log.publish("IT", "IT-1", minutes=0)  # before the period
    log.publish("IT", "IT-2", minutes=10)
    log.review("IT", "IT-1", "approved", own=True, minutes=12)  # 12 min
    log.review("IT", "IT-2", "refused", "art3", own=True, minutes=13)  # 3 min
    log.add(
        AuditAction.ALTERATION, sender="IT", notice_id="IT-1", kind=MessageKind.UPDATE,
        outcome="delivered", minutes=20,
    )  # fmt: skip
    log.review("IT", "IT-1", "approved", own=True, minutes=21)  # 1 min after the update
    log.review("IT", "IT-1", "approved", minutes=22)  # another reviewer's: not timed here
    c = count_entries(log.entries, {}, since=at(5)).rows[("IT", "red")]
    assert sorted(c.review_times) == [60.0, 180.0, 720.0]


def test_overdue_rows_count_per_sender_type_and_recipient() -> None:
    """Overdue confirmations sent in the period: under this bureau for its own notices, under
    the notice's sender for a refusal this reviewer sent about a notice it holds."""
    rows: list[OverdueRow] = [
        {
            "notice_id": notice_id,
            "notice_type": "red",
            "recipient": recipient,
            "msg_id": f"m-{notice_id}-{recipient}",
            "kind": kind,
            "sent_at": at(minute),
            "deadline": at(minute + 60),
        }
        for notice_id, recipient, kind, minute in [
            ("FR-1", "DE", MessageKind.ERASURE, 1),
            ("FR-1", "IT", MessageKind.ERASURE, 1),
            ("FR-2", "DE", MessageKind.CANCEL, 2),
            ("IT-7", "DE", MessageKind.REVIEW, 3),
            ("FR-3", "DE", MessageKind.CANCEL, 90),  # after the period
        ]
    ]
    tally = count_entries([], {}, rows, until=at(60), own="FR", notice_senders={"IT-7": "IT"})
    assert {k: c.overdue for k, c in tally.rows.items()} == {("FR", "red"): 3, ("IT", "red"): 1}
    assert dict(tally.overdue_by_recipient) == {"DE": 3, "IT": 1}


def test_published_suppresses_small_counts_in_every_figure_and_holds_no_ids() -> None:
    """The JSON: numbers for 0 and >= 5, "<5" for 1..4, everywhere (rows, totals, grounds,
    purges, quarantine, recipients); review times only from 5 reviews; no notice or msg id."""
    log = Log()
    for i in range(6):
        log.publish("IT", f"IT-{i}")
    log.publish("DE", "DE-0")
    for i in range(5):
        log.review("IT", f"IT-{i}", "refused", "art3", own=True)
    log.review("DE", "DE-0", "refused", "art2", own=True)
    log.add(AuditAction.QUARANTINE, sender="DE", notice_id=None, reason=Reason.REPLAY)
    overdue: list[OverdueRow] = [
        {
            "notice_id": "FR-1",
            "notice_type": "red",
            "recipient": "DE",
            "msg_id": "m-x",
            "kind": MessageKind.ERASURE,
            "sent_at": at(1),
            "deadline": at(2),
        }
    ]
    states = {("IT", f"IT-{i}"): NoticeState.ACTIONABLE.value for i in range(6)}
    tally = count_entries(log.entries, states, overdue, own="FR")
    report = published(tally, bureau="XR", since=None, until=at(100), generated_at=at(100))

    assert report["threshold"] == 5
    assert report["suppressed"] == "<5"
    assert report["quarantine_reasons"] == ["replay"]
    rows = {(r["sender"], r["notice_type"]): r for r in report["rows"]}
    assert list(rows) == [("DE", "red"), ("FR", "red"), ("IT", "red")]  # sorted
    it, de = rows[("IT", "red")], rows[("DE", "red")]
    assert it["received"] == 6
    assert it["actionable"] == 6
    assert it["refused"] == {"criteria": 0, "art2": 0, "art3": 5, "refugee": 0, "other": 0}
    assert it["review_time"]["reviews"] == 5
    # IT-0..4 published at minutes 1..5, reviewed here at 8..12: 7 minutes each
    assert it["review_time"] == {"reviews": 5, "median_s": 420.0, "p95_s": 420.0}
    assert de["received"] == "<5"
    assert de["refused"]["art2"] == "<5"
    assert de["quarantined"] == {"replay": "<5"}
    assert de["review_time"] == {"reviews": "<5", "median_s": None, "p95_s": None}
    assert rows[("FR", "red")]["overdue"] == "<5"
    assert report["overdue_by_recipient"] == [{"recipient": "DE", "overdue": "<5"}]
    totals = report["totals"]
    assert totals["received"] == 7
    assert totals["refusals"] == 6
    assert totals["refused"]["art2"] == "<5"
    assert totals["purged"] == {r.value: 0 for r in PurgeReason}
    text = json.dumps(report)
    assert "IT-0" not in text
    assert "m-x" not in text
    assert "alice" not in text  # the operator is not published either


def test_parse_time_gives_the_store_format() -> None:
    """A date is its midnight UTC; a zoned time is converted to UTC; a naive time is UTC; bad
    input is one clear error."""
    assert parse_time("2026-11-02", option="--since") == "2026-11-02T00:00:00.000+00:00"
    assert parse_time("2026-11-02T10:30+01:00", option="--since") == (
        "2026-11-02T09:30:00.000+00:00"
    )
    assert parse_time("2026-11-02T09:30:15", option="--until") == "2026-11-02T09:30:15.000+00:00"
    with pytest.raises(NbxError, match=r"^--until 'yesterday': expected a date \(YYYY-MM-DD\)"):
        parse_time("yesterday", option="--until")


def test_every_row_lists_the_same_purge_and_quarantine_reasons() -> None:
    """A reason only one row has (even one outside the vocabulary) is a column of every row and
    of the totals, so the page's tables line up."""
    log = Log()
    log.purge("IT", "IT-1", PurgeReason.REFUSED, MessageKind.REVIEW)
    log.add(AuditAction.ERASURE, sender="DE", notice_id="DE-1", outcome="purged", reason="future")
    log.add(AuditAction.QUARANTINE, sender="DE", notice_id=None, reason=Reason.DECRYPT)
    report = published(
        count_entries(log.entries, {}), bureau="FR", since=None, until=None, generated_at=at(9)
    )
    keys = [*(r.value for r in PurgeReason), "future"]
    for part in [*report["rows"], report["totals"]]:
        assert list(part["purged"]) == keys
        assert list(part["quarantined"]) == ["decrypt"]
    assert [r["purged"]["future"] for r in report["rows"]] == ["<5", 0]  # DE, IT
    page = render_html(report)
    assert 'data-k="rows.1.purged.future">0<' in page
    assert 'data-k="totals.purged.future">&lt;5<' in page


def test_answers_are_counted_by_kind_and_not_as_notices_received() -> None:
    """Responses received (audit `collection` of kind `response`, outcome its kind) are counted
    per answering bureau and notice type by kind, and are not messages carrying a notice: the
    row's `received` stays what it was; small counts are suppressed like every other."""
    log = Log()
    log.add(AuditAction.COLLECTION, sender="FR", notice_id="IT-1", kind="publish")
    for _ in range(5):
        log.add(AuditAction.COLLECTION, sender="FR", notice_id="IT-1", kind="response",
                outcome="located")  # fmt: skip
    log.add(AuditAction.COLLECTION, sender="FR", notice_id="IT-1", kind="response",
            outcome="arrested")  # fmt: skip
    tally = count_entries(log.entries, {})
    row = tally.rows[("FR", "red")]
    assert row.received == 1
    assert row.responses == {"located": 5, "arrested": 1}
    report = published(tally, bureau="IT", since=None, until=None, generated_at=at(0))
    assert report["rows"][0]["responses"]["located"] == 5
    assert report["rows"][0]["responses"]["arrested"] == SUPPRESSED
    assert report["totals"]["responses"]["not-the-person"] == 0
    page = render_html(report)
    assert "Answers received by kind" in page
