"""The transparency report of one node, read from its store (docs/safeguards.md,
"Transparency report")."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from broker.errors import NbxError
from broker.report.counts import count_entries, published
from broker.sinks.base import Sink

__all__ = ["parse_time", "report_from_store"]


def parse_time(text: str, *, option: str) -> str:
    """A period bound given on the command line (``2026-11-01``: that day's midnight UTC, or an
    ISO 8601 time; a time without a zone is UTC) in the store's time format (UTC, ISO 8601 with
    milliseconds), so it compares with the audit entries' ``at``."""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{option} {text!r}: expected a date (YYYY-MM-DD) or an ISO 8601 time"
        raise NbxError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def report_from_store(
    sink: Sink, *, bureau: str, since: str | None, until: str | None, now: datetime
) -> dict[str, Any]:
    """The published report (:func:`broker.report.counts.published`) of the period
    ``[since, until)`` (store time format; ``None``: open), from ``sink``'s audit log, the
    current states of the notices it stores and its overdue purge confirmations at ``now``."""
    entries = sink.audit_entries(None, until)
    notices = sink.notices()
    states = {(r["sender"], r["notice_id"]): r["state"] for r in notices}
    senders: dict[str, set[str]] = {}
    for r in notices:
        senders.setdefault(r["notice_id"], set()).add(r["sender"])
    notice_senders = {n: next(iter(s)) for n, s in senders.items() if len(s) == 1}
    tally = count_entries(
        entries,
        states,
        sink.overdue(now),
        since=since,
        until=until,
        own=bureau,
        notice_senders=notice_senders,
    )
    generated_at = now.astimezone(UTC).isoformat(timespec="milliseconds")
    return published(tally, bureau=bureau, since=since, until=until, generated_at=generated_at)
