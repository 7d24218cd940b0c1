"""The NBX vocabulary: every closed set of codes the node writes, as :class:`~enum.StrEnum`.

Members are ``str``: ``Reason.REPLAY == "replay"``, and a member written to a record header, a
receipt, a store or a log line is the same text as the literal it replaces. Annotating a
parameter with one of these types lets mypy catch a misspelt code.

The module imports only the standard library, so every layer may use it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

__all__ = [
    "ALL",
    "NOT_KEPT",
    "QUARANTINE_REASONS",
    "REASON_CODES",
    "REASON_HELP",
    "DirectoryState",
    "Ground",
    "LifecycleKind",
    "MessageKind",
    "NoticeState",
    "NoticeStatus",
    "Reason",
    "ReceiptStatus",
    "ResponseKind",
    "Role",
    "ScreeningFlag",
    "SendStatus",
    "StoreFailure",
    "Unsendable",
]


class Reason(StrEnum):
    """Why a package was rejected: the ``nbx-reason`` header of a quarantined record, and the
    reason a ``rejected`` receipt gives. The envelope's checks (:mod:`broker.envelope.open`)
    first, then the receiving daemon's."""

    # open_package (broker.envelope.open), in the order of its checks
    TOO_LARGE = "too-large"
    FRAME = "frame"
    DECRYPT = "decrypt"
    SUITE_TOO_WEAK = "suite-too-weak"
    MALFORMED = "malformed"
    VALIDITY = "validity"
    KEY_UNKNOWN = "key-unknown"
    KEY_REVOKED = "key-revoked"
    KEY_EXPIRED = "key-expired"
    SIGNATURE = "signature"
    NOT_ADDRESSED = "not-addressed"
    DIGEST = "digest"
    GRANT = "grant"
    CLOCK_SKEW = "clock-skew"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    # the consumer daemon (broker.node.pipeline)
    TIMESTAMP_TYPE = "timestamp-type"
    TIMESTAMP = "timestamp"
    WRONG_TOPIC = "wrong-topic"
    REPLAY = "replay"
    HEADER_MISMATCH = "header-mismatch"
    SCHEMA = "schema"
    ORIGIN_MISMATCH = "origin-mismatch"
    DECLINED_BY_POLICY = "declined-by-policy"
    NOT_IN_ADDRESSEES = "not-in-addressees"  # a diffusion whose addressees omit the receiver
    INTERNAL = "internal"
    # answers to a notice (broker.node.pipeline's response handler)
    NOT_A_RECIPIENT = "not-a-recipient"  # a response from a bureau that does not hold the notice
    NOT_SHARED = "not-shared"  # a response copy the notice does not share with this bureau
    # attestations and oversight decisions (broker.node.pipeline's fact handlers)
    NOT_REVIEWER = "not-reviewer"  # a review from a bureau without the reviewer role
    NOT_OVERSIGHT = "not-oversight"  # block/unblock/delete from a bureau without the role
    REVIEW_MISMATCH = "review-mismatch"  # the statement hash differs from the stored message's
    # heightened supervision: a `pre` sender's message that came without an approval
    REVIEW_REQUIRED = "review-required"
    HOLD = "hold"  # a record on a holding topic without a valid recipient or statement hash


class StoreFailure(StrEnum):
    """Why the local store cannot be written (:class:`~broker.errors.SinkError`'s ``reason``)."""

    READ_ONLY = "read-only"
    DISK_FULL = "disk-full"
    LOCKED = "locked"
    STORAGE_ERROR = "storage-error"
    # a database server (PostgreSQL)
    UNREACHABLE = "unreachable"  # cannot connect, or the connection was lost (server restarting)
    CONFLICT = "conflict"  # another replica's transaction conflicted (deadlock, serialization)
    ACCESS_DENIED = "access-denied"  # wrong user or password, or no privilege
    MISSING = "missing"  # the database does not exist
    SCHEMA_VERSION = "schema-version"  # the database's schema is older or newer than this release's


#: store failures that pass by themselves: the daemon rolls the batch back, waits (backoff) and
#: tries again without committing anything; every other failure stops it (exit 3)
TRANSIENT_STORE_FAILURES: Final = frozenset({StoreFailure.UNREACHABLE, StoreFailure.CONFLICT})


