"""The signed directory on the compacted Kafka topic ``nbx.directory`` (record key ``directory``).

The trust anchor publishes each new serial; nodes read the partition to its end and keep the highest
serial that verifies against their pinned anchor key. Records that do not verify (forged, corrupt or
older than ``min_serial``) are skipped and logged, never trusted: anyone who can write to the topic
can at worst make a node keep the directory it already has.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.errors import KeyDirectoryError, TransportError
from broker.keys.directory import Directory
from broker.logging import get_logger

DIRECTORY_TOPIC = "nbx.directory"
DIRECTORY_KEY = b"directory"
_TOPIC_CONFIG = {"cleanup.policy": "compact"}


async def ensure_directory_topic(bootstrap: str) -> None:
    """Create the compacted ``nbx.directory`` topic if it does not exist (one partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        await admin.create_topics([NewTopic(DIRECTORY_TOPIC, 1, 1, topic_configs=_TOPIC_CONFIG)])
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:
        msg = f"cannot create topic {DIRECTORY_TOPIC} on {bootstrap}: {type(exc).__name__}"
        raise TransportError(msg) from exc
    finally:
        await admin.close()


async def publish_directory(bootstrap: str, signed: bytes) -> None:
    """Produce ``signed`` (a signed directory file's bytes) to ``nbx.directory``.

    The caller should have verified ``signed`` (``nbx directory publish`` does); readers verify it
    again against their pinned anchor.
    """
    await ensure_directory_topic(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        await producer.start()
        meta = await producer.send_and_wait(DIRECTORY_TOPIC, value=signed, key=DIRECTORY_KEY)
    except KafkaError as exc:
        msg = f"cannot publish the directory to {bootstrap}: {type(exc).__name__}"
        raise TransportError(msg) from exc
    finally:
        await producer.stop()
    get_logger().info("directory.published", topic=DIRECTORY_TOPIC, offset=meta.offset)


async def fetch_directory(
    bootstrap: str, anchor: ed25519.Ed25519PublicKey, min_serial: int = 0
) -> Directory:
    """Read ``nbx.directory`` to its end; return the highest verified serial ``>= min_serial``.

    Raises :class:`KeyDirectoryError` if no record verifies, :class:`TransportError` if the broker
    cannot be reached.
    """
    log = get_logger()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    best: Directory | None = None
    try:
        await consumer.start()
        await consumer.topics()  # refresh metadata so the partitions are known
        partitions = consumer.partitions_for_topic(DIRECTORY_TOPIC) or set()
        tps = [TopicPartition(DIRECTORY_TOPIC, p) for p in sorted(partitions)]
        if tps:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            pending = {tp for tp in tps if ends[tp] > 0}
            while pending:
                batch = await consumer.getmany(*pending, timeout_ms=1000)
                for tp, records in batch.items():
                    for record in records:
                        if record.key != DIRECTORY_KEY or record.value is None:
                            continue
                        try:
                            found = Directory.from_signed(
                                record.value, anchor, min_serial=min_serial, source=DIRECTORY_TOPIC
                            )
                        except KeyDirectoryError:
                            log.warning(
                                "directory.skipped",
                                topic=DIRECTORY_TOPIC,
                                partition=tp.partition,
                                offset=record.offset,
                            )
                            continue
                        if best is None or found.serial > best.serial:
                            best = found
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
    except KafkaError as exc:
        msg = f"cannot read {DIRECTORY_TOPIC} from {bootstrap}: {type(exc).__name__}"
        raise TransportError(msg) from exc
    finally:
        await consumer.stop()
    if best is None:
        msg = f"{DIRECTORY_TOPIC}: no directory with serial >= {min_serial} verifies on {bootstrap}"
        raise KeyDirectoryError(msg)
    log.info("directory.fetched", topic=DIRECTORY_TOPIC, serial=best.serial)
    return best
