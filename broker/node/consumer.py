"""Consumer daemon: receive, open and verify, deliver or quarantine, then commit.

For each record of ``nbx.inbox.<CC>``: :func:`broker.envelope.open_package` runs every check; a
verified package is stored by the sink (delivery and replay guard in one transaction); anything that
fails goes to ``nbx.quarantine.<CC>`` with the raw bytes and a reason code. The offset is committed
only once the record is delivered or quarantined, so a crash at any point re-reads the record and
the sink recognises the redelivery. Nothing is dropped and the daemon keeps running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from broker.envelope import VerifiedPackage, open_package
from broker.errors import EnvelopeRejected
from broker.keys import BureauKeys, KeyLookup
from broker.logging import get_logger
from broker.sinks.sqlite import Delivery, Position, SqliteSink
from broker.transport import (
    KafkaSettings,
    connect_error,
    inbox,
    make_consumer,
    make_producer,
    quarantine,
)

REASON_HEADER = "nbx-reason"


@dataclass
class DaemonStats:
    """Counters of one daemon run."""

    delivered: int = 0
    redelivered: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def nest(header: dict[str, Any], disclosed: dict[str, Any]) -> dict[str, Any]:
    """Rebuild a nested view from the header and disclosed dotted paths."""
    view: dict[str, Any] = dict(header)
    for path, value in disclosed.items():
        node = view
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return view


class ConsumerDaemon:
    """Consumes one bureau's inbox as a consumer group until stopped or idle."""

    def __init__(
        self,
        keys: BureauKeys,
        directory: KeyLookup,
        settings: KafkaSettings,
        sink: SqliteSink,
        *,
        on_delivered: Callable[[VerifiedPackage], None] | None = None,
    ) -> None:
        """Prepare the daemon for bureau ``keys.bureau``."""
        self.keys = keys
        self.bureau = keys.bureau
        self.directory = directory
        self.settings = settings
        self.sink = sink
        self.on_delivered = on_delivered
        self.stats = DaemonStats()
        self.topic = inbox(self.bureau)
        self._stop = asyncio.Event()
        self._log = get_logger()

    def stop(self) -> None:
        """Ask the daemon to finish the record in hand, commit and return."""
        self._stop.set()

    async def run(self, *, until_idle_s: float | None = None) -> DaemonStats:
        """Consume until :meth:`stop` is called or no record arrived for ``until_idle_s``."""
        consumer = make_consumer(self.settings, self.topic, group_id=f"nbx.{self.bureau}")
        producer = make_producer(self.settings)
        try:
            await consumer.start()
            await producer.start()
        except (KafkaError, OSError) as exc:
            await consumer.stop()
            await producer.stop()
            raise connect_error(self.settings.bootstrap, exc) from None
        self._log.info("daemon.started", bureau=self.bureau, topic=self.topic)
        try:
            await self._loop(consumer, producer, until_idle_s)
        finally:
            await consumer.stop()
            await producer.stop()
            self._log.info(
                "daemon.stopped",
                bureau=self.bureau,
                count=self.stats.delivered,
                status="stopped",
            )
        return self.stats

    async def _loop(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, until_idle_s: float | None
    ) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=100)
            if not batches:
                if until_idle_s is not None and time.monotonic() - last >= until_idle_s:
                    return
                continue
            last = time.monotonic()
            for tp, records in batches.items():
                for record in records:
                    await self._handle(record, producer)
                    await consumer.commit(
                        {TopicPartition(tp.topic, tp.partition): record.offset + 1}
                    )

    async def _handle(
        self, record: ConsumerRecord[bytes, bytes], producer: AIOKafkaProducer
    ) -> None:
        started = time.monotonic()
        value: bytes = record.value or b""
        position = Position(record.topic, record.partition, record.offset)
        try:
            package = open_package(
                value,
                topic=record.topic,
                recipient=self.bureau,
                decryption_keys={self.keys.encryption_key_id: self.keys.encryption_key},
                directory=self.directory,
            )
        except EnvelopeRejected as exc:
            await self._quarantine(producer, record, exc.reason)
            return
        outcome = self.sink.deliver(
            package, nest(dict(package.header), dict(package.disclosed)), position
        )
        if outcome is Delivery.REPLAY:
            await self._quarantine(producer, record, "replay")
            return
        if outcome is Delivery.REDELIVERY:
            self.stats.redelivered += 1
            return
        self.stats.delivered += 1
        self._log.info(
            "package.delivered",
            msg_id=package.msg_id,
            notice_id=package.notice_id,
            sender=package.sender,
            recipient=self.bureau,
            kind=package.kind,
            disclosed=len(package.disclosed),
            withheld=len(package.withheld),
            latency_ms=round((time.monotonic() - started) * 1000, 2),
        )
        if self.on_delivered is not None:
            self.on_delivered(package)

    async def _quarantine(
        self, producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes], reason: str
    ) -> None:
        await producer.send_and_wait(
            quarantine(self.bureau),
            record.value or b"",
            key=f"{record.topic}:{record.partition}:{record.offset}".encode(),
            headers=[(REASON_HEADER, reason.encode())],
        )
        self.stats.quarantined += 1
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        self._log.warning(
            "package.quarantined",
            recipient=self.bureau,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )
