"""Topic names (docs/architecture.md section 5).

A bureau id is an ISO 3166-1 alpha-2 code or XA..XZ (:func:`broker.ids.bureau_id`).
"""

from __future__ import annotations

from broker.ids import bureau_id

DIRECTORY_TOPIC = "nbx.directory"
#: headers of a record on a holding topic: its final recipient, and the statement hash of the
#: message it belongs to (which the reviewer approves or refuses as one)
HOLD_TO_HEADER = "nbx-to"
HOLD_HEADER = "nbx-hold"


def _check(bureau: str) -> str:
    return bureau_id(bureau)


def inbox(bureau: str) -> str:
    """Topic where every bureau writes packages addressed to ``bureau``."""
    return f"nbx.inbox.{_check(bureau)}"


def receipts(bureau: str) -> str:
    """Topic where recipients write receipts for messages sent by ``bureau``."""
    return f"nbx.receipts.{_check(bureau)}"


def hold(reviewer: str) -> str:
    """Topic where senders under heightened supervision (``pre``) put the packages for their
    recipients until ``reviewer`` approves them (docs/safeguards.md)."""
    return f"nbx.hold.{_check(reviewer)}"


def quarantine(bureau: str) -> str:
    """Topic where ``bureau``'s daemon puts messages that failed a check (raw bytes + reason)."""
    return f"nbx.quarantine.{_check(bureau)}"


def group(bureau: str) -> str:
    """The consumer group of ``bureau``'s daemon (its inbox, receipts and holding topics)."""
    return f"nbx.{_check(bureau)}"
