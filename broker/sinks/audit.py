"""The audit log's chain (EU LED Art. 25): entries, their hashes, signed checkpoints, verification.

Both sinks keep the log in the store, written in the same transaction as the action it records
(docs/safeguards.md, "Audit trail"). This module holds what they share:

* :class:`AuditEvent`: what a sink is told to record (an :class:`~broker.vocab.AuditAction` and
  ids, codes, operators, purposes; never personal data); :func:`chain` makes it the next
  :class:`~broker.sinks.base.AuditEntry` of the chain.
* the hash: SHA-256 (hex) of the RFC 8785 canonical JSON (:func:`broker.wire.canonical.jcs`) of
  every field of the entry but ``hash``, ``prev`` included; the first entry's ``prev`` is
  :data:`GENESIS`.
* :class:`Checkpoint`: the node signs ``(bureau, count, head, at)`` with its Ed25519 signing key
  (``CHECKPOINT_DOMAIN || JCS(payload)``), periodically and on a clean stop; a checkpoint proves
  the first ``count`` entries, so entries deleted before it are detected.
* :func:`verify`: the first problem found, as one line naming the first bad seq, or ``None``.

What the chain proves and what it does not: an edited, deleted, inserted or reordered entry
breaks the chain (or disagrees with a checkpoint); entries cut from the tail after the last
checkpoint leave a valid, shorter chain, which only the next checkpoint (or a copy kept
elsewhere) can show.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.envelope import VerifiedPackage
from broker.sinks.base import (
    Access,
    AccessError,
    AuditEntry,
    AuditEvent,
    Checkpoint,
    Derived,
    Fact,
)
from broker.vocab import AuditAction, MessageKind, NoticeState, PurgeReason
from broker.wire.canonical import b64u, b64u_decode, jcs

__all__ = [
    "CHECKPOINT_DOMAIN",
    "GENESIS",
    "OPERATOR_ENV",
    "Access",
    "AccessError",
    "AuditEvent",
    "Checkpoint",
    "chain",
    "checkpoint_json",
    "checkpoint_payload",
    "consultation_event",
    "default_operator",
    "entry_from_json",
    "entry_hash",
    "entry_json",
    "purge_event",
    "purge_reason",
    "quarantine_event",
    "receive_event",
    "rejection_event",
    "sign_checkpoint",
    "verify",
]

#: the ``prev`` of the first entry
GENESIS = "0" * 64
#: what a checkpoint signature covers: ``CHECKPOINT_DOMAIN || JCS(payload)``
CHECKPOINT_DOMAIN = b"nbx/audit-checkpoint/v1\x00"
#: the environment variable naming the operator when ``[audit] operator`` is not set
OPERATOR_ENV = "NBX_OPERATOR"
_sha256 = hashlib.sha256


def default_operator(configured: str | None = None) -> str:
    """The operator of actions a person starts: ``configured`` (``[audit] operator`` in
    node.toml), else ``NBX_OPERATOR``, else the OS user."""
    if configured:
        return configured
    named = os.environ.get(OPERATOR_ENV)
    if named:
        return named
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name for this uid (a container)
        return f"uid:{os.getuid()}"


def _fields(seq: int, at: str, event: AuditEvent | AuditEntry, prev: str) -> dict[str, Any]:
    """The hashed fields of an entry (every field but ``hash``)."""
    return {
        "seq": seq,
        "at": at,
        "action": str(event.action),
        "notice_id": event.notice_id,
        "msg_id": event.msg_id,
        "sender": event.sender,
        "notice_type": event.notice_type,
        "kind": None if event.kind is None else str(event.kind),
        "bureaus": list(event.bureaus),
        "operator": event.operator,
        "purpose": event.purpose,
        "outcome": None if event.outcome is None else str(event.outcome),
        "reason": None if event.reason is None else str(event.reason),
        "prev": prev,
    }


def entry_hash(entry: AuditEntry) -> str:
    """The hash an entry should carry: SHA-256 (hex) of the JCS of its fields but ``hash``."""
    return _sha256(jcs(_fields(entry.seq, entry.at, entry, entry.prev))).hexdigest()


def chain(event: AuditEvent, seq: int, at: str, prev: str) -> AuditEntry:
    """``event`` as the entry ``seq`` of the chain, after the entry whose hash is ``prev``."""
    fields = _fields(seq, at, event, prev)
    digest = _sha256(jcs(fields)).hexdigest()
    return AuditEntry(
        seq=seq,
        at=at,
        action=fields["action"],
        notice_id=event.notice_id,
        msg_id=event.msg_id,
        sender=event.sender,
        notice_type=event.notice_type,
        kind=fields["kind"],
        bureaus=tuple(event.bureaus),
        operator=event.operator,
        purpose=event.purpose,
        outcome=fields["outcome"],
        reason=fields["reason"],
        prev=prev,
        hash=digest,
    )


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as JSON (``nbx audit export --json``, the JSON-lines sink's record)."""
    out = asdict(entry)
    out["bureaus"] = list(entry.bureaus)
    return out


