"""The transparency report's figures, counted from audit entries (pure functions: no store, no
clock, no I/O), and their published form with small counts suppressed.

What each count means is in docs/safeguards.md, "Transparency report". The input is what a
node's store already holds: its audit log (:class:`~broker.sinks.base.AuditEntry`), the current
derived state of every notice it stores, and the purging messages it sent whose recipients have
not confirmed them (:class:`~broker.sinks.base.OverdueRow`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from broker.sinks.base import APPROVED, REFUSED, AuditEntry, OverdueRow
from broker.vocab import (
    AuditAction,
    Ground,
    MessageKind,
    NoticeState,
    PurgeReason,
    Reason,
    ResponseKind,
)

__all__ = [
    "FORMAT",
    "SUPPRESSED",
    "THRESHOLD",
    "Counts",
    "Key",
    "Tally",
    "count_entries",
    "percentile",
    "published",
    "shown",
]

#: counts from 1 to THRESHOLD - 1 are never published: they read SUPPRESSED
THRESHOLD: Final = 5
#: what a suppressed count reads, in the JSON and on the page
SUPPRESSED: Final = f"<{THRESHOLD}"
#: the ``format`` of the JSON report
FORMAT: Final = "nbx-report/1"

#: one row of the report: (sender, notice type); ``None`` where an entry does not say (a
#: quarantined record whose sender could not be read)
Key = tuple[str | None, str | None]

#: the received messages that carry a notice (a version of it)
_VERSION_KINDS: Final = frozenset({MessageKind.PUBLISH.value, MessageKind.UPDATE.value})
#: a purging message's own entry (the other erasure entries are purges it did not send)
_MESSAGE_PURGES: Final = frozenset({PurgeReason.CANCEL.value, PurgeReason.ERASURE.value})
_GROUNDS: Final = frozenset(g.value for g in Ground)
#: the reason of a ``rejection`` entry for an older version than the one stored (not quarantined)
STALE: Final = "stale"


def shown(n: int) -> int | str:
    """A count as published: ``0`` and counts of at least :data:`THRESHOLD` as they are, the
    others (1 to 4) as :data:`SUPPRESSED`."""
    return SUPPRESSED if 0 < n < THRESHOLD else n


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0 < p <= 100) of ``values`` by the nearest-rank method: the
    smallest value with at least ``p`` % of the values at or below it."""
    if not values:
        msg = "percentile of no values"
        raise ValueError(msg)
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Counts:
    """The exact figures of one row (a sender and notice type), or of the totals."""

    received: int = 0
    actionable: int = 0
    refusals: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # by ground
    declined: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)  # by Reason
    blocked: int = 0
    deleted: int = 0
    purged: Counter[str] = field(default_factory=Counter)  # by PurgeReason
    overdue: int = 0
    review_times: list[float] = field(default_factory=list)  # seconds
    responses: Counter[str] = field(default_factory=Counter)  # answers to notices, by kind

    def add(self, other: Counts) -> None:
        """Add ``other``'s figures to these (for the totals)."""
        self.received += other.received
        self.actionable += other.actionable
        self.refusals += other.refusals
        self.refused.update(other.refused)
        self.declined += other.declined
        self.quarantined.update(other.quarantined)
        self.blocked += other.blocked
        self.deleted += other.deleted
        self.purged.update(other.purged)
        self.overdue += other.overdue
        self.review_times.extend(other.review_times)
        self.responses.update(other.responses)


@dataclass
class Tally:
    """Everything the report counts, exact (never published as such: see :func:`published`)."""

    rows: dict[Key, Counts] = field(default_factory=dict)
    overdue_by_recipient: Counter[str] = field(default_factory=Counter)

    def row(self, key: Key) -> Counts:
        """The row of ``key``, created empty the first time."""
        return self.rows.setdefault(key, Counts())

    def totals(self) -> Counts:
        """The sum of every row."""
        total = Counts()
        for counts in self.rows.values():
            total.add(counts)
        return total


