"""Retention: how long a stored notice may be kept (docs/safeguards.md, "Retention and proven
erasure").

A notice's ``retain_until`` is the earliest of

* the notice's own expiry: its header's ``retention_until`` (a date, always disclosed), read as
  the *start* of that day in UTC (the notice is not kept into the day it names);
* the holder's maximum retention for the notice's type (its own policy file's ``[retention]``,
  :data:`DEFAULT_MAX_RETENTION` when it says nothing), counted from the notice's ``created_at``
  (from the time it was stored when the header has none);
* an erasure order's ``erase_by``.

When it has passed, the daemon's sweep purges the notice exactly like a cancel (its state becomes
``purged`` with reason ``retention-expired``) and answers the sender with a signed ``purged``
receipt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

#: the longest a notice is kept when the holder's policy sets nothing (INTERPOL: 5 years unless
#: reviewed)
DEFAULT_MAX_RETENTION_DAYS = 5 * 365
DEFAULT_MAX_RETENTION = timedelta(days=DEFAULT_MAX_RETENTION_DAYS)

#: how long a recipient has to confirm a purging message without ``erase_by`` (cancel, refusal,
#: delete) with a signed ``purged`` receipt before the sender lists it as overdue
DEFAULT_CONFIRM_WITHIN = timedelta(hours=72)

#: ``(notice_type, sender) -> the longest the holder keeps such a notice``
RetentionLimit = Callable[[str, str], timedelta]


def default_limit(notice_type: str, sender: str) -> timedelta:
    """The limit when no policy says anything: :data:`DEFAULT_MAX_RETENTION` for every type."""
    del notice_type, sender
    return DEFAULT_MAX_RETENTION


@dataclass(frozen=True)
class Expired:
    """A notice the retention sweep purged: the ``purged`` receipt (reason
    ``retention-expired``) its sender is owed answers its stored message ``msg_id``."""

    sender: str
    notice_id: str
    notice_type: str
    msg_id: str
    retain_until: str


@dataclass(frozen=True)
class Expiring:
    """A stored notice whose ``retain_until`` falls within the warning window (review due)."""

    sender: str
    notice_id: str
    notice_type: str
    retain_until: str


@dataclass(frozen=True)
class PendingOrder:
    """An overdue purging message this bureau sent (``nbx erasure --resend-overdue``): the
    order's first msg id (``origin``), its latest message to ``recipient`` and what it said."""

    notice_id: str
    notice_type: str | None
    recipient: str
    msg_id: str
    kind: str  # a MessageKind
    deadline: str
    origin: str
    body: dict[str, Any]


def stamp(at: datetime) -> str:
    """The store's time format: UTC, ISO 8601 with milliseconds."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def notice_expiry(view: Mapping[str, Any]) -> datetime | None:
    """The notice's own expiry: the start (UTC) of its header's ``retention_until`` day."""
    value = view.get("retention_until")
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def retain_until(
    *,
    expiry: datetime | None,
    created: datetime,
    max_retention: timedelta,
    erase_by: datetime | None = None,
) -> datetime:
    """The earliest of the notice's expiry, ``created`` + ``max_retention`` and ``erase_by``."""
    bounds = [created + max_retention]
    if expiry is not None:
        bounds.append(expiry)
    if erase_by is not None:
        bounds.append(erase_by)
    return min(bounds)


def view_retain_until(
    view: Mapping[str, Any], notice_type: str, sender: str, limit: RetentionLimit, stored: datetime
) -> str:
    """``retain_until`` (store format) of a notice stored now with the disclosed ``view``."""
    created = _parse_datetime(view.get("created_at")) or stored
    return stamp(
        retain_until(
            expiry=notice_expiry(view),
            created=created,
            max_retention=limit(notice_type, sender),
        )
    )


def erase_by_of(header: Mapping[str, Any]) -> datetime | None:
    """An erasure order's ``erase_by`` from its signed header (``None`` when it sets none)."""
    body = header.get("erasure")
    if not isinstance(body, Mapping):
        return None
    return _parse_datetime(body.get("erase_by"))


_DURATION = re.compile(r"^\s*(\d{1,6})\s*([hdw])\s*$", re.IGNORECASE)
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w`` as a time span; :class:`ValueError` with a one-line message."""
    found = _DURATION.match(text)
    if found is None or int(found.group(1)) == 0:
        msg = f"{text!r}: expected a positive duration like 30d, 12h or 2w"
        raise ValueError(msg)
    return int(found.group(1)) * _UNIT[found.group(2).lower()]
