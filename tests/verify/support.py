"""Shared pieces of the verification suite: profile counts, the session tally, canary notices,
the log capture, an independent Kafka reader (confluent-kafka) and a raw producer.

``NBX_VERIFY_PROFILE=default|slow`` chooses how hard every test tries (``make test`` runs the
default profile, ``make verify`` the slow one).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from broker.logging import QUARANTINE_REASONS
from broker.schemas import NoticeBase
from tests.node.helpers import EXAMPLES

PROFILE = os.environ.get("NBX_VERIFY_PROFILE", "default")
if PROFILE not in ("default", "slow"):
    raise RuntimeError(f"NBX_VERIFY_PROFILE={PROFILE!r}: expected default or slow")
SLOW = PROFILE == "slow"


@dataclass(frozen=True)
class Counts:
    """How many inputs, faults and messages each test uses in a profile."""

    inbox_records: int
    file_examples: int
    cli_examples: int
    kill_seeds: int
    kills_per_seed: int
    kill_notices: int
    restart_notices: int
    slow_sink_notices: int


COUNTS = (
    Counts(10_000, 600, 300, 4, 5, 200, 200, 1500)
    if SLOW
    else Counts(600, 60, 40, 1, 3, 60, 40, 300)
)

_BASE = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
)
settings.register_profile("nbx-verify-default", _BASE, max_examples=COUNTS.file_examples)
settings.register_profile("nbx-verify-slow", _BASE, max_examples=COUNTS.file_examples)
FILES = settings.get_profile(f"nbx-verify-{PROFILE}")
CLI = settings(FILES, max_examples=COUNTS.cli_examples)


def generate(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """Draw up to ``n`` examples of ``strategy`` with hypothesis (generation phase only)."""
    out: list[Any] = []

    @settings(_BASE, max_examples=n, phases=[Phase.generate])
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


# --- the session tally ----------------------------------------------------------------------


@dataclass
class Tally:
    """What the suite tried and what happened; printed as a table at the end of the session."""

    inputs: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    used: bool = False

    def input(self, boundary: str, n: int = 1) -> None:
        self.used = True
        self.inputs[boundary] += n

    def fault(self, kind: str, n: int = 1) -> None:
        self.used = True
        self.faults[kind] += n

    def count(self, what: str, n: int = 1) -> None:
        self.used = True
        self.messages[what] += n

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": PROFILE,
            "inputs": dict(self.inputs),
            "faults": dict(self.faults),
            "messages": {
                k: self.messages.get(k, 0)
                for k in (
                    "sent",
                    "delivered",
                    "quarantined",
                    "lost",
                    "duplicated",
                    "crashes",
                    "canary hits",
                )
            },
        }


TALLY = Tally()


def settle(sent: int, delivered: int, quarantined: int, lost: int, duplicated: int) -> None:
    """Add one scenario's message counts to the tally."""
    TALLY.count("sent", sent)
    TALLY.count("delivered", delivered)
    TALLY.count("quarantined", quarantined)
    TALLY.count("lost", lost)
    TALLY.count("duplicated", duplicated)


# --- canaries -------------------------------------------------------------------------------

CANARIES: set[str] = set()


def canary(tag: str) -> str:
    """A unique string planted in a notice; it must never appear on the wire or in a log."""
    value = f"CANARY{tag.upper()}{uuid.uuid4().hex[:16].upper()}"
    CANARIES.add(value)
    return value


def canary_notice(notice_id: str, sender: str = "IT", name: str = "red") -> NoticeBase:
    """An example notice from ``sender`` whose names, places, marks and charges are canaries."""
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    data.update(notice_id=notice_id, issuing_bureau=sender)
    person = data.get("person")
    if isinstance(person, dict):
        person["family_name"] = canary("FN")
        person["forenames"] = canary("GN")
        person["place_of_birth"] = canary("PB")
        if isinstance(person.get("physical"), dict):
            person["physical"]["distinguishing_marks"] = canary("MK")
        for doc in person.get("identity_documents", []):
            doc["number"] = canary("ID")
    judicial = data.get("judicial")
    if isinstance(judicial, dict):
        judicial["summary_of_facts"] = canary("SF")
        for charge in judicial.get("charges", []):
            charge["description"] = canary("CH")
    from broker.schemas import parse_notice

    return parse_notice(data)


def canary_hits(text: str | bytes) -> list[str]:
    """The canaries found in ``text`` (as UTF-8, and case-insensitively)."""
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    upper = data.upper()
    # every canary starts with CANARY: look only where that word is, for each canary length
    # (a scan per canary was quadratic: the slow profile plants thousands over a long log)
    lengths = {len(c) for c in CANARIES}
    hits: set[str] = set()
    at = upper.find("CANARY")
    while at != -1:
        hits.update(upper[at : at + n] for n in lengths if upper[at : at + n] in CANARIES)
        at = upper.find("CANARY", at + 1)
    return sorted(hits)


