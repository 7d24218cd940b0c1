"""SQLite sink (default): one file per bureau.

Tables: ``notices`` (current version of each notice: disclosed view, withheld manifest, status),
``deliveries`` (every message handled: the replay guard and delivery log, ids only), ``sent`` and
``receipts`` (the publisher side: what went to whom, and what came back).

Purging (cancel, withdraw, erasure order) removes the view and the withheld manifest of a notice.
``secure_delete`` overwrites freed content and the WAL is checkpointed and truncated right after,
so the personal data is gone from the files on disk, not only from query results.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import orjson

from broker.envelope import VerifiedPackage
from broker.sinks.base import (
    PURGED_STATUS,
    Applied,
    NoticeRecord,
    NoticeRow,
    Position,
    ReceiptRecord,
    RecipientStatus,
    Seen,
    status_rows,
    storage_errors,
)
from broker.sinks.files import SQLITE_COMPANIONS, create_private
from broker.vocab import MessageKind, NoticeStatus, Reason, SendStatus

#: the delivery log and replay guard, keyed by (sender, msg id): a msg id is chosen by its signer
DELIVERIES = """
CREATE TABLE IF NOT EXISTS deliveries (
    msg_id       TEXT NOT NULL,
    notice_id    TEXT NOT NULL,
    sender       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    "offset"     INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT,
    at           TEXT NOT NULL,
    PRIMARY KEY (sender, msg_id)
);
"""
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS notices (
    notice_id    TEXT NOT NULL,
    sender       TEXT NOT NULL,
    notice_type  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    view         TEXT,
    withheld     TEXT,
    policy       TEXT NOT NULL,
    msg_id       TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (sender, notice_id)
);
"""
    + DELIVERIES
    + """
CREATE TABLE IF NOT EXISTS sent (
    msg_id       TEXT NOT NULL,
    notice_id    TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT,
    at           TEXT NOT NULL,
    PRIMARY KEY (msg_id, recipient)
);
CREATE TABLE IF NOT EXISTS receipts (
    msg_id       TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    notice_id    TEXT NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT,
    at           TEXT NOT NULL,
    PRIMARY KEY (msg_id, recipient, status)
);
CREATE INDEX IF NOT EXISTS sent_notice ON sent (notice_id);
CREATE INDEX IF NOT EXISTS receipts_notice ON receipts (notice_id);
"""
)
#: ``PRAGMA user_version`` of the schema above. 2: the replay guard keyed by (sender, msg id).
SCHEMA_VERSION = 2
_MIGRATE_TO_2 = (  # constant text only: nothing from outside is joined in
    "ALTER TABLE deliveries RENAME TO deliveries_v1;"  # noqa: S608
    + DELIVERIES
    + "INSERT INTO deliveries SELECT * FROM deliveries_v1 ORDER BY rowid; DROP TABLE deliveries_v1;"
)


