"""The receive pipeline: one record in, one :class:`Outcome` out, synchronously.

The checks run in this order (docs/architecture.md section 1):

0. the record's timestamp must be the broker's (``LogAppendTime``) and a representable time;
1. :func:`broker.envelope.open_package`: size, frame, HPKE, strict parse, signature (key valid and
   not revoked), audience and grant, digests, expiry;
2. the kind must have a handler, and the handler's topic must be the record's (a receipt on the
   receipts topic, anything else on the inbox);
3. the kind's handler (:data:`HANDLERS`): for notices the replay guard ((sender, msg id) seen at
   another position), the header's notice id and type must be the statement's, schema validation
   of the disclosed view, the bureau's own inbound policy (publish and update only: a suspend,
   cancel or erasure of a declined notice is acknowledged), then the sink applies it in one
   transaction keyed by (sender, msg id); for receipts, each one is recorded; for the facts
   (``review`` from a reviewer, ``block`` / ``unblock`` / ``delete`` from the oversight body) the
   signer's role (:attr:`ReceivePipeline.roles`), the body, and for a review the statement hash of
   the message it names; the sink then derives the notice's state again; for a ``response`` (a
   recipient's answer: located, arrested...) the body, and that the responder holds the notice
   (the issuer sent it, no purged receipt) or, for a shared copy, that this bureau holds it and
   is one the notice shares responses with.

Nothing here produces or commits: the daemon (:mod:`broker.node.consumer`) quarantines what the
outcome says, hands the answers to the receipt writer (:mod:`broker.node.receipts`) and commits.
A new message kind is one new :class:`Handler` in :data:`HANDLERS`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import ConsumerRecord
from pydantic import BaseModel
from structlog.typing import FilteringBoundLogger

from broker.envelope import VerifiedPackage, open_package
from broker.errors import EnvelopeRejected, KeyDirectoryError, SchemaError
from broker.ids import is_bureau_id
from broker.keys import KeyLookup
from broker.logging import get_logger, reason_code
from broker.node.receipts import Answer, answer, answer_to
from broker.node.stats import DaemonStats
from broker.sinks.base import (
    PURGED_STATES,
    RECEIPT_STATUS,
    Applied,
    Derived,
    HeldFrame,
    Position,
    ReceiptRecord,
    Sink,
)
from broker.transport import LOG_APPEND_TIME
from broker.transport.topics import HOLD_HEADER, HOLD_TO_HEADER
from broker.vocab import MessageKind, NoticeState, Reason, ReceiptStatus, Role, SendStatus
from broker.wire.suites import RecipientPrivateKey

if TYPE_CHECKING:
    from broker.policy import PolicySet
    from broker.screening import Screener

INBOX = "inbox"
RECEIPTS = "receipts"


@dataclass(frozen=True)
class Outcome:
    """What the pipeline decided for one record: quarantine it (with the reason), answer its
    sender, and whether it was applied (what ``on_delivered`` hears of after the commit)."""

    quarantine: Reason | None = None
    answer: Answer | None = None
    delivered: tuple[VerifiedPackage, Applied] | None = None
    #: receipts owed to others than the sender (a refusal or delete purged a stored notice:
    #: ``purged`` to its sender; a notice arrived already deleted: ``purged`` to the oversight)
    extra: tuple[Answer, ...] = ()
    #: the opened package a quarantine is about (its ids go into the audit entry), if opened
    about: VerifiedPackage | None = field(default=None, compare=False)
    #: the sink already recorded this rejection (and its audit entry): the quarantine adds none
    recorded: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Received:
    """An opened package, where it was read and when its handling started."""

    package: VerifiedPackage
    position: Position
    started: float


class Handler(Protocol):
    """What the pipeline does with one kind of message once it is opened."""

    @property
    def topic(self) -> str:
        """The topic the kind travels on: :data:`INBOX` or :data:`RECEIPTS`."""
        ...

    def __call__(self, pipe: ReceivePipeline, received: Received) -> Outcome:
        """Check and apply ``received``; the outcome says what to quarantine and answer."""
        ...


@dataclass(frozen=True)
class NoticeHandler:
    """publish / update (``carries_view``: a disclosed view to assemble, check the origin of and
    validate) and the lifecycle kinds suspend / cancel / erasure (no view)."""

    carries_view: bool
    topic: str = INBOX

    def __call__(self, pipe: ReceivePipeline, received: Received) -> Outcome:
        """Replay guard, checks (:meth:`check`), then the sink applies it."""
        package, position = received.package, received.position
        sink, stats = pipe.sink, pipe.stats
        purged = self.purged_answers(pipe) if self.carries_view else None
        handled = _handled(pipe, package, position, purged)
        if handled is not None:  # a redelivery after a crash (answered again) or a replay
            return handled
        reason: Reason | None
        try:  # a signed package whose paths do not fit the schema is rejected, not fatal
            view = self.view(package)
        except SchemaError:
            view, reason = {}, Reason.SCHEMA
        else:
            reason = self.check(pipe, package, view)
        if reason is not None:
            return _rejected(pipe, received, reason, purged)
        review = self.carries_view and pipe.needs_review(
            package.kind, package.notice_type, package.sender
        )
        outcome = sink.apply(package, view, position, review=review)
        if outcome in _GUARDED:  # another replica handled it meanwhile (see _after_guard)
            return _after_guard(pipe, received, purged)
        purge_reason: str | None = None
        if outcome is Applied.PURGED and self.carries_view:
            # refused or deleted before it arrived: the sender hears why, the oversight body
            # that deleted it hears that it is purged here too
            state = sink.state(package.sender, package.notice_id)
            purge_reason = None if state is None else state.reason
            extra = _deleted_answers(pipe, state, package.notice_id)
        else:
            extra = ()
        if outcome is Applied.PURGED:
            stats.purged += 1
        elif outcome is Applied.STALE:
            stats.stale += 1
        else:
            stats.delivered += 1
            if self.carries_view:
                self.screen(pipe, package, view)
        pipe.log.info(
            "package.delivered",
            msg_id=package.msg_id,
            notice_id=package.notice_id,
            notice_type=package.notice_type,
            sender=package.sender,
            recipient=pipe.bureau,
            kind=package.kind,
            outcome=outcome.value,
            disclosed=len(package.disclosed),
            withheld=len(package.withheld),
            latency_ms=round((time.monotonic() - received.started) * 1000, 2),
        )
        return Outcome(
            answer=pipe.answer(package, RECEIPT_STATUS[outcome], purge_reason),
            delivered=(package, outcome),
            extra=extra,
        )

    @staticmethod
    def purged_answers(pipe: ReceivePipeline) -> Callable[[VerifiedPackage], tuple[Answer, ...]]:
        """The further answers owed for a notice stored purged (refused or deleted before it
        arrived): ``purged`` to the oversight body whose delete purged it."""

        def answers(package: VerifiedPackage) -> tuple[Answer, ...]:
            state = pipe.sink.state(package.sender, package.notice_id)
            return _deleted_answers(pipe, state, package.notice_id)

        return answers

    def screen(self, pipe: ReceivePipeline, package: VerifiedPackage, view: dict[str, Any]) -> None:
        """Store the screening flags of a person-targeting version (in the same transaction)."""
        from broker.keys.rules import PERSON_TARGETING

        if pipe.screener is None or package.notice_type not in PERSON_TARGETING:
            return
        supervised = pipe.directory.rules().supervision_of(package.sender) == "pre"
        flags = pipe.screener.screen(
            view,
            notice_type=package.notice_type,
            sender=package.sender,
            supervised=supervised,
            refusal_rate=pipe.sink.refusal_rate(package.sender),
        )
        flag_json = [f.to_json() for f in flags]
        pipe.sink.set_flags(package.sender, package.msg_id, package.notice_id, flag_json)
        if flags:
            pipe.log.info(
                "package.flagged",
                msg_id=package.msg_id,
                notice_id=package.notice_id,
                sender=package.sender,
                count=len(flags),
            )

    def view(self, package: VerifiedPackage) -> dict[str, Any]:
        """The disclosed view (empty for a kind without one)."""
        from broker.schemas import assemble_view

        if self.carries_view:
            return assemble_view(dict(package.header), dict(package.disclosed))
        return {}

    def check(
        self, pipe: ReceivePipeline, package: VerifiedPackage, view: dict[str, Any]
    ) -> Reason | None:
        """Header and statement agree, origin, schema validation of the disclosed view, then
        this bureau's inbound policy (for a kind that carries a view only); the reason to
        reject, or ``None``."""
        header = package.header
        if (
            header.get("notice_id") != package.notice_id
            or header.get("notice_type") != package.notice_type
        ):
            # the inbound policy reads the statement, the store the header: they must be one
            return Reason.HEADER_MISMATCH
        if self.carries_view and view.get("issuing_bureau") != package.sender:
            # a bureau may only publish notices it issued: the signer is the issuing bureau
            return Reason.ORIGIN_MISMATCH
        if self.carries_view:
            try:
                pipe.validate(view)
            except SchemaError:
                return Reason.SCHEMA
            if pipe.held_back(package):
                return Reason.REVIEW_REQUIRED
            if not addressed_to(pipe, package.notice_type, view):
                return Reason.NOT_IN_ADDRESSEES
        if self.carries_view and pipe.policies is not None:
            # the inbound policy declines what carries a notice's data (publish, update); a
            # suspend, cancel or erasure of a declined notice is acknowledged (``purged``:
            # nothing of it is held here), never refused with the decline (issue 20, point 9)
            from broker.policy import inbound_check

            rule = inbound_check(
                pipe.policies,
                notice_type=package.notice_type,
                sender=package.sender,
                recipient=pipe.bureau,
                reliability=header.get("source_reliability"),
                accuracy=header.get("information_accuracy"),
            )
            if rule is not None:
                return Reason.DECLINED_BY_POLICY
        return None


def addressed_to(pipe: ReceivePipeline, notice_type: str, view: Mapping[str, Any]) -> bool:
    """Whether this bureau may hold a notice of ``notice_type`` with ``view``'s header: a
    diffusion only if it is among the ``addressees`` (or the reviewer, which sees what it holds
    for review); every other type always."""
    from broker.schemas import NoticeType

    if notice_type != NoticeType.DIFFUSION or Role.REVIEWER in pipe.roles(pipe.bureau):
        return True
    return pipe.bureau in view.get("addressees", ())


@dataclass(frozen=True)
class ReceiptHandler:
    """A receipt message: each receipt in it is recorded (a receipt speaks for its signer)."""

    topic: str = RECEIPTS

    def __call__(self, pipe: ReceivePipeline, received: Received) -> Outcome:
        """Validate the batch of receipts and record each one not recorded yet."""
        from broker.schemas import ReceiptBatch

        package = received.package
        try:
            batch = ReceiptBatch.model_validate(dict(package.header))
        except ValueError:
            return Outcome(quarantine=Reason.SCHEMA, about=package)
        if any(r.recipient != package.sender for r in batch.receipts):
            # a receipt speaks for its signer
            return Outcome(quarantine=Reason.NOT_ADDRESSED, about=package)
        for receipt in batch.receipts:
            stored = ReceiptRecord(
                receipt.msg_id,
                receipt.notice_id,
                receipt.recipient,
                receipt.status,
                receipt.reason,
                receipt.at.isoformat(),
            )
            if pipe.sink.record_receipt(stored):
                pipe.stats.receipts_received += 1
                pipe.log.info(
                    "receipt.received",
                    msg_id=receipt.msg_id,
                    notice_id=receipt.notice_id,
                    sender=package.sender,
                    recipient=pipe.bureau,
                    status=receipt.status,
                    reason=reason_code(receipt.reason),  # the peer's text: known codes only
                )
        return Outcome()


def _deleted_answers(
    pipe: ReceivePipeline, state: Derived | None, notice_id: str
) -> tuple[Answer, ...]:
    """The ``purged`` receipt owed to the oversight body whose delete purged a notice here."""
    if state is None or state.by is None or state.fact_msg_id is None:
        return ()
    if state.state != NoticeState.PURGED:
        return ()
    return (
        answer_to(state.by, state.fact_msg_id, notice_id, pipe.bureau, ReceiptStatus.PURGED, None),
    )


def _purged_answers(pipe: ReceivePipeline, subject: str, notice_id: str) -> tuple[Answer, ...]:
    """The ``purged`` receipt owed to ``subject``, whose notice a refusal or delete purged here:
    for the message judged (refusal) or the stored version (delete), with the ground."""
    state = pipe.sink.state(subject, notice_id)
    if state is None or state.state not in PURGED_STATES or state.msg_id is None:
        return ()
    return (
        answer_to(
            subject, state.msg_id, notice_id, pipe.bureau, ReceiptStatus.PURGED, state.reason
        ),
    )


#: what the sink's replay guard answers for a message it already holds (``apply``, ``reject``)
_GUARDED = frozenset({Applied.REDELIVERY, Applied.REPLAY})


def _handled(
    pipe: ReceivePipeline,
    package: VerifiedPackage,
    position: Position,
    purged: Callable[[VerifiedPackage], tuple[Answer, ...]] | None,
) -> Outcome | None:
    """The replay guard before the checks: ``None`` for a message the store does not hold yet;
    a replay (held from another position) is quarantined; a redelivery (the same position, read
    again after a crash or handled by another replica) is answered again as it was handled the
    first time, nothing stored (``purged``: the further answers owed for a stored purge; the
    message was stored, so its body was valid)."""
    seen = pipe.sink.seen(package.sender, package.msg_id)
    if seen is None:
        return None
    if seen.position != position:
        return Outcome(quarantine=Reason.REPLAY, about=package)
    pipe.stats.redelivered += 1
    status = RECEIPT_STATUS.get(seen.outcome, ReceiptStatus.DELIVERED)
    extra: tuple[Answer, ...] = ()
    if seen.outcome is Applied.PURGED and purged is not None:
        extra = purged(package)
    return Outcome(answer=pipe.answer(package, status, seen.reason), extra=extra)


def _after_guard(
    pipe: ReceivePipeline,
    received: Received,
    purged: Callable[[VerifiedPackage], tuple[Answer, ...]] | None,
) -> Outcome:
    """The sink's replay guard found the message held (``redelivery`` or ``replay``) although
    :func:`_handled` did not a moment before: another replica sharing the store handled it
    meanwhile (a PostgreSQL store: the guard waited for that replica's transaction under
    ``LOCK_MESSAGE`` and then saw its row; e.g. both read the record around a rebalance). Answered
    exactly as a redelivery or quarantined as a replay, never as an ``internal`` error."""
    handled = _handled(pipe, received.package, received.position, purged)
    if handled is None:  # the guard saw it inside its transaction: it is held
        return Outcome(quarantine=Reason.REPLAY, about=received.package)
    return handled


def _rejected(
    pipe: ReceivePipeline,
    received: Received,
    reason: Reason,
    purged: Callable[[VerifiedPackage], tuple[Answer, ...]] | None,
) -> Outcome:
    """Record the rejection (and its audit entry) and quarantine the record, answering its
    sender ``rejected``; a message another replica handled meanwhile as :func:`_after_guard`."""
    package, position = received.package, received.position
    if pipe.sink.reject(package, position, reason) in _GUARDED:
        return _after_guard(pipe, received, purged)
    return Outcome(
        quarantine=reason,
        answer=pipe.answer(package, ReceiptStatus.REJECTED, reason),
        recorded=True,
    )


#: A handler's checks: the reason to reject the package, or ``None`` and the body to store.
Check = Callable[["ReceivePipeline", VerifiedPackage], tuple[Reason | None, dict[str, Any]]]


def _store_checked(
    pipe: ReceivePipeline,
    received: Received,
    check: Check,
    purged: Callable[[VerifiedPackage], tuple[Answer, ...]] | None,
) -> Outcome:
    """What the fact and response handlers share: the replay guard (a redelivery after a crash
    is answered again, nothing stored), the kind's ``check``, the sink applies the message in
    its transaction, the delivery is logged and answered; ``purged`` gives the further answers
    owed when the message purged the notice (a refusal, a delete)."""
    package, position = received.package, received.position
    sink = pipe.sink
    handled = _handled(pipe, package, position, purged)
    if handled is not None:
        return handled
    reason, body = check(pipe, package)
    if reason is not None:
        return _rejected(pipe, received, reason, purged)
    outcome = sink.apply(package, body, position)
    if outcome in _GUARDED:  # another replica handled it meanwhile (see _after_guard)
        return _after_guard(pipe, received, purged)
    if outcome is Applied.PURGED and purged is not None:  # tell the notice's sender
        pipe.stats.purged += 1
        extra = purged(package)
    else:
        extra = ()
        pipe.stats.delivered += 1
    pipe.log.info(
        "package.delivered",
        msg_id=package.msg_id,
        notice_id=package.notice_id,
        notice_type=package.notice_type,
        sender=package.sender,
        recipient=pipe.bureau,
        kind=package.kind,
        outcome=outcome.value,
        latency_ms=round((time.monotonic() - received.started) * 1000, 2),
    )
    return Outcome(
        answer=pipe.answer(package, RECEIPT_STATUS[outcome], None),
        delivered=(package, outcome),
        extra=extra,
    )


@dataclass(frozen=True)
class FactHandler:
    """``review`` (an attestation, from a ``reviewer``), ``block``, ``unblock`` and ``delete``
    (decisions of the ``oversight`` body): no personal data, their body in the signed header
    under the kind's name (:mod:`broker.schemas.safeguards`); stored as facts about the notice
    the statement names, whose state the sink derives again."""

    kind: MessageKind
    topic: str = INBOX

    def __call__(self, pipe: ReceivePipeline, received: Received) -> Outcome:
        """Replay guard, checks (:meth:`check`), then the sink stores the fact; a fact that
        purges the notice (a refusal, a delete) also answers the notice's sender."""

        def purged(package: VerifiedPackage) -> tuple[Answer, ...]:
            subject = str(package.header[self.kind.value]["subject_sender"])
            return _purged_answers(pipe, subject, package.notice_id)

        return _store_checked(pipe, received, self.check, purged)

    def check(
        self, pipe: ReceivePipeline, package: VerifiedPackage
    ) -> tuple[Reason | None, dict[str, Any]]:
        """Header and statement agree, the signer has the role, the body is valid, and a
        review's statement hash is that of the message it names (when that one is here)."""
        from broker.schemas.safeguards import Block, Delete, Review, Unblock

        header = package.header
        if (
            header.get("notice_id") != package.notice_id
            or header.get("notice_type") != package.notice_type
        ):
            return Reason.HEADER_MISMATCH, {}
        roles = pipe.roles(package.sender)
        if self.kind == MessageKind.REVIEW:
            if Role.REVIEWER not in roles:
                return Reason.NOT_REVIEWER, {}
        elif Role.OVERSIGHT not in roles:
            return Reason.NOT_OVERSIGHT, {}
        models: dict[str, type[BaseModel]] = {
            MessageKind.REVIEW: Review,
            MessageKind.BLOCK: Block,
            MessageKind.UNBLOCK: Unblock,
            MessageKind.DELETE: Delete,
        }
        model = models[self.kind]
        try:
            body = model.model_validate(header.get(self.kind.value)).model_dump(mode="json")
        except ValueError:
            return Reason.SCHEMA, {}
        if isinstance(body.get("statement_hash"), str):
            stored = pipe.sink.statement(body["subject_sender"], body["subject_msg_id"])
            if stored is not None and stored != (package.notice_id, body["statement_hash"]):
                return Reason.REVIEW_MISMATCH, {}
        return None, body


