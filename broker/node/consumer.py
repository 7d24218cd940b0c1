"""Consumer daemon: receive, verify, deliver or quarantine, send receipts, then commit.

The daemon of bureau CC reads ``nbx.inbox.CC`` (notices about to be delivered) and
``nbx.receipts.CC`` (answers to what CC sent) as the consumer group ``nbx.CC``. For each record,
in the order of docs/architecture.md section 1:

0. the record's timestamp must be the broker's (``LogAppendTime``) and a representable time;
1. :func:`broker.envelope.open_package`: size, frame, HPKE, strict parse, signature (key valid and
   not revoked), audience and grant, digests, expiry.
2. the kind must fit the topic (a receipt on the receipts topic, anything else on the inbox);
3. replay guard ((sender, msg id) seen at another position), the header's notice id and type
   must be the statement's, schema validation of the disclosed view, the bureau's own inbound
   policy;
4. the sink applies it in one transaction keyed by (sender, msg id);
5. a signed receipt (delivered / rejected + reason / purged) is produced to the sender.

Anything that fails goes to ``nbx.quarantine.CC`` with the raw bytes and a reason code; so does a
record whose handling raised anything unexpected (reason ``internal``), so that no record can stop
the inbox. Offsets of
a batch are committed only after every record of it was delivered or quarantined and every
quarantine record and receipt was acknowledged by the broker; a crash at any point re-reads the
records and the sink recognises each redelivery (same msg id, same position) and answers it again
without storing a second copy. Nothing is lost, nothing is stored twice, the daemon keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from broker.envelope import Grant, VerifiedPackage, open_package, seal
from broker.envelope.open import MAX_FRAME_BYTES
from broker.envelope.suites import SUITE_X25519, RecipientPrivateKey
from broker.errors import (
    EnvelopeRejected,
    KeyDirectoryError,
    NbxError,
    SchemaError,
    SinkError,
    TransportError,
)
from broker.keys import BureauKeys, KeyLookup
from broker.logging import get_logger, reason_code
from broker.sinks.base import RECEIPT_STATUS, Applied, Position, ReceiptRecord, Sink
from broker.transport import (
    KafkaSettings,
    connect_error,
    inbox,
    make_consumer,
    make_producer,
    quarantine,
    receipts,
    track_topics,
)
from broker.transport.admin import TopicManager
from broker.transport.record_keys import record_key

if TYPE_CHECKING:
    from broker.node.config import NodeConfig
    from broker.policy import PolicySet

T = TypeVar("T")
#: something to produce once the batch is stored; returns the broker's acknowledgement
Action = Callable[[AIOKafkaProducer], Awaitable[Awaitable[Any]]]
REASON_HEADER = "nbx-reason"
SOURCE_HEADER = "nbx-source"
TRUNCATED_HEADER = "nbx-truncated-from"
NOTICE_KINDS = frozenset({"publish", "update", "suspend", "cancel", "erasure"})
#: the statement's notice id of a receipt message (it answers several notices)
RECEIPTS_NOTICE_ID = "receipts"
#: aiokafka's ``timestamp_type`` of a record stamped by the broker (``LogAppendTime``)
LOG_APPEND_TIME = 1


@dataclass(frozen=True)
class _Answer:
    """A receipt owed to ``sender``; the batch's answers to one sender are signed together."""

    sender: str
    receipt: dict[str, Any]


@dataclass
class _Stored:
    """What storing one poll left to do: produce, acknowledge, report, commit."""

    actions: list[Action] = field(default_factory=list)
    answers: list[_Answer] = field(default_factory=list)
    delivered: list[tuple[VerifiedPackage, Applied]] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass
