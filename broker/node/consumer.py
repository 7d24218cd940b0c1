"""Consumer daemon: the connection, poll and commit loop around the receive pipeline.

The daemon of bureau CC reads ``nbx.inbox.CC`` (notices about to be delivered) and
``nbx.receipts.CC`` (answers to what CC sent) as the consumer group ``nbx.CC``. Each poll's
records go through the receive pipeline (:mod:`broker.node.pipeline`: record time, open, kind and
topic, replay guard, header and statement, view, inbound policy, apply) inside one sink
transaction; then the quarantine records are produced, the receipt writer
(:mod:`broker.node.receipts`) seals one receipt message per sender, and the offsets are
committed.

Anything that fails goes to ``nbx.quarantine.CC`` with the raw bytes and a reason code; so does a
record whose handling raised anything unexpected (reason ``internal``), so that no record can stop
the inbox. Offsets of a batch are committed only after every record of it was delivered or
quarantined and every quarantine record and receipt was acknowledged by the broker; a crash at
any point re-reads the records and the sink recognises each redelivery (same msg id, same
position) and answers it again without storing a second copy. Nothing is lost, nothing is stored
twice, the daemon keeps running. While the directory cannot be confirmed (stale, too old) the
consumer is paused and nothing is delivered. A store that fails (the sink raises
:class:`~broker.errors.SinkError` with a reason) stops the daemon before any commit, unless the
failure is transient (the database unreachable, a conflict between replicas:
:data:`~broker.vocab.TRANSIENT_STORE_FAILURES`): then the batch is rolled back, the consumer
rewinds to its committed offsets and tries again after a capped exponential backoff
(``store.retry``).

Several daemons of one bureau (replicas, :mod:`broker.node.replicas`) share the group: when a
partition is taken away from a daemon, the revocation waits until the batch in flight is stored,
answered and committed (:meth:`ConsumerDaemon._on_revoked`), so the next owner starts after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from broker.envelope import VerifiedPackage
from broker.envelope.open import MAX_FRAME_BYTES
from broker.errors import SinkError, TransportError
from broker.keys import BureauKeys, KeyLookup
from broker.keys.join import listed
from broker.logging import get_logger
from broker.node.config import DEFAULT_WARN_DAYS
from broker.node.keycare import KeyCare
from broker.node.pipeline import NOTICE_KINDS, Outcome, ReceivePipeline
from broker.node.quarantine import DROPPED_HEADER, REASON_HEADER, SOURCE_HEADER, TRUNCATED_HEADER
from broker.node.receipts import RECEIPTS_NOTICE_ID, Action, Answer, ReceiptWriter, answer_to
from broker.node.replicas import DEFAULT_REPLICA, backoff
from broker.node.stats import DaemonStats
from broker.sinks.audit import sign_checkpoint
from broker.sinks.base import Applied, Checkpoint, Position, Sink
from broker.sinks.retention import Expired
from broker.transport import (
    LOG_APPEND_TIME,
    KafkaSettings,
    KafkaTransport,
    Transport,
    connect_error,
    hold,
    inbox,
    quarantine,
    receipts,
    track_topics,
)
from broker.transport.factory import Consumer, Producer, settings_of
from broker.vocab import (
    NOT_KEPT,
    TRANSIENT_STORE_FAILURES,
    MessageKind,
    PurgeReason,
    Reason,
    ReceiptStatus,
)
from broker.wire.suites import SUITE_X25519, RecipientPrivateKey

__all__ = [  # the pipeline's and the receipt writer's names, as before the split
    "LOG_APPEND_TIME",
    "NOTICE_KINDS",
    "REASON_HEADER",
    "RECEIPTS_NOTICE_ID",
    "SOURCE_HEADER",
    "ConsumerDaemon",
    "DaemonStats",
    "StoredPoll",
]

if TYPE_CHECKING:
    from types import TracebackType

    from broker.node.config import NodeConfig
    from broker.node.metrics import MetricsServer, NodeMetrics
    from broker.policy import PolicySet
    from broker.screening import Screener


#: how long a rewind waits for the committed offsets of a partition (a rebalance in progress
#: holds the answer back; the new assignment starts from the committed offsets anyway)
REWIND_TIMEOUT_S = 5.0
#: how long a stopping daemon waits for its consumer and producer to close (s)
CLOSE_TIMEOUT_S = 15.0


@dataclass
class StoredPoll:
    """What storing one poll left to do: produce, acknowledge, report, commit."""

    actions: list[Action] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    delivered: list[tuple[VerifiedPackage, Applied]] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


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
        transport: Transport | None = None,
        roles: Callable[[str], frozenset[str]] | None = None,
        needs_review: Callable[[str, str, str], bool] | None = None,
        screener: Screener | None = None,
        clock: Callable[[], datetime] | None = None,
        housekeeping_interval_s: float = 300.0,
        key_care: KeyCare | None = None,
        replica: str | None = None,
        metrics: NodeMetrics | None = None,
        metrics_address: tuple[str, int] | None = None,
    ) -> None:
        """Prepare the daemon for bureau ``keys.bureau``.

        ``metrics`` (:class:`~broker.node.metrics.NodeMetrics`) receives the daemon's
        measurements and reads its counts, directory and readiness at scrape time;
        ``metrics_address`` ``(host, port)`` serves them over HTTP while :meth:`run` runs (port
        0: a free port, see :attr:`metrics_server`).

        ``clock`` gives the time housekeeping uses (tests pass a fake one); housekeeping
        (:meth:`housekeep`) runs once the daemon is connected and then every
        ``housekeeping_interval_s`` seconds.

        ``roles`` gives a bureau's roles (a ``review`` is taken only from a ``reviewer``,
        ``block`` / ``unblock`` / ``delete`` only from the ``oversight`` body) and
        ``needs_review(kind, notice_type, sender)`` whether a notice is ``pending-review`` until a
        reviewer approves it; by default both come from the directory (``KeyLookup.roles``, the
        network rules of ``KeyLookup.rules``) and this bureau's own inbound policy
        (``[[inbound.require_review]]``, :func:`broker.policy.review_demand`).

        ``validate`` checks a disclosed view (default: :func:`broker.schemas.validate_view`);
        ``policies`` supplies this bureau's inbound policy (none: accept every type and sender).
        ``require_log_append_time`` quarantines records not stamped by the broker (reason
        ``timestamp-type``); turn it off only for a broker that cannot stamp records (the
        development broker tansu): revocation is then checked at the statement, record and local
        time, of which only the local time is not the sender's.
        """
        self._keys = keys
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
        self.roles: Callable[[str], frozenset[str]] = roles or directory.roles
        self.needs_review: Callable[[str, str, str], bool] = needs_review or self._needs_review
        self.screener = screener  # flags for person-targeting versions (none: no screening)
        self.stats = DaemonStats()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.housekeeping_interval_s = housekeeping_interval_s
        #: how often a node not listed yet looks again (the directory follows on its own)
        self.listing_poll_s = 0.2
        #: key epochs: reload, destroy expired keys, warn on overdue rotation (:meth:`shred_keys`)
        self.key_care = key_care
        #: log ``retention.review-due`` this long before a notice's ``retain_until``
        self.retention_warning = timedelta(days=DEFAULT_WARN_DAYS)
        self._warned: set[tuple[str, str]] = set()
        self.inbox_topic = inbox(self.bureau)
        self.receipts_topic = receipts(self.bureau)
        #: a network body (XA..XZ) also reads its holding topic: packages of senders under
        #: heightened supervision wait there if the directory makes it a reviewer
        self.hold_topic = hold(self.bureau) if self.bureau.startswith("X") else None
        self._stop = asyncio.Event()
        self._running: asyncio.Task[DaemonStats] | None = None  # the task of ``async with``
        self._owns_store = False  # from_config opened the sink: leaving ``async with`` closes it
        self.transport: Transport = transport or KafkaTransport(settings)
        self._topics = self.transport.topics()
        self._log = get_logger()
        #: whether the consumer runs and has partitions assigned (its group joined), as the
        #: loop last saw it: readiness reads this flag from the endpoint's thread, never the
        #: consumer itself
        self._started = False
        self._joined = False
        #: why the store failed (a :class:`~broker.errors.SinkError` reason), else None
        self.store_failure: str | None = None
        self.metrics = metrics
        self.metrics_address = metrics_address
        #: the HTTP endpoint while :meth:`run` runs with a ``metrics_address``
        self.metrics_server: MetricsServer | None = None
        self._lag_at = 0.0  # time.monotonic() of the last lag reading
        #: this daemon's replica id (:mod:`broker.node.replicas`), for its log lines
        self.replica = replica or DEFAULT_REPLICA
        #: set while no batch is in flight (between a poll that returned records and the commit
        #: of their offsets): a revocation waits for it (:meth:`_on_revoked`)
        self._batch_idle = asyncio.Event()
        self._batch_idle.set()
        #: the first and the longest wait before a batch is tried again after the store failed
        #: transiently (:data:`~broker.vocab.TRANSIENT_STORE_FAILURES`)
        self.store_backoff_s = (0.2, 5.0)
        if metrics is not None:
            metrics.stats = self.stats
            metrics.directory = directory
            metrics.readiness = self.unready

    @classmethod
    def from_config(
        cls,
        config: NodeConfig,
        *,
        transport: Transport | None = None,
        on_delivered: Callable[[VerifiedPackage, Applied], None] | None = None,
        sink: Sink | None = None,
    ) -> ConsumerDaemon:
        """Build a daemon from a node configuration. The store is opened here (unless ``sink``
        gives it already open, :func:`broker.node.replicas.open_store`) and belongs to the
        daemon: leaving ``async with`` closes it (after :meth:`run`, close ``daemon.sink``)."""
        from broker.node.runtime import load_node

        node = load_node(config)
        metrics, address = None, None
        if config.metrics.port:
            from broker.node.metrics import NodeMetrics

            metrics = NodeMetrics(config.bureau)
            address = (config.metrics.host, config.metrics.port)
        daemon = cls(
            node.keys,
            node.directory,
            config.kafka_settings(),
            sink if sink is not None else node.open_store(),
            policies=node.policies,
            decryption_keys=node.decryption_keys,
            on_delivered=on_delivered,
            max_frame_bytes=config.limits.max_frame_bytes,
            require_log_append_time=config.kafka.require_log_append_time,
            min_suite=config.security.min_suite,
            transport=transport,
            screener=_screener(config),
            key_care=KeyCare.from_config(config),
            metrics=metrics,
            metrics_address=address,
            replica=config.replica,
        )
        daemon._owns_store = True
        daemon.retention_warning = timedelta(days=config.retention.warn_days)
        return daemon

    async def __aenter__(self) -> ConsumerDaemon:
        """Start consuming in a background task (as :meth:`run`) and return the daemon."""
        if self._running is not None:
            msg = "the daemon is already running"
            raise RuntimeError(msg)
        self._stop.clear()
        self._running = asyncio.create_task(self.run(), name=f"nbx-daemon-{self.bureau}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop: finish and commit the batch in hand, then close the store the daemon opened.

        An error that ended the daemon early (a sink that failed, a broker that could not be
        reached) is raised here unless the block itself raised.
        """
        task, self._running = self._running, None
        self.stop()
        try:
            if task is not None:
                if exc is None:
                    await task
                else:
                    with contextlib.suppress(Exception):
                        await task
        finally:
            if self._owns_store:
                self.sink.close()

    async def wait(self) -> DaemonStats:
        """Inside ``async with``: wait until the daemon ends (an error it ended with is raised);
        a service usually waits for its own stop signal instead."""
        if self._running is None:
            msg = "the daemon is not running: use it as `async with daemon:`"
            raise RuntimeError(msg)
        return await asyncio.shield(self._running)

    async def close(self) -> None:
        """Release what :meth:`process` opened when driven from outside :meth:`run` (the topic
        manager's admin connection); :meth:`run` does this itself."""
        await self._topics.close()

    def stop(self) -> None:
        """Finish the batch in hand, commit, and return from :meth:`run`."""
        self._stop.set()

    async def run(
        self, *, until_idle_s: float | None = None, connect_timeout_s: float | None = None
    ) -> DaemonStats:
        """Consume until :meth:`stop` is called or no record arrived for ``until_idle_s``
        (:meth:`_run`); the directory is followed meanwhile (:mod:`broker.node.runtime`)."""

        if self.metrics is not None and self.metrics_address is not None:
            self.metrics_server = self.metrics.serve(*self.metrics_address)
        try:
            return await self._run(until_idle_s=until_idle_s, connect_timeout_s=connect_timeout_s)
        finally:
            await self.directory.stop(self)
            server, self.metrics_server = self.metrics_server, None
            if server is not None:
                server.close()

    def unready(self) -> list[str]:
        """Why the daemon is not ready (``/readyz``), empty when it is: consumer started and
        its group joined (partitions assigned), directory verified and not refused, store not
        failed."""
        from broker.node import metrics

        unmet = []
        if not self._started:
            unmet.append(metrics.NOT_STARTED)
        elif not self._joined:
            unmet.append(metrics.NOT_JOINED)
        refusal = self.directory.refusal()
        if refusal is not None:
            unmet.append(f"{metrics.NO_DIRECTORY} ({refusal})")
        if self.store_failure is not None:
            unmet.append(f"{metrics.STORE_FAILED} ({self.store_failure})")
        return unmet

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
        self._log.info("daemon.starting", bureau=self.bureau, bootstrap=self.transport.bootstrap)
        consumer, producer = await self._connect(connect_timeout_s)
        if consumer is None or producer is None:  # stopped while waiting for the broker
            return self.stats
        self._log.info("daemon.started", bureau=self.bureau, topic=self.inbox_topic)
        self._started = True
        status = "stopped"
        try:
            await self._loop(consumer, producer, until_idle_s)
            self.audit_checkpoint()  # a clean stop: the chain head as it is now, signed
        except SinkError:
            status = "sink-failed"
            raise
        finally:
            self._started = self._joined = False
            # bounded: a group coordinator that never completes a rebalance must not keep a
            # stopped daemon alive (every batch's offsets are committed already)
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(consumer.stop(), CLOSE_TIMEOUT_S)
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(producer.stop(), CLOSE_TIMEOUT_S)
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
    ) -> tuple[Consumer | None, Producer | None]:

        started = time.monotonic()
        backoff_s = 0.5
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            consumer = self.transport.consumer(*self._reads(), group_id=f"nbx.{self.bureau}")
            subscribe = getattr(consumer, "subscribe", None)  # a group consumer of aiokafka
            if subscribe is not None:
                subscribe(topics=self._reads(), listener=_Handover(self))
            producer = self.transport.producer()
            try:
                await self._topics.ensure([*self._reads(), quarantine(self.bureau)])
                await producer.start()
                await self.directory.start(self)
                if not await self.wait_for_listing():  # SIGTERM before the anchor listed us
                    with contextlib.suppress(KafkaError):
                        await producer.stop()
                    return None, None
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
                    raise connect_error(
                        self.transport.bootstrap, exc, settings_of(self.transport)
                    ) from None
                self._log.warning(
                    "transport.retry",
                    bureau=self.bureau,
                    bootstrap=self.transport.bootstrap,
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

    def listed(self) -> bool:
        """Whether the directory lists this bureau with the signing key it holds, usable now."""
        return listed(self.directory, self.bureau, self.keys.signing_key_id, datetime.now(UTC))

    async def wait_for_listing(self) -> bool:
        """Wait until :meth:`listed` (a new bureau whose join request the anchor has not
        published yet); True when listed, False if :meth:`stop` came first.

        Logs ``node.waiting-for-listing`` once, then ``node.listed``; nothing is subscribed and
        ``daemon.started`` is not logged meanwhile (docs/onboarding.md).
        """
        if self.listed():
            return True
        self._log.warning(
            "node.waiting-for-listing",
            bureau=self.bureau,
            key_id=self.keys.signing_key_id,
            serial=getattr(self.directory, "serial", None),
        )
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.listing_poll_s)
            if self.listed():
                self._log.info(
                    "node.listed",
                    bureau=self.bureau,
                    key_id=self.keys.signing_key_id,
                    serial=getattr(self.directory, "serial", None),
                )
                return True
        return False

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
        self, consumer: Consumer, producer: Producer, until_idle_s: float | None
    ) -> None:

        last = time.monotonic()
        backoff_s = 0.5
        store_wait = backoff(*self.store_backoff_s)
        housekept: float | None = None
        while not self._stop.is_set():
            self.refresh_keys()  # a rotation's key files and a new directory, without a restart
            self._joined = bool(consumer.assignment())
            if housekept is None or time.monotonic() - housekept >= self.housekeeping_interval_s:
                housekept = time.monotonic()
                try:
                    await self.housekeep(producer)
                except SinkError as exc:
                    if exc.reason not in TRANSIENT_STORE_FAILURES:
                        raise
                    housekept = None  # the store is back: housekeep then
                    await self._store_retry(exc, store_wait(), consumer, [])
                    continue
            if self.directory.refusal() is not None:  # directory stale or too old: deliver nothing
                consumer.pause(*consumer.assignment())
            elif consumer.paused():
                consumer.resume(*consumer.paused())
            batches = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
            if self.metrics is not None and time.monotonic() - self._lag_at >= 1.0:
                await self._measure_lag(consumer)
            if self.directory.refusal() is not None:  # nothing committed: read again later
                for tp, records in batches.items():
                    consumer.seek(tp, records[0].offset)
                self.stats.paused += 1
                continue
            owned = consumer.assignment()
            batches = {tp: records for tp, records in batches.items() if tp in owned}
            if not batches:
                if until_idle_s is not None and time.monotonic() - last >= until_idle_s:
                    return
                continue
            last = time.monotonic()
            self._batch_idle.clear()  # a revocation waits until these offsets are committed
            failure: SinkError | KafkaError | TransportError | None = None
            try:
                await self._batch(consumer, producer, batches)
            except SinkError as exc:
                if exc.reason not in TRANSIENT_STORE_FAILURES:
                    raise
                failure = exc
            except (KafkaError, TransportError) as exc:
                failure = exc
            finally:
                # before any rewind: reading committed offsets waits for a rebalance to end,
                # and the rebalance waits for this flag (_on_revoked)
                self._batch_idle.set()
            if failure is None:
                backoff_s = 0.5
                if self.store_failure is not None:  # the store is back
                    self.store_failure = None
                    store_wait = backoff(*self.store_backoff_s)
            elif isinstance(failure, SinkError):
                # rolled back, nothing committed: read the batch again once the store answers
                await self._store_retry(failure, store_wait(), consumer, list(batches))
            else:
                # The broker went away mid-batch (or the group moved the partitions): nothing
                # was committed, so rewind to the last committed offsets and read the batch
                # again; the sink answers redeliveries.
                self._log.warning(
                    "transport.retry",
                    bureau=self.bureau,
                    error_type=type(failure).__name__,
                    retry_in_s=backoff_s,
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)
                if not isinstance(failure, CommitFailedError):
                    # a failed commit means the group rebalanced: the new assignment starts
                    # from the committed offsets anyway (and reading them now would wait for
                    # the rebalance)
                    await self._rewind(consumer, list(batches))

    async def _store_retry(
        self,
        exc: SinkError,
        wait_s: float,
        consumer: Consumer,
        partitions: list[TopicPartition],
    ) -> None:
        """The store failed transiently (unreachable, a conflict between replicas): nothing of
        the batch was committed to the store or to Kafka; log ``store.retry``, wait ``wait_s``
        (unless stopped) and rewind ``partitions`` to their committed offsets."""
        self.store_failure = exc.reason
        self._log.warning(
            "store.retry",
            bureau=self.bureau,
            replica=self.replica,
            reason=exc.reason,
            retry_in_s=wait_s,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), wait_s)
        await self._rewind(consumer, partitions)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Partitions are taken away (a replica joins or leaves the group): finish the batch in
        flight first (stored, receipts acknowledged, offsets committed), so that the next owner
        starts after it and no receipt is sent twice."""
        self._log.info(
            "replica.partitions-revoked",
            bureau=self.bureau,
            replica=self.replica,
            count=len(revoked),
        )
        await self._batch_idle.wait()

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Partitions were given to this daemon: it reads them from their committed offsets."""
        self._log.info(
            "replica.partitions-assigned",
            bureau=self.bureau,
            replica=self.replica,
            count=len(assigned),
        )

    async def _measure_lag(self, consumer: Consumer) -> None:
        """Set the lag of every assigned partition: its high watermark (as of the last fetch)
        minus the consumer's position; partitions whose watermark is not known yet are skipped."""
        metrics = self.metrics
        highwater = getattr(consumer, "highwater", None)
        position = getattr(consumer, "position", None)
        if metrics is None or highwater is None or position is None:
            return
        self._lag_at = time.monotonic()
        for tp in consumer.assignment():
            try:
                end = highwater(tp)
                if end is None:
                    continue
                at = await asyncio.wait_for(position(tp), 0.1)  # known: returns at once
            except (KafkaError, AssertionError, TimeoutError):  # a rebalance took it away
                continue
            metrics.lag(tp.topic, tp.partition, end - at)

    async def housekeep(self, producer: Producer) -> None:
        """The daemon's periodic work, at :attr:`clock`'s time: once connected, then every
        :attr:`housekeeping_interval_s` (issue 18: the retention sweep, the audit checkpoint and
        the destruction of expired encryption keys hook in here)."""
        await self.sweep_retention(producer)
        self.shred_keys()
        self.audit_checkpoint()

    @property
    def keys(self) -> BureauKeys:
        """The keys the daemon signs receipts and audit checkpoints with (as of the last
        :meth:`refresh_keys`)."""
        return self._keys

    def refresh_keys(self) -> None:
        """Take up changed key files and the signing key the rule of :mod:`broker.keys.signing`
        picks now (with :attr:`key_care`; a few ``stat`` calls when nothing changed): receipts
        and audit checkpoints are signed with it, and packages sealed to a new encryption key
        open at once. Unreadable key files: the daemon keeps the keys it has."""
        care = self.key_care
        if care is None:
            return
        loads = care.loads
        current = care.current(self.directory, self.clock())
        if current is None:
            return
        self._keys = current
        if care.loads != loads:  # the files were read again
            self.decryption_keys.clear()  # the pipeline holds this very mapping
            self.decryption_keys.update(current.decryption_keys())

    def audit_checkpoint(self) -> Checkpoint | None:
        """Sign the audit log's chain head (count, head, :attr:`clock`'s time) with this bureau's
        signing key and keep the checkpoint in the store (periodically, and on a clean stop);
        ``None`` when no entry was added since the last one."""
        keys = self.keys

        def sign(count: int, head: str) -> Checkpoint:
            return sign_checkpoint(
                self.bureau, count, head, keys.signing_key, keys.signing_key_id, self.clock()
            )

        checkpoint = self.sink.checkpoint(sign)
        if checkpoint is not None:
            self._log.info("audit.checkpoint", bureau=self.bureau, count=checkpoint.count)
        return checkpoint

    def shred_keys(self) -> None:
        """Key epochs at :attr:`clock`'s time (:class:`~broker.node.keycare.KeyCare`): destroy the
        private keys whose window has passed, take up keys added on disk, warn when the rotation
        is overdue; the daemon then opens packages with exactly the keys left."""
        if self.key_care is None:
            return
        held = self.key_care.run(self.directory, self.clock())
        if held is not None:
            self.decryption_keys.clear()  # the pipeline holds this very mapping
            self.decryption_keys.update(held)

    async def sweep_retention(self, producer: Producer) -> list[Expired]:
        """Purge every stored notice whose ``retain_until`` passed by :attr:`clock`'s time (also
        what expired while the daemon was down) exactly like a cancel, answer each sender with a
        signed ``purged`` receipt (reason ``retention-expired``) and wait for the broker's
        acknowledgements; log ``retention.review-due`` once per run for each notice that expires
        within :attr:`retention_warning` (docs/safeguards.md, "Retention and proven erasure")."""
        now = self.clock()
        try:
            expired = self.sink.sweep(now)
            expiring = self.sink.expiring(now, self.retention_warning)
        except SinkError as exc:
            raise self._sink_failure(exc) from exc
        for notice in expiring:
            key = (notice.sender, notice.notice_id)
            if key not in self._warned:
                self._warned.add(key)
                self._log.warning(
                    "retention.review-due",
                    bureau=self.bureau,
                    sender=notice.sender,
                    notice_id=notice.notice_id,
                    notice_type=notice.notice_type,
                    retain_until=notice.retain_until,
                )
        if not expired:
            return expired
        answers = [
            answer_to(
                e.sender,
                e.msg_id,
                e.notice_id,
                self.bureau,
                ReceiptStatus.PURGED,
                PurgeReason.RETENTION_EXPIRED,
            )
            for e in expired
        ]
        for e in expired:
            self.stats.purged += 1
            self._log.info(
                "retention.expired",
                bureau=self.bureau,
                sender=e.sender,
                notice_id=e.notice_id,
                notice_type=e.notice_type,
                msg_id=e.msg_id,
                retain_until=e.retain_until,
            )
        await self._produce(producer, [], answers)
        try:  # a crash before this line: the next sweep (after a restart) answers them again
            self.sink.answered(expired, now)
        except SinkError as exc:
            raise self._sink_failure(exc) from exc
        return expired

    async def _batch(
        self,
        consumer: Consumer,
        producer: Producer,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Handle one poll (:meth:`process`), then commit its offsets."""
        await consumer.commit(await self.process(producer, batches))

    async def process(
        self,
        producer: Producer,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> dict[TopicPartition, int]:
        """Store a poll's records in one sink transaction, send the quarantine records and the
        receipts (one signed receipt message per sender), wait until the broker acknowledged
        every one, and return the offsets that may now be committed.

        Verifying and storing run on the event loop's thread (a worker thread for them was
        measured slower: docs/performance.md); only the store's commit, its fsync, runs on a worker
        thread.
        """
        stored = self.store_poll(batches)
        await self.commit_poll()
        if self.on_delivered is not None:
            for package, outcome in stored.delivered:
                self.on_delivered(package, outcome)
        await self._produce(producer, stored.actions, stored.answers)
        return stored.offsets

    async def _produce(
        self, producer: Producer, quarantined: list[Action], answers: list[Answer]
    ) -> None:
        """Send the quarantine records and the receipts owed (one signed receipt message per
        sender) and wait until the broker acknowledged every one."""
        # every topic written to exists and is tracked by the producer before anything is sent
        # (see track_topics; also when process() is driven with a shared producer)
        targets = {receipts(a.sender) for a in answers}
        if quarantined:
            targets.add(quarantine(self.bureau))
        await self._topics.ensure(targets)
        await track_topics(producer, targets)
        actions = quarantined + self._receipts().actions(answers)
        acks = [await action(producer) for action in actions]
        await asyncio.gather(*acks)

    def store_poll(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> StoredPoll:
        """Verify and apply a poll's records inside one sink batch, left open: the caller ends it
        with :meth:`commit_poll` (the commit and its fsync run off the event loop)."""
        stored = StoredPoll()
        pipeline = self._pipeline()
        try:
            self.sink.begin()
        except SinkError as exc:
            raise self._sink_failure(exc) from exc
        try:
            metrics = self.metrics
            for tp, records in batches.items():
                for record in records:
                    started = time.perf_counter()
                    outcome = self._receive_safely(pipeline, record)
                    if outcome.quarantine is not None:
                        stored.actions.append(self._quarantine(record, outcome.quarantine))
                        if not outcome.recorded:  # its audit entry, in the batch's transaction
                            self.sink.record_quarantine(
                                outcome.quarantine.value,
                                Position(record.topic, record.partition, record.offset),
                                outcome.about,
                            )
                    if outcome.answer is not None:
                        stored.answers.append(outcome.answer)
                    stored.answers.extend(outcome.extra)
                    if outcome.delivered is not None:
                        stored.delivered.append(outcome.delivered)
                    stored.offsets[TopicPartition(tp.topic, tp.partition)] = record.offset + 1
                    if metrics is not None:
                        metrics.consumed(record.topic, time.perf_counter() - started)
        except SinkError as exc:
            with contextlib.suppress(SinkError):  # report the first error
                self.sink.end(commit=False)
            raise self._sink_failure(exc) from exc
        except BaseException:
            with contextlib.suppress(SinkError):  # report the first error
                self.sink.end(commit=False)
            raise
        return stored

    async def commit_poll(self) -> None:
        """Commit the open sink batch on a worker thread: the fsync does not hold up the event
        loop (heartbeats, fetches; a broadcast host's other bureaus). Cancelled meanwhile, it
        still waits for the commit before giving up, so the sink is never closed under it."""
        started = time.perf_counter()
        done = asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.sink.end, commit=True)
        )
        try:
            await asyncio.shield(done)
            if self.metrics is not None:
                self.metrics.committed(time.perf_counter() - started)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await done
            raise
        except SinkError as exc:
            raise self._sink_failure(exc) from exc

    async def _rewind(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            try:
                committed = await asyncio.wait_for(consumer.committed(tp), REWIND_TIMEOUT_S)
                if tp in consumer.assignment():
                    if committed is None:
                        await consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, committed)
            except (KafkaError, TimeoutError) as exc:  # still down: the next round tries again
                self._log.warning(
                    "transport.rewind-failed", bureau=self.bureau, error_type=type(exc).__name__
                )

    def _pipeline(self) -> ReceivePipeline:
        """The receive pipeline as this daemon is configured now (its attributes may be changed
        between polls: ``validate``, ``directory``, ``max_frame_bytes`` ...)."""
        return ReceivePipeline(
            bureau=self.bureau,
            directory=self.directory,
            sink=self.sink,
            stats=self.stats,
            decryption_keys=self.decryption_keys,
            validate=self.validate,
            policies=self.policies,
            max_frame_bytes=self.max_frame_bytes,
            min_suite=self.min_suite,
            require_log_append_time=self.require_log_append_time,
            receipts_topic=self.receipts_topic,
            hold_topic=self.hold_topic,
            log=self._log,
            roles=self.roles,
            needs_review=self.needs_review,
            screener=self.screener,
        )

    def _reads(self) -> list[str]:
        """The topics the daemon consumes."""
        topics = [self.inbox_topic, self.receipts_topic]
        return topics if self.hold_topic is None else [*topics, self.hold_topic]

    def _needs_review(self, kind: str, notice_type: str, sender: str) -> bool:
        """Whether a notice stays ``pending-review`` until approved: the network's rules say so
        (in force only where the directory lists a reviewer), or this bureau's own policy does."""
        if self.directory.rules().needs_review(kind, notice_type):
            return True
        if self.policies is None or kind not in (MessageKind.PUBLISH, MessageKind.UPDATE):
            return False
        from broker.policy import review_demand

        demand = review_demand(
            self.policies, notice_type=notice_type, sender=sender, recipient=self.bureau
        )
        return demand is not None

    def _receipts(self) -> ReceiptWriter:
        """The receipt writer as this daemon is configured now."""
        return ReceiptWriter(
            self.keys, self.directory, self.stats, max_frame_bytes=self.max_frame_bytes
        )

    def _receive_safely(
        self, pipeline: ReceivePipeline, record: ConsumerRecord[bytes, bytes]
    ) -> Outcome:
        """:meth:`ReceivePipeline.receive`, with anything unexpected turned into a quarantine
        (reason ``internal``): one record that trips a bug must not stop the inbox for good (its
        offset would never be committed, so every restart would trip again). A store failure
        still stops the daemon: that record is not lost, it is read again after the restart."""
        try:
            return pipeline.receive(record)
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
            return Outcome(quarantine=Reason.INTERNAL)

    def _sink_failure(self, exc: SinkError) -> SinkError:
        """The store failed (the sink says why): log it and stop before any commit. A transient
        failure (:data:`~broker.vocab.TRANSIENT_STORE_FAILURES`) is returned as it is: the loop
        retries it (:meth:`_store_retry`)."""
        self.store_failure = exc.reason
        if exc.reason in TRANSIENT_STORE_FAILURES:
            return exc
        self._log.error("sink.failed", bureau=self.bureau, reason=exc.reason)
        return SinkError(
            f"the store cannot be written ({exc.reason}): stopped consuming without committing; "
            "fix the store and restart, nothing is lost",
            reason=exc.reason,
        )

    def _quarantine(self, record: ConsumerRecord[bytes, bytes], reason: Reason) -> Action:
        """Count and log a rejection; the record goes to quarantine after the batch: its raw
        bytes for a failure (evidence), only its headers for a valid package this bureau chose
        not to receive (:data:`~broker.vocab.NOT_KEPT`: no copy it could decrypt stays). No
        header names the sender or the notice: the broker learns nothing it did not know."""
        self.stats.quarantined += 1
        counted = reason.value  # a plain str key: the counts are reported as JSON
        self.stats.reasons[counted] = self.stats.reasons.get(counted, 0) + 1
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
        if reason in NOT_KEPT:
            headers.append((DROPPED_HEADER, str(len(raw)).encode()))
            raw = b""
        elif len(raw) > self.max_frame_bytes:  # keep the evidence within the broker's record limit
            headers.append((TRUNCATED_HEADER, str(len(raw)).encode()))
            raw = raw[: self.max_frame_bytes]

        async def send(producer: Producer) -> Awaitable[Any]:
            ack: Awaitable[Any] = await producer.send(
                quarantine(self.bureau), raw, key=source, headers=headers
            )
            return ack

        return send


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """The daemon's rebalance listener: a revocation waits for the batch in flight."""

    def __init__(self, daemon: ConsumerDaemon) -> None:
        self.daemon = daemon

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Wait until the batch in flight is committed (:meth:`ConsumerDaemon._on_revoked`)."""
        await self.daemon._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Log the new assignment."""
        self.daemon._on_assigned(set(assigned))


def _screener(config: NodeConfig) -> Screener:
    """The node's screening lists (``[screening]``; the bundled offence list by default)."""
    from broker.screening import Screener

    return Screener.from_settings(config.screening)