# --- log capture ----------------------------------------------------------------------------


class LogCapture(io.TextIOBase):
    """Collects every log line of the suite: structlog output, stdlib logging, subprocess output."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            self._parts.append(s)
        return len(s)

    def add(self, text: str | bytes, source: str = "") -> None:
        self.write(text.decode("utf-8", "replace") if isinstance(text, bytes) else text)
        self.write("\n")

    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out


LOGS = LogCapture()


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a log handler must never raise
            LOGS.add(self.format(record))


LOG_HANDLER = _Handler(logging.DEBUG)


def install_log_capture() -> None:
    """Route structlog (at DEBUG) and stdlib logging (aiokafka included) into :data:`LOGS`."""
    from broker.logging import configure

    configure("DEBUG", stream=LOGS)  # type: ignore[arg-type]
    for name in ("", "aiokafka", "broker"):
        logger = logging.getLogger(name)
        if LOG_HANDLER not in logger.handlers:
            logger.addHandler(LOG_HANDLER)
    logging.getLogger("aiokafka").setLevel(logging.INFO)


# --- independent Kafka client ---------------------------------------------------------------


def topics(bootstrap: str) -> list[str]:
    """Every topic name, asked with confluent-kafka (librdkafka), not aiokafka."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    return sorted(admin.list_topics(timeout=15).topics)


def read_all(
    bootstrap: str,
    topic: str,
    *,
    expect: int = 0,
    timeout_s: float = 60.0,
    tls_cafile: Path | None = None,
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """Every record of ``topic`` from the beginning, read with confluent-kafka (over TLS trusting
    ``tls_cafile`` when given).

    The reader is assigned every partition of the topic (no group to join) and reads until at
    least ``expect`` records arrived and every partition reported its end (librdkafka's
    partition EOF: its position reached the partition's high watermark, after the last record).
    A record appended later makes that partition's end pending again.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    tls: dict[str, str] = (
        {}
        if tls_cafile is None
        else {"security.protocol": "SSL", "ssl.ca.location": str(tls_cafile)}
    )
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"verify-{uuid.uuid4()}",  # never joined: the partitions are assigned
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 3,
            **tls,
        }
    )
    out: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        partitions: list[int] = []
        while not partitions and time.monotonic() < deadline:
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is not None and meta.error is None:
                partitions = sorted(meta.partitions)
            else:
                time.sleep(0.1)  # the topic is being created
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        while time.monotonic() < deadline:
            if partitions and at_end == set(partitions) and len(out) >= expect:
                break
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                error = m.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(cast("int", m.partition()))
                    continue
                at_end.discard(cast("int", m.partition()))
                # a consumed record's headers are (str, bytes) pairs; the stubs' type is the
                # wider one produce accepts (a dict, str values)
                headers = cast("list[tuple[str, bytes]]", m.headers() or [])
                out.append((m.key() or b"", m.value() or b"", list(headers)))
    finally:
        consumer.close()
    return out


async def produce_raw(
    bootstrap: str,
    records: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]],
    *,
    tls_cafile: Path | None = None,
) -> None:
    """Write (topic, key, value, headers) records as a stranger would: a plain producer (over
    TLS trusting ``tls_cafile`` when given)."""
    import asyncio

    from aiokafka import AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    tls: dict[str, Any] = (
        {}
        if tls_cafile is None
        else {"security_protocol": "SSL", "ssl_context": create_ssl_context(cafile=str(tls_cafile))}
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=4 << 20, linger_ms=20, acks="all", **tls
    )
    await producer.start()
    try:
        for i in range(0, len(records), 500):
            futures = [
                await producer.send(topic, value, key=key, headers=headers)
                for topic, key, value, headers in records[i : i + 500]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def handled_everything(bootstrap: str, group: str, topics: tuple[str, ...]) -> bool:
    """Whether ``group`` has committed the end of every partition of those of ``topics`` that
    exist (a daemon commits a record only once it was delivered or quarantined and its receipt
    and quarantine record were acknowledged)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    # (noida-db and Kafka; tansu answers ListOffsets with 0)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    try:
        existing = await reader.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            if topic in existing
            for p in sorted(reader.partitions_for_topic(topic) or {0})
        ]
        ends = await reader.end_offsets(partitions)
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return all(
            tp in offsets and offsets[tp].offset >= ends[tp] for tp in partitions if ends[tp] > 0
        )
    finally:
        await reader.stop()
        await admin.close()