def _in_period(at: str, since: str | None, until: str | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def count_entries(
    entries: Iterable[AuditEntry],
    states: Mapping[tuple[str, str], str],
    overdue: Iterable[OverdueRow] = (),
    *,
    since: str | None = None,
    until: str | None = None,
    own: str | None = None,
    notice_senders: Mapping[str, str] | None = None,
) -> Tally:
    """Count the report's figures from a node's audit ``entries`` (oldest first).

    Entries whose ``at`` lies in ``[since, until)`` are counted; earlier ones are read only to
    find when a message this node reviewed in the period was received. ``states`` is the
    current derived state (a :class:`~broker.vocab.NoticeState`) of each stored notice by
    ``(sender, notice_id)``; ``overdue`` the unconfirmed purging messages this node sent (those
    sent in the period are counted), filed under the sender of the notice: ``notice_senders``
    (notice id -> sender, for notices this node received) or else ``own``, this bureau.
    """
    tally = Tally()
    entries = list(entries)
    decisions_seen: set[str] = set()
    actionable: set[tuple[str, str]] = set()
    #: the last time each (sender, notice_id) version arrived here, for review times
    arrived: dict[tuple[str | None, str | None], str] = {}
    for e in entries:
        key: Key = (e.sender, e.notice_type)
        counted = _in_period(e.at, since, until)
        if e.action == AuditAction.COLLECTION and e.kind == MessageKind.RESPONSE:
            if counted:  # an answer to a notice (located, arrested...): not a notice received
                tally.row(key).responses[e.outcome or ""] += 1
            continue
        if e.action in (AuditAction.COLLECTION, AuditAction.ALTERATION):
            if e.kind in _VERSION_KINDS or e.kind is None:
                arrived[(e.sender, e.notice_id)] = e.at
            if not counted:
                continue
            tally.row(key).received += 1
            notice = (e.sender or "", e.notice_id or "")
            if (
                (e.kind in _VERSION_KINDS or e.kind is None)
                and states.get(notice) == NoticeState.ACTIONABLE
                and notice not in actionable
            ):
                actionable.add(notice)
                tally.row(key).actionable += 1
        elif not counted:
            continue
        elif e.action == AuditAction.REJECTION:
            row = tally.row(key)
            row.received += 1
            if e.reason == Reason.DECLINED_BY_POLICY:
                row.declined += 1
            elif e.reason != STALE:  # a verified message refused: on the quarantine topic too
                row.quarantined[e.reason or Reason.INTERNAL.value] += 1
        elif e.action == AuditAction.QUARANTINE:
            tally.row(key).quarantined[e.reason or Reason.INTERNAL.value] += 1
        elif e.action == AuditAction.ERASURE:
            row = tally.row(key)
            reason = e.reason or ""
            if reason in _MESSAGE_PURGES and e.kind == reason:
                row.received += 1  # the cancel / erasure message itself
            row.purged[reason] += 1
        elif e.action == AuditAction.DECISION:
            row = tally.row(key)
            if e.operator is not None and e.kind == MessageKind.REVIEW:
                _time_review(row, e, arrived)  # a review taken here (a person ran the command)
            if e.msg_id is not None:
                if e.msg_id in decisions_seen:
                    continue  # the same decision sent and received back here
                decisions_seen.add(e.msg_id)
            _count_decision(row, e)
    for o in overdue:
        if not _in_period(o["sent_at"], since, until):
            continue
        sender = (notice_senders or {}).get(o["notice_id"], own)
        tally.row((sender, o["notice_type"])).overdue += 1
        tally.overdue_by_recipient[o["recipient"]] += 1
    return tally


def _count_decision(row: Counts, e: AuditEntry) -> None:
    """A review, block, unblock or delete this node took or received (once per decision)."""
    if e.kind == MessageKind.REVIEW and e.outcome == REFUSED:
        row.refusals += 1
        grounds = [g.strip() for g in (e.reason or "").split(",") if g.strip()]
        for g in dict.fromkeys(grounds) or [Ground.OTHER.value]:
            row.refused[g if g in _GROUNDS else Ground.OTHER.value] += 1
    elif e.kind == MessageKind.BLOCK:
        row.blocked += 1
    elif e.kind == MessageKind.DELETE:
        row.deleted += 1


def _time_review(
    row: Counts, e: AuditEntry, arrived: Mapping[tuple[str | None, str | None], str]
) -> None:
    """How long after the version it judges arrived here a review was taken here."""
    if e.outcome not in (APPROVED, REFUSED):
        return
    received = arrived.get((e.sender, e.notice_id))
    if received is not None and received <= e.at:
        row.review_times.append(_seconds(e.at, received))


def _review_times(times: Sequence[float]) -> dict[str, Any]:
    """Number of reviews, median and 95th percentile in seconds (times only from 5 reviews on:
    fewer would publish single reviews' times)."""
    n = len(times)
    if n < THRESHOLD:
        return {"reviews": shown(n), "median_s": None, "p95_s": None}
    return {
        "reviews": n,
        "median_s": round(statistics.median(times), 1),
        "p95_s": round(percentile(times, 95), 1),
    }


def _published_counts(
    c: Counts, quarantine_reasons: Sequence[str], purge_reasons: Sequence[str]
) -> dict[str, Any]:
    return {
        "received": shown(c.received),
        "actionable": shown(c.actionable),
        "refusals": shown(c.refusals),
        "refused": {g.value: shown(c.refused[g]) for g in Ground},
        "declined_by_policy": shown(c.declined),
        "quarantined": {r: shown(c.quarantined[r]) for r in quarantine_reasons},
        "blocked": shown(c.blocked),
        "deleted": shown(c.deleted),
        "purged": {r: shown(c.purged[r]) for r in purge_reasons},
        "overdue": shown(c.overdue),
        "review_time": _review_times(c.review_times),
        "responses": {k.value: shown(c.responses[k.value]) for k in ResponseKind},
    }


def _sort_key(key: Key) -> tuple[str, str]:
    return (key[0] or "\uffff", key[1] or "\uffff")


def published(
    tally: Tally,
    *,
    bureau: str,
    since: str | None,
    until: str | None,
    generated_at: str,
) -> dict[str, Any]:
    """The report as published (the JSON of ``nbx report --json``, what the page shows): each
    count a number when it is 0 or at least :data:`THRESHOLD`, else the string
    :data:`SUPPRESSED`; bureau ids, notice types and codes only, never a notice or message id."""
    reasons_seen = {r for c in tally.rows.values() for r in c.quarantined}
    order = [r.value for r in Reason if r.value in reasons_seen]
    quarantine_reasons = order + sorted(reasons_seen - set(order))
    purges_seen = {r for c in tally.rows.values() for r in c.purged}
    purge_reasons = [r.value for r in PurgeReason]
    purge_reasons += sorted(purges_seen - set(purge_reasons))
    rows = [
        {
            "sender": key[0],
            "notice_type": key[1],
            **_published_counts(c, quarantine_reasons, purge_reasons),
        }
        for key, c in sorted(tally.rows.items(), key=lambda kv: _sort_key(kv[0]))
    ]
    return {
        "format": FORMAT,
        "bureau": bureau,
        "since": since,
        "until": until,
        "generated_at": generated_at,
        "threshold": THRESHOLD,
        "suppressed": SUPPRESSED,
        "quarantine_reasons": quarantine_reasons,
        "rows": rows,
        "totals": _published_counts(tally.totals(), quarantine_reasons, purge_reasons),
        "overdue_by_recipient": [
            {"recipient": r, "overdue": shown(n)}
            for r, n in sorted(tally.overdue_by_recipient.items())
        ],
    }