def entry_from_json(data: dict[str, Any]) -> AuditEntry:
    """The inverse of :func:`entry_json` (unknown keys ignored)."""
    return AuditEntry(
        seq=int(data["seq"]),
        at=str(data["at"]),
        action=str(data["action"]),
        notice_id=data.get("notice_id"),
        msg_id=data.get("msg_id"),
        sender=data.get("sender"),
        notice_type=data.get("notice_type"),
        kind=data.get("kind"),
        bureaus=tuple(data.get("bureaus") or ()),
        operator=data.get("operator"),
        purpose=data.get("purpose"),
        outcome=data.get("outcome"),
        reason=data.get("reason"),
        prev=str(data["prev"]),
        hash=str(data["hash"]),
    )


def checkpoint_payload(bureau: str, count: int, head: str, at: str) -> bytes:
    """``CHECKPOINT_DOMAIN || JCS({"at", "bureau", "count", "head"})``."""
    body = {"at": at, "bureau": bureau, "count": count, "head": head}
    return CHECKPOINT_DOMAIN + jcs(body)


def sign_checkpoint(
    bureau: str,
    count: int,
    head: str,
    key: ed25519.Ed25519PrivateKey,
    kid: str,
    at: datetime | None = None,
) -> Checkpoint:
    """Sign the chain head ``head`` of ``count`` entries with ``bureau``'s signing key."""
    when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
    signature = key.sign(checkpoint_payload(bureau, count, head, when))
    return Checkpoint(bureau, count, head, when, kid, b64u(signature))


