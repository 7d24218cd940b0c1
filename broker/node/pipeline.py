"""The receive pipeline: one record in, one :class:`Outcome` out, synchronously.

The checks run in this order (docs/architecture.md section 1):

0. the record's timestamp must be the broker's (``LogAppendTime``) and a representable time;
1. :func:`broker.envelope.open_package`: size, frame, HPKE, strict parse, signature (key valid and
   not revoked), audience and grant, digests, expiry;
2. the kind must have a handler, and the handler's topic must be the record's (a receipt on the
   receipts topic, anything else on the inbox);
3. the kind's handler (:data:`HANDLERS`): for notices the replay guard ((sender, msg id) seen at
   another position), the header's notice id and type must be the statement's, schema validation
   of the disclosed view, the bureau's own inbound policy, then the sink applies it in one
   transaction keyed by (sender, msg id); for receipts, each one is recorded.

Nothing here produces or commits: the daemon (:mod:`broker.node.consumer`) quarantines what the
outcome says, hands the answers to the receipt writer (:mod:`broker.node.receipts`) and commits.
A new message kind is one new :class:`Handler` in :data:`HANDLERS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import ConsumerRecord
from structlog.typing import FilteringBoundLogger

from broker.envelope import VerifiedPackage, open_package
from broker.errors import EnvelopeRejected, KeyDirectoryError, SchemaError
from broker.keys import KeyLookup
from broker.logging import get_logger, reason_code
from broker.node.receipts import Answer, answer
from broker.node.stats import DaemonStats
from broker.sinks.base import RECEIPT_STATUS, Applied, Position, ReceiptRecord, Sink
from broker.transport import LOG_APPEND_TIME
from broker.vocab import MessageKind, Reason, ReceiptStatus
from broker.wire.suites import RecipientPrivateKey

if TYPE_CHECKING:
    from broker.policy import PolicySet

INBOX = "inbox"
RECEIPTS = "receipts"


@dataclass(frozen=True)
class Outcome:
    """What the pipeline decided for one record: quarantine it (with the reason), answer its
    sender, and whether it was applied (what ``on_delivered`` hears of after the commit)."""

    quarantine: Reason | None = None
    answer: Answer | None = None
    delivered: tuple[VerifiedPackage, Applied] | None = None


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
        seen = sink.seen(package.sender, package.msg_id)
        if seen is not None and seen.position != position:
            return Outcome(quarantine=Reason.REPLAY)
        if seen is not None:  # redelivery after a crash: answer again, store nothing
            stats.redelivered += 1
            status = RECEIPT_STATUS.get(seen.outcome, ReceiptStatus.DELIVERED)
            return Outcome(answer=pipe.answer(package, status, seen.reason))
        reason: Reason | None
        try:  # a signed package whose paths do not fit the schema is rejected, not fatal
            view = self.view(package)
        except SchemaError:
            view, reason = {}, Reason.SCHEMA
        else:
            reason = self.check(pipe, package, view)
        if reason is not None:
            sink.reject(package, position, reason)
            return Outcome(
                quarantine=reason, answer=pipe.answer(package, ReceiptStatus.REJECTED, reason)
            )
        outcome = sink.apply(package, view, position)
        if outcome is Applied.REPLAY:  # raced with another position; treat as replay
            return Outcome(quarantine=Reason.REPLAY)
        if outcome is Applied.PURGED:
            stats.purged += 1
        elif outcome is Applied.STALE:
            stats.stale += 1
        else:
            stats.delivered += 1
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
            answer=pipe.answer(package, RECEIPT_STATUS[outcome], None),
            delivered=(package, outcome),
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
        this bureau's inbound policy; the reason to reject, or ``None``."""
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
        if pipe.policies is not None:
            from broker.policy import inbound_check

            rule = inbound_check(
                pipe.policies,
                notice_type=package.notice_type,
                sender=package.sender,
                recipient=pipe.bureau,
            )
            if rule is not None:
                return Reason.DECLINED_BY_POLICY
        return None


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
            return Outcome(quarantine=Reason.SCHEMA)
        if any(r.recipient != package.sender for r in batch.receipts):
            return Outcome(quarantine=Reason.NOT_ADDRESSED)  # a receipt speaks for its signer
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


#: one handler per message kind; a kind without one is quarantined as ``wrong-topic``
HANDLERS: Mapping[str, Handler] = {
    MessageKind.PUBLISH: NoticeHandler(carries_view=True),
    MessageKind.UPDATE: NoticeHandler(carries_view=True),
    MessageKind.SUSPEND: NoticeHandler(carries_view=False),
    MessageKind.CANCEL: NoticeHandler(carries_view=False),
    MessageKind.ERASURE: NoticeHandler(carries_view=False),
    MessageKind.RECEIPT: ReceiptHandler(),
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

    def receive(self, record: ConsumerRecord[bytes, bytes]) -> Outcome:
        """Verify and apply one record. A store failure raises
        :class:`~broker.errors.SinkError`; anything else unexpected is the caller's to catch."""
        started = time.monotonic()
        value: bytes = record.value or b""
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
            return Outcome(quarantine=Reason.WRONG_TOPIC)
        position = Position(record.topic, record.partition, record.offset)
        return handler(self, Received(package, position, started))

    def answer(
        self, package: VerifiedPackage, status: ReceiptStatus, reason: Reason | None
    ) -> Answer:
        """The receipt owed to the sender of ``package``."""
        return answer(package, self.bureau, status, reason)


def record_time(timestamp_ms: int) -> datetime | None:
    """A record's timestamp as a time, or ``None`` if it is not a representable one."""
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