class Unsendable(StrEnum):
    """Why a receipt owed to a sender could not be sent (``receipt.unsendable``)."""

    KEY = "key"  # no valid encryption key for the sender in the directory


#: ``to`` of a publish that means every other bureau listed in the directory (said explicitly)
ALL: Final = "all"


class DirectoryState(StrEnum):
    """Why a node does not trust, or did not take, a key directory (``directory.*`` events)."""

    STALE = "stale"  # not confirmed for longer than trust.max_staleness_s
    TOO_OLD = "too-old"  # issued longer than trust.max_age ago
    MISSING = "missing"  # the directory file is gone
    UNVERIFIED = "unverified"  # its anchor signature does not verify
    ROLLBACK = "rollback"  # an older serial than the one installed
    UNANNOUNCED = "unannounced-anchor"  # signed by an anchor the pinned one did not announce


class MessageKind(StrEnum):
    """Kinds of message exchanged about a notice (the statement's ``kind``)."""

    PUBLISH = "publish"
    UPDATE = "update"
    SUSPEND = "suspend"
    CANCEL = "cancel"
    ERASURE = "erasure"
    RECEIPT = "receipt"
    REVIEW = "review"  # a reviewer's attestation (approved / refused) of one message
    BLOCK = "block"  # the oversight body blocks a notice while a challenge is pending
    UNBLOCK = "unblock"  # ... lifts one of its blocks (by case reference)
    DELETE = "delete"  # ... orders the notice deleted everywhere (purged like an erasure)
    RESPONSE = "response"  # a recipient's answer to a notice (located, arrested...), to the issuer


class ResponseKind(StrEnum):
    """What a recipient answers to a notice (the ``kind`` of a ``response`` message)."""

    HIT = "hit"  # a possible match was found; checks are under way
    LOCATED = "located"  # the person (or object) was found
    ARRESTED = "arrested"  # the person was provisionally arrested
    IDENTITY_CONFIRMED = "identity-confirmed"  # the person found is the person sought
    NOT_THE_PERSON = "not-the-person"  # the person found is not the person sought
    MORE_INFORMATION_NEEDED = "more-information-needed"
    EXTRADITION_REQUESTED = "extradition-requested"
    NO_ACTION = "no-action"  # no action possible under national law (the note says why)


#: The kinds :meth:`broker.node.Publisher.lifecycle` sends (values of :class:`MessageKind`).
LifecycleKind = Literal["suspend", "cancel", "erasure"]


class ReceiptStatus(StrEnum):
    """A recipient's answer to one message."""

    DELIVERED = "delivered"
    REJECTED = "rejected"
    PURGED = "purged"


class SendStatus(StrEnum):
    """What the publisher did for one recipient (``nbx status``'s ``sent`` column)."""

    SENT = "sent"  # acknowledged by the broker
    FAILED = "failed"  # no valid key, or the broker refused
    EXCLUDED = "excluded"  # the sender's policy sends it nothing
    HELD = "held-for-review"  # heightened supervision: on the reviewer's holding topic