@dataclass(frozen=True)
class ResponseHandler:
    """``response``: a recipient's answer to a notice (located, arrested, ...; no personal data
    of the notice, the responder's note and attachment references in the signed header under
    ``response``, :class:`~broker.schemas.lifecycle.Response`). The issuer accepts it only from
    a bureau it sent the notice to that has not purged it (``not-a-recipient``); a bureau the
    notice shares responses with (``responses_shared_with``) accepts a copy only while it holds
    the notice (``not-shared``), from a bureau the notice was addressed to (``not-a-recipient``).
    """

    topic: str = INBOX

    def __call__(self, pipe: ReceivePipeline, received: Received) -> Outcome:
        """Replay guard, checks (:meth:`check`), then the sink stores the response."""
        return _store_checked(pipe, received, self.check, None)

    def check(
        self, pipe: ReceivePipeline, package: VerifiedPackage
    ) -> tuple[Reason | None, dict[str, Any]]:
        """Header and statement agree, the body is valid, and the responder (and this bureau,
        for a shared copy) stand where the notice says; the reason to reject, or ``None``."""
        from broker.schemas.lifecycle import Response

        header = package.header
        if (
            header.get("notice_id") != package.notice_id
            or header.get("notice_type") != package.notice_type
        ):
            return Reason.HEADER_MISMATCH, {}
        issuer = header.get("issuing_bureau")
        try:
            body = Response.model_validate(header.get(MessageKind.RESPONSE.value)).model_dump(
                mode="json"
            )
        except ValueError:
            return Reason.SCHEMA, {}
        if not isinstance(issuer, str) or not is_bureau_id(issuer):
            return Reason.SCHEMA, {}
        if body["notice_id"] != package.notice_id:
            return Reason.HEADER_MISMATCH, {}
        if issuer == pipe.bureau:
            if not _holds_sent(pipe.sink, package.notice_id, package.sender):
                return Reason.NOT_A_RECIPIENT, {}
            return None, body
        held = pipe.sink.held_notice(package.notice_id, issuer)
        if held is None or held.state in PURGED_STATES or pipe.bureau not in held.shared_with:
            return Reason.NOT_SHARED, {}
        if package.sender not in held.audience:
            return Reason.NOT_A_RECIPIENT, {}
        return None, body


