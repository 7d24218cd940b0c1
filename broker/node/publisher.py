"""Publisher: validate, decide per recipient, seal once, encrypt per recipient, produce.

Concurrent publishes share one signature (:mod:`broker.node.signer`); one at a time, each message
is signed alone.

``async with Publisher.from_config(cfg) as pub: result = await pub.publish(notice, to=ALL)``.
Each recipient's outcome is reported on its own: an unknown bureau, a bureau without a valid key or
one excluded by the sender's restrictions does not stop the others. Packages are encrypted and
produced concurrently, at most ``max_in_flight`` at a time, so memory stays bounded whatever the
number of recipients.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError

from broker.envelope import Grant, Sealed
from broker.envelope.seal import prepare
from broker.errors import KeyDirectoryError, NbxError
from broker.keys import BureauKeys, KeyLookup
from broker.keys.join import check_listed
from broker.logging import get_logger
from broker.node.keycare import KeyCare
from broker.node.runtime import check_accepting
from broker.node.signer import BatchSigner
from broker.sinks.audit import AuditEvent, decision_event, default_operator
from broker.sinks.base import Fact, ResponseRecord
from broker.sinks.retention import (
    DEFAULT_CONFIRM_WITHIN,
    PendingOrder,
    RetentionLimit,
    default_limit,
    erase_by_of,
    notice_expiry,
    retain_until,
    stamp,
)
from broker.transport import (
    KafkaSettings,
    KafkaTransport,
    Transport,
    connect_error,
    hold,
    inbox,
    track_topics,
)
from broker.transport.factory import Producer, settings_of
from broker.transport.record_keys import record_key
from broker.transport.topics import HOLD_HEADER, HOLD_TO_HEADER
from broker.vocab import (
    ALL,
    AuditAction,
    LifecycleKind,
    MessageKind,
    ResponseKind,
    Role,
    SendStatus,
)

if TYPE_CHECKING:
    from broker.node.config import NodeConfig
    from broker.node.metrics import MetricsServer, NodeMetrics
    from broker.policy import PolicySet, SenderRestrictions
    from broker.schemas import NoticeBase
    from broker.sinks import Sink

FORMAT_HEADER = "nbx-format"
KID_HEADER = "nbx-kid"


@dataclass(frozen=True)
class RecipientOutcome:
    """What happened for one recipient: ``sent``, ``excluded`` or ``failed`` with a reason."""

    recipient: str
    status: SendStatus
    reason: str | None = None
    topic: str | None = None
    offset: int | None = None
    disclosed: int = 0
    withheld: int = 0


@dataclass(frozen=True)
class PublishResult:
    """The outcome of one publish: the message id and one outcome per recipient."""

    msg_id: str
    notice_id: str
    kind: MessageKind
    outcomes: list[RecipientOutcome] = field(default_factory=list)
    #: what a reviewer attests: the hash of the signed statement every recipient verified
    #: (:attr:`broker.envelope.VerifiedPackage.statement_hash`); None if nothing was sent
    statement_hash: str | None = None
    #: the notice's type
    notice_type: str | None = None
    #: the key id of the signing key the message was signed with (None if nothing was sent):
    #: during a signing-key rotation, which key the rule picked (:mod:`broker.keys.signing`)
    kid: str | None = None

    @property
    def sent(self) -> list[str]:
        """Recipients whose package was acknowledged by the broker."""
        return [o.recipient for o in self.outcomes if o.status == SendStatus.SENT]

    @property
    def failed(self) -> list[RecipientOutcome]:
        """Recipients that could not be sent to, with the reason."""
        return [o for o in self.outcomes if o.status == SendStatus.FAILED]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "msg_id": self.msg_id,
            "notice_id": self.notice_id,
            "kind": self.kind,
            "statement_hash": self.statement_hash,
            "recipients": [o.__dict__ for o in self.outcomes],
        }


class Publisher:
    """Seals once and fans out to ``nbx.inbox.<CC>``; use as ``async with Publisher(...)``."""

    def __init__(
        self,
        keys: BureauKeys,
        directory: KeyLookup,
        settings: KafkaSettings,
        *,
        policies: PolicySet | None = None,
        store: Sink | None = None,
        max_in_flight: int = 64,
        validity: timedelta = timedelta(days=30),
        max_sign_batch: int = 64,
        max_frame_bytes: int = 1 << 20,
        transport: Transport | None = None,
        operator: str | None = None,
        confirm_within: timedelta = DEFAULT_CONFIRM_WITHIN,
        retention: RetentionLimit | None = None,
        key_care: KeyCare | None = None,
        metrics: NodeMetrics | None = None,
        metrics_address: tuple[str, int] | None = None,
    ) -> None:
        """Prepare a publisher for bureau ``keys.bureau`` (the producer starts on enter).

        ``key_care``: where the key files are; each message is then signed with the key the rule
        of :mod:`broker.keys.signing` picks at that moment (new key files and a new directory
        taken up without a restart). Without it, ``keys`` sign every message.

        A long-running publisher (an embedding service) counts what it sends into ``metrics``
        (:class:`~broker.node.metrics.NodeMetrics`; ``nbx_messages_published_total`` by status):
        a daemon's in the same process (one registry per process), or its own served on
        ``metrics_address`` ``(host, port)`` while ``async with`` is open (port 0: a free one,
        see :attr:`metrics_server`); ready then means producer started and directory accepted.

        ``operator``: who sends (the audit entries of what is sent carry it; default
        :func:`~broker.sinks.audit.default_operator`: ``NBX_OPERATOR``, else the OS user).
        ``confirm_within``: how long a recipient has to confirm a purging message (cancel,
        erasure without ``erase_by``, refusal, delete) with a signed ``purged`` receipt before
        it is overdue. ``retention``: this bureau's own longest retention per notice type (its
        bookkeeping of what it sent is swept past it, or past the notice's own expiry).

        ``max_sign_batch`` caps how many concurrent publishes share one signature; 1 signs every
        message alone. Frames are padded to size buckets of at most ``max_frame_bytes``.
        ``transport`` builds the producer and the topic manager (default: aiokafka clients from
        ``settings``, :class:`~broker.transport.KafkaTransport`; :mod:`broker.testing` has an
        in-memory one).
        """
        self._keys = keys
        self.key_care = key_care
        self.bureau = keys.bureau
        self.directory = directory
        self.settings = settings
        self.policies = policies
        self.store = store
        self.validity = validity
        self.max_frame_bytes = max_frame_bytes
        self.confirm_within = confirm_within
        self.retention: RetentionLimit = retention or default_limit
        self._slots = asyncio.Semaphore(max_in_flight)
        #: concurrent publishes share one signature (see :mod:`broker.node.signer`)
        self.signer = BatchSigner(keys, max_batch=max_sign_batch)
        self.transport: Transport = transport or KafkaTransport(settings)
        self._producer: Producer | None = None
        self._topics = self.transport.topics()
        self._owns_store = False
        self._log = get_logger()
        self.operator = operator or default_operator()
        self.metrics = metrics
        self.metrics_address = metrics_address
        #: the HTTP endpoint while ``async with`` is open with a ``metrics_address``
        self.metrics_server: MetricsServer | None = None
        if metrics is not None:
            if metrics.directory is None:
                metrics.directory = directory
            if metrics.readiness is None:  # a daemon's readiness stays the process's
                metrics.readiness = self.unready

    def unready(self) -> list[str]:
        """Why the publisher cannot publish now (``/readyz``), empty when it can."""
        from broker.node import metrics

        unmet = [] if self._producer is not None else ["producer not started"]
        refusal = self.directory.refusal()
        if refusal is not None:
            unmet.append(f"{metrics.NO_DIRECTORY} ({refusal})")
        return unmet

    @classmethod
    def from_config(
        cls,
        config: NodeConfig,
        *,
        transport: Transport | None = None,
        metrics_address: tuple[str, int] | None = None,
        metrics: NodeMetrics | None = None,
    ) -> Publisher:
        """Build a publisher from a node configuration (keys, directory, policies, store).

        A long-running one serves metrics on ``metrics_address`` (never ``[metrics] port``:
        that is the daemon's, and a one-shot ``nbx publish`` must not take it), or counts into
        the ``metrics`` of a daemon in the same process."""
        from broker.node.runtime import load_node

        node = load_node(config)
        if metrics is None and metrics_address is not None:
            from broker.node.metrics import NodeMetrics

            metrics = NodeMetrics(config.bureau)
        pub = cls(
            node.keys,
            node.directory,
            config.kafka_settings(),
            policies=node.policies,
            # the publisher's own bookkeeping (what it sent) needs no fsync per publish
            store=node.open_store(durable=False),
            max_in_flight=config.limits.max_in_flight,
            validity=timedelta(days=config.limits.message_validity_days),
            max_sign_batch=config.limits.max_sign_batch,
            max_frame_bytes=config.limits.max_frame_bytes,
            transport=transport,
            operator=default_operator(config.audit.operator),
            confirm_within=config.retention.confirm_within_delta(),
            retention=node.retention_limit(),
            key_care=KeyCare.from_config(config),
            metrics=metrics,
            metrics_address=metrics_address,
        )
        pub._owns_store = True
        return pub

    @property
    def keys(self) -> BureauKeys:
        """The keys to sign with now (with :attr:`key_care`: read again if a key file changed,
        the signing key picked by :mod:`broker.keys.signing`; if the files cannot be read, the
        keys used last)."""
        if self.key_care is not None:
            current = self.key_care.current(self.directory, datetime.now(UTC))
            if current is not None:
                self._keys = current
        return self._keys

    async def __aenter__(self) -> Publisher:
        await self.directory.start(self)  # the directory is followed while the publisher runs
        producer = self.transport.producer()
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            await self.directory.stop(self)
            raise connect_error(
                self.transport.bootstrap, exc, settings_of(self.transport)
            ) from None
        self._producer = producer
        if self.metrics is not None and self.metrics_address is not None:
            self.metrics_server = self.metrics.serve(*self.metrics_address)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self.metrics_server = self.metrics_server, None
        if server is not None:
            server.close()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        await self._topics.close()
        await self.directory.stop(self)
        if self._owns_store and self.store is not None:
            self.store.close()

    # --- recipients -----------------------------------------------------------------------

    def resolve_recipients(self, to: Sequence[str] | Literal["all"]) -> list[str]:
        """``to`` as a sorted list of bureau ids; ``"all"`` means every other bureau listed."""
        if to == ALL:
            return sorted(b for b in self.directory.bureau_ids() if b != self.bureau)
        recipients = sorted(set(to))
        if not recipients:
            msg = "no recipients given"
            raise NbxError(msg)
        return recipients

    # --- notices --------------------------------------------------------------------------

    async def publish(
        self,
        notice: NoticeBase,
        to: Sequence[str] | Literal["all"],
        *,
        restrictions: SenderRestrictions | None = None,
        kind: MessageKind | None = None,
    ) -> PublishResult:
        """Publish (version 1) or update (version > 1) ``notice`` to ``to``.

        ``to`` is required: a list of bureau ids, or :data:`ALL` (every other bureau listed) said
        explicitly; forgetting it is a ``TypeError``, never a broadcast.
        """
        from broker.policy import decide_all
        from broker.schemas import disclosure_units, non_redactable

        if notice.issuing_bureau != self.bureau:
            msg = (
                f"notice {notice.notice_id} is issued by {notice.issuing_bureau}, not {self.bureau}"
            )
            raise NbxError(msg)
        if self.policies is None:
            msg = "no policies loaded: the publisher needs the policy directory"
            raise NbxError(msg)
        kind = kind or (MessageKind.PUBLISH if notice.version == 1 else MessageKind.UPDATE)
        split = disclosure_units(notice)
        units = {u.path: u.value for u in split}
        header = non_redactable(notice)
        handling = str(notice.handling.code)
        if restrictions is not None and restrictions.handling is not None:
            # the sender's handling code is what every rule matched and what is sealed
            handling = str(restrictions.handling)
            if handling == "H3" and notice.handling.conditions is None:
                msg = "handling H3 needs its conditions text: set handling in the notice instead"
                raise NbxError(msg)
            header["handling"] = (
                {"code": handling, "conditions": notice.handling.conditions}
                if handling == "H3"
                else {"code": handling}
            )
        outcomes: list[RecipientOutcome] = []
        addressable: list[str] = []
        recipients = self.resolve_recipients(to)
        problem = addressee_problem(  # the reviewer sees a diffusion it is not addressed
            notice,
            [
                r
                for r in recipients
                if r != self.bureau and Role.REVIEWER not in self.directory.roles(r)
            ],
        )
        if problem is not None:
            raise NbxError(problem)
        reviewer = self.holder(kind, notice.notice_type)
        if reviewer is not None and reviewer not in recipients:
            recipients = sorted([*recipients, reviewer])  # it reviews its own copy
        for recipient in recipients:
            if recipient == self.bureau:
                continue
            try:  # no valid key: report it, and keep it out of the sealed audience
                self.directory.recipient_key(recipient)
            except KeyDirectoryError as exc:
                outcomes.append(RecipientOutcome(recipient, SendStatus.FAILED, str(exc)))
                continue
            addressable.append(recipient)
        grants: dict[str, Grant] = {}
        decisions = decide_all(
            notice, addressable, self.policies, restrictions=restrictions, units=split
        )
        for recipient, decision in decisions.items():
            if not decision.allowed:
                outcomes.append(RecipientOutcome(recipient, SendStatus.EXCLUDED, decision.reason))
                continue
            grants[recipient] = decision.grant()
        own = retain_until(
            expiry=notice_expiry({"retention_until": notice.retention_until.isoformat()}),
            created=notice.created_at,
            max_retention=self.retention(str(notice.notice_type), self.bureau),
        )
        return await self._send(
            kind=kind,
            notice_id=notice.notice_id,
            notice_type=str(notice.notice_type),
            header=header,
            units=units,
            grants=grants,
            handling=handling,
            extra_outcomes=outcomes,
            bookkeeping=_Bookkeeping(retain_until=stamp(own)),
        )

    async def lifecycle(
        self,
        kind: LifecycleKind,
        notice_id: str,
        notice_type: str,
        to: Iterable[str],
        *,
        details: Mapping[str, Any],
        handling: str = "H0",
    ) -> PublishResult:
        """Send a suspend / cancel / erasure message about ``notice_id`` (no personal data)."""
        return await self._header_only(
            MessageKind(kind), notice_id, notice_type, dict(details), to, "lifecycle", handling
        )

    async def review(
        self,
        *,
        subject_sender: str,
        subject_msg_id: str,
        notice_id: str,
        notice_type: str,
        statement_hash: str,
        decision: Literal["approved", "refused"],
        reason: str,
        to: Iterable[str],
        grounds: Sequence[str] = (),
    ) -> PublishResult:
        """Send a reviewer's attestation of ``subject_sender``'s message ``subject_msg_id``
        (bound to its ``statement_hash``) to ``to``: every recipient of the notice and its
        sender. No personal data: the body travels in the signed header, the grants are empty.
        Invalid input (a refusal without grounds, a malformed hash) raises
        :class:`~broker.errors.NbxError`."""
        from broker.schemas.safeguards import Review

        body = _body(
            Review,
            subject_sender=subject_sender,
            subject_msg_id=subject_msg_id,
            statement_hash=statement_hash,
            decision=decision,
            grounds=tuple(grounds),
            reason=reason,
        )
        return await self._safeguard(MessageKind.REVIEW, notice_id, notice_type, body, to)

    async def oversight(
        self,
        kind: Literal["block", "unblock", "delete"],
        *,
        subject_sender: str,
        notice_id: str,
        notice_type: str,
        case_ref: str,
        to: Iterable[str],
        reason: str | None = None,
    ) -> PublishResult:
        """Send the oversight body's ``block`` / ``unblock`` / ``delete`` decision about
        ``subject_sender``'s notice ``notice_id`` (case ``case_ref``; ``reason`` required for
        block and delete) to ``to``: every recipient of the notice (and its sender)."""
        from broker.schemas.safeguards import Block, Delete, Unblock

        message_kind = MessageKind(kind)
        if message_kind == MessageKind.UNBLOCK:
            body = _body(Unblock, subject_sender=subject_sender, case_ref=case_ref)
        else:
            model = Block if message_kind == MessageKind.BLOCK else Delete
            body = _body(model, subject_sender=subject_sender, case_ref=case_ref, reason=reason)
        return await self._safeguard(message_kind, notice_id, notice_type, body, to)

    async def _safeguard(
        self,
        kind: MessageKind,
        notice_id: str,
        notice_type: str,
        body: dict[str, Any],
        to: Iterable[str],
    ) -> PublishResult:
        """Seal a review / oversight message like a lifecycle one: empty grants, the body in
        the signed header under the kind's name."""
        # the reviewer (or oversight body) holding a copy itself is one of ``to``: its own daemon
        # applies the decision to that copy like every recipient (a refusal purges it there too)
        recipients = sorted(set(to))
        if not recipients:
            msg = "no recipients given"
            raise NbxError(msg)
        return await self._header_only(
            kind, notice_id, notice_type, body, recipients, "safeguard", "H0"
        )

    async def _header_only(
        self,
        kind: MessageKind,
        notice_id: str,
        notice_type: str,
        body: dict[str, Any],
        to: Iterable[str],
        label: str,
        handling: str,
        *,
        origin: str | None = None,
        deadline: str | None = None,
    ) -> PublishResult:
        """Seal a message whose whole content is ``body`` in the signed header under the kind's
        name (no personal data, empty grants) to every bureau in ``to``.

        A purging message (cancel, erasure, a refusal, a delete) is recorded with its deadline
        for the recipients' ``purged`` receipts: an erasure's ``erase_by``, else now +
        :attr:`confirm_within` (a resend keeps its order's ``origin`` and ``deadline``)."""
        name = kind.value  # its value (a plain str) is what is signed
        header = {"notice_id": notice_id, "notice_type": notice_type, name: body}
        grants = {r: Grant(frozenset(), (), f"{label}:{name}") for r in sorted(set(to))}
        now = datetime.now(UTC)
        if _purging(kind, body) and deadline is None:
            erase_by = erase_by_of(header) if kind == MessageKind.ERASURE else None
            deadline = stamp(erase_by or now + self.confirm_within)
        subject = body.get("subject_sender")  # a refusal or delete: its sender holds no copy
        return await self._send(
            kind=kind,
            notice_id=notice_id,
            notice_type=notice_type,
            header=header,
            units={},
            grants=grants,
            handling=handling,
            body=body,
            bookkeeping=_Bookkeeping(
                retain_until=stamp(now + self.retention(notice_type, self.bureau)),
                deadline=deadline if _purging(kind, body) else None,
                origin=origin,
                body=dict(body) if _purging(kind, body) else None,
                exempt=str(subject) if isinstance(subject, str) else None,
            ),
        )

    async def resend_overdue(self, now: datetime | None = None) -> list[PublishResult]:
        """Send every overdue purging message again (``nbx erasure --resend-overdue``) to the
        recipients that have not confirmed it, and to them only: a new message (new msg id) with
        the same kind, notice, body and deadline, recorded as a resend of the order, so a
        ``purged`` receipt for either clears it."""
        if self.store is None:
            msg = "Publisher has no store: use Publisher.from_config"
            raise NbxError(msg)
        orders: dict[str, list[PendingOrder]] = {}
        for order in self.store.pending_orders(now or datetime.now(UTC)):
            orders.setdefault(order.origin, []).append(order)
        results = []
        for origin, pending in orders.items():
            first = pending[0]
            kind = MessageKind(first.kind)
            label = (
                "lifecycle" if kind in (MessageKind.CANCEL, MessageKind.ERASURE) else "safeguard"
            )
            results.append(
                await self._header_only(
                    kind,
                    first.notice_id,
                    first.notice_type or "",
                    first.body,
                    sorted({p.recipient for p in pending}),
                    label,
                    "H0",
                    origin=origin,
                    deadline=first.deadline,
                )
            )
        return results

    def recipients_of(self, notice_id: str) -> list[str]:
        """Every bureau a message about ``notice_id`` was sent to, from the store."""
        if self.store is None:
            return []
        return [
            r["recipient"]
            for r in self.store.status(notice_id)
            if any(m["status"] == SendStatus.SENT for m in r["messages"])
        ]

    # --- answers to a notice --------------------------------------------------------------

    async def respond(
        self,
        notice_id: str,
        kind: ResponseKind | str,
        *,
        note: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
        in_reply_to: str | None = None,
        share: bool = True,
        at: datetime | None = None,
    ) -> PublishResult:
        """Answer the notice ``notice_id`` this bureau received (``located``, ``arrested``...,
        :class:`~broker.vocab.ResponseKind`): a signed ``response`` message to its issuer and,
        with ``share``, to the bureaus of the notice's ``responses_shared_with`` it was also
        addressed to. ``note`` (required for ``no-action`` and ``more-information-needed``) and
        ``attachments`` (``uri``, ``sha256``, ``media_type``, optional ``title``: files this
        bureau holds, by reference) travel in the signed header; ``in_reply_to``: the msg id
        of the message it answers. Only a bureau holding the notice (stored, not purged) may
        respond: otherwise, or for invalid input, :class:`~broker.errors.NbxError`."""
        from broker.schemas.lifecycle import Response
        from broker.sinks.base import PURGED_STATES, SENT_RESPONSE, ResponseRecord

        if self.store is None:
            msg = "Publisher has no store: use Publisher.from_config"
            raise NbxError(msg)
        held = self.store.held_notice(notice_id)
        if held is None or held.sender == self.bureau:
            msg = f"{notice_id}: no such notice received by this node (nbx inbox list)"
            raise NbxError(msg)
        if held.state in PURGED_STATES:
            msg = (
                f"{notice_id}: {held.state} here: only a bureau that holds the notice may "
                "respond to it"
            )
            raise NbxError(msg)
        stamp_at = at or datetime.now(UTC)
        body = _body(
            Response,
            notice_id=notice_id,
            kind=str(kind),
            note=note,
            attachments=[dict(a) for a in attachments],
            in_reply_to=in_reply_to,
            at=stamp_at,
        )
        shared = (
            sorted(set(held.shared_with) & set(held.audience) - {self.bureau, held.sender})
            if share
            else []
        )
        recipients = [held.sender, *shared]
        header = {
            "notice_id": notice_id,
            "notice_type": held.notice_type,
            "issuing_bureau": held.sender,
            MessageKind.RESPONSE.value: body,
        }
        grants = {r: Grant(frozenset(), (), f"response:{body['kind']}") for r in recipients}
        record = ResponseRecord(
            direction=SENT_RESPONSE,
            msg_id="",  # the message's, once sealed (see _record)
            notice_id=notice_id,
            notice_type=held.notice_type,
            issuer=held.sender,
            by=self.bureau,
            kind=str(body["kind"]),
            at=str(body["at"]),
            note=body.get("note"),
            attachments=tuple(body.get("attachments") or ()),
            in_reply_to=body.get("in_reply_to"),
        )
        return await self._send(
            kind=MessageKind.RESPONSE,
            notice_id=notice_id,
            notice_type=held.notice_type,
            header=header,
            units={},
            grants=grants,
            handling="H0",
            body=body,
            bookkeeping=_Bookkeeping(
                retain_until=stamp(stamp_at + self.retention(held.notice_type, self.bureau)),
                response=record,
            ),
        )

    # --- low level ------------------------------------------------------------------------

    async def forward_held(
        self,
        statement_hash: str,
        notice_id: str,
        *,
        msg_id: str | None = None,
        notice_type: str | None = None,
        kind: str | None = None,
    ) -> list[RecipientOutcome]:
        """(A reviewer, after approving) forward the packages a sender under heightened
        supervision left on this reviewer's holding topic, unchanged, to their recipients'
        inboxes, then forget them. Each goes with this reviewer's record key for (recipient,
        notice): the partition its attestation went to, after it, so a recipient always holds
        the approval when the package arrives."""
        producer = self._producer
        if producer is None or self.store is None:
            msg = "Publisher is not started with its store: use Publisher.from_config"
            raise RuntimeError(msg)
        frames = self.store.held(statement_hash)
        topics = sorted({inbox(f.recipient) for f in frames})
        await self._topics.ensure(topics)
        await track_topics(producer, topics)
        outcomes = []
        for frame in frames:
            topic = inbox(frame.recipient)
            try:
                meta = await producer.send_and_wait(
                    topic,
                    frame.value,
                    key=record_key(self.keys, frame.recipient, notice_id),
                    headers=list(frame.headers),
                )
            except KafkaError as exc:
                reason = f"broker: {type(exc).__name__}"
                outcomes.append(RecipientOutcome(frame.recipient, SendStatus.FAILED, reason))
                continue
            outcomes.append(
                RecipientOutcome(frame.recipient, SendStatus.SENT, None, topic, meta.offset)
            )
        forwarded = tuple(o.recipient for o in outcomes if o.status == SendStatus.SENT)
        if forwarded:
            self.store.record(
                AuditEvent(
                    AuditAction.DISCLOSURE,
                    notice_id=notice_id,
                    msg_id=msg_id,
                    sender=self.bureau,
                    notice_type=notice_type,
                    kind=kind,
                    bureaus=forwarded,
                    operator=self.operator,
                    outcome="forwarded",
                )
            )
        if not any(o.status == SendStatus.FAILED for o in outcomes):
            self.store.drop_held(statement_hash)  # kept to forward again if one failed
        return outcomes

    def holder(self, kind: str, notice_type: str) -> str | None:
        """The reviewer that holds this bureau's message until it approves it (heightened
        supervision, ``pre``), or ``None`` when the message goes straight to the inboxes."""
        rules = self.directory.rules()
        if rules.supervision_of(self.bureau) != "pre" or not rules.needs_review(kind, notice_type):
            return None
        reviewers = sorted(
            b for b in self.directory.bureau_ids() if Role.REVIEWER in self.directory.roles(b)
        )
        return reviewers[0] if reviewers else None

    async def _send(
        self,
        *,
        kind: MessageKind,
        notice_id: str,
        notice_type: str,
        header: Mapping[str, Any],
        units: Mapping[str, Any],
        grants: Mapping[str, Grant],
        handling: str,
        extra_outcomes: Sequence[RecipientOutcome] = (),
        body: Mapping[str, Any] | None = None,
        bookkeeping: _Bookkeeping | None = None,
    ) -> PublishResult:
        """Seal one message for every recipient in ``grants`` and produce each package.

        ``body``: a review's or oversight decision's body (its audit entry records the decision).

        Private: ``grants`` are trusted as given, so every caller must have decided them (the
        policy in :meth:`publish`, the fixed empty grants of :meth:`lifecycle`).
        """
        if self._producer is None:
            msg = "Publisher is not started: use 'async with Publisher(...)'"
            raise RuntimeError(msg)
        check_accepting(self.directory)  # a stale or too old directory: refuse to publish
        check_listed(self.directory, self.bureau)  # a bureau that joins: not listed yet
        started = time.monotonic()
        if not grants:
            result = PublishResult(
                "", notice_id, kind, list(extra_outcomes), notice_type=notice_type
            )
            self._record(result, body, bookkeeping)
            return result
        keys = self.keys  # one signing key for the whole message
        unsigned = prepare(
            signer=keys,
            kind=kind,
            notice_id=notice_id,
            notice_type=notice_type,
            header=header,
            units=units,
            grants=grants,
            handling=handling,
            validity=self.validity,
            now=datetime.now(UTC),
        )
        signature, proof = await self.signer.sign(unsigned.statement, keys)
        sealed = unsigned.signed(signature, proof)
        audience = sealed.audience
        reviewer = self.holder(kind, notice_type)
        held = reviewer if reviewer in audience else None
        topics = sorted({self._route(r, held) for r in audience})
        await self._topics.ensure(topics)
        await track_topics(self._producer, topics)
        if len(audience) == 1:  # no task and gather for a single recipient
            sent = [await self._send_one(sealed, audience[0], held, keys)]
        else:
            sent = await asyncio.gather(*(self._send_one(sealed, r, held, keys) for r in audience))
        outcomes = sorted([*sent, *extra_outcomes], key=lambda o: o.recipient)
        result = PublishResult(
            sealed.msg_id,
            notice_id,
            kind,
            outcomes,
            statement_hash=sealed.statement_hash,
            notice_type=notice_type,
            kid=keys.signing_key_id,
        )
        self._record(result, body, bookkeeping)
        self._log.info(
            "notice.published",
            msg_id=sealed.msg_id,
            notice_id=notice_id,
            notice_type=notice_type,
            kind=kind,
            sender=self.bureau,
            count=len(result.sent),
            failed=len(result.failed),
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return result

    def _record(
        self,
        result: PublishResult,
        body: Mapping[str, Any] | None = None,
        bookkeeping: _Bookkeeping | None = None,
    ) -> None:
        """Keep what was sent to whom (with its deadlines and retention), and its audit entry,
        in one transaction; count each recipient's outcome (``metrics``)."""
        if self.metrics is not None:
            for outcome in result.outcomes:
                self.metrics.sent(outcome.status)
        store = self.store
        if store is None:
            return
        event = self._audit_event(result, body)
        keep = bookkeeping or _Bookkeeping()

        def record(o: RecipientOutcome) -> None:
            store.record_sent(
                result.msg_id,
                result.notice_id,
                o.recipient,
                result.kind,
                o.status,
                o.reason,
                statement_hash=result.statement_hash,
                notice_type=result.notice_type,
                deadline=None if o.recipient == keep.exempt else keep.deadline,
                retain_until=keep.retain_until,
                origin=keep.origin,
                body=keep.body,
            )

        with store.batch():  # one transaction for every recipient and the audit entry
            for o in result.outcomes:
                record(o)
            if event is not None:
                store.record(event)
            if keep.response is not None and event is not None:  # a response that went out
                store.record_response(
                    replace(keep.response, msg_id=result.msg_id, to=event.bureaus)
                )

    def _audit_event(
        self, result: PublishResult, body: Mapping[str, Any] | None
    ) -> AuditEvent | None:
        """The audit entry of a message sent: ``disclosure`` (recipients it was sent or held
        for), or ``decision`` for a review / oversight decision; none if nothing was sent."""
        reached = tuple(
            o.recipient for o in result.outcomes if o.status in (SendStatus.SENT, SendStatus.HELD)
        )
        if not result.msg_id or not reached:
            return None
        if body is not None and result.kind in (
            MessageKind.REVIEW,
            MessageKind.BLOCK,
            MessageKind.UNBLOCK,
            MessageKind.DELETE,
        ):
            grounds = body.get("grounds")
            fact = Fact(
                kind=result.kind.value,
                by=self.bureau,
                msg_id=result.msg_id,
                subject_sender=str(body.get("subject_sender") or self.bureau),
                notice_id=result.notice_id,
                decision=None if body.get("decision") is None else str(body["decision"]),
                grounds=",".join(str(g) for g in grounds) if grounds else None,
                case_ref=body.get("case_ref"),
            )
            return decision_event(fact, result.notice_type, reached, self.operator)
        return AuditEvent(
            AuditAction.DISCLOSURE,
            notice_id=result.notice_id,
            msg_id=result.msg_id,
            sender=self.bureau,
            notice_type=result.notice_type,
            kind=result.kind,
            bureaus=reached,
            operator=self.operator,
            # a response: what it answered (located, arrested...)
            outcome=str(body["kind"]) if body and result.kind == MessageKind.RESPONSE else None,
        )

    @staticmethod
    def _route(recipient: str, held_by: str | None) -> str:
        """Where the package for ``recipient`` goes: its inbox, or the reviewer's holding topic
        when the message is held (the reviewer's own copy goes to its inbox)."""
        if held_by is None or recipient == held_by:
            return inbox(recipient)
        return hold(held_by)

    async def _send_one(
        self,
        sealed: Sealed,
        recipient: str,
        held_by: str | None = None,
        keys: BureauKeys | None = None,
    ) -> RecipientOutcome:
        producer = self._producer
        if producer is None:  # pragma: no cover - checked by _send()
            msg = "Publisher is not started"
            raise RuntimeError(msg)
        topic = inbox(recipient)  # what the package is bound to, held or not
        route = self._route(recipient, held_by)
        headers = [(FORMAT_HEADER, b"1")]
        if route != topic:  # held: the reviewer forwards it unchanged once it approves
            headers += [
                (HOLD_TO_HEADER, recipient.encode()),
                (HOLD_HEADER, sealed.statement_hash.encode()),
            ]
        grant = sealed.grants[recipient]
        async with self._slots:
            try:
                kid, public_key = self.directory.recipient_key(recipient)
                value = sealed.package_for(
                    recipient,
                    topic=topic,
                    recipient_kid=kid,
                    recipient_key=public_key,
                    max_frame_bytes=self.max_frame_bytes,
                )
                meta = await producer.send_and_wait(
                    route,
                    value,
                    # opaque; the key of the signing key the message names
                    key=record_key(keys or self.keys, recipient, sealed.notice_id),
                    headers=[*headers, (KID_HEADER, kid.encode())],
                )
            except KeyDirectoryError as exc:
                return RecipientOutcome(recipient, SendStatus.FAILED, str(exc))
            except (KafkaError, NbxError) as exc:
                return RecipientOutcome(
                    recipient, SendStatus.FAILED, f"broker: {type(exc).__name__}"
                )
        return RecipientOutcome(
            recipient,
            SendStatus.SENT if route == topic else SendStatus.HELD,
            None,
            route,
            meta.offset,
            len(grant.disclosed),
            len(grant.withheld),
        )


@dataclass(frozen=True)
class _Bookkeeping:
    """What the sender keeps about a message beyond its outcome (retention, proven erasure)."""

    retain_until: str | None = None
    deadline: str | None = None  # a purging message: its purged receipts are due by then
    origin: str | None = None  # a resend: the msg id of the order it repeats
    body: dict[str, Any] | None = None  # a purging message: what it said (to send it again)
    exempt: str | None = None  # a refusal's or delete's subject sender: holds no copy
    response: ResponseRecord | None = None  # a response: what is kept of it once sent


def _purging(kind: MessageKind, body: Mapping[str, Any]) -> bool:
    """Whether a message makes its recipients purge the notice (and owes a ``purged`` receipt)."""
    if kind in (MessageKind.CANCEL, MessageKind.ERASURE, MessageKind.DELETE):
        return True
    return kind == MessageKind.REVIEW and body.get("decision") == "refused"


def _body(model: type[BaseModel], **values: Any) -> dict[str, Any]:
    """``values`` validated by ``model``, as the JSON the header carries; one clear error."""
    try:
        return model.model_validate(values).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        msg = f"invalid {model.__name__.lower()}: {problems}"
        raise NbxError(msg) from None


def addressee_problem(notice: NoticeBase, recipients: Sequence[str]) -> str | None:
    """Why ``notice`` may not be sent to ``recipients`` (the reviewer left out): a diffusion goes
    to exactly its ``addressees`` (``None`` when it may, and for every other notice type)."""
    from broker.schemas import Diffusion

    if not isinstance(notice, Diffusion):
        return None
    missing = sorted(set(notice.addressees) - set(recipients))
    extra = sorted(set(recipients) - set(notice.addressees))
    if not missing and not extra:
        return None
    parts = []
    if missing:
        parts.append(f"addressees not among the recipients: {', '.join(missing)}")
    if extra:
        parts.append(f"recipients not among the addressees: {', '.join(extra)}")
    return (
        f"diffusion {notice.notice_id} goes to exactly its addressees "
        f"({', '.join(sorted(notice.addressees))}); {'; '.join(parts)}"
    )