def _signature_ok(checkpoint: Checkpoint, key: ed25519.Ed25519PublicKey) -> bool:
    try:
        key.verify(
            b64u_decode(checkpoint.signature),
            checkpoint_payload(checkpoint.bureau, checkpoint.count, checkpoint.head, checkpoint.at),
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def verify(
    entries: Sequence[AuditEntry],
    checkpoints: Sequence[Checkpoint],
    public_key: Callable[[Checkpoint], ed25519.Ed25519PublicKey | None],
) -> str | None:
    """Check the chain (as stored, in seq order) and every checkpoint; the first problem as one
    line naming the first bad seq, or ``None`` when the log is intact.

    ``public_key`` gives the key a checkpoint must be verified with (``None``: unknown).
    """
    prev = GENESIS
    for index, entry in enumerate(entries):
        expected = index + 1
        if entry.seq != expected:
            if entry.seq > expected:
                return (
                    f"audit log broken at seq {expected}: entry missing (next is seq {entry.seq})"
                )
            return f"audit log broken at seq {expected}: out of order (found seq {entry.seq})"
        if entry.prev != prev:
            return (
                f"audit log broken at seq {expected}: prev does not match the hash of "
                f"seq {expected - 1} (entry inserted, deleted or reordered)"
            )
        if entry_hash(entry) != entry.hash:
            return f"audit log broken at seq {expected}: hash does not match the entry (edited)"
        prev = entry.hash
    count = len(entries)
    for cp in sorted(checkpoints, key=lambda c: c.count):
        key = public_key(cp)
        if key is None:
            return f"checkpoint at seq {cp.count}: signing key {cp.kid} of {cp.bureau} unknown"
        if not _signature_ok(cp, key):
            return f"checkpoint at seq {cp.count}: bad signature"
        if cp.count > count:
            return (
                f"audit log broken at seq {count + 1}: truncated (a checkpoint signed at "
                f"{cp.at} covers {cp.count} entries, the log has {count})"
            )
        head = GENESIS if cp.count == 0 else entries[cp.count - 1].hash
        if head != cp.head:
            return (
                f"audit log broken at seq {cp.count}: the chain head differs from the "
                f"checkpoint signed at {cp.at}"
            )
    return None


def checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    """A checkpoint as JSON."""
    return asdict(cp)


def purge_reason(derived: Derived) -> str:
    """Why a notice in ``derived`` state holds no personal data: a
    :class:`~broker.vocab.PurgeReason` value (a refusal, a delete, a cancel or erasure, the
    retention sweep's ``retention-expired``)."""
    if derived.state == NoticeState.REFUSED:
        return PurgeReason.REFUSED.value
    if derived.state == NoticeState.CANCELLED:
        return PurgeReason.CANCEL.value
    reason = derived.reason or ""
    if reason.startswith(f"{MessageKind.DELETE.value}:"):
        return PurgeReason.DELETE.value
    if reason in _PURGE_REASONS:
        return reason
    return PurgeReason.ERASURE.value


_PURGE_REASONS = frozenset(r.value for r in PurgeReason)


def purge_event(
    sender: str, notice_id: str, notice_type: str | None, derived: Derived, cause: str | None
) -> AuditEvent:
    """The ``erasure`` entry of a purge that is not itself a cancel / erasure message: a
    refusal, a delete, the retention sweep, a publish arriving already refused or deleted
    (``cause``: the message kind that caused it, ``None`` for the sweep)."""
    return AuditEvent(
        AuditAction.ERASURE,
        notice_id=notice_id,
        msg_id=derived.fact_msg_id or derived.msg_id,
        sender=sender,
        notice_type=notice_type,
        kind=cause,
        bureaus=() if derived.by is None else (derived.by,),
        outcome=PURGED_OUTCOME,
        reason=purge_reason(derived),
    )


#: the outcome of a purge's entry (the Applied value)
PURGED_OUTCOME = "purged"
#: the reason of a ``rejection`` entry for an older version than the one stored
STALE_REASON = "stale"


def decision_event(
    fact: Fact, notice_type: str | None, bureaus: tuple[str, ...], operator: str | None = None
) -> AuditEvent:
    """The ``decision`` entry of a review / block / unblock / delete, taken here (``bureaus``:
    whom it was sent to, ``operator``: who took it) or received (``bureaus``: its signer): the
    subject notice's sender, a review's decision and grounds, or the kind and the case."""
    review = fact.kind == MessageKind.REVIEW
    return AuditEvent(
        AuditAction.DECISION,
        notice_id=fact.notice_id,
        msg_id=fact.msg_id,
        sender=fact.subject_sender,
        notice_type=notice_type,
        kind=fact.kind,
        bureaus=bureaus,
        operator=operator,
        outcome=fact.decision if review else fact.kind,
        reason=fact.grounds if review else fact.case_ref,
    )


def receive_event(package: VerifiedPackage, outcome: str, fact: Fact | None = None) -> AuditEvent:
    """The entry of one message the receive path handled (plan rule 1): a fact -> ``decision``
    (its kind, its signer, a review's decision and grounds or the case), cancel / erasure ->
    ``erasure``, an older version -> ``rejection`` (``stale``), publish -> ``collection``,
    a response -> ``collection`` (outcome: the response's kind, ``located``...), update /
    suspend -> ``alteration``; ``outcome`` is the Applied value."""
    kind = package.kind
    if fact is not None:
        return decision_event(fact, package.notice_type, (fact.by,))
    if kind in (MessageKind.CANCEL, MessageKind.ERASURE):
        action, reason = AuditAction.ERASURE, PurgeReason(str(kind)).value
    elif outcome == STALE_OUTCOME:
        action, reason = AuditAction.REJECTION, STALE_REASON
    elif kind == MessageKind.PUBLISH:
        action, reason = AuditAction.COLLECTION, None
    elif kind == MessageKind.RESPONSE:  # an answer collected: its kind (located, ...) recorded
        action, reason = AuditAction.COLLECTION, None
        body = package.header.get(MessageKind.RESPONSE.value)
        answered = body.get("kind") if isinstance(body, dict) else None
        outcome = answered if isinstance(answered, str) else outcome
    else:
        action, reason = AuditAction.ALTERATION, None
    return AuditEvent(
        action,
        notice_id=package.notice_id,
        msg_id=package.msg_id,
        sender=package.sender,
        notice_type=package.notice_type,
        kind=kind,
        outcome=outcome,
        reason=reason,
    )


STALE_OUTCOME = "stale"


def rejection_event(package: VerifiedPackage, reason: str) -> AuditEvent:
    """The entry of a verified message recorded as rejected (``reason``: a Reason value)."""
    return AuditEvent(
        AuditAction.REJECTION,
        notice_id=package.notice_id,
        msg_id=package.msg_id,
        sender=package.sender,
        notice_type=package.notice_type,
        kind=package.kind,
        outcome="rejected",
        reason=reason,
    )


def quarantine_event(reason: str, package: VerifiedPackage | None) -> AuditEvent:
    """The entry of a record put on the quarantine topic (ids when the package was opened)."""
    if package is None:
        return AuditEvent(AuditAction.QUARANTINE, reason=reason)
    return AuditEvent(
        AuditAction.QUARANTINE,
        notice_id=package.notice_id,
        msg_id=package.msg_id,
        sender=package.sender,
        notice_type=package.notice_type,
        kind=package.kind,
        reason=reason,
    )


def consultation_event(
    access: Access, notice_id: str, msg_id: str | None, sender: str | None, notice_type: str | None
) -> AuditEvent:
    """The entry of a read of a notice's view: who, why, which notice (which version)."""
    return AuditEvent(
        AuditAction.CONSULTATION,
        notice_id=notice_id,
        msg_id=msg_id,
        sender=sender,
        notice_type=notice_type,
        operator=access.operator,
        purpose=access.purpose,
    )