def _holds_sent(sink: Sink, notice_id: str, recipient: str) -> bool:
    """Whether this bureau sent a version of ``notice_id`` to ``recipient`` (or held it for
    review) and has no ``purged`` receipt from it: ``recipient`` holds the notice."""
    for row in sink.status(notice_id):
        if row["recipient"] != recipient:
            continue
        messages = row["messages"]
        if any(x["status"] == ReceiptStatus.PURGED for m in messages for x in m["receipts"]):
            return False
        return any(
            m["kind"] in (MessageKind.PUBLISH, MessageKind.UPDATE)
            and m["status"] in (SendStatus.SENT, SendStatus.HELD)
            for m in messages
        )
    return False


def _no_roles(bureau: str) -> frozenset[str]:
    """The default of :attr:`ReceivePipeline.roles`: no bureau has a role."""
    del bureau
    return frozenset()


def _no_review(kind: str, notice_type: str, sender: str) -> bool:
    """The default of :attr:`ReceivePipeline.needs_review`: nothing needs review."""
    del kind, notice_type, sender
    return False


#: one handler per message kind; a kind without one is quarantined as ``wrong-topic``
HANDLERS: Mapping[str, Handler] = {
    MessageKind.PUBLISH: NoticeHandler(carries_view=True),
    MessageKind.UPDATE: NoticeHandler(carries_view=True),
    MessageKind.SUSPEND: NoticeHandler(carries_view=False),
    MessageKind.CANCEL: NoticeHandler(carries_view=False),
    MessageKind.ERASURE: NoticeHandler(carries_view=False),
    MessageKind.RECEIPT: ReceiptHandler(),
    MessageKind.REVIEW: FactHandler(MessageKind.REVIEW),
    MessageKind.BLOCK: FactHandler(MessageKind.BLOCK),
    MessageKind.UNBLOCK: FactHandler(MessageKind.UNBLOCK),
    MessageKind.DELETE: FactHandler(MessageKind.DELETE),
    MessageKind.RESPONSE: ResponseHandler(),
}
#: the kinds that travel on an inbox
NOTICE_KINDS = frozenset(kind for kind, h in HANDLERS.items() if h.topic == INBOX)


