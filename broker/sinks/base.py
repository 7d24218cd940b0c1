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
from typing import Any, ParamSpec, Protocol, TypedDict, TypeVar

from broker.envelope import VerifiedPackage
from broker.errors import SinkError
from broker.vocab import (
    MessageKind,
    NoticeStatus,
    Reason,
    ReceiptStatus,
    SendStatus,
    StoreFailure,
)

P = ParamSpec("P")
R = TypeVar("R")

#: SQLite primary result codes and the failure they mean
_SQLITE_REASONS = {
    3: StoreFailure.READ_ONLY,  # SQLITE_PERM
    8: StoreFailure.READ_ONLY,  # SQLITE_READONLY
    13: StoreFailure.DISK_FULL,  # SQLITE_FULL
    5: StoreFailure.LOCKED,  # SQLITE_BUSY
    6: StoreFailure.LOCKED,  # SQLITE_LOCKED
}
#: errno values and the failure they mean
_OS_REASONS = {
    errno.EROFS: StoreFailure.READ_ONLY,
    errno.EACCES: StoreFailure.READ_ONLY,
    errno.ENOSPC: StoreFailure.DISK_FULL,
    errno.EBUSY: StoreFailure.LOCKED,
    errno.ETXTBSY: StoreFailure.LOCKED,
}


def storage_reason(exc: sqlite3.Error | OSError) -> StoreFailure:
    """Why a store operation failed: ``read-only``, ``disk-full``, ``locked`` or
    ``storage-error``, from the SQLite result code or the errno; an SQLite error raised without a
    code (by Python itself) is read by its message."""
    if isinstance(exc, OSError):
        return _OS_REASONS.get(exc.errno or 0, StoreFailure.STORAGE_ERROR)
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return _SQLITE_REASONS.get(code & 0xFF, StoreFailure.STORAGE_ERROR)
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "permission" in text:
        return StoreFailure.READ_ONLY
    if "full" in text:
        return StoreFailure.DISK_FULL
    if "locked" in text or "busy" in text:
        return StoreFailure.LOCKED
    return StoreFailure.STORAGE_ERROR


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
RECEIPT_STATUS: dict[Applied, ReceiptStatus] = {
    Applied.DELIVERED: ReceiptStatus.DELIVERED,
    Applied.STALE: ReceiptStatus.DELIVERED,
    Applied.SUSPENDED: ReceiptStatus.DELIVERED,
    Applied.PURGED: ReceiptStatus.PURGED,
    Applied.REJECTED: ReceiptStatus.REJECTED,
}

#: The status a purging message (cancel, erasure) leaves its notice in.
PURGED_STATUS: dict[str, NoticeStatus] = {
    MessageKind.CANCEL: NoticeStatus.CANCELLED,
    MessageKind.ERASURE: NoticeStatus.ERASED,
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
    reason: Reason | None


@dataclass(frozen=True)
class ReceiptRecord:
    """A receipt received by the sender of the original message."""

    msg_id: str
    notice_id: str
    recipient: str
    status: ReceiptStatus
    reason: str | None
    at: str


class ReceiptRow(TypedDict):
    """A receipt that came back for a message sent (``nbx status``)."""

    status: str  # a ReceiptStatus, as the recipient signed it
    reason: str | None
    at: str


class SentRow(TypedDict):
    """One message sent to one recipient and its receipts (``nbx status``)."""

    msg_id: str
    kind: str  # a MessageKind
    sent: str  # a SendStatus
    reason: str | None
    at: str
    receipts: list[ReceiptRow]


class RecipientStatus(TypedDict):
    """What was sent to one recipient about a notice (``nbx status``)."""

    recipient: str
    messages: list[SentRow]


class NoticeRow(TypedDict):
    """A stored notice without its view (``nbx inbox list``)."""

    notice_id: str
    sender: str
    notice_type: str
    version: int
    status: str  # a NoticeStatus
    updated_at: str


class NoticeRecord(TypedDict):
    """A stored notice with its disclosed view and withheld manifest (``nbx inbox show``); the
    view and manifest are ``None`` once the notice was purged."""

    notice_id: str
    sender: str
    notice_type: str
    version: int
    status: str  # a NoticeStatus
    view: dict[str, Any] | None
    withheld: list[list[str]] | None  # [path, rule] pairs
    policy: str
    msg_id: str
    updated_at: str


def status_rows(
    sent: Iterable[tuple[str, str, str, str, str | None, str]],
    receipts: Iterable[tuple[str, str, str, str | None, str]],
) -> list[RecipientStatus]:
    """Group sent rows ``(msg_id, recipient, kind, status, reason, at)`` and receipt rows
    ``(msg_id, recipient, status, reason, at)`` per recipient, as ``nbx status`` shows them."""
    by_msg: dict[tuple[str, str], list[ReceiptRow]] = {}
    for msg_id, recipient, status, reason, at in receipts:
        by_msg.setdefault((msg_id, recipient), []).append(
            {"status": status, "reason": reason, "at": at}
        )
    out: dict[str, RecipientStatus] = {}
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

    def reject(self, package: VerifiedPackage, at: Position, reason: Reason) -> Applied:
        """Record that a verified message was rejected (so a redelivery gets the same answer)."""
        ...

    def record_sent(
        self,
        msg_id: str,
        notice_id: str,
        recipient: str,
        kind: MessageKind,
        status: SendStatus,
        reason: str | None,
    ) -> None:
        """Remember what this bureau sent to ``recipient``."""
        ...

    def record_receipt(self, receipt: ReceiptRecord) -> bool:
        """Store a receipt; False if it was already stored."""
        ...

    def status(self, notice_id: str) -> list[RecipientStatus]:
        """Per recipient of ``notice_id``: what was sent and which receipts came back."""
        ...

    def notices(self) -> list[NoticeRow]:
        """Current notices (without their views), newest first."""
        ...

    def notice(self, notice_id: str) -> NoticeRecord | None:
        """One notice with its disclosed view and withheld manifest."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...
