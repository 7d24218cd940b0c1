"""Topic names (docs/architecture.md section 5).

A bureau id is an ISO 3166-1 alpha-2 code or XA..XZ.
"""

from __future__ import annotations

import re

DIRECTORY_TOPIC = "nbx.directory"
_BUREAU = re.compile(r"^[A-Z]{2}$")


def _check(bureau: str) -> str:
    if not _BUREAU.match(bureau):
        msg = f"invalid bureau id {bureau!r}: expected two upper-case letters such as FR"
        raise ValueError(msg)
    return bureau


def inbox(bureau: str) -> str:
    """Topic where every bureau writes packages addressed to ``bureau``."""
    return f"nbx.inbox.{_check(bureau)}"


def receipts(bureau: str) -> str:
    """Topic where recipients write receipts for messages sent by ``bureau``."""
    return f"nbx.receipts.{_check(bureau)}"


def quarantine(bureau: str) -> str:
    """Topic where ``bureau``'s daemon puts messages that failed a check (raw bytes + reason)."""
    return f"nbx.quarantine.{_check(bureau)}"
