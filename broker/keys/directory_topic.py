"""The signed directory on the compacted Kafka topic ``nbx.directory`` (record key ``directory``).

The trust anchor publishes each new serial; nodes read the partition to its end and keep the highest
serial that verifies against their pinned anchor key. Records that do not verify (forged, corrupt or
older than the serial the node holds) are skipped and logged, never trusted: anyone who can write to
the topic can at worst make a node keep the directory it already has.

Every client is built in :mod:`broker.transport.directory` from the node's
:class:`~broker.transport.KafkaSettings`, so TLS and SASL apply here as everywhere else.
:class:`DirectoryReader` stays open for a node's lifetime
(:class:`broker.node.runtime.TopicDirectory` follows the topic with it); :func:`fetch_directory`
reads once (``nbx directory fetch``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.errors import KeyDirectoryError, TransportError
from broker.keys.anchor import AnchorLink, UnannouncedAnchorError
from broker.keys.directory import Directory
from broker.logging import get_logger
from broker.transport import DIRECTORY_TOPIC, KafkaSettings
from broker.transport.admin import TopicManager
from broker.transport.directory import make_directory_producer, make_directory_reader
from broker.transport.kafka import tls_failure
from broker.vocab import DirectoryState

DIRECTORY_KEY = b"directory"

__all__ = [
    "DIRECTORY_KEY",
    "DirectoryReader",
    "Found",
    "ensure_directory_topic",
    "fetch_directory",
    "publish_directory",
]


async def ensure_directory_topic(settings: KafkaSettings) -> None:
    """Create the compacted ``nbx.directory`` topic if it does not exist (one partition)."""
    topics = TopicManager(settings)
    try:
        await topics.ensure([DIRECTORY_TOPIC])
    finally:
        await topics.close()


async def publish_directory(settings: KafkaSettings, signed: bytes) -> None:
    """Produce ``signed`` (a signed directory file's bytes) to ``nbx.directory``.

    The caller should have verified ``signed`` (``nbx directory publish`` does); readers verify it
    again against their pinned anchor.
    """
    await ensure_directory_topic(settings)
    producer = make_directory_producer(settings)
    try:
        await producer.start()
        meta = await producer.send_and_wait(DIRECTORY_TOPIC, value=signed, key=DIRECTORY_KEY)
    except (KafkaError, OSError) as exc:
        msg = f"cannot publish the directory to {settings.bootstrap}: {type(exc).__name__}"
        raise TransportError(msg) from exc
    finally:
        await producer.stop()
    get_logger().info("directory.published", topic=DIRECTORY_TOPIC, offset=meta.offset)


@dataclass
class Found:
    """What a read of the topic brought: the highest verified serial at or above the floor, and
    the highest verified serial below it (a rollback attempt, or history), if any.

    When the best directory so far is signed by a successor of the anchor the read began with
    (anchor rotation), the later records of the same read are verified against that successor
    (``anchor``), as a running node does once it pinned it, and ``best.links`` holds every link
    followed from the anchor the read began with. A successor's directory whose first link is not
    the successor named by the newest directory of the current anchor read so far (when that one
    names a successor: a later announcement replaces an earlier one) is skipped as
    ``unannounced-anchor``."""

    best: Directory | None = None
    older: int | None = None
    #: the anchor reached in this read (None: still the one the read began with)
    anchor: ed25519.Ed25519PublicKey | None = None
    links: tuple[AnchorLink, ...] = ()
    #: (serial, announced successor's key id) of the newest directory of the current anchor read
    head: tuple[int, str | None] | None = None

    def consider(
        self,
        value: bytes,
        anchor: ed25519.Ed25519PublicKey,
        floor: int,
        *,
        partition: int,
        offset: int,
        quiet: bool,
    ) -> None:
        """Verify one record value; keep it if it is the highest serial so far. A record that does
        not verify is logged (``directory.skipped``), one older than ``floor`` too
        (``directory.refused``) unless ``quiet`` (reading history at start)."""
        log = get_logger()
        pinned = self.anchor if self.anchor is not None else anchor
        try:
            found = Directory.from_signed(value, pinned, source=DIRECTORY_TOPIC)
        except KeyDirectoryError as exc:
            log.warning(
                "directory.skipped",
                topic=DIRECTORY_TOPIC,
                partition=partition,
                offset=offset,
                reason=DirectoryState.UNANNOUNCED
                if isinstance(exc, UnannouncedAnchorError)
                else DirectoryState.UNVERIFIED,
            )
            return
        if not found.links:
            if self.head is None or found.serial > self.head[0]:
                self.head = (found.serial, _announced(found))
        elif self.head is not None and self.head[1] not in (None, found.links[0].to_kid):
            log.warning(
                "directory.skipped",
                topic=DIRECTORY_TOPIC,
                partition=partition,
                offset=offset,
                serial=found.serial,
                anchor_kid=found.links[0].to_kid,
                reason=DirectoryState.UNANNOUNCED,
            )
            return
        if found.serial < floor:
            self.older = max(self.older or 0, found.serial)
            if not quiet:
                log.warning(
                    "directory.refused",
                    topic=DIRECTORY_TOPIC,
                    offset=offset,
                    serial=found.serial,
                    current_serial=floor,
                    reason=DirectoryState.ROLLBACK,
                )
            return
        if self.best is None or found.serial > self.best.serial:
            if found.links:  # signed by a successor: pin it for the rest of this read
                self.anchor, self.links = found.anchor, self.links + found.links
                self.head = (found.serial, _announced(found))
            self.best = Directory(found.body, found.signed, found.anchor, self.links)


def _announced(directory: Directory) -> str | None:
    """The key id of the successor ``directory`` announces, if any."""
    successor = directory.body.successor
    return None if successor is None else successor.to_kid


class DirectoryReader:
    """A consumer assigned to every partition of ``nbx.directory``, reading from the beginning
    and kept open: :meth:`poll` returns what arrived and whether the reader is caught up."""

    def __init__(self, settings: KafkaSettings) -> None:
        """Prepare (nothing connects before :meth:`open`)."""
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def open(self) -> None:
        """Connect, assign the topic's partitions and seek to the beginning.

        :class:`TransportError` if the broker cannot be reached, :class:`KeyDirectoryError` if the
        topic does not exist (nothing was ever published).
        """
        consumer = make_directory_reader(self.settings)
        try:
            await consumer.start()
            await consumer.topics()  # refresh metadata so the partitions are known
            partitions = consumer.partitions_for_topic(DIRECTORY_TOPIC) or set()
            if not partitions:
                msg = (
                    f"{DIRECTORY_TOPIC}: no such topic on {self.settings.bootstrap}; "
                    "publish a directory with nbx directory publish"
                )
                raise KeyDirectoryError(msg)
            self._partitions = [TopicPartition(DIRECTORY_TOPIC, p) for p in sorted(partitions)]
            consumer.assign(self._partitions)
            await consumer.seek_to_beginning(*self._partitions)
        except (KafkaError, OSError) as exc:
            await consumer.stop()
            raise tls_failure(self.settings) or _unreadable(self.settings, exc) from exc
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def poll(self, timeout_ms: int) -> tuple[list[tuple[int, int, bytes]], float | None]:
        """Wait up to ``timeout_ms`` for records; return the directory records that arrived as
        (partition, offset, value), and the wall-clock time of the oldest last fetch response if
        every partition is read to its end (``None``: not caught up, or no answer yet)."""
        consumer = self._consumer
        if consumer is None:
            msg = "DirectoryReader.poll before open"
            raise RuntimeError(msg)
        try:
            batch = await consumer.getmany(*self._partitions, timeout_ms=timeout_ms)
            records = [
                (tp.partition, r.offset, r.value)
                for tp, rs in batch.items()
                for r in rs
                if r.key == DIRECTORY_KEY and r.value is not None
            ]
            answered: list[float] = []
            for tp in self._partitions:
                highwater = consumer.highwater(tp)
                at = consumer.last_poll_timestamp(tp)
                if highwater is None or at is None or await consumer.position(tp) < highwater:
                    return records, None
                answered.append(at / 1000)
        except (KafkaError, OSError) as exc:
            raise _unreadable(self.settings, exc) from exc
        return records, min(answered)

    async def read_to_end(
        self,
        anchor: ed25519.Ed25519PublicKey,
        floor: int,
        timeout_s: float,
        found: Found | None = None,
    ) -> tuple[Found, float]:
        """Read until caught up (at most ``timeout_s``, else :class:`TransportError`); return
        what verified and when the broker last answered (wall clock)."""
        found = found if found is not None else Found()
        deadline = time.monotonic() + timeout_s
        while True:
            records, confirmed = await self.poll(timeout_ms=200)
            for partition, offset, value in records:
                found.consider(value, anchor, floor, partition=partition, offset=offset, quiet=True)
            if confirmed is not None:
                return found, confirmed
            if time.monotonic() > deadline:
                msg = (
                    f"cannot read {DIRECTORY_TOPIC} to its end from {self.settings.bootstrap} "
                    f"within {timeout_s:g} s"
                )
                raise TransportError(msg)

    async def close(self) -> None:
        """Disconnect."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()


def _unreadable(settings: KafkaSettings, exc: BaseException) -> TransportError:
    return TransportError(
        f"cannot read {DIRECTORY_TOPIC} from {settings.bootstrap}: {type(exc).__name__}"
    )


def no_directory(settings: KafkaSettings, found: Found, floor: int) -> KeyDirectoryError:
    """The one-line error for a topic that holds no acceptable directory."""
    if found.older is not None:
        msg = (
            f"{DIRECTORY_TOPIC}: the newest directory on {settings.bootstrap} is serial "
            f"{found.older}, older than serial {floor} this node already verified "
            "(rollback refused)"
        )
    else:
        msg = (
            f"{DIRECTORY_TOPIC}: no directory with serial >= {floor} verifies on "
            f"{settings.bootstrap}"
        )
    return KeyDirectoryError(msg)


async def fetch_directory(
    settings: KafkaSettings, anchor: ed25519.Ed25519PublicKey, min_serial: int = 0
) -> Directory:
    """Read ``nbx.directory`` to its end; return the highest verified serial ``>= min_serial``.

    Raises :class:`KeyDirectoryError` if no record verifies, :class:`TransportError` if the broker
    cannot be reached.
    """
    reader = DirectoryReader(settings)
    await reader.open()
    try:
        found, _ = await reader.read_to_end(anchor, min_serial, settings.request_timeout_ms / 1000)
    finally:
        await reader.close()
    if found.best is None:
        raise no_directory(settings, found, min_serial)
    get_logger().info("directory.fetched", topic=DIRECTORY_TOPIC, serial=found.best.serial)
    return found.best