# --- the wire scan: what the broker operator sees besides ciphertext ------------------------

#: headers NBX writes on an inbox or receipts record (the format, the recipient key id)
WIRE_HEADERS = frozenset({"nbx-format", "nbx-kid"})
_OPAQUE_KEY = re.compile(rb"^[A-Za-z0-9_-]{22}$")


def wire_findings(
    records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]],
    *,
    secrets: set[str],
    cap: int,
) -> list[str]:
    """What an inbox or receipts record written by NBX must not show the broker: a key that is not
    an opaque 22-character keyed hash or that contains (or is contained in) a notice or message id
    from ``secrets``, a header other than :data:`WIRE_HEADERS` or one whose value names a secret,
    a frame whose size is not a padding bucket under ``cap``."""
    from broker.envelope.seal import bucket_sizes

    buckets = set(bucket_sizes(cap))
    found: list[str] = []
    for key, value, headers in records:
        text = key.decode("utf-8", "replace")
        if not _OPAQUE_KEY.match(key):
            found.append(f"key {text!r} is not an opaque record key")
        found += [f"key {text!r} names {s!r}" for s in secrets if s in text or text in s]
        for name, header in headers:
            if name not in WIRE_HEADERS:
                found.append(f"unexpected header {name!r}")
            value_text = (header or b"").decode("utf-8", "replace")
            found += [f"header {name!r} names {s!r}" for s in secrets if s in value_text]
        if len(value) not in buckets:
            found.append(f"frame of {len(value)} bytes is not a bucket size")
    return found


# --- an attacker's envelope toolkit ---------------------------------------------------------

#: every reason code a quarantine record may carry (one list, in broker.logging)
KNOWN_REASONS = QUARANTINE_REASONS


def encrypt_to(keys: Any, plaintext: bytes, topic: str | None = None) -> bytes:
    """Encrypt any plaintext to ``keys.bureau`` (its public key is public: anyone can)."""
    from broker.envelope.seal import hpke_info
    from broker.wire import frame
    from broker.wire.suites import HPKE_SUITES, SUITE_X25519

    kid = keys.encryption_key_id
    topic = topic or f"nbx.inbox.{keys.bureau}"
    info = hpke_info(topic, keys.bureau, kid, SUITE_X25519)
    ct = HPKE_SUITES[SUITE_X25519].encrypt(plaintext, keys.encryption_key.public_key(), info=info)
    return frame.encode(SUITE_X25519, kid, ct)


def decrypt_as(keys: Any, data: bytes, topic: str | None = None) -> dict[str, Any]:
    """The package JSON in a frame addressed to ``keys.bureau`` (what an insider starts from)."""
    from broker.envelope.seal import hpke_info
    from broker.wire import frame
    from broker.wire.suites import HPKE_SUITES

    parsed = frame.decode(data)
    topic = topic or f"nbx.inbox.{keys.bureau}"
    info = hpke_info(topic, keys.bureau, parsed.recipient_kid, parsed.suite)
    out: dict[str, Any] = json.loads(
        HPKE_SUITES[parsed.suite].decrypt(parsed.ciphertext, keys.encryption_key, info=info)
    )
    return out


def statement_of(package: dict[str, Any]) -> dict[str, Any]:
    from broker.wire.canonical import b64u_decode

    out: dict[str, Any] = json.loads(b64u_decode(package["statement"]))
    return out


def resigned(package: dict[str, Any], statement: dict[str, Any], signer: Any) -> dict[str, Any]:
    """``package`` with ``statement`` signed by the Ed25519 private key ``signer``."""
    from broker.envelope.seal import SIGNATURE_DOMAIN
    from broker.wire.canonical import b64u, jcs

    body = jcs(statement)
    return {
        **package,
        "statement": b64u(body),
        "signature": b64u(signer.sign(SIGNATURE_DOMAIN + body)),
    }


# --- the audit log ----------------------------------------------------------------------------


def audit_log_text(store: Path) -> str:
    """Every byte of a node's audit log (``audit`` and ``audit_checkpoints`` rows of its SQLite
    store, every column) as text, for the canary scan: the log holds ids, codes, operators,
    purposes and times, never personal data."""
    import sqlite3

    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        rows += db.execute("SELECT * FROM audit_checkpoints").fetchall()
    finally:
        db.close()
    return "\n".join(json.dumps(row, ensure_ascii=False) for row in rows)


def audit_canary_hits(store: Path) -> list[str]:
    """The canaries found in a node's audit log (:func:`audit_log_text`)."""
    text = audit_log_text(store)
    TALLY.input("audit log entries scanned for canaries", text.count("\n") + 1)
    return canary_hits(text)
