"""What every sink offers the daemon and the CLI.

A sink applies one verified message in one transaction that also serves as the replay guard
(keyed by sender and msg id), and remembers what the bureau sent and which receipts came back.

A msg id seen before at the *same* topic, partition and offset is a redelivery after a crash (the
offset commit did not happen): it is acknowledged again with the original outcome and not stored a
second time. Seen at another position it is a replay, which the daemon quarantines.
"""

from __future__ import annotations

import errno
import functools
import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ParamSpec, Protocol, TypeVar

from broker.envelope import VerifiedPackage
from broker.errors import SinkError

P = ParamSpec("P")
R = TypeVar("R")

#: SQLite primary result codes and the failure they mean
_SQLITE_REASONS = {
    3: "read-only",  # SQLITE_PERM
    8: "read-only",  # SQLITE_READONLY
    13: "disk-full",  # SQLITE_FULL
    5: "locked",  # SQLITE_BUSY
    6: "locked",  # SQLITE_LOCKED
}
#: errno values and the failure they mean
_OS_REASONS = {
    errno.EROFS: "read-only",
    errno.EACCES: "read-only",
    errno.ENOSPC: "disk-full",
    errno.EBUSY: "locked",
    errno.ETXTBSY: "locked",
}


def storage_reason(exc: sqlite3.Error | OSError) -> str:
    """Why a store operation failed: ``read-only``, ``disk-full``, ``locked`` or
    ``storage-error``, from the SQLite result code or the errno; an SQLite error raised without a
    code (by Python itself) is read by its message."""
    if isinstance(exc, OSError):
        return _OS_REASONS.get(exc.errno or 0, "storage-error")
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return _SQLITE_REASONS.get(code & 0xFF, "storage-error")
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "read-only"
    if "full" in text:
        return "disk-full"
    if "locked" in text or "busy" in text:
        return "locked"
    return "storage-error"


def storage_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Make a sink method raise :class:`~broker.errors.SinkError` (with its ``reason``) for
    every SQLite or OS error, so the daemon never needs to know what a store is made of."""

    @functools.wraps(method)
    def mapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            reason = storage_reason(exc)
            msg = f"the store cannot be written ({reason})"
            raise SinkError(msg, reason=reason) from exc

    return mapped


class Applied(StrEnum):
    """Outcome of applying a message to the store."""

    DELIVERED = "delivered"  # new notice or newer version stored
    STALE = "stale"  # an older version than the stored one: logged, not stored
    SUSPENDED = "suspended"
    PURGED = "purged"  # cancel / withdraw / erasure: personal data removed
    REJECTED = "rejected"  # recorded rejection (schema, declined-by-policy)
    REDELIVERY = "redelivery"
    REPLAY = "replay"


#: The receipt status a recipient sends back for each outcome.
RECEIPT_STATUS: dict[Applied, str] = {
    Applied.DELIVERED: "delivered",
    Applied.STALE: "delivered",
    Applied.SUSPENDED: "delivered",
    Applied.PURGED: "purged",
    Applied.REJECTED: "rejected",
}


@dataclass(frozen=True)
class Position:
    """Where a record was read from."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Seen:
    """A msg id already recorded: where, and with which outcome (and rejection reason)."""

    position: Position
    outcome: Applied
    reason: str | None


@dataclass(frozen=True)
class ReceiptRecord:
    """A receipt received by the sender of the original message."""

    msg_id: str
    notice_id: str
    recipient: str
    status: str
    reason: str | None
    at: str


def status_rows(
    sent: Iterable[tuple[str, str, str, str, str | None, str]],
    receipts: Iterable[tuple[str, str, str, str | None, str]],
) -> list[dict[str, Any]]:
    """Group sent rows ``(msg_id, recipient, kind, status, reason, at)`` and receipt rows
    ``(msg_id, recipient, status, reason, at)`` per recipient, as ``nbx status`` shows them."""
    by_msg: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for msg_id, recipient, status, reason, at in receipts:
        by_msg.setdefault((msg_id, recipient), []).append(
            {"status": status, "reason": reason, "at": at}
        )
    out: dict[str, dict[str, Any]] = {}
    for msg_id, recipient, kind, status, reason, at in sent:
        entry = out.setdefault(recipient, {"recipient": recipient, "messages": []})
        entry["messages"].append(
            {
                "msg_id": msg_id,
                "kind": kind,
                "sent": status,
                "reason": reason,
                "at": at,
                "receipts": by_msg.get((msg_id, recipient), []),
            }
        )
    return [out[k] for k in sorted(out)]


class Sink(Protocol):
    """The local store of one bureau.

    What the daemon calls (:meth:`begin`, :meth:`end`, :meth:`seen`, :meth:`apply`,
    :meth:`reject`, :meth:`record_receipt`) raises :class:`~broker.errors.SinkError` with a
    ``reason`` when the store fails (see :func:`storage_errors`).
    """

    def batch(self) -> AbstractContextManager[None]:
        """Apply everything inside the block as one unit (one transaction, one fsync)."""
        ...

    def begin(self) -> None:
        """Open a batch: what is applied until :meth:`end` is one unit, as in :meth:`batch`."""
        ...

    def end(self, *, commit: bool) -> None:
        """Close the batch opened by :meth:`begin`: make it durable (``commit``) or discard it.

        It may run on a worker thread (the daemon keeps its event loop free during the fsync);
        nothing else uses the sink until it returns.
        """
        ...

    def seen(self, sender: str, msg_id: str) -> Seen | None:
        """Where and how ``sender``'s message ``msg_id`` was handled, if it was (msg ids are
        chosen by their signer, so the guard is per sender: one bureau cannot spend another's)."""
        ...

    def apply(self, package: VerifiedPackage, view: dict[str, Any], at: Position) -> Applied:
        """Apply a verified message (publish/update/suspend/cancel/erasure) in one transaction."""
        ...

    def reject(self, package: VerifiedPackage, at: Position, reason: str) -> Applied:
        """Record that a verified message was rejected (so a redelivery gets the same answer)."""
        ...

    def record_sent(
        self,
        msg_id: str,
        notice_id: str,
        recipient: str,
        kind: str,
        status: str,
        reason: str | None,
    ) -> None:
        """Remember what this bureau sent to ``recipient``."""
        ...

    def record_receipt(self, receipt: ReceiptRecord) -> bool:
        """Store a receipt; False if it was already stored."""
        ...

    def status(self, notice_id: str) -> list[dict[str, Any]]:
        """Per recipient of ``notice_id``: what was sent and which receipts came back."""
        ...

    def notices(self) -> list[dict[str, Any]]:
        """Current notices (without their views), newest first."""
        ...

    def notice(self, notice_id: str) -> dict[str, Any] | None:
        """One notice with its disclosed view and withheld manifest."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...