class DaemonStats:
    """Counters of one daemon run."""

    delivered: int = 0
    purged: int = 0
    stale: int = 0
    #: polls skipped because the directory could not be confirmed (see runtime.refusal)
    paused: int = 0
    redelivered: int = 0
    quarantined: int = 0
    receipts_sent: int = 0
    receipts_received: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class ConsumerDaemon:
    """Consumes one bureau's inbox and receipts as a consumer group until stopped or idle."""

    def __init__(
        self,
        keys: BureauKeys,
        directory: KeyLookup,
        settings: KafkaSettings,
        sink: Sink,
        *,
        policies: PolicySet | None = None,
        decryption_keys: Mapping[str, RecipientPrivateKey] | None = None,
        validate: Callable[[dict[str, Any]], Any] | None = None,
        on_delivered: Callable[[VerifiedPackage, Applied], None] | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_batch: int = 200,
        require_log_append_time: bool = True,
        min_suite: int = SUITE_X25519,
    ) -> None:
        """Prepare the daemon for bureau ``keys.bureau``.

        ``validate`` checks a disclosed view (default: :func:`broker.schemas.validate_view`);
        ``policies`` supplies this bureau's inbound policy (none: accept every type and sender).
        ``require_log_append_time`` quarantines records not stamped by the broker (reason
        ``timestamp-type``); turn it off only for a broker that cannot stamp records (the
        development broker tansu): revocation is then checked at the statement, record and local
        time, of which only the local time is not the sender's.
        """
        self.keys = keys
        self.bureau = keys.bureau
        self.directory = directory
        self.settings = settings
        self.sink = sink
        self.policies = policies
        self.decryption_keys = dict(decryption_keys or keys.decryption_keys())
        self.min_suite = min_suite  # lower suites are quarantined as suite-too-weak
        if validate is None:
            from broker.schemas import validate_view

            validate = functools.partial(validate_view, copy=False)
        self.validate = validate
        self.on_delivered = on_delivered
        self.max_frame_bytes = max_frame_bytes
        self.max_batch = max_batch
        self.require_log_append_time = require_log_append_time
        self.stats = DaemonStats()
        self.inbox_topic = inbox(self.bureau)
        self.receipts_topic = receipts(self.bureau)
        self._stop = asyncio.Event()
        self._topics = TopicManager(settings)
        self._log = get_logger()

    @classmethod
    def from_config(cls, config: NodeConfig) -> ConsumerDaemon:
        """Build a daemon from a node configuration (the store is opened here)."""
        from broker.node.runtime import load_node

        node = load_node(config)
        return cls(
            node.keys,
            node.directory,
            config.kafka_settings(),
            node.open_store(),
            policies=node.policies,
            decryption_keys=node.decryption_keys,
            max_frame_bytes=config.limits.max_frame_bytes,
            require_log_append_time=config.kafka.require_log_append_time,
            min_suite=config.security.min_suite,
        )

    def stop(self) -> None:
        """Finish the batch in hand, commit, and return from :meth:`run`."""
        self._stop.set()

    async def run(
        self, *, until_idle_s: float | None = None, connect_timeout_s: float | None = None
    ) -> DaemonStats:
        """Consume until :meth:`stop` is called or no record arrived for ``until_idle_s``
        (:meth:`_run`); the directory is followed meanwhile (:mod:`broker.node.runtime`)."""
        from broker.node.runtime import unfollow

        try:
            return await self._run(until_idle_s=until_idle_s, connect_timeout_s=connect_timeout_s)
        finally:
            await unfollow(self.directory, self)

    async def _run(
        self, *, until_idle_s: float | None = None, connect_timeout_s: float | None = None
    ) -> DaemonStats:
        """Consume until :meth:`stop` is called or no record arrived for ``until_idle_s``.

        A broker that cannot be reached at start-up is retried with exponential backoff (each
        attempt logs ``transport.retry``) until ``connect_timeout_s`` passes (``None``: forever);
        then :class:`~broker.errors.TransportError`. A sink that fails (read-only, disk full)
        stops the daemon with :class:`~broker.errors.SinkError` before the failed record's offset
        is committed, so nothing is lost: the record is delivered after a restart.
        """
        self._log.info("daemon.starting", bureau=self.bureau, bootstrap=self.settings.bootstrap)
        consumer, producer = await self._connect(connect_timeout_s)
        if consumer is None or producer is None:  # stopped while waiting for the broker
            return self.stats
        self._log.info("daemon.started", bureau=self.bureau, topic=self.inbox_topic)
        status = "stopped"
        try:
            await self._loop(consumer, producer, until_idle_s)
        except SinkError:
            status = "sink-failed"
            raise
        finally:
            with contextlib.suppress(KafkaError):
                await consumer.stop()
            with contextlib.suppress(KafkaError):
                await producer.stop()
            with contextlib.suppress(KafkaError, TransportError):
                await self._topics.close()
            self._log.info(
                "daemon.stopped",
                bureau=self.bureau,
                count=self.stats.delivered,
                status=status,
            )
        return self.stats

    async def _connect(
        self, connect_timeout_s: float | None
    ) -> tuple[AIOKafkaConsumer | None, AIOKafkaProducer | None]:
        from broker.node.runtime import follow

        started = time.monotonic()
        backoff_s = 0.5
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            consumer = make_consumer(
                self.settings,
                self.inbox_topic,
                self.receipts_topic,
                group_id=f"nbx.{self.bureau}",
            )
            producer = make_producer(self.settings)
            try:
                await self._topics.ensure(
                    [self.inbox_topic, self.receipts_topic, quarantine(self.bureau)]
                )
                await producer.start()
                await follow(self.directory, self)
                if not await self._until_stopped(consumer.start()):
                    # SIGTERM while joining the group (which can take a while): stop cleanly
                    with contextlib.suppress(KafkaError):
                        await consumer.stop()
                    with contextlib.suppress(KafkaError):
                        await producer.stop()
                    return None, None
            except (KafkaError, OSError, TransportError) as exc:
                await self._topics.close()
                with contextlib.suppress(KafkaError):
                    await consumer.stop()
                with contextlib.suppress(KafkaError):
                    await producer.stop()
                waited = time.monotonic() - started
                if connect_timeout_s is not None and waited + backoff_s > connect_timeout_s:
                    raise connect_error(self.settings.bootstrap, exc) from None
                self._log.warning(
                    "transport.retry",
                    bureau=self.bureau,
                    bootstrap=self.settings.bootstrap,
                    attempt=attempt,
                    error_type=type(exc).__name__,
                    retry_in_s=backoff_s,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)
                continue
            return consumer, producer
        return None, None

    async def _until_stopped(self, work: Awaitable[None]) -> bool:
        """Run ``work`` unless :meth:`stop` is called first; True if ``work`` finished."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self._stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task in done:
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, KafkaError):
            await task
        return False

    async def _loop(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, until_idle_s: float | None
    ) -> None:
        from broker.node.runtime import refusal

        last = time.monotonic()
        backoff_s = 0.5
        while not self._stop.is_set():
            if refusal(self.directory) is not None:  # directory stale or too old: deliver nothing
                consumer.pause(*consumer.assignment())
            elif consumer.paused():
                consumer.resume(*consumer.paused())
            batches = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
            if refusal(self.directory) is not None:  # nothing committed: read again later
                for tp, records in batches.items():
                    consumer.seek(tp, records[0].offset)
                self.stats.paused += 1
                continue
            if not batches:
                if until_idle_s is not None and time.monotonic() - last >= until_idle_s:
                    return
                continue
            last = time.monotonic()
            try:
                await self._batch(consumer, producer, batches)
                backoff_s = 0.5
            except (KafkaError, TransportError) as exc:
                # The broker went away mid-batch: nothing was committed, so rewind to the last
                # committed offsets and read the batch again; the sink answers redeliveries.
                self._log.warning(
                    "transport.retry",
                    bureau=self.bureau,
                    error_type=type(exc).__name__,
                    retry_in_s=backoff_s,
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)
                await self._rewind(consumer, list(batches))

    async def _batch(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Handle one poll (:meth:`process`), then commit its offsets."""
        await consumer.commit(await self.process(producer, batches))

    async def process(
        self,
        producer: AIOKafkaProducer,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> dict[TopicPartition, int]:
        """Store a poll's records in one sink transaction, send the quarantine records and the
        receipts (one signed receipt message per sender), wait until the broker acknowledged
        every one, and return the offsets that may now be committed.

        Verifying and storing run on the event loop's thread (a worker thread for them was
        measured slower: docs/performance.md); only the store's commit, its fsync, runs on a worker
        thread.
        """
        stored = self._store(batches)
        await self._end_batch()
        if self.on_delivered is not None:
            for package, outcome in stored.delivered:
                self.on_delivered(package, outcome)
        # every topic written to exists and is tracked by the producer before anything is sent
        # (see track_topics; also when process() is driven with a shared producer)
        targets = {receipts(a.sender) for a in stored.answers}
        if stored.actions:
            targets.add(quarantine(self.bureau))
        await self._topics.ensure(targets)
        await track_topics(producer, targets)
        actions = stored.actions + self._receipt_actions(stored.answers)
        acks = [await action(producer) for action in actions]
        await asyncio.gather(*acks)
        return stored.offsets

    def _store(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> _Stored:
        """Verify and apply a poll's records inside one sink batch, left open: the caller ends it
        with :meth:`_end_batch` (the commit and its fsync run off the event loop)."""
        stored = _Stored()
        self._sink_call(self.sink.begin)
        try:
            for tp, records in batches.items():
                for record in records:
                    for out in self._handle_safely(record, stored.delivered):
                        if isinstance(out, _Answer):
                            stored.answers.append(out)
                        else:
                            stored.actions.append(out)
                    stored.offsets[TopicPartition(tp.topic, tp.partition)] = record.offset + 1
        except BaseException:
            with contextlib.suppress(sqlite3.Error, OSError):  # report the first error
                self.sink.end(commit=False)
            raise
        return stored

    async def _end_batch(self) -> None:
        """Commit the open sink batch on a worker thread: the fsync does not hold up the event
        loop (heartbeats, fetches; a broadcast host's other bureaus). Cancelled meanwhile, it
        still waits for the commit before giving up, so the sink is never closed under it."""
        done = asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.sink.end, commit=True)
        )
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await done
            raise
        except (sqlite3.Error, OSError) as exc:
            raise self._sink_failure(exc) from exc

    async def _rewind(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            try:
                committed = await consumer.committed(tp)
                if tp in consumer.assignment():
                    if committed is None:
                        await consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, committed)
            except KafkaError as exc:  # still down: the next round tries again
                self._log.warning(
                    "transport.rewind-failed", bureau=self.bureau, error_type=type(exc).__name__
                )

    def _handle_safely(
        self,
        record: ConsumerRecord[bytes, bytes],
        delivered: list[tuple[VerifiedPackage, Applied]],
    ) -> list[Action | _Answer]:
        """:meth:`_handle`, with anything unexpected turned into a quarantine (reason
        ``internal``): one record that trips a bug must not stop the inbox for good (its offset
        would never be committed, so every restart would trip again). A store failure still
        stops the daemon: that record is not lost, it is read again after the restart."""
        try:
            return self._handle(record, delivered)
        except SinkError:
            raise
        except Exception as exc:  # any bug: one record quarantined, the inbox goes on
            self._log.error(
                "package.internal-error",
                recipient=self.bureau,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error_type=type(exc).__name__,
            )
            return [self._quarantine(record, "internal")]

    def _handle(
        self,
        record: ConsumerRecord[bytes, bytes],
        delivered: list[tuple[VerifiedPackage, Applied]],
    ) -> list[Action | _Answer]:
        """Verify and apply one record; return what must be produced once the batch is stored
        (``delivered`` collects what :attr:`on_delivered` hears of after the commit)."""
        started = time.monotonic()
        value: bytes = record.value or b""
        position = Position(record.topic, record.partition, record.offset)
        if self.require_log_append_time and record.timestamp_type != LOG_APPEND_TIME:
            # the producer chose this time: a key thief would back-date it (a topic re-created
            # without LogAppendTime, or a broker that does not stamp records)
            return [self._quarantine(record, "timestamp-type")]
        received_at = _record_time(record.timestamp)
        if received_at is None:
            return [self._quarantine(record, "timestamp")]
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
            return [self._quarantine(record, exc.reason)]
        except KeyDirectoryError:
            return [self._quarantine(record, "key-unknown")]
        on_receipts = record.topic == self.receipts_topic
        if on_receipts != (package.kind == "receipt") or (
            not on_receipts and package.kind not in NOTICE_KINDS
        ):
            return [self._quarantine(record, "wrong-topic")]
        if on_receipts:
            return self._receipt_in(package, record)

        seen = self._sink_call(lambda: self.sink.seen(package.sender, package.msg_id))
        if seen is not None and seen.position != position:
            return [self._quarantine(record, "replay")]
        if seen is not None:  # redelivery after a crash: answer again, store nothing
            self.stats.redelivered += 1
            status = RECEIPT_STATUS.get(seen.outcome, "delivered")
            return [self._receipt(package, status, seen.reason)]

        reason: str | None
        try:  # a signed package whose paths do not fit the schema is rejected, not fatal
            view = self._view(package)
        except SchemaError:
            view, reason = {}, "schema"
        else:
            reason = self._check(package, view)
        if reason is not None:
            self._sink_call(lambda: self.sink.reject(package, position, reason))
            return [
                self._quarantine(record, reason),
                self._receipt(package, "rejected", reason),
            ]
        outcome = self._sink_call(lambda: self.sink.apply(package, view, position))
        if outcome is Applied.REPLAY:  # raced with another position; treat as replay
            return [self._quarantine(record, "replay")]
        if outcome is Applied.PURGED:
            self.stats.purged += 1
        elif outcome is Applied.STALE:
            self.stats.stale += 1
        else:
            self.stats.delivered += 1
        self._log.info(
            "package.delivered",
            msg_id=package.msg_id,
            notice_id=package.notice_id,
            notice_type=package.notice_type,
            sender=package.sender,
            recipient=self.bureau,
            kind=package.kind,
            outcome=outcome.value,
            disclosed=len(package.disclosed),
            withheld=len(package.withheld),
            latency_ms=round((time.monotonic() - started) * 1000, 2),
        )
        delivered.append((package, outcome))
        return [self._receipt(package, RECEIPT_STATUS[outcome], None)]

    def _sink_call(self, call: Callable[[], T]) -> T:
        """Run a sink operation; a storage failure stops the daemon before any commit."""
        try:
            return call()
        except (sqlite3.Error, OSError) as exc:
            raise self._sink_failure(exc) from exc

    def _sink_failure(self, exc: BaseException) -> SinkError:
        reason = _storage_reason(exc)
        self._log.error("sink.failed", bureau=self.bureau, reason=reason)
        return SinkError(
            f"the store cannot be written ({reason}): stopped consuming without committing; "
            "fix the store and restart, nothing is lost"
        )

    def _view(self, package: VerifiedPackage) -> dict[str, Any]:
        from broker.schemas import assemble_view

        if package.kind in ("publish", "update"):
            return assemble_view(dict(package.header), dict(package.disclosed))
        return {}

    def _check(self, package: VerifiedPackage, view: dict[str, Any]) -> str | None:
        """Header and statement agree, origin, schema validation of the disclosed view, then this
        bureau's inbound policy."""
        header = package.header
        if (
            header.get("notice_id") != package.notice_id
            or header.get("notice_type") != package.notice_type
        ):
            # the inbound policy reads the statement, the store the header: they must be one
            return "header-mismatch"
        if package.kind in ("publish", "update") and view.get("issuing_bureau") != package.sender:
            # a bureau may only publish notices it issued: the signer is the issuing bureau
            return "origin-mismatch"
        if package.kind in ("publish", "update"):
            try:
                self.validate(view)
            except SchemaError:
                return "schema"
        if self.policies is not None:
            from broker.policy import inbound_check

            rule = inbound_check(
                self.policies,
                notice_type=package.notice_type,
                sender=package.sender,
                recipient=self.bureau,
            )
            if rule is not None:
                return "declined-by-policy"
        return None

    def _receipt_in(
        self, package: VerifiedPackage, record: ConsumerRecord[bytes, bytes]
    ) -> list[Action | _Answer]:
        from broker.schemas import ReceiptBatch

        try:
            batch = ReceiptBatch.model_validate(dict(package.header))
        except ValueError:
            return [self._quarantine(record, "schema")]
        if any(r.recipient != package.sender for r in batch.receipts):
            return [self._quarantine(record, "not-addressed")]  # a receipt speaks for its signer
        for receipt in batch.receipts:
            stored = ReceiptRecord(
                receipt.msg_id,
                receipt.notice_id,
                receipt.recipient,
                receipt.status,
                receipt.reason,
                receipt.at.isoformat(),
            )
            if self._sink_call(functools.partial(self.sink.record_receipt, stored)):
                self.stats.receipts_received += 1
                self._log.info(
                    "receipt.received",
                    msg_id=receipt.msg_id,
                    notice_id=receipt.notice_id,
                    sender=package.sender,
                    recipient=self.bureau,
                    status=receipt.status,
                    reason=reason_code(receipt.reason),  # the peer's text: known codes only
                )
        return []

    def _receipt(self, package: VerifiedPackage, status: str, reason: str | None) -> _Answer:
        """The receipt owed to the sender of ``package``; sent after the batch is stored."""
        return _Answer(
            package.sender,
            {
                "msg_id": package.msg_id,
                "notice_id": package.notice_id,
                "recipient": self.bureau,
                "status": status,
                "reason": reason,
                "at": datetime.now(UTC).isoformat(),
            },
        )

    def _receipt_actions(self, answers: list[_Answer]) -> list[Action]:
        """One signed, encrypted receipt message per sender (split past
        :data:`~broker.schemas.MAX_RECEIPTS_PER_MESSAGE`) for every answer of the batch."""
        from broker.schemas import MAX_RECEIPTS_PER_MESSAGE

        by_sender: dict[str, list[dict[str, Any]]] = {}
        for answer in answers:
            by_sender.setdefault(answer.sender, []).append(answer.receipt)
        return [
            self._receipt_message(sender, bodies[i : i + MAX_RECEIPTS_PER_MESSAGE])
            for sender, bodies in by_sender.items()
            for i in range(0, len(bodies), MAX_RECEIPTS_PER_MESSAGE)
        ]

    def _receipt_message(self, sender: str, bodies: list[dict[str, Any]]) -> Action:
        async def send(producer: AIOKafkaProducer) -> Awaitable[Any]:
            try:
                kid, public_key = self.directory.recipient_key(sender)
            except NbxError:
                for body in bodies:
                    self._log.warning(
                        "receipt.unsendable", msg_id=body["msg_id"], sender=sender, reason="key"
                    )
                return _done()
            sealed = seal(
                signer=self.keys,
                kind="receipt",
                notice_id=RECEIPTS_NOTICE_ID,
                notice_type="receipt",
                header={"receipts": bodies},
                units={},
                grants={sender: Grant(frozenset(), (), "receipt")},
                handling="H0",
            )
            topic = receipts(sender)
            frame = sealed.package_for(
                sender,
                topic=topic,
                recipient_kid=kid,
                recipient_key=public_key,
                max_frame_bytes=self.max_frame_bytes,
            )
            self.stats.receipts_sent += len(bodies)
            ack: Awaitable[Any] = await producer.send(
                topic,
                frame,
                key=record_key(self.keys, sender, sealed.msg_id),  # names no notice it answers
                headers=[("nbx-kid", kid.encode())],
            )
            return ack

        return send

    def _quarantine(self, record: ConsumerRecord[bytes, bytes], reason: str) -> Action:
        """Count and log a rejection; the raw record goes to quarantine after the batch."""
        self.stats.quarantined += 1
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        self._log.warning(
            "package.quarantined",
            recipient=self.bureau,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            size=len(record.value or b""),
            reason=reason,
        )
        source = f"{record.topic}:{record.partition}:{record.offset}".encode()
        raw = record.value or b""
        headers = [(REASON_HEADER, reason.encode()), (SOURCE_HEADER, source)]
        if len(raw) > self.max_frame_bytes:  # keep the evidence within the broker's record limit
            headers.append((TRUNCATED_HEADER, str(len(raw)).encode()))
            raw = raw[: self.max_frame_bytes]

        async def send(producer: AIOKafkaProducer) -> Awaitable[Any]:
            ack: Awaitable[Any] = await producer.send(
                quarantine(self.bureau), raw, key=source, headers=headers
            )
            return ack

        return send


def _record_time(timestamp_ms: int) -> datetime | None:
    """A record's timestamp as a time, or ``None`` if it is not a representable one."""
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _storage_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "read-only"
    if "full" in text or getattr(exc, "errno", None) == errno.ENOSPC:
        return "disk-full"
    if "locked" in text or "busy" in text:
        return "locked"
    return "storage-error"


async def _done() -> None:
    """An already finished awaitable, for paths that produce nothing."""
