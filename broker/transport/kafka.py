"""Producer, consumer and admin client construction with the settings every NBX node uses.

Producers use ``acks=all``; idempotence is on where the broker supports it (tansu does not, so it is
a setting). Consumers never auto-commit: the daemon commits an offset only after the message was
delivered or quarantined.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed, UnsupportedSaslMechanismError
from aiokafka.helpers import create_ssl_context

from broker.errors import TransportError
from broker.transport import tls


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    """Connection settings for one node (units in names)."""

    bootstrap: str
    client_id: str = "nbx"
    enable_idempotence: bool = True
    request_timeout_ms: int = 30_000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    max_partition_fetch_bytes: int = 1 << 20
    group_instance_id: str | None = None
    topic_partitions: int = 1
    topic_replication: int = 1
    #: ``retention.ms`` of the inbox, receipts, quarantine and holding topics (the directory is
    #: compacted and kept): how long a package stays on the broker's log (docs/safeguards.md,
    #: "Erasure on the broker")
    topic_retention_ms: int = 7 * 24 * 3600 * 1000
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    #: Pace empty fetches (:class:`PacedConsumer`). Only for a development broker that answers an
    #: empty fetch at once instead of holding it (noida-db); off for Apache Kafka, which needs no
    #: patch of aiokafka's internals (see :func:`consumer_class`).
    pace_empty_fetches: bool = False


def security_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for TLS and SASL/SCRAM."""
    if settings.security_protocol == "PLAINTEXT":
        return {"security_protocol": "PLAINTEXT"}
    kwargs: dict[str, Any] = {
        "security_protocol": settings.security_protocol,
        "ssl_context": create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
        ),
    }
    if settings.security_protocol == "SASL_SSL":
        kwargs |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password,
        }
    return kwargs


#: aiokafka's ``timestamp_type`` of a record stamped by the broker (``LogAppendTime``)
LOG_APPEND_TIME = 1

#: bytes per producer batch and partition (below Kafka's default 1 MB ``message.max.bytes``)
PRODUCER_BATCH_BYTES = 256 * 1024


def make_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    """A producer with ``acks=all`` (not started).

    Batches hold up to :data:`PRODUCER_BATCH_BYTES` per partition: with aiokafka's default of
    16 KB only three 5 KB packages fit, and every further concurrent send waits for the batch to
    drain and is woken again with all the others (about 15 wake-ups per record at 32 publishes
    in flight, measured in ``nbx bench``).
    """
    return AIOKafkaProducer(
        **security_kwargs(settings),
        bootstrap_servers=settings.bootstrap,
        client_id=settings.client_id,
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        request_timeout_ms=settings.request_timeout_ms,
        linger_ms=5,
        max_batch_size=PRODUCER_BATCH_BYTES,
    )


def make_admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    """An admin client (not started): what :class:`~broker.transport.admin.TopicManager` creates
    topics with."""
    return AIOKafkaAdminClient(
        **security_kwargs(settings),
        bootstrap_servers=settings.bootstrap,
        client_id=settings.client_id,
        request_timeout_ms=settings.request_timeout_ms,
    )


async def track_topics(producer: AIOKafkaProducer, topics: Iterable[str]) -> None:
    """Make ``producer`` keep metadata for every topic of ``topics`` before producing to them.

    aiokafka (0.14) tracks a topic only when it first meets it missing from its metadata. A topic
    it learnt from the start-up metadata (every topic) is not tracked, so the next metadata
    request for a new topic drops it, and records waiting for it stall until the request timeout
    and fail with ``NotLeaderForPartitionError``. Seen with a quarantine record followed by a
    receipt to a new sender; the same would hit a publisher fanning out to many inboxes.
    """
    updates = [producer.client.add_topic(t) for t in set(topics)]
    pending = [u for u in updates if not u.done()]  # tracked already: nothing to wait for
    if pending:
        await asyncio.gather(*pending)


#: the least time between two fetch requests to one broker that both came back empty
EMPTY_FETCH_INTERVAL_S = 0.02


class PacedConsumer(AIOKafkaConsumer):  # type: ignore[misc]  # aiokafka is untyped here
    """An :class:`AIOKafkaConsumer` that never asks one broker for records more than once per
    :data:`EMPTY_FETCH_INTERVAL_S` while it has none. Used only with
    ``KafkaSettings.pace_empty_fetches`` (:func:`consumer_class`).

    A Kafka broker holds a fetch until data arrives or ``fetch.max.wait.ms`` passes, so an idle
    consumer sends about two fetches a second. A broker that answers empty fetches at once
    (noida-db 0.2.3 does: measured 2 270 fetches a second from one idle consumer, a whole core of
    client CPU) would make every idle daemon spin; aiokafka refetches immediately. After an empty
    answer that came back sooner than the interval, the fetch waits out the rest. On a broker that
    honours the wait this never triggers; elsewhere a record can wait up to the interval.

    aiokafka has no setting for this, so the class wraps a private method of aiokafka's fetcher
    (``_fetcher._proc_fetch_request``): that is why it is switched on only for the development
    brokers that need it, never for Apache Kafka.
    """

    async def start(self) -> None:
        """Start the consumer, then pace its fetcher (see the class)."""
        await super().start()
        fetcher = getattr(self, "_fetcher", None)
        original = getattr(fetcher, "_proc_fetch_request", None)
        if fetcher is None or original is None:  # pragma: no cover - another aiokafka layout
            return
        fetcher._proc_fetch_request = paced_fetch(original, EMPTY_FETCH_INTERVAL_S)