@dataclass
class ReceivePipeline:
    """Verifies and applies one bureau's records (see the module docstring)."""

    bureau: str
    directory: KeyLookup
    sink: Sink
    stats: DaemonStats
    decryption_keys: Mapping[str, RecipientPrivateKey]
    validate: Callable[[dict[str, Any]], Any]
    policies: PolicySet | None
    max_frame_bytes: int
    min_suite: int
    require_log_append_time: bool
    receipts_topic: str
    handlers: Mapping[str, Handler] = field(default_factory=lambda: HANDLERS)
    log: FilteringBoundLogger = field(default_factory=get_logger)
    #: a bureau's roles in the directory (``KeyLookup.roles``); default: nobody has one
    roles: Callable[[str], frozenset[str]] = _no_roles
    #: whether a message kind of a notice type needs review (``KeyLookup.rules().needs_review``);
    #: default: nothing does
    needs_review: Callable[[str, str, str], bool] = _no_review
    #: this bureau's screening lists: flags for every person-targeting version stored (advice
    #: for a human, never a decision); ``None``: no screening
    screener: Screener | None = None
    #: this reviewer's holding topic (``nbx.hold.<CC>``), or ``None``
    hold_topic: str | None = None

    def receive(self, record: ConsumerRecord[bytes, bytes]) -> Outcome:
        """Verify and apply one record. A store failure raises
        :class:`~broker.errors.SinkError`; anything else unexpected is the caller's to catch."""
        started = time.monotonic()
        value: bytes = record.value or b""
        if record.topic == self.hold_topic:
            return self.hold(record, value)
        if self.require_log_append_time and record.timestamp_type != LOG_APPEND_TIME:
            # the producer chose this time: a key thief would back-date it (a topic re-created
            # without LogAppendTime, or a broker that does not stamp records)
            return Outcome(quarantine=Reason.TIMESTAMP_TYPE)
        received_at = record_time(record.timestamp)
        if received_at is None:
            return Outcome(quarantine=Reason.TIMESTAMP)
        try:
            package = open_package(
                value,
                topic=record.topic,
                recipient=self.bureau,
                decryption_keys=self.decryption_keys,
                directory=self.directory,
                max_size=self.max_frame_bytes,
                received_at=received_at,
                min_suite=self.min_suite,
            )
        except EnvelopeRejected as exc:
            return Outcome(quarantine=exc.reason)
        except KeyDirectoryError:
            return Outcome(quarantine=Reason.KEY_UNKNOWN)
        handler = self.handlers.get(package.kind)
        topic = RECEIPTS if record.topic == self.receipts_topic else INBOX
        if handler is None or handler.topic != topic:
            return Outcome(quarantine=Reason.WRONG_TOPIC, about=package)
        position = Position(record.topic, record.partition, record.offset)
        return handler(self, Received(package, position, started))

    def held_back(self, package: VerifiedPackage) -> bool:
        """Whether ``package`` comes from a sender under heightened supervision (``pre``) for a
        message that needs review, without an approval of its statement by a reviewer: such a
        message reaches a national bureau only forwarded by the reviewer after its attestation
        (the reviewer itself receives it to review it)."""
        rules = self.directory.rules()
        if rules.supervision_of(package.sender) != "pre":
            return False
        if not rules.needs_review(package.kind, package.notice_type):
            return False
        if Role.REVIEWER in self.roles(self.bureau):
            return False
        return not any(
            f.kind == MessageKind.REVIEW
            and f.decision == "approved"
            and f.statement_hash == package.statement_hash
            and Role.REVIEWER in self.roles(f.by)
            for f in self.sink.facts(package.sender, package.notice_id)
        )

    def hold(self, record: ConsumerRecord[bytes, bytes], value: bytes) -> Outcome:
        """Keep a package a sender under heightened supervision put on this reviewer's holding
        topic: sealed for its final recipient (unreadable here), forwarded unchanged when the
        reviewer approves the message (``nbx review approve``), dropped when it refuses it.
        Checked here: this bureau is a reviewer, the record names a recipient and a statement
        hash, the size; everything else is checked by the recipient when it arrives."""
        if Role.REVIEWER not in self.roles(self.bureau):
            return Outcome(quarantine=Reason.NOT_REVIEWER)
        if len(value) > self.max_frame_bytes:
            return Outcome(quarantine=Reason.TOO_LARGE)
        headers = dict(record.headers or ())
        to = headers.get(HOLD_TO_HEADER, b"").decode("ascii", "replace")
        statement = headers.get(HOLD_HEADER, b"").decode("ascii", "replace")
        if not is_bureau_id(to) or _STATEMENT_HASH.fullmatch(statement) is None:
            return Outcome(quarantine=Reason.HOLD)
        kept = tuple((k, v) for k, v in record.headers or () if k not in _HOLD_HEADERS)
        position = Position(record.topic, record.partition, record.offset)
        self.sink.hold(HeldFrame(statement, to, value, kept), position)
        self.stats.held += 1
        return Outcome()

    def answer(self, package: VerifiedPackage, status: ReceiptStatus, reason: str | None) -> Answer:
        """The receipt owed to the sender of ``package``."""
        return answer(package, self.bureau, status, reason)


#: a statement hash: base64url of SHA-256, no padding
_STATEMENT_HASH = re.compile(r"[A-Za-z0-9_-]{43}")
_HOLD_HEADERS = frozenset({HOLD_HEADER, HOLD_TO_HEADER})


def record_time(timestamp_ms: int) -> datetime | None:
    """A record's timestamp as a time, or ``None`` if it is not a representable one."""
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
