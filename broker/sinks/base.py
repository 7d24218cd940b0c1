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
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ParamSpec, Protocol, TypedDict, TypeVar

from broker.envelope import VerifiedPackage
from broker.errors import NbxError, SinkError
from broker.sinks.retention import Expired, Expiring, PendingOrder
from broker.vocab import (
    AuditAction,
    MessageKind,
    NoticeState,
    NoticeStatus,
    PurgeReason,
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


#: the errors of other database drivers and the function that reads their reason, registered by
#: the store that uses them (:mod:`broker.sinks.postgres`: psycopg's), so that this module does
#: not import a driver the node does not use
_DRIVER_ERRORS: list[tuple[type[Exception], Callable[[Exception], StoreFailure]]] = []


def register_driver_errors(
    kind: type[Exception], reason_of: Callable[[Exception], StoreFailure]
) -> None:
    """Map every ``kind`` error a sink method raises to a :class:`~broker.errors.SinkError`
    whose reason is ``reason_of(error)`` (see :func:`storage_errors`)."""
    if all(k is not kind for k, _ in _DRIVER_ERRORS):
        _DRIVER_ERRORS.append((kind, reason_of))


def storage_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Make a sink method raise :class:`~broker.errors.SinkError` (with its ``reason``) for
    every SQLite or OS error, or a registered driver's (:func:`register_driver_errors`), so the
    daemon never needs to know what a store is made of."""

    @functools.wraps(method)
    def mapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            reason = storage_reason(exc)
            msg = f"the store cannot be written ({reason})"
            raise SinkError(msg, reason=reason) from exc
        except Exception as exc:
            for kind, reason_of in _DRIVER_ERRORS:
                if isinstance(exc, kind):
                    reason = reason_of(exc)
                    msg = f"the store cannot be written ({reason})"
                    raise SinkError(msg, reason=reason) from exc
            raise

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


#: The messages stored as facts about a notice (attestations and oversight decisions).
FACT_KINDS: frozenset[str] = frozenset(
    {MessageKind.REVIEW, MessageKind.BLOCK, MessageKind.UNBLOCK, MessageKind.DELETE}
)
#: The states in which a notice holds no personal data.
PURGED_STATES: frozenset[NoticeState] = frozenset(
    {NoticeState.REFUSED, NoticeState.PURGED, NoticeState.CANCELLED}
)
#: A review's decision that makes the version it names actionable (the other is ``refused``).
APPROVED = "approved"
REFUSED = "refused"


@dataclass(frozen=True)
class Fact:
    """An attestation (``review``) or an oversight decision (``block``, ``unblock``,
    ``delete``) about the notice ``(subject_sender, notice_id)``, as stored: ids, codes and the
    signer's short reason, never personal data."""

    kind: str  # a MessageKind in FACT_KINDS
    by: str  # the bureau that signed it
    msg_id: str
    subject_sender: str
    notice_id: str
    statement_hash: str | None = None  # review: the statement it judges
    subject_msg_id: str | None = None  # review: the message it judges
    decision: str | None = None  # review: approved / refused
    grounds: str | None = None  # review: refusal grounds, comma-separated
    case_ref: str | None = None  # block / unblock / delete
    reason: str | None = None


def fact_from(package: VerifiedPackage, body: Mapping[str, Any]) -> Fact:
    """The fact a verified review / block / unblock / delete message states (``body`` is its
    validated header body, :mod:`broker.schemas.safeguards`)."""
    grounds = body.get("grounds")
    return Fact(
        kind=package.kind,
        by=package.sender,
        msg_id=package.msg_id,
        subject_sender=str(body["subject_sender"]),
        notice_id=package.notice_id,
        statement_hash=body.get("statement_hash"),
        subject_msg_id=body.get("subject_msg_id"),
        decision=body.get("decision"),
        grounds=",".join(str(g) for g in grounds) if grounds else None,
        case_ref=body.get("case_ref"),
        reason=body.get("reason"),
    )


def confirms_erasure(fact: Fact, after: Derived | None) -> bool:
    """Whether applying ``fact`` leaves this bureau holding no personal data of the notice it
    names *because the fact says so*: a refusal or a delete, and the notice is purged here (now
    or before) or not held at all (if it arrives later it is purged on arrival: the fact is
    stored). Such a fact is answered ``purged``, which is the signer's proof of erasure
    (docs/safeguards.md, "Retention and proven erasure"); an approval, a block or an unblock, or
    a refusal of a version this bureau does not hold while it holds another, is not."""
    purging = fact.kind == MessageKind.DELETE or (
        fact.kind == MessageKind.REVIEW and fact.decision == REFUSED
    )
    return purging and (after is None or after.state in PURGED_STATES)


@dataclass(frozen=True)
class Derived:
    """A notice's state as derived from its facts, with the reason to show (a refusal's grounds,
    a block's case and reason, ``delete:<case>``), the message a ``purged`` receipt answers and
    the fact (signer, msg id) that decided it."""

    state: NoticeState
    reason: str | None = None
    msg_id: str | None = None
    by: str | None = None
    fact_msg_id: str | None = None


def derive_state(
    status: str,
    current_hash: str | None,
    current_msg_id: str | None,
    review_required: bool,
    statements: Mapping[str, str],
    facts: Sequence[Fact],
) -> Derived:
    """The state of one notice from everything known about it; the same facts in any order give
    the same state (every choice below is made on the facts' sorted ids, never their arrival).

    ``status`` is the notice's lifecycle status (:class:`~broker.vocab.NoticeStatus`),
    ``current_hash`` / ``current_msg_id`` its stored version's statement, ``statements`` the
    statement hash -> msg id of every version received. In order: erased -> ``purged``,
    cancelled -> ``cancelled``, deleted -> ``purged``, a refusal of any version received ->
    ``refused``, a block whose case was not unblocked -> ``blocked``, suspended ->
    ``suspended``, review required and no approval of *this* version's statement hash ->
    ``pending-review``, else ``actionable``. A refusal and a delete are final.
    """
    ordered = sorted(facts, key=lambda f: (f.msg_id, f.by))
    if status == NoticeStatus.ERASED:
        return Derived(NoticeState.PURGED, MessageKind.ERASURE.value, current_msg_id)
    if status == NoticeStatus.CANCELLED:
        return Derived(NoticeState.CANCELLED, MessageKind.CANCEL.value, current_msg_id)
    if status == NoticeStatus.EXPIRED:  # the retention sweep: purged like a cancel
        return Derived(NoticeState.PURGED, PurgeReason.RETENTION_EXPIRED.value, current_msg_id)
    for f in ordered:
        if f.kind == MessageKind.DELETE:
            reason = f"{MessageKind.DELETE.value}:{f.case_ref}"
            return Derived(NoticeState.PURGED, reason, current_msg_id, f.by, f.msg_id)
    for f in ordered:
        if f.kind == MessageKind.REVIEW and f.decision == REFUSED:
            refused = statements.get(f.statement_hash or "")
            if refused is not None and refused == f.subject_msg_id:
                return Derived(NoticeState.REFUSED, f.grounds, refused, f.by, f.msg_id)
    lifted = {f.case_ref for f in ordered if f.kind == MessageKind.UNBLOCK}
    for f in ordered:
        if f.kind == MessageKind.BLOCK and f.case_ref not in lifted:
            reason = f"{f.case_ref}: {f.reason}"
            return Derived(NoticeState.BLOCKED, reason, current_msg_id, f.by, f.msg_id)
    if status == NoticeStatus.SUSPENDED:
        return Derived(NoticeState.SUSPENDED, None, current_msg_id)
    if review_required:
        for f in ordered:
            if (
                f.kind == MessageKind.REVIEW
                and f.decision == APPROVED
                and current_hash is not None
                and f.statement_hash == current_hash
                and f.subject_msg_id == current_msg_id
            ):
                return Derived(NoticeState.ACTIONABLE, None, current_msg_id, f.by, f.msg_id)
        return Derived(NoticeState.PENDING_REVIEW, None, current_msg_id)
    return Derived(NoticeState.ACTIONABLE, None, current_msg_id)


#: how far back :meth:`Sink.refusal_rate` looks: the sender's *recent* record
REFUSAL_WINDOW = timedelta(days=180)


def refusal_window_start() -> str:
    """The time (stored ``at`` format) from which reviews count for the refusal rate."""
    return (datetime.now(UTC) - REFUSAL_WINDOW).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AuditEntry:
    """One entry of a node's audit log (:class:`~broker.vocab.AuditAction`): ids, codes,
    operators, purposes and times, never personal data. ``prev`` is the previous entry's
    ``hash``; the chain and its signed checkpoints are checked by ``nbx audit verify``."""

    seq: int  # 1, 2, 3, ... in the order the actions were committed
    at: str  # UTC, ISO 8601 with milliseconds
    action: str  # an AuditAction
    notice_id: str | None
    msg_id: str | None
    sender: str | None  # the bureau whose message or notice the action is about
    notice_type: str | None
    kind: str | None  # the message kind (a MessageKind)
    bureaus: tuple[str, ...]  # the other bureaus: a disclosure's recipients, a decision's signer
    operator: str | None  # who (consultation, and actions started by a person)
    purpose: str | None  # why (consultation)
    outcome: str | None  # an Applied value, a review's decision, ...
    reason: str | None  # a Reason, refusal grounds, a purge's reason
    prev: str
    hash: str


@dataclass(frozen=True)
class AuditEvent:
    """What a sink is asked to record; it becomes an entry with the chain's next seq, the
    store's time and the hashes (:func:`chain`). See :class:`~broker.sinks.base.AuditEntry`."""

    action: AuditAction
    notice_id: str | None = None
    msg_id: str | None = None
    sender: str | None = None
    notice_type: str | None = None
    kind: str | None = None
    bureaus: tuple[str, ...] = ()
    operator: str | None = None
    purpose: str | None = None
    outcome: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the chain's head: the first ``count`` entries end in ``head``
    (``GENESIS`` for none), signed by ``bureau``'s key ``kid`` at ``at``."""

    bureau: str
    count: int
    head: str
    at: str
    kid: str
    signature: str  # base64url Ed25519 over CHECKPOINT_DOMAIN || JCS(payload)


class AccessError(NbxError):
    """A read of a notice's view without an operator or a purpose."""


@dataclass(frozen=True)
class Access:
    """Who reads a notice's view and why: what a ``consultation`` entry records. Both are
    required (an empty operator or purpose raises :class:`AccessError`)."""

    operator: str
    purpose: str

    def __post_init__(self) -> None:
        """Refuse an empty operator or purpose."""
        if not self.operator.strip():
            msg = "reading a notice needs an operator ([audit] operator, NBX_OPERATOR)"
            raise AccessError(msg)
        if not self.purpose.strip():
            msg = "reading a notice needs a purpose (--purpose)"
            raise AccessError(msg)


class SubjectHit(TypedDict):
    """A stored notice that may hold data about the person asked about: ids and state only."""

    notice_id: str
    sender: str
    notice_type: str
    version: int
    state: str  # a NoticeState
    state_reason: str | None
    updated_at: str
    #: the header's handling code: an answer to the person asking may need the provider's
    #: permission (H1-H3; docs/handling.md)
    handling: str | None


class OverdueRow(TypedDict):
    """A purging message (cancel, erasure, refusal, delete) this bureau sent whose recipient has
    not confirmed it with a signed ``purged`` receipt by its deadline (``nbx status --overdue``)."""

    notice_id: str
    notice_type: str | None
    recipient: str
    msg_id: str
    kind: str  # a MessageKind
    sent_at: str
    deadline: str


@dataclass(frozen=True)
class HeldFrame:
    """A package a sender under heightened supervision put on this reviewer's holding topic:
    sealed for ``recipient`` (the reviewer cannot open it), forwarded unchanged on approval."""

    statement_hash: str
    recipient: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


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
    reason: str | None  # a Reason, or a purge's reason (grounds, delete:<case>)


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
    status: str  # a SendStatus: what the publisher did (as ``publish --json``'s ``status``)
    reason: str | None
    at: str
    receipts: list[ReceiptRow]
    #: the hash of the message's signed statement (what a review attests); None if not sent
    statement_hash: str | None
    #: the notice's type (None in rows written before it was recorded)
    notice_type: str | None
    #: a purging message (cancel, erasure, refusal, delete): when the recipient's signed
    #: ``purged`` receipt is due (None for other messages and rows written before schema 5)
    deadline: str | None


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
    state: str  # a NoticeState: only "actionable" may be acted on
    state_reason: str | None  # a refusal's grounds, a block's case and reason
    updated_at: str
    #: the header's evaluation and handling codes (docs/handling.md); None once purged
    handling: str | None  # H0 .. H3
    source_reliability: str | None  # A B C X
    information_accuracy: int | None  # 1 .. 4


def header_codes(view: Mapping[str, Any] | None) -> tuple[str | None, str | None, int | None]:
    """The handling code, source reliability and information accuracy of a stored view's
    header (always disclosed, no personal data); ``None`` each for a purged notice."""
    if not view:
        return None, None, None
    handling = view.get("handling")
    code = handling.get("code") if isinstance(handling, Mapping) else None
    accuracy = view.get("information_accuracy")
    return (
        None if code is None else str(code),
        None if view.get("source_reliability") is None else str(view["source_reliability"]),
        accuracy if isinstance(accuracy, int) else None,
    )


class NoticeRecord(TypedDict):
    """A stored notice with its disclosed view and withheld manifest (``nbx inbox show``); the
    view and manifest are ``None`` once the notice was purged."""

    notice_id: str
    sender: str
    notice_type: str
    version: int
    status: str  # a NoticeStatus
    state: str  # a NoticeState
    state_reason: str | None
    view: dict[str, Any] | None
    withheld: list[list[str]] | None  # [path, rule] pairs
    policy: str
    msg_id: str
    updated_at: str
    #: the screening flags of this version (``{"code", "reason"}``): advice, never a decision
    flags: list[dict[str, str]]


def status_rows(
    sent: Iterable[
        tuple[str, str, str, str, str | None, str, str | None, str | None]
        | tuple[str, str, str, str, str | None, str, str | None, str | None, str | None]
    ],
    receipts: Iterable[tuple[str, str, str, str | None, str]],
) -> list[RecipientStatus]:
    """Group sent rows ``(msg_id, recipient, kind, status, reason, at, statement_hash,
    notice_type[, deadline])`` and
    receipt rows ``(msg_id, recipient, status, reason, at)`` per recipient, as ``nbx status``
    shows them."""
    by_msg: dict[tuple[str, str], list[ReceiptRow]] = {}
    for msg_id, recipient, status, reason, at in receipts:
        by_msg.setdefault((msg_id, recipient), []).append(
            {"status": status, "reason": reason, "at": at}
        )
    out: dict[str, RecipientStatus] = {}
    for row in sent:
        msg_id, recipient, kind, status, reason, at, statement_hash, notice_type = row[:8]
        deadline = row[8] if len(row) > 8 else None
        entry = out.setdefault(recipient, {"recipient": recipient, "messages": []})
        entry["messages"].append(
            {
                "msg_id": msg_id,
                "kind": kind,
                "status": status,
                "reason": reason,
                "at": at,
                "receipts": by_msg.get((msg_id, recipient), []),
                "statement_hash": statement_hash,
                "notice_type": notice_type,
                "deadline": deadline,
            }
        )
    return [out[k] for k in sorted(out)]


#: the two sides of a stored response: this bureau answered, or it received an answer
SENT_RESPONSE = "sent"
RECEIVED_RESPONSE = "received"


@dataclass(frozen=True)
class ResponseRecord:
    """A response (a recipient's answer to a notice: located, arrested, ...) this bureau sent
    (``direction`` ``sent``: ``to`` the bureaus it reached) or received (``received``: ``by`` is
    its signer). ``note`` and ``attachments`` are the responder's words and references: they go
    with the notice's personal data when the notice is purged at a recipient (``None`` and
    ``()`` then); ids and the kind stay."""

    direction: str  # SENT_RESPONSE or RECEIVED_RESPONSE
    msg_id: str
    notice_id: str
    notice_type: str
    issuer: str  # the bureau that issued the notice answered
    by: str  # the bureau that answered
    kind: str  # a ResponseKind
    at: str  # when the responder answered (its signed ``at``)
    note: str | None = None
    attachments: tuple[dict[str, Any], ...] = ()
    in_reply_to: str | None = None
    to: tuple[str, ...] = ()  # sent: the bureaus the response reached; received: this bureau

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``nbx status --json``, ``nbx inbox show --json``)."""
        return {
            "direction": self.direction,
            "msg_id": self.msg_id,
            "notice_id": self.notice_id,
            "notice_type": self.notice_type,
            "issuer": self.issuer,
            "by": self.by,
            "kind": self.kind,
            "at": self.at,
            "note": self.note,
            "attachments": [dict(a) for a in self.attachments],
            "in_reply_to": self.in_reply_to,
            "to": list(self.to),
        }


def response_from(package: VerifiedPackage, body: Mapping[str, Any], to: str) -> ResponseRecord:
    """The record of a verified ``response`` message received by ``to`` (``body``: its
    validated :class:`~broker.schemas.lifecycle.Response`, JSON mode)."""
    return ResponseRecord(
        direction=RECEIVED_RESPONSE,
        msg_id=package.msg_id,
        notice_id=package.notice_id,
        notice_type=package.notice_type,
        issuer=str(package.header["issuing_bureau"]),
        by=package.sender,
        kind=str(body["kind"]),
        at=str(body["at"]),
        note=body.get("note"),
        attachments=tuple(dict(a) for a in body.get("attachments") or ()),
        in_reply_to=body.get("in_reply_to"),
        to=(to,),
    )


@dataclass(frozen=True)
class HeldNotice:
    """What a recipient needs to answer a notice it holds, or to check a response copy about
    it, without reading its view (bureau ids and codes only, no consultation): its issuer, type,
    derived state, stored version, the bureaus that version was addressed to and the notice's
    ``responses_shared_with`` (empty once purged)."""

    sender: str
    notice_id: str
    notice_type: str
    state: str  # a NoticeState
    msg_id: str
    audience: tuple[str, ...]
    shared_with: tuple[str, ...]


def shared_with_of(view: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The ``responses_shared_with`` bureaus of a stored view (``()`` if none or purged)."""
    shared = None if view is None else view.get("responses_shared_with")
    return tuple(str(b) for b in shared) if isinstance(shared, list) else ()


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

    def apply(
        self,
        package: VerifiedPackage,
        view: dict[str, Any],
        at: Position,
        *,
        review: bool = False,
    ) -> Applied:
        """Apply a verified message (publish/update/suspend/cancel/erasure, a fact: review,
        block, unblock, delete, or a response, whose validated body is ``view``; a response is
        stored as received, :meth:`responses`) in one transaction, then
        derive the notice's state again (:func:`derive_state`). ``review``: the publish/update
        needs an approving attestation before it is actionable. ``PURGED`` when the message
        left the notice without personal data (also a publish refused or deleted before it
        arrived, and a fact that refused or deleted a stored notice)."""
        ...

    def state(self, sender: str, notice_id: str) -> Derived | None:
        """The derived state of the notice ``(sender, notice_id)``, if it is stored."""
        ...

    def statement(self, sender: str, msg_id: str) -> tuple[str, str] | None:
        """``(notice_id, statement_hash)`` of ``sender``'s publish/update ``msg_id``, if
        received."""
        ...

    def audience(self, sender: str, msg_id: str) -> tuple[str, ...] | None:
        """Every bureau ``sender`` addressed its publish/update ``msg_id`` to, if received (what
        a reviewer's attestation or an oversight decision is sent to)."""
        ...

    def facts(self, sender: str, notice_id: str) -> list[Fact]:
        """Every attestation and oversight decision received about ``sender``'s notice
        ``notice_id``, oldest first (by message id: UUIDv7 ids sort by time)."""
        ...

    def set_flags(
        self, sender: str, msg_id: str, notice_id: str, flags: list[dict[str, str]]
    ) -> None:
        """Keep the screening flags computed for ``sender``'s message ``msg_id`` (deleted with
        the notice's personal data when it is purged)."""
        ...

    def refusal_rate(self, sender: str) -> float | None:
        """The share of the reviews of ``sender``'s messages stored here in the last
        :data:`REFUSAL_WINDOW` that refused them, or ``None`` when there is none."""
        ...

    def hold(self, frame: HeldFrame, at: Position) -> None:
        """Keep a held package (a reviewer's node; idempotent per position)."""
        ...

    def held(self, statement_hash: str) -> list[HeldFrame]:
        """The held packages of the message with ``statement_hash``, by recipient."""
        ...

    def drop_held(self, statement_hash: str) -> None:
        """Forget the held packages of the message (forwarded, or refused)."""
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
        *,
        statement_hash: str | None = None,
        notice_type: str | None = None,
        deadline: str | None = None,
        retain_until: str | None = None,
        origin: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Remember what this bureau sent to ``recipient`` (and the hash of the statement it
        signed, which a reviewer attests). For a purging message: ``deadline`` (when its
        ``purged`` receipt is due), ``body`` (what it said, to send it again) and ``origin`` (the
        msg id of the order a resend repeats); ``retain_until``: when this bookkeeping row is
        swept (store time format)."""
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

    def notice(self, notice_id: str, access: Access) -> NoticeRecord | None:
        """One notice with its disclosed view and withheld manifest; the read is recorded as a
        ``consultation`` audit entry (``access``: operator and purpose) in the same transaction."""
        ...

    def subject_lookup(
        self, family_name: str, date_of_birth: str | None, access: Access
    ) -> list[SubjectHit]:
        """The notices that may hold data about the person asked about (ids and states), for a
        subject access request; audited as a consultation with ``access``."""
        ...

    def audit_entries(self, since: str | None = None, until: str | None = None) -> list[AuditEntry]:
        """The audit log, oldest first; ``since`` / ``until`` bound ``at`` (from, before)."""
        ...

    def overdue(self, now: datetime) -> list[OverdueRow]:
        """The purging messages sent whose recipients have not confirmed them by their deadline."""
        ...

    def record(self, event: AuditEvent) -> None:
        """Append an audit entry: inside the open batch (the transaction of the action it
        records, e.g. the publisher's ``sent`` rows), or in a transaction of its own."""
        ...

    def record_quarantine(
        self, reason: str, at: Position, package: VerifiedPackage | None = None
    ) -> None:
        """The ``quarantine`` audit entry of the record read at ``at`` (once per position)."""
        ...

    def checkpoint(self, sign: Callable[[int, str], Checkpoint]) -> Checkpoint | None:
        """Sign the audit chain's head (``sign(count, head)``) and keep the checkpoint; ``None``
        when the last one already covers every entry."""
        ...

    def checkpoints(self) -> list[Checkpoint]:
        """The audit log's signed checkpoints, oldest first."""
        ...

    def sweep(self, now: datetime) -> list[Expired]:
        """Purge every notice whose ``retain_until`` is at or before ``now`` exactly like a
        cancel (state ``purged``, reason ``retention-expired``), and remove this bureau's own
        bookkeeping of sent notices past theirs (an unconfirmed purging message stays until
        confirmed); return every expired notice whose sender is still owed its ``purged``
        receipt (also one purged by an earlier sweep whose receipt was never acknowledged)."""
        ...

    def answered(self, expired: list[Expired], at: datetime) -> None:
        """The broker acknowledged the ``purged`` receipts owed for ``expired`` (at ``at``)."""
        ...

    def expiring(self, now: datetime, within: timedelta) -> list[Expiring]:
        """The stored notices still holding data whose ``retain_until`` is at or before ``now``
        + ``within`` (review due), soonest first."""
        ...

    def pending_orders(self, now: datetime) -> list[PendingOrder]:
        """The overdue purging messages (as :meth:`overdue`) with what they said, to send them
        again (``nbx erasure --resend-overdue``)."""
        ...

    def held_notice(self, notice_id: str, sender: str | None = None) -> HeldNotice | None:
        """The stored notice ``notice_id`` (of ``sender``; default: the latest stored under that
        id) as a responder needs it, without its view and without a consultation entry."""
        ...

    def record_response(self, response: ResponseRecord) -> None:
        """Keep a response this bureau sent (in the open batch: the publisher's ``sent`` rows
        and ``disclosure`` entry of the same message)."""
        ...

    def responses(self, notice_id: str) -> list[ResponseRecord]:
        """Every response sent or received about ``notice_id``, oldest first (by ``at``)."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...