class NoticeStatus(StrEnum):
    """The state of a received notice in the local store."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    ERASED = "erased"
    EXPIRED = "expired"  # kept as long as allowed: purged by the retention sweep


class ScreeningFlag(StrEnum):
    """What a screening aid flags in a person-targeting message (:mod:`broker.screening`):
    advice for a human reviewer, never a decision."""

    POLITICAL_OFFENCE = (
        "political-offence"  # a charge of political, military or religious character
    )
    EXCLUDED_OFFENCE = "excluded-offence"  # a charge the rules exclude (private and debt disputes)
    PROTECTED_PERSON = "protected-person"  # the subject is on the bureau's protected-persons list
    SUPERVISED_SENDER = "supervised-sender"  # the sender is under heightened supervision
    REFUSAL_RATE = "refusal-rate"  # the sender's recent refusal rate is above the threshold


class NoticeState(StrEnum):
    """What a recipient may do with a stored notice, derived from the facts it holds (the
    notice's status, attestations, blocks, deletions); only ``actionable`` may be acted on."""

    PENDING_REVIEW = "pending-review"  # needs an approving attestation of this version
    ACTIONABLE = "actionable"
    REFUSED = "refused"  # a reviewer refused it: personal data purged
    BLOCKED = "blocked"  # the oversight body blocked it: kept, restricted
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    PURGED = "purged"  # erased by its sender or deleted by the oversight body


class AuditAction(StrEnum):
    """What an audit log entry records (EU LED Art. 25; docs/safeguards.md, "Audit trail").

    Each action a node takes leaves exactly one entry, in the same store transaction as the
    action; entries hold ids, codes, operators, purposes and times, never personal data.
    """

    COLLECTION = "collection"  # a message received and stored (a new notice, a fact)
    ALTERATION = "alteration"  # an update or suspension applied to a stored notice
    REJECTION = "rejection"  # a verified message not stored (declined-by-policy, stale, ...)
    QUARANTINE = "quarantine"  # a record put on the quarantine topic (reason; sender if known)
    CONSULTATION = "consultation"  # a notice's view read (operator and purpose required)
    DISCLOSURE = "disclosure"  # a message sent or forwarded (with its recipients)
    DECISION = "decision"  # a review / block / unblock / delete taken or received
    ERASURE = "erasure"  # personal data purged (with the reason: cancel, erasure, grounds, ...)


class PurgeReason(StrEnum):
    """Why a notice's personal data was purged (an ``erasure`` audit entry's reason, the
    transparency report's "purged by reason"); a ``purged`` receipt carries ``retention-expired``
    for the last one."""

    CANCEL = "cancel"  # its sender cancelled it
    ERASURE = "erasure"  # its sender ordered it erased
    REFUSED = "refused"  # a reviewer refused it
    DELETE = "delete"  # the oversight body deleted it
    RETENTION_EXPIRED = "retention-expired"  # kept as long as allowed (retain_until passed)


class Ground(StrEnum):
    """Why a reviewer refuses a message (the ``purged`` receipt's reason)."""

    CRITERIA = "criteria"  # the rules' criteria for the notice type are not met
    ART2 = "art2"  # human rights (INTERPOL Constitution Art. 2)
    ART3 = "art3"  # political, military, religious or racial character (Art. 3)
    REFUGEE = "refugee"  # the subject is a recognised refugee
    OTHER = "other"


#: Every reason a daemon quarantines a record with, which is also what a rejected receipt says.
QUARANTINE_REASONS: frozenset[str] = frozenset(r.value for r in Reason)
#: Every reason code a node writes itself (quarantine, rejection and receipt reasons, store
#: failures, purge reasons). A receipt's reason comes from the peer that signed it: only these
#: are logged.
REASON_CODES: frozenset[str] = QUARANTINE_REASONS | {
    r.value for codes in (StoreFailure, Unsendable, PurgeReason) for r in codes
}


class Role(StrEnum):
    """A bureau's roles in the signed directory (``BureauRecord.roles``).

    ``reviewer`` and ``oversight`` are network bodies, organisation ids ``XA``..``XZ`` only
    (docs/safeguards.md, "Roles and network rules").
    """

    MEMBER = "member"  # a bureau of the network (every bureau)
    REVIEWER = "reviewer"  # checks person-targeting messages and attests them
    OVERSIGHT = "oversight"  # blocks, unblocks and deletes notices; every bureau obeys


#: What each quarantine / rejection reason means, in one plain sentence for a bureau officer
#: (``nbx quarantine list|show``; the table of docs/reason-codes.md repeats each sentence, a test
#: keeps them equal).
REASON_HELP: Final[dict[Reason, str]] = {
    Reason.TOO_LARGE: "The record is larger than this node accepts ([limits] max_frame_bytes).",
    Reason.FRAME: "The record is not an NBX frame (wrong magic, version or layout).",
    Reason.DECRYPT: "The package cannot be decrypted with any key this bureau holds (an old or "
    "destroyed key, or not sealed for this bureau).",
    Reason.SUITE_TOO_WEAK: "The package uses a cipher suite below this node's [security] "
    "min_suite.",
    Reason.MALFORMED: "The decrypted package does not parse, or exceeds the nesting and size "
    "bounds, or its message id does not fit its creation time.",
    Reason.VALIDITY: "The statement claims a validity longer than the 90 days NBX allows.",
    Reason.KEY_UNKNOWN: "The signer or its signing key is not in this bureau's key directory.",
    Reason.KEY_REVOKED: "The signing key was revoked in the key directory.",
    Reason.KEY_EXPIRED: "The signing key was not valid at the time the message was signed or "
    "received.",
    Reason.SIGNATURE: "The signature does not verify: the package was altered or forged.",
    Reason.NOT_ADDRESSED: "The statement does not address this bureau, or a receipt speaks for "
    "another bureau than its signer.",
    Reason.DIGEST: "A disclosed field does not match the digests the sender signed.",
    Reason.GRANT: "The disclosed and withheld fields are not those the sender signed for this "
    "bureau.",
    Reason.CLOCK_SKEW: "The broker's time is ahead of this node's clock by more than 5 minutes.",
    Reason.NOT_YET_VALID: "The message was created more than 5 minutes after it was received.",
    Reason.EXPIRED: "The message's validity ended before it was opened.",
    Reason.TIMESTAMP_TYPE: "The record's time was set by its producer, not by the broker "
    "(LogAppendTime).",
    Reason.TIMESTAMP: "The record's timestamp is not a representable time.",
    Reason.WRONG_TOPIC: "The message kind does not travel on the topic it was read from.",
    Reason.REPLAY: "The same message (sender, message id) was already received at another "
    "position: a replay.",
    Reason.HEADER_MISMATCH: "The header's notice id or type differs from the signed statement's.",
    Reason.SCHEMA: "The disclosed view or the message body does not validate against the NBX "
    "schema.",
    Reason.ORIGIN_MISMATCH: "The notice names another issuing bureau than its signer.",
    Reason.DECLINED_BY_POLICY: "This bureau's own inbound policy declines such notices from this "
    "sender; the package is not kept.",
    Reason.NOT_IN_ADDRESSEES: "A diffusion whose addressees do not include this bureau; the "
    "package is not kept.",
    Reason.INTERNAL: "Handling the record raised an unexpected error (a bug); the inbox went on.",
    Reason.NOT_A_RECIPIENT: "A response from a bureau that does not hold the notice.",
    Reason.NOT_SHARED: "A copy of a response to a notice that does not share responses with "
    "this bureau, or that this bureau does not hold.",
    Reason.NOT_REVIEWER: "A review from a bureau without the reviewer role (or a holding record "
    "at a bureau that is not a reviewer).",
    Reason.NOT_OVERSIGHT: "A block, unblock or delete from a bureau without the oversight role.",
    Reason.REVIEW_MISMATCH: "A review names a statement hash that differs from the stored "
    "message's.",
    Reason.REVIEW_REQUIRED: "A message of a sender under heightened supervision arrived without "
    "a reviewer's approval; the package is not kept.",
    Reason.HOLD: "A record on a holding topic without a valid recipient or statement hash.",
}

#: Reasons for which the package was valid and this bureau chose not to receive it: the
#: quarantine record keeps only its headers (reason, source position, size), not the sealed
#: package this bureau could decrypt; the audit log records the rejection (issue 20, point 9).
NOT_KEPT: Final[frozenset[Reason]] = frozenset(
    {Reason.DECLINED_BY_POLICY, Reason.NOT_IN_ADDRESSEES, Reason.REVIEW_REQUIRED}
)


class Metric(StrEnum):
    """Every Prometheus metric NBX exports (``/metrics``; docs/operations.md). Names follow
    Prometheus conventions: ``nbx_`` prefix, base units, ``_total`` for counters. Labels carry
    only codes (topic, partition, reason, status, kind, use, key id), never personal data or a
    notice id."""

    BUILD_INFO = "nbx_build_info"
    RECORDS_CONSUMED = "nbx_records_consumed_total"
    DELIVERED = "nbx_messages_delivered_total"
    QUARANTINED = "nbx_messages_quarantined_total"
    RECEIPTS_SENT = "nbx_receipts_sent_total"
    RECEIPTS_RECEIVED = "nbx_receipts_received_total"
    PUBLISHED = "nbx_messages_published_total"
    CONSUMER_LAG = "nbx_consumer_lag_records"
    PROCESSING_SECONDS = "nbx_record_processing_seconds"
    STORE_COMMIT_SECONDS = "nbx_store_commit_seconds"
    DIRECTORY_SERIAL = "nbx_directory_serial"
    KEY_EXPIRY_DAYS = "nbx_key_expiry_days"
    READY = "nbx_ready"