def _view_json(view: dict[str, Any]) -> str:
    """A stored view: JSON with sorted keys (orjson: a tenth of the ``json`` module's time).

    A verified view holds only what canonical JSON allows (its digests were computed), which
    orjson always writes; anything else (an integer beyond 64 bits) still gets stored, by ``json``.
    """
    try:
        return orjson.dumps(view, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(view, sort_keys=True, ensure_ascii=False)


class DeliveryRow(TypedDict):
    """One message handled by the daemon (:meth:`SqliteSink.delivery_log`)."""

    msg_id: str
    notice_id: str
    sender: str
    kind: str  # a MessageKind, as the sender signed it
    topic: str
    partition: int
    offset: int
    outcome: str  # an Applied
    reason: str | None  # a Reason, for a rejection


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _version(package: VerifiedPackage) -> int:
    value = package.header.get("version", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


class SqliteSink:
    """A bureau's local store in one SQLite file (safe to share between the daemon and the CLI)."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        """Open (and create if needed) the store at ``path``.

        ``durable`` (the daemon's setting) fsyncs every commit: a delivery whose offset was
        committed survives a power loss. The publisher opens its connection with
        ``durable=False``: it writes only its own bookkeeping of what it sent.
        """
        self.path = path
        create_private(path, SQLITE_COMPANIONS)  # 0600; SQLite gives its -wal/-shm that mode
        # check_same_thread=False: the daemon commits a batch (the fsync) on a worker thread while
        # its event loop waits; the connection is never used by two threads at once
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("PRAGMA secure_delete=ON")
        self._migrate()
        self._in_batch = False
        self._purged = False

    def _migrate(self) -> None:
        """Create the tables, or bring a store written by an older release to this schema."""
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")  # another process may be migrating: ask again inside
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            old = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'deliveries'").fetchone()
            if old is not None and version < 2:
                for statement in _MIGRATE_TO_2.split(";"):
                    if statement.strip():
                        db.execute(statement)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction (and one fsync) for every message applied inside the block."""
        if self._in_batch:
            yield
            return
        self.begin()
        try:
            yield
        except BaseException:
            self.end(commit=False)
            raise
        self.end(commit=True)

    @storage_errors
    def begin(self) -> None:
        """Open one transaction for a batch (see :meth:`batch`)."""
        if self._in_batch:
            msg = "a batch is already open"
            raise RuntimeError(msg)
        self._db.execute("BEGIN IMMEDIATE")
        self._in_batch = True

    @storage_errors
    def end(self, *, commit: bool) -> None:
        """Commit (and fsync) or roll back the batch's transaction; a failed commit rolls back."""
        self._in_batch = False
        if not commit:
            self._rollback()
            return
        try:
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        if self._purged:
            self._purged = False
            self._checkpoint()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._purged = False

    def _checkpoint(self) -> None:
        # after a purge: move the zeroed pages into the file and empty the WAL
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """A transaction of its own, or a savepoint inside :meth:`batch`."""
        db = self._db
        if self._in_batch:
            db.execute("SAVEPOINT one")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK TO one")
                db.execute("RELEASE one")
                raise
            db.execute("RELEASE one")
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if self._purged:
            self._purged = False
            self._checkpoint()

    # --- receiving side -------------------------------------------------------------------

    @storage_errors
    def seen(self, sender: str, msg_id: str) -> Seen | None:
        """Where and how ``sender``'s message ``msg_id`` was handled, if it was."""
        row = self._db.execute(
            'SELECT topic, partition, "offset", outcome, reason FROM deliveries '
            "WHERE sender = ? AND msg_id = ?",
            (sender, msg_id),
        ).fetchone()
        if row is None:
            return None
        reason = None if row[4] is None else Reason(row[4])
        return Seen(Position(row[0], row[1], row[2]), Applied(row[3]), reason)

    def _guard(self, package: VerifiedPackage, at: Position) -> Applied | None:
        seen = self.seen(package.sender, package.msg_id)
        if seen is None:
            return None
        return Applied.REDELIVERY if seen.position == at else Applied.REPLAY

    def _log(
        self,
        package: VerifiedPackage,
        at: Position,
        outcome: Applied,
        reason: Reason | None,
        now: str | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO deliveries VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                package.msg_id,
                package.notice_id,
                package.sender,
                package.kind,
                at.topic,
                at.partition,
                at.offset,
                outcome.value,
                reason,
                now or _now(),
            ),
        )

    @storage_errors
    def apply(self, package: VerifiedPackage, view: dict[str, Any], at: Position) -> Applied:
        """Apply a verified message in one transaction that is also the replay guard."""
        with self._tx():
            guard = self._guard(package, at)
            if guard is not None:
                return guard
            now = _now()  # one time stamp for the notice row and the delivery row
            outcome = self._apply_kind(package, view, now)
            self._log(package, at, outcome, None, now)
            if outcome is Applied.PURGED:
                self._purged = True
        return outcome

    def _apply_kind(self, package: VerifiedPackage, view: dict[str, Any], now: str) -> Applied:
        db = self._db
        row = db.execute(
            "SELECT version, status FROM notices WHERE notice_id = ? AND sender = ?",
            (package.notice_id, package.sender),
        ).fetchone()
        kind = package.kind
        purged = PURGED_STATUS.get(kind)
        if purged is not None:
            db.execute(
                "INSERT INTO notices VALUES (?,?,?,?,?,NULL,NULL,?,?,?) "
                "ON CONFLICT(sender, notice_id) DO UPDATE SET status=excluded.status, view=NULL, "
                "withheld=NULL, msg_id=excluded.msg_id, updated_at=excluded.updated_at",
                (
                    package.notice_id,
                    package.sender,
                    package.notice_type,
                    row[0] if row else 0,
                    purged,
                    package.policy,
                    package.msg_id,
                    now,
                ),
            )
            return Applied.PURGED
        if kind == MessageKind.SUSPEND:
            db.execute(
                "UPDATE notices SET status=?, msg_id=?, updated_at=? "
                "WHERE notice_id=? AND sender=? AND status=?",
                (
                    NoticeStatus.SUSPENDED,
                    package.msg_id,
                    now,
                    package.notice_id,
                    package.sender,
                    NoticeStatus.ACTIVE,
                ),
            )
            return Applied.SUSPENDED
        if kind not in (MessageKind.PUBLISH, MessageKind.UPDATE):
            msg = f"unsupported message kind {kind!r}"
            raise ValueError(msg)
        version = _version(package)
        if row is not None and (row[1] in PURGED_STATUS.values() or row[0] >= version):
            return Applied.STALE
        db.execute(
            "INSERT INTO notices VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(sender, notice_id) DO UPDATE SET version=excluded.version, "
            "status=excluded.status, view=excluded.view, withheld=excluded.withheld, "
            "policy=excluded.policy, msg_id=excluded.msg_id, updated_at=excluded.updated_at, "
            "notice_type=excluded.notice_type",
            (
                package.notice_id,
                package.sender,
                package.notice_type,
                version,
                NoticeStatus.ACTIVE,
                _view_json(view),
                json.dumps([list(w) for w in package.withheld]),
                package.policy,
                package.msg_id,
                now,
            ),
        )
        return Applied.DELIVERED

    @storage_errors
    def reject(self, package: VerifiedPackage, at: Position, reason: Reason) -> Applied:
        """Record a rejection of a verified message (ids and reason only)."""
        with self._tx():
            guard = self._guard(package, at)
            if guard is not None:
                return guard
            self._log(package, at, Applied.REJECTED, reason)
        return Applied.REJECTED

    # --- sending side ---------------------------------------------------------------------

    def record_sent(
        self,
        msg_id: str,
        notice_id: str,
        recipient: str,
        kind: MessageKind,
        status: SendStatus,
        reason: str | None,
    ) -> None:
        """Remember what this bureau sent to ``recipient`` (idempotent)."""
        self._db.execute(
            "INSERT OR REPLACE INTO sent VALUES (?,?,?,?,?,?,?)",
            (msg_id, notice_id, recipient, kind, status, reason, _now()),
        )

    @storage_errors
    def record_receipt(self, receipt: ReceiptRecord) -> bool:
        """Store a receipt; False if it was already stored."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO receipts VALUES (?,?,?,?,?,?)",
            (
                receipt.msg_id,
                receipt.recipient,
                receipt.notice_id,
                receipt.status,
                receipt.reason,
                receipt.at,
            ),
        )
        return cur.rowcount == 1

    def status(self, notice_id: str) -> list[RecipientStatus]:
        """Per recipient: every message sent for ``notice_id`` and the receipts that came back."""
        sent = self._db.execute(
            "SELECT msg_id, recipient, kind, status, reason, at FROM sent "
            "WHERE notice_id = ? ORDER BY at, recipient",
            (notice_id,),
        ).fetchall()
        receipts = self._db.execute(
            "SELECT msg_id, recipient, status, reason, at FROM receipts WHERE notice_id = ?",
            (notice_id,),
        ).fetchall()
        return status_rows(sent, receipts)

    # --- reading --------------------------------------------------------------------------

    def notices(self) -> list[NoticeRow]:
        """Current notices (ids, type, sender, version, status), newest first."""
        rows = self._db.execute(
            "SELECT notice_id, sender, notice_type, version, status, updated_at FROM notices "
            "ORDER BY updated_at DESC, notice_id"
        ).fetchall()
        return [
            NoticeRow(
                notice_id=r[0],
                sender=r[1],
                notice_type=r[2],
                version=r[3],
                status=r[4],
                updated_at=r[5],
            )
            for r in rows
        ]

    def notice(self, notice_id: str) -> NoticeRecord | None:
        """One notice with its disclosed view and withheld manifest (None if unknown)."""
        row = self._db.execute(
            "SELECT notice_id, sender, notice_type, version, status, view, withheld, policy, "
            "msg_id, updated_at FROM notices WHERE notice_id = ? ORDER BY updated_at DESC",
            (notice_id,),
        ).fetchone()
        if row is None:
            return None
        return {  # the key order is inbox show --json's
            "notice_id": row[0],
            "sender": row[1],
            "notice_type": row[2],
            "version": row[3],
            "status": row[4],
            "view": json.loads(row[5]) if row[5] is not None else None,
            "withheld": json.loads(row[6]) if row[6] is not None else None,
            "policy": row[7],
            "msg_id": row[8],
            "updated_at": row[9],
        }

    def delivery_log(self) -> list[DeliveryRow]:
        """Every message handled (ids, outcome), oldest first."""
        rows = self._db.execute(
            'SELECT msg_id, notice_id, sender, kind, topic, partition, "offset", outcome, reason '
            "FROM deliveries ORDER BY rowid"
        ).fetchall()
        return [
            DeliveryRow(
                msg_id=r[0],
                notice_id=r[1],
                sender=r[2],
                kind=r[3],
                topic=r[4],
                partition=r[5],
                offset=r[6],
                outcome=r[7],
                reason=r[8],
            )
            for r in rows
        ]
