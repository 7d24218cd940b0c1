"""SQLite sink (default): one file per bureau.

Tables: ``notices`` (current version of each notice: disclosed view, withheld manifest, status,
and the derived ``state``), ``deliveries`` (every message handled: the replay guard and delivery
log, ids only), ``statements`` (the statement hash of every publish/update received), ``facts``
(attestations and oversight decisions: ids, codes, short reasons), ``sent`` and ``receipts`` (the
publisher side: what went to whom, and what came back).

A notice's ``state`` is derived from its row and its facts (:func:`~broker.sinks.base.derive_state`)
each time either changes, so it does not depend on the order in which they arrived; a national
system reads only rows whose ``state`` is ``actionable``.

Purging (cancel, withdraw, erasure order) removes the view and the withheld manifest of a notice.
``secure_delete`` overwrites freed content and the WAL is checkpointed and truncated right after,
so the personal data is gone from the files on disk, not only from query results.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from broker.sinks.files import SQLITE_COMPANIONS, create_private
from broker.sinks.retention import RetentionLimit, default_limit, view_retain_until
from broker.sinks.sql import DeliveryRow, SqlSink
from broker.vocab import NoticeState, NoticeStatus

__all__ = ["SCHEMA_VERSION", "DeliveryRow", "SqliteSink"]

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
#: attestations and oversight decisions (ids, codes, short reasons: no personal data), and the
#: statement hash of every publish/update received (what a review names)
FACTS = """
CREATE TABLE IF NOT EXISTS statements (
    sender         TEXT NOT NULL,
    msg_id         TEXT NOT NULL,
    notice_id      TEXT NOT NULL,
    statement_hash TEXT NOT NULL,
    audience       TEXT,
    PRIMARY KEY (sender, msg_id)
);
CREATE INDEX IF NOT EXISTS statements_notice ON statements (sender, notice_id);
CREATE TABLE IF NOT EXISTS facts (
    by_bureau      TEXT NOT NULL,
    msg_id         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    subject_sender TEXT NOT NULL,
    notice_id      TEXT NOT NULL,
    statement_hash TEXT,
    subject_msg_id TEXT,
    decision       TEXT,
    grounds        TEXT,
    case_ref       TEXT,
    reason         TEXT,
    at             TEXT NOT NULL,
    PRIMARY KEY (by_bureau, msg_id)
);
CREATE INDEX IF NOT EXISTS facts_notice ON facts (subject_sender, notice_id);
CREATE TABLE IF NOT EXISTS held (
    topic          TEXT NOT NULL,
    partition      INTEGER NOT NULL,
    "offset"       INTEGER NOT NULL,
    statement_hash TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    value          BLOB NOT NULL,
    headers        TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX IF NOT EXISTS held_statement ON held (statement_hash);
CREATE TABLE IF NOT EXISTS flags (
    sender         TEXT NOT NULL,
    msg_id         TEXT NOT NULL,
    notice_id      TEXT NOT NULL,
    flags          TEXT NOT NULL,
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
    state        TEXT NOT NULL DEFAULT 'actionable',
    state_reason TEXT,
    statement_hash TEXT,
    review       INTEGER NOT NULL DEFAULT 0,
    retain_until TEXT,
    expiry_receipt TEXT,
    PRIMARY KEY (sender, notice_id)
);
"""
    + DELIVERIES
    + FACTS
    + """
CREATE TABLE IF NOT EXISTS sent (
    msg_id       TEXT NOT NULL,
    notice_id    TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT,
    at           TEXT NOT NULL,
    statement_hash TEXT,
    notice_type  TEXT,
    deadline     TEXT,
    retain_until TEXT,
    origin       TEXT,
    body         TEXT,
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
CREATE INDEX IF NOT EXISTS notices_retain ON notices (retain_until);
CREATE INDEX IF NOT EXISTS receipts_notice ON receipts (notice_id);
"""
    + """
CREATE TABLE IF NOT EXISTS responses (
    by_bureau    TEXT NOT NULL,
    msg_id       TEXT NOT NULL,
    direction    TEXT NOT NULL,
    notice_id    TEXT NOT NULL,
    notice_type  TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    at           TEXT NOT NULL,
    note         TEXT,
    attachments  TEXT NOT NULL,
    in_reply_to  TEXT,
    recipients   TEXT NOT NULL,
    stored_at    TEXT NOT NULL,
    PRIMARY KEY (by_bureau, msg_id)
);
CREATE INDEX IF NOT EXISTS responses_notice ON responses (notice_id);
"""
)
#: the audit log (docs/safeguards.md, "Audit trail"): append-only (the triggers refuse an update
#: or a delete), hash-chained (broker.sinks.audit), and its signed checkpoints. ``source`` is
#: not part of an entry: the position of a quarantined record, so a redelivery adds no entry.
AUDIT: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS audit (
    seq          INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    action       TEXT NOT NULL,
    notice_id    TEXT,
    msg_id       TEXT,
    sender       TEXT,
    notice_type  TEXT,
    kind         TEXT,
    bureaus      TEXT NOT NULL,
    operator     TEXT,
    purpose      TEXT,
    outcome      TEXT,
    reason       TEXT,
    prev         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    source       TEXT
)""",
    "CREATE INDEX IF NOT EXISTS audit_at ON audit (at)",
    "CREATE UNIQUE INDEX IF NOT EXISTS audit_source ON audit (source) WHERE source IS NOT NULL",
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    """CREATE TABLE IF NOT EXISTS audit_checkpoints (
    count        INTEGER PRIMARY KEY,
    head         TEXT NOT NULL,
    at           TEXT NOT NULL,
    bureau       TEXT NOT NULL,
    kid          TEXT NOT NULL,
    signature    TEXT NOT NULL
)""",
)
#: ``PRAGMA user_version`` of the schema above. 2: the replay guard keyed by (sender, msg id).
#: 3: notice states (``notices.state``...), ``statements`` and ``facts``.
#: 4: ``statements.audience`` (whom a reviewer or the oversight body answers), ``flags`` (the
#: screening flags of each person-targeting version received; deleted when the notice is purged),
#: ``held`` (a reviewer's held packages of senders under heightened supervision).
#: 5: ``audit`` and ``audit_checkpoints`` (the audit log); retention and proven erasure:
#: ``notices.retain_until`` (computed for the rows already stored) and ``expiry_receipt`` (when
#: the broker acknowledged the ``retention-expired`` receipt), ``sent.deadline`` /
#: ``retain_until`` / ``origin`` / ``body``.
#: 6: ``responses`` (the answers to a notice this bureau sent or received: ids, kind, the
#: responder's note and attachment references; created empty by the migration).
SCHEMA_VERSION = 6
#: the derived state of a row written by an older release (no review, no facts then)
_STATE_OF_STATUS = (
    f"CASE status WHEN '{NoticeStatus.SUSPENDED}' THEN '{NoticeState.SUSPENDED}' "
    f"WHEN '{NoticeStatus.CANCELLED}' THEN '{NoticeState.CANCELLED}' "
    f"WHEN '{NoticeStatus.ERASED}' THEN '{NoticeState.PURGED}' "
    f"ELSE '{NoticeState.ACTIONABLE}' END"
)
_MIGRATE_TO_3 = (  # constant text only: nothing from outside is joined in
    "ALTER TABLE notices ADD COLUMN state TEXT NOT NULL DEFAULT 'actionable';"  # noqa: S608
    "ALTER TABLE notices ADD COLUMN state_reason TEXT;"
    "ALTER TABLE notices ADD COLUMN statement_hash TEXT;"
    "ALTER TABLE notices ADD COLUMN review INTEGER NOT NULL DEFAULT 0;"
    f"UPDATE notices SET state = {_STATE_OF_STATUS};"
)
_MIGRATE_TO_2 = (  # constant text only: nothing from outside is joined in
    "ALTER TABLE deliveries RENAME TO deliveries_v1;"  # noqa: S608
    + DELIVERIES
    + "INSERT INTO deliveries SELECT * FROM deliveries_v1 ORDER BY rowid; DROP TABLE deliveries_v1;"
)


class SqliteSink(SqlSink):
    """A bureau's local store in one SQLite file (safe to share between the daemon and the CLI)."""

    def __init__(
        self, path: Path, *, durable: bool = True, retention: RetentionLimit | None = None
    ) -> None:
        """Open (and create if needed) the store at ``path``.

        ``retention`` gives this bureau's longest retention of a notice type (its own policy's
        ``[retention]``; default five years): with the notice's own expiry and an erasure's
        ``erase_by`` it sets each stored notice's ``retain_until``
        (:mod:`broker.sinks.retention`).

        ``durable`` (the daemon's setting) fsyncs every commit: a delivery whose offset was
        committed survives a power loss. The publisher opens its connection with
        ``durable=False``: it writes only its own bookkeeping of what it sent.
        """
        self.path = path
        self.retention = retention or default_limit
        create_private(path, SQLITE_COMPANIONS)  # 0600; SQLite gives its -wal/-shm that mode
        # check_same_thread=False: the daemon commits a batch (the fsync) on a worker thread while
        # its event loop waits; the connection is never used by two threads at once
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("PRAGMA secure_delete=ON")
        self._migrate()
        self._init_state()

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
            columns = {r[1] for r in db.execute("PRAGMA table_info(notices)")}
            if columns and "state" not in columns:
                for statement in _MIGRATE_TO_3.split(";"):
                    if statement.strip():
                        db.execute(statement)
            statement_columns = {r[1] for r in db.execute("PRAGMA table_info(statements)")}
            if statement_columns and "audience" not in statement_columns:
                db.execute("ALTER TABLE statements ADD COLUMN audience TEXT")
            sent_columns = {r[1] for r in db.execute("PRAGMA table_info(sent)")}
            if sent_columns and "statement_hash" not in sent_columns:
                db.execute("ALTER TABLE sent ADD COLUMN statement_hash TEXT")
            if sent_columns and "notice_type" not in sent_columns:
                db.execute("ALTER TABLE sent ADD COLUMN notice_type TEXT")
            for column in ("deadline", "retain_until", "origin", "body"):
                if sent_columns and column not in sent_columns:
                    db.execute(f"ALTER TABLE sent ADD COLUMN {column} TEXT")
            notice_columns = {r[1] for r in db.execute("PRAGMA table_info(notices)")}
            if notice_columns and "retain_until" not in notice_columns:
                db.execute("ALTER TABLE notices ADD COLUMN retain_until TEXT")
                self._retain_stored()
            if notice_columns and "expiry_receipt" not in notice_columns:
                db.execute("ALTER TABLE notices ADD COLUMN expiry_receipt TEXT")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for statement in AUDIT:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _retain_stored(self) -> None:
        """(Migration to schema 5) the ``retain_until`` of every row still holding a view."""
        db = self._db
        stored = datetime.now(UTC)
        rows = db.execute(
            "SELECT sender, notice_id, notice_type, view FROM notices WHERE view IS NOT NULL"
        ).fetchall()
        for sender, notice_id, notice_type, view in rows:
            try:
                parsed = json.loads(view)
            except ValueError:
                parsed = {}
            until = view_retain_until(
                parsed if isinstance(parsed, dict) else {},
                notice_type,
                sender,
                self.retention,
                stored,
            )
            db.execute(
                "UPDATE notices SET retain_until = ? WHERE sender = ? AND notice_id = ?",
                (until, sender, notice_id),
            )

    def _after_purge(self) -> None:
        """After a purge: move the zeroed pages into the file and empty the WAL."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