def paced_fetch(
    fetch: Callable[..., Awaitable[Any]], interval_s: float
) -> Callable[..., Awaitable[Any]]:
    """Wrap a fetch coroutine function (true result: records arrived) so that an empty result
    returned sooner than ``interval_s`` after the call is held back until ``interval_s``."""

    async def paced(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        result = await fetch(*args, **kwargs)
        if not result:
            rest = interval_s - (time.monotonic() - started)
            if rest > 0:
                try:
                    await asyncio.sleep(rest)
                except asyncio.CancelledError:
                    # as aiokafka's own fetch does: a cancelled fetch (close, unassignment)
                    # returns its result; the fetcher awaits its cancelled fetches on close
                    return result
        return result

    return paced


def consumer_class(settings: KafkaSettings) -> type[AIOKafkaConsumer]:
    """The consumer class for ``settings``: :class:`PacedConsumer` with
    ``pace_empty_fetches`` (a development broker that answers empty fetches at once), else the
    plain :class:`AIOKafkaConsumer`."""
    return PacedConsumer if settings.pace_empty_fetches else AIOKafkaConsumer


def make_consumer(settings: KafkaSettings, *topics: str, group_id: str) -> AIOKafkaConsumer:
    """A consumer in ``group_id`` with manual commits, reading from the earliest offset (its
    empty fetches paced with ``settings.pace_empty_fetches``, see :func:`consumer_class`)."""
    return consumer_class(settings)(
        *topics,
        **security_kwargs(settings),
        bootstrap_servers=settings.bootstrap,
        client_id=settings.client_id,
        group_id=group_id,
        group_instance_id=settings.group_instance_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        request_timeout_ms=settings.request_timeout_ms,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        # bound what is prefetched while a slow sink works through a batch
        fetch_max_bytes=max(2 * settings.max_partition_fetch_bytes, 4 << 20),
        isolation_level="read_committed",
    )


def tls_failure(settings: KafkaSettings) -> TransportError | None:
    """With TLS settings, the one-line error naming the certificate problem that keeps the node
    from connecting (:func:`broker.transport.tls.diagnose`); None if there is none (or the
    settings are plaintext). Call it only after a connection failed: it connects once itself."""
    if settings.security_protocol == "PLAINTEXT":
        return None
    why = tls.diagnose(
        security_kwargs(settings)["ssl_context"],
        settings.bootstrap,
        client_cert=settings.ssl_certfile is not None,
    )
    return None if why is None else TransportError(why)


#: how long :func:`sasl_failure` waits for its own login (s)
SASL_CHECK_TIMEOUT_S = 10.0


def sasl_failure(settings: KafkaSettings) -> TransportError | None:
    """With ``SASL_SSL`` settings, the one-line error when the broker refuses the login (wrong
    user or password) or does not offer the mechanism; None otherwise. Like :func:`tls_failure`
    it logs in once itself (aiokafka's own connection, on an event loop in a worker thread, so
    that it can be called from synchronous code), only after a connection failed. The line names
    the user and the mechanism, never the password."""
    if settings.security_protocol != "SASL_SSL":
        return None
    host, port = tls.first_server(settings.bootstrap)

    async def login() -> None:
        try:
            conn = await create_conn(
                host,
                port,
                client_id=settings.client_id,
                request_timeout_ms=round(SASL_CHECK_TIMEOUT_S * 1000),
                **security_kwargs(settings),
            )
            conn.close()
        finally:
            # the closed connection's transport is released by loop callbacks: let them run
            # before asyncio.run closes the loop
            for _ in range(3):
                await asyncio.sleep(0)

    where = f"SASL with the Kafka broker at {host}:{port} failed"
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, login()).result(timeout=SASL_CHECK_TIMEOUT_S + 5)
        except SaslAuthenticationFailed:
            return TransportError(
                f"{where}: it refused user {settings.sasl_username!r} with "
                f"{settings.sasl_mechanism}; check kafka.sasl_username and the password in the "
                "variable named by kafka.sasl_password_env"
            )
        except UnsupportedSaslMechanismError:
            return TransportError(
                f"{where}: it does not offer {settings.sasl_mechanism}; check kafka.sasl_mechanism"
            )
        except Exception:  # any other failure keeps the generic line
            return None
    return None


def connect_error(
    bootstrap: str, exc: BaseException, settings: KafkaSettings | None = None
) -> TransportError:
    """A one-line, actionable error for a broker that cannot be reached; with ``settings`` of a
    TLS connection, the certificate problem behind it if there is one (:mod:`.tls`)."""
    failure = None if settings is None else tls_failure(settings) or sasl_failure(settings)
    if failure is not None:
        return failure
    return TransportError(
        f"cannot reach the Kafka broker at {bootstrap} ({type(exc).__name__}); "
        "check bootstrap servers and that the broker is running"
    )


async def list_topics(settings: KafkaSettings) -> set[str]:
    """Ask the broker for its topic names (a metadata round trip); TransportError if it is down."""
    consumer = AIOKafkaConsumer(
        **security_kwargs(settings),
        bootstrap_servers=settings.bootstrap,
        client_id=settings.client_id,
        request_timeout_ms=settings.request_timeout_ms,
    )
    try:
        await consumer.start()
        topics: set[str] = await consumer.topics()
    except (KafkaError, OSError) as exc:
        raise connect_error(settings.bootstrap, exc, settings) from None
    finally:
        await consumer.stop()
    return topics
