"""The SQL logic shared by the SQLite and the PostgreSQL stores (:class:`SqlSink`).

Both stores keep the same tables and answer the same queries; what differs between the two
databases (how a transaction starts, the replay guard's and the audit chain's locks between
replicas, reading JSON inside SQL, what happens after a purge: an SQLite WAL checkpoint or a
PostgreSQL VACUUM) sits behind the small methods a subclass overrides. The SQL text uses ``?``
placeholders and the syntax both accept (``INSERT ... ON CONFLICT``, ``CASE``, ``CAST``); the
PostgreSQL connection (:mod:`broker.sinks.postgres`) turns the placeholders into its own.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypedDict, TypeVar

import orjson

from broker.envelope import VerifiedPackage
from broker.sinks.audit import (
    GENESIS,
    Access,
    AuditEvent,
    Checkpoint,
    chain,
    consultation_event,
    purge_event,
    quarantine_event,
    receive_event,
    rejection_event,
)
from broker.sinks.base import (
    FACT_KINDS,
    PURGED_STATES,
    PURGED_STATUS,
    Applied,
    AuditEntry,
    Derived,
    Fact,
    HeldFrame,
    HeldNotice,
    NoticeRecord,
    NoticeRow,
    OverdueRow,
    Position,
    ReceiptRecord,
    RecipientStatus,
    ResponseRecord,
    Seen,
    SubjectHit,
    confirms_erasure,
    derive_state,
    fact_from,
    header_codes,
    refusal_window_start,
    response_from,
    shared_with_of,
    status_rows,
    storage_errors,
)
from broker.sinks.retention import (
    Expired,
    Expiring,
    PendingOrder,
    RetentionLimit,
    erase_by_of,
    stamp,
    view_retain_until,
)
from broker.sinks.subject import lookup_events
from broker.sinks.subject import matches as subject_matches
from broker.vocab import MessageKind, NoticeState, NoticeStatus, Reason, SendStatus

P = ParamSpec("P")
R = TypeVar("R")

_STATE = "UPDATE notices SET state = ?, state_reason = ? WHERE sender = ? AND notice_id = ?"
_PURGE_AND_STATE = (
    "UPDATE notices SET state = ?, state_reason = ?, view = NULL, withheld = NULL "
    "WHERE sender = ? AND notice_id = ?"
)
_NOTICE_COLUMNS = (
    "notice_id, sender, notice_type, version, status, view, withheld, policy, msg_id, "
    "updated_at, state, state_reason, statement_hash, review"
)
_PURGED_STATE_LIST = ", ".join(f"'{s.value}'" for s in sorted(PURGED_STATES))
#: one order (an original purging message and its resends share ``origin``) and recipient is
#: confirmed by a ``purged`` receipt from that recipient for any message of the order
_UNCONFIRMED = (
    "s.deadline IS NOT NULL AND s.status = 'sent' "
    "AND NOT EXISTS (SELECT 1 FROM receipts r JOIN sent o "
    "ON o.msg_id = r.msg_id AND o.recipient = r.recipient "
    "WHERE r.recipient = s.recipient AND r.status = 'purged' "
    "AND COALESCE(o.origin, o.msg_id) = COALESCE(s.origin, s.msg_id))"
)
_LATEST = (  # the latest message of the order to that recipient
    "NOT EXISTS (SELECT 1 FROM sent n WHERE n.recipient = s.recipient AND n.status = 'sent' "
    "AND COALESCE(n.origin, n.msg_id) = COALESCE(s.origin, s.msg_id) "
    "AND (n.at > s.at OR (n.at = s.at AND n.msg_id > s.msg_id)))"
)
_OVERDUE = (
    "SELECT s.notice_id, s.notice_type, s.recipient, s.msg_id, s.kind, s.at, s.deadline "  # noqa: S608 (constant text)
    f"FROM sent s WHERE s.deadline < ? AND {_UNCONFIRMED} AND {_LATEST} "
    "ORDER BY s.deadline, s.notice_id, s.recipient"
)
_OVERDUE_BODIES = (
    "SELECT s.notice_id, s.notice_type, s.recipient, s.msg_id, s.kind, s.deadline, "  # noqa: S608 (constant text)
    "COALESCE(s.origin, s.msg_id), s.body "
    f"FROM sent s WHERE s.deadline < ? AND {_UNCONFIRMED} AND {_LATEST} "
    "ORDER BY s.deadline, s.notice_id, s.recipient"
)
#: the sender's bookkeeping of a notice goes once the earliest ``retain_until`` of its rows (the
#: notice's own, from its publish) has passed; an unconfirmed purging message stays (the proof
#: of erasure is still owed)
_SWEEP_SENT = (
    "DELETE FROM sent WHERE notice_id IN (SELECT notice_id FROM sent GROUP BY notice_id "
    "HAVING MIN(retain_until) <= ?) "
    "AND NOT (deadline IS NOT NULL AND status = 'sent' AND NOT EXISTS ("
    "SELECT 1 FROM receipts r JOIN sent o ON o.msg_id = r.msg_id AND o.recipient = r.recipient "
    "WHERE r.recipient = sent.recipient AND r.status = 'purged' "
    "AND COALESCE(o.origin, o.msg_id) = COALESCE(sent.origin, sent.msg_id)))"
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


def _locked(method: Callable[P, R]) -> Callable[P, R]:
    """Run a read under the sink's lock: the daemon commits a batch (and checkpoints the WAL
    after a purge) on a worker thread, and a read from the event loop's thread (a command, the
    report, a test waiting for a condition) must not step through the connection meanwhile."""

    @functools.wraps(method)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        sink = args[0]
        assert isinstance(sink, SqlSink)
        with sink._lock:
            return method(*args, **kwargs)

    return locked


class SqlSink:
    """A bureau's store in an SQL database: everything but the connection and the schema
    (:class:`~broker.sinks.sqlite.SqliteSink`, :class:`~broker.sinks.postgres.PostgresSink`)."""

    #: the connection (sqlite3, or the PostgreSQL adapter of broker.sinks.postgres): execute,
    #: executemany (``?`` placeholders), in_transaction, close
    _db: Any
    #: the bureau's longest retention per notice type (:mod:`broker.sinks.retention`)
    retention: RetentionLimit
    _in_batch: bool
    #: a purge committed in this transaction (see :meth:`_after_purge`)
    _purged: bool
    #: the audit chain's head (seq, hash) inside the open transaction; None: read it again
    #: (at the first entry of each transaction: another process may have written since)
    _head: tuple[int, str] | None
    #: purge entries held back while apply() writes the message's own entry first
    _deferred: list[AuditEvent] | None
    #: audit entries (event, time, source) waiting to be chained just before the commit (see
    #: :meth:`_audit`; PostgreSQL only: SQLite writes them at once)
    _pending: list[tuple[AuditEvent, str, str | None]]
    #: a batch's commit runs on a worker thread: a read that writes its consultation entry
    #: waits for it (see notice())
    _lock: threading.RLock

    def _init_state(self) -> None:
        """The state of a store just opened (no batch open)."""
        self._in_batch = False
        self._purged = False
        self._head = None
        self._deferred = None
        self._pending = []
        self._lock = threading.RLock()

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
        with self._lock:  # not while another thread commits the previous batch
            self._begin()
        self._head = None
        self._pending = []
        self._in_batch = True

    @storage_errors
    def end(self, *, commit: bool) -> None:
        """Commit (and fsync) or roll back the batch's transaction; a failed commit rolls back."""
        with self._lock:
            self._in_batch = False
            self._head = None
            if not commit:
                self._rollback()
                return
            try:
                self._before_commit()
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            if self._purged:
                self._purged = False
                self._after_purge()

    def _rollback(self) -> None:
        self._pending = []
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._purged = False

    # --- what differs between the databases -----------------------------------------------

    #: how the batch reads a notice's handling code, source reliability and information accuracy
    #: out of its stored view (``notices``)
    _VIEW_CODES = (
        "json_extract(view, '$.handling.code'), json_extract(view, '$.source_reliability'), "
        "json_extract(view, '$.information_accuracy')"
    )
    #: the order rows were written to the delivery log
    _DELIVERY_ORDER = "rowid"

    def _begin(self) -> None:
        """Start a transaction that writes (SQLite: take the write lock now)."""
        self._db.execute("BEGIN IMMEDIATE")

    def _after_purge(self) -> None:
        """After a transaction that purged personal data committed: make the freed content
        leave the files (SQLite: the WAL checkpoint)."""

    def _lock_message(self, sender: str, msg_id: str) -> None:
        """Inside the transaction, before the replay guard looks ``sender``'s ``msg_id`` up:
        wait for any other writer handling the same message (SQLite: one writer at a time
        already)."""
        del sender, msg_id

    def _before_commit(self) -> None:
        """Right before the transaction commits (PostgreSQL: chain the audit entries held
        back, :meth:`_audit`)."""

    def _lock_audit(self) -> None:
        """Inside the transaction, before the audit chain's head is read (SQLite: one writer
        at a time already)."""

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """A transaction of its own, or a savepoint inside :meth:`batch`."""
        db = self._db
        if self._in_batch:
            head, pending = self._head, len(self._pending)
            db.execute("SAVEPOINT one")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK TO one")
                db.execute("RELEASE one")
                self._head = head  # the entries written since are gone too
                del self._pending[pending:]
                raise
            db.execute("RELEASE one")
            return
        self._begin()
        self._head = None
        self._pending = []
        try:
            yield
            self._before_commit()
        except BaseException:
            self._head = None
            self._pending = []
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._head = None
        db.execute("COMMIT")
        if self._purged:
            self._purged = False
            self._after_purge()

    # --- audit log ------------------------------------------------------------------------

    def _audit(self, event: AuditEvent, now: str, source: str | None = None) -> None:
        """Append ``event`` to the audit chain inside the open transaction (the caller's)."""
        head = self._head
        if head is None:
            self._lock_audit()
            row = self._db.execute(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            head = (0, GENESIS) if row is None else (row[0], row[1])
        entry = chain(event, head[0] + 1, now, head[1])
        self._db.execute(
            "INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                entry.seq,
                entry.at,
                entry.action,
                entry.notice_id,
                entry.msg_id,
                entry.sender,
                entry.notice_type,
                entry.kind,
                orjson.dumps(entry.bureaus).decode(),
                entry.operator,
                entry.purpose,
                entry.outcome,
                entry.reason,
                entry.prev,
                entry.hash,
                source,
            ),
        )
        self._head = (entry.seq, entry.hash)

    @storage_errors
    def record(self, event: AuditEvent) -> None:
        """Append an audit entry in the open batch (with the action it records), or alone."""
        with self._tx():
            self._audit(event, _now())

    @storage_errors
    def record_quarantine(
        self, reason: str, at: Position, package: VerifiedPackage | None = None
    ) -> None:
        """The ``quarantine`` entry of the record read at ``at`` (once per position: a
        redelivery adds none)."""
        source = f"{at.topic}:{at.partition}:{at.offset}"
        with self._tx():
            if (
                any(s == source for _, _, s in self._pending)
                or self._db.execute("SELECT 1 FROM audit WHERE source = ?", (source,)).fetchone()
            ):
                return
            self._audit(quarantine_event(reason, package), _now(), source)

    @storage_errors
    def audit_entries(self, since: str | None = None, until: str | None = None) -> list[AuditEntry]:
        """The audit log in seq order; ``since`` / ``until`` bound ``at`` (from, before). (Under
        the lock: a read still stepping while the daemon's worker thread commits and checkpoints
        the WAL would make that checkpoint fail as ``locked``.)"""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, action, notice_id, msg_id, sender, notice_type, kind, bureaus, "
                "operator, purpose, outcome, reason, prev, hash FROM audit "
                "WHERE at >= ? AND at < ? ORDER BY seq",
                (since or "", until or "\uffff"),
            ).fetchall()
        return [
            AuditEntry(
                seq=r[0],
                at=r[1],
                action=r[2],
                notice_id=r[3],
                msg_id=r[4],
                sender=r[5],
                notice_type=r[6],
                kind=r[7],
                bureaus=tuple(json.loads(r[8])),
                operator=r[9],
                purpose=r[10],
                outcome=r[11],
                reason=r[12],
                prev=r[13],
                hash=r[14],
            )
            for r in rows
        ]

    @storage_errors
    def checkpoints(self) -> list[Checkpoint]:
        """The signed checkpoints of the audit log, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT bureau, count, head, at, kid, signature FROM audit_checkpoints "
                "ORDER BY count"
            ).fetchall()
        return [Checkpoint(*r) for r in rows]

    @storage_errors
    def checkpoint(self, sign: Callable[[int, str], Checkpoint]) -> Checkpoint | None:
        """Sign the chain's head (``sign(count, head)``) and keep the checkpoint, in one
        transaction; ``None`` when the last checkpoint already covers every entry (or there is
        none)."""
        with self._lock, self._tx():
            self._lock_audit()
            row = self._db.execute(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            count, head = (0, GENESIS) if row is None else (row[0], row[1])
            last = self._db.execute("SELECT MAX(count) FROM audit_checkpoints").fetchone()
            if count == 0 or (last is not None and last[0] is not None and last[0] >= count):
                return None
            cp = sign(count, head)
            self._db.execute(
                "INSERT INTO audit_checkpoints VALUES (?,?,?,?,?,?)",
                (cp.count, cp.head, cp.at, cp.bureau, cp.kid, cp.signature),
            )
        return cp

    # --- receiving side -------------------------------------------------------------------

    @storage_errors
    @_locked
    def seen(self, sender: str, msg_id: str) -> Seen | None:
        """Where and how ``sender``'s message ``msg_id`` was handled, if it was."""
        row = self._db.execute(
            'SELECT topic, partition, "offset", outcome, reason FROM deliveries '
            "WHERE sender = ? AND msg_id = ?",
            (sender, msg_id),
        ).fetchone()
        if row is None:
            return None
        return Seen(Position(row[0], row[1], row[2]), Applied(row[3]), row[4])

    def _guard(self, package: VerifiedPackage, at: Position) -> Applied | None:
        self._lock_message(package.sender, package.msg_id)
        seen = self.seen(package.sender, package.msg_id)
        if seen is None:
            return None
        return Applied.REDELIVERY if seen.position == at else Applied.REPLAY

    def _log(
        self,
        package: VerifiedPackage,
        at: Position,
        outcome: Applied,
        reason: str | None,
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
    def apply(
        self,
        package: VerifiedPackage,
        view: dict[str, Any],
        at: Position,
        *,
        review: bool = False,
    ) -> Applied:
        """Apply a verified message in one transaction that is also the replay guard, and
        derive the state of the notice it is about again."""
        with self._tx():
            guard = self._guard(package, at)
            if guard is not None:
                return guard
            now = _now()  # one time stamp for the notice row and the delivery row
            fact = fact_from(package, view) if package.kind in FACT_KINDS else None
            self._deferred = []  # the message's own entry first, then the purge it caused
            try:
                if fact is not None:
                    outcome, reason = self._apply_fact(fact, now)
                elif package.kind == MessageKind.RESPONSE:
                    self._keep_response(response_from(package, view, package.recipient), now)
                    outcome, reason = Applied.DELIVERED, None
                else:
                    outcome, reason = self._apply_kind(package, view, now, review=review)
                self._log(package, at, outcome, reason, now)
                self._audit(receive_event(package, outcome.value, fact), now)
                for event in self._deferred:
                    self._audit(event, now)
            finally:
                self._deferred = None
            if outcome is Applied.PURGED:
                self._purged = True
        return outcome

    def _apply_fact(self, fact: Fact, now: str) -> tuple[Applied, str | None]:
        before = self._compute(fact.subject_sender, fact.notice_id)
        self._db.execute(
            "INSERT INTO facts VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                fact.by,
                fact.msg_id,
                fact.kind,
                fact.subject_sender,
                fact.notice_id,
                fact.statement_hash,
                fact.subject_msg_id,
                fact.decision,
                fact.grounds,
                fact.case_ref,
                fact.reason,
                now,
            ),
        )
        after = self._derive(fact.subject_sender, fact.notice_id, fact.kind)
        if (
            before is not None
            and after is not None
            and before[0].state not in PURGED_STATES
            and after.state in PURGED_STATES
        ) or confirms_erasure(fact, after):
            return Applied.PURGED, None
        return Applied.DELIVERED, None

    def _compute(self, sender: str, notice_id: str) -> tuple[Derived, bool] | None:
        """The notice's derived state, and whether it still holds personal data."""
        db = self._db
        row = db.execute(
            "SELECT status, statement_hash, review, view IS NOT NULL OR withheld IS NOT NULL "
            "FROM notices WHERE sender = ? AND notice_id = ?",
            (sender, notice_id),
        ).fetchone()
        if row is None:
            return None
        statements = dict(
            db.execute(
                "SELECT statement_hash, msg_id FROM statements WHERE sender = ? AND notice_id = ?",
                (sender, notice_id),
            ).fetchall()
        )
        facts = [
            Fact(*r)
            for r in db.execute(
                "SELECT kind, by_bureau, msg_id, subject_sender, notice_id, statement_hash, "
                "subject_msg_id, decision, grounds, case_ref, reason FROM facts "
                "WHERE subject_sender = ? AND notice_id = ?",
                (sender, notice_id),
            )
        ]
        derived = derive_state(
            row[0], row[1], statements.get(row[1] or ""), bool(row[2]), statements, facts
        )
        return derived, bool(row[3])

    def _derive(self, sender: str, notice_id: str, cause: str | None = None) -> Derived | None:
        """Derive the notice's state from its row and facts, store it, and purge its personal
        data when the state holds none.

        Every purge goes through here and leaves one ``erasure`` audit entry whose reason is the
        derived state's :class:`~broker.vocab.PurgeReason` (``cause``: the message kind that
        caused it; ``None`` for the retention sweep)."""
        computed = self._compute(sender, notice_id)
        if computed is None:
            return None
        derived, holds_data = computed
        purge = derived.state in PURGED_STATES and holds_data
        self._db.execute(
            _PURGE_AND_STATE if purge else _STATE,
            (derived.state, derived.reason, sender, notice_id),
        )
        if derived.state in PURGED_STATES:  # the flags go with the data they were computed from
            self._db.execute(
                "DELETE FROM flags WHERE sender = ? AND notice_id = ?", (sender, notice_id)
            )
            # and the responders' words about it (sent from here, or shared with this bureau)
            self._db.execute(
                "UPDATE responses SET note = NULL, attachments = '[]' "
                "WHERE issuer = ? AND notice_id = ? AND (note IS NOT NULL OR attachments != '[]')",
                (sender, notice_id),
            )
        if purge:
            self._purged = True
            row = self._db.execute(
                "SELECT notice_type FROM notices WHERE sender = ? AND notice_id = ?",
                (sender, notice_id),
            ).fetchone()
            event = purge_event(sender, notice_id, row[0] if row else None, derived, cause)
            if self._deferred is not None:
                self._deferred.append(event)
            else:
                self._audit(event, _now())
        return derived

    def _apply_kind(
        self, package: VerifiedPackage, view: dict[str, Any], now: str, *, review: bool
    ) -> tuple[Applied, str | None]:
        db = self._db
        row = db.execute(
            "SELECT version, status FROM notices WHERE notice_id = ? AND sender = ?",
            (package.notice_id, package.sender),
        ).fetchone()
        kind = package.kind
        purged = PURGED_STATUS.get(kind)
        if purged is not None:
            db.execute(
                f"INSERT INTO notices ({_NOTICE_COLUMNS}) "  # noqa: S608 (constant columns)
                "VALUES (?,?,?,?,?,NULL,NULL,?,?,?,?,NULL,NULL,0) "
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
                    NoticeState.PURGED,
                ),
            )
            erase_by = erase_by_of(package.header) if kind == MessageKind.ERASURE else None
            if erase_by is not None:  # purged at once; recorded: never kept past erase_by
                db.execute(
                    "UPDATE notices SET retain_until = CASE WHEN retain_until IS NULL "
                    "OR retain_until > ? THEN ? ELSE retain_until END "
                    "WHERE sender = ? AND notice_id = ?",
                    (stamp(erase_by), stamp(erase_by), package.sender, package.notice_id),
                )
            self._derive(package.sender, package.notice_id, kind)
            return Applied.PURGED, None
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
            self._derive(package.sender, package.notice_id, kind)
            return Applied.SUSPENDED, None
        if kind not in (MessageKind.PUBLISH, MessageKind.UPDATE):
            msg = f"unsupported message kind {kind!r}"
            raise ValueError(msg)
        # every version's statement hash is kept: a refusal names the version it judged
        db.execute(
            "INSERT INTO statements VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                package.sender,
                package.msg_id,
                package.notice_id,
                package.statement_hash,
                json.dumps(list(package.audience)),
            ),
        )
        version = _version(package)
        if row is not None and (
            row[1] in PURGED_STATUS.values() or row[1] == NoticeStatus.EXPIRED or row[0] >= version
        ):
            self._derive(package.sender, package.notice_id, kind)  # a refusal may name it
            return Applied.STALE, None
        db.execute(
            f"INSERT INTO notices ({_NOTICE_COLUMNS}, retain_until) "  # noqa: S608 (constant columns)
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,?) "
            "ON CONFLICT(sender, notice_id) DO UPDATE SET version=excluded.version, "
            "status=excluded.status, view=excluded.view, withheld=excluded.withheld, "
            "policy=excluded.policy, msg_id=excluded.msg_id, updated_at=excluded.updated_at, "
            "notice_type=excluded.notice_type, statement_hash=excluded.statement_hash, "
            "review=excluded.review, retain_until=excluded.retain_until",
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
                NoticeState.PENDING_REVIEW if review else NoticeState.ACTIONABLE,
                package.statement_hash,
                int(review),
                view_retain_until(
                    view, package.notice_type, package.sender, self.retention, datetime.now(UTC)
                ),
            ),
        )
        derived = self._derive(package.sender, package.notice_id, kind)
        if derived is not None and derived.state in PURGED_STATES:
            # refused or deleted before it arrived: stored without its personal data
            return Applied.PURGED, derived.reason
        return Applied.DELIVERED, None

    @storage_errors
    @_locked
    def state(self, sender: str, notice_id: str) -> Derived | None:
        """The derived state of the notice ``(sender, notice_id)`` (None if not stored)."""
        computed = self._compute(sender, notice_id)
        return None if computed is None else computed[0]

    @storage_errors
    @_locked
    def statement(self, sender: str, msg_id: str) -> tuple[str, str] | None:
        """``(notice_id, statement_hash)`` of ``sender``'s publish/update ``msg_id``."""
        row = self._db.execute(
            "SELECT notice_id, statement_hash FROM statements WHERE sender = ? AND msg_id = ?",
            (sender, msg_id),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    @storage_errors
    def set_flags(
        self, sender: str, msg_id: str, notice_id: str, flags: list[dict[str, str]]
    ) -> None:
        """Keep the screening flags of ``sender``'s message ``msg_id`` (in the current batch)."""
        self._db.execute(
            "INSERT INTO flags VALUES (?,?,?,?) ON CONFLICT (sender, msg_id) "
            "DO UPDATE SET notice_id = excluded.notice_id, flags = excluded.flags",
            (sender, msg_id, notice_id, json.dumps(flags)),
        )

    @storage_errors
    def hold(self, frame: HeldFrame, at: Position) -> None:
        """Keep a held package (idempotent per position)."""
        headers = json.dumps([[k, base64.b64encode(v).decode()] for k, v in frame.headers])
        self._db.execute(
            "INSERT INTO held VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                at.topic,
                at.partition,
                at.offset,
                frame.statement_hash,
                frame.recipient,
                frame.value,
                headers,
            ),
        )

    @storage_errors
    @_locked
    def held(self, statement_hash: str) -> list[HeldFrame]:
        """The held packages of the message with ``statement_hash``, by recipient."""
        rows = self._db.execute(
            "SELECT recipient, value, headers FROM held WHERE statement_hash = ? "
            'ORDER BY recipient, topic, partition, "offset"',
            (statement_hash,),
        ).fetchall()
        return [
            HeldFrame(
                statement_hash,
                r[0],
                bytes(r[1]),
                tuple((k, base64.b64decode(v)) for k, v in json.loads(r[2])),
            )
            for r in rows
        ]

    @storage_errors
    def drop_held(self, statement_hash: str) -> None:
        """Forget the held packages of the message."""
        self._db.execute("DELETE FROM held WHERE statement_hash = ?", (statement_hash,))

    @storage_errors
    @_locked
    def refusal_rate(self, sender: str) -> float | None:
        """The share of the recent reviews of ``sender``'s messages held here that refused them
        (``None`` when there is none): a screening aid, never a decision."""
        row = self._db.execute(
            "SELECT COUNT(*), SUM(CASE WHEN decision = 'refused' THEN 1 ELSE 0 END) FROM facts "
            "WHERE kind = 'review' AND subject_sender = ? AND at >= ?",
            (sender, refusal_window_start()),
        ).fetchone()
        return None if not row[0] else float(row[1]) / float(row[0])

    @storage_errors
    @_locked
    def facts(self, sender: str, notice_id: str) -> list[Fact]:
        """Every attestation and oversight decision about ``(sender, notice_id)``, oldest first."""
        rows = self._db.execute(
            "SELECT kind, by_bureau, msg_id, subject_sender, notice_id, statement_hash, "
            "subject_msg_id, decision, grounds, case_ref, reason FROM facts "
            "WHERE subject_sender = ? AND notice_id = ? ORDER BY msg_id, by_bureau",
            (sender, notice_id),
        ).fetchall()
        return [Fact(*r) for r in rows]

    @storage_errors
    @_locked
    def audience(self, sender: str, msg_id: str) -> tuple[str, ...] | None:
        """Every bureau ``sender`` addressed its publish/update ``msg_id`` to, if received."""
        row = self._db.execute(
            "SELECT audience FROM statements WHERE sender = ? AND msg_id = ?", (sender, msg_id)
        ).fetchone()
        return None if row is None or row[0] is None else tuple(json.loads(row[0]))

    @storage_errors
    def reject(self, package: VerifiedPackage, at: Position, reason: Reason) -> Applied:
        """Record a rejection of a verified message (ids and reason only)."""
        with self._tx():
            guard = self._guard(package, at)
            if guard is not None:
                return guard
            now = _now()
            self._log(package, at, Applied.REJECTED, reason, now)
            self._audit(rejection_event(package, reason.value), now)
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
        *,
        statement_hash: str | None = None,
        notice_type: str | None = None,
        deadline: str | None = None,
        retain_until: str | None = None,
        origin: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Remember what this bureau sent to ``recipient`` (idempotent)."""
        self._db.execute(
            "INSERT INTO sent (msg_id, notice_id, recipient, kind, status, reason, at, "
            "statement_hash, notice_type, deadline, retain_until, origin, body) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (msg_id, recipient) DO UPDATE SET "
            "notice_id = excluded.notice_id, kind = excluded.kind, status = excluded.status, "
            "reason = excluded.reason, at = excluded.at, statement_hash = excluded.statement_hash, "
            "notice_type = excluded.notice_type, deadline = excluded.deadline, "
            "retain_until = excluded.retain_until, origin = excluded.origin, body = excluded.body",
            (
                msg_id,
                notice_id,
                recipient,
                kind,
                status,
                reason,
                _now(),
                statement_hash,
                notice_type,
                deadline,
                retain_until,
                origin,
                None if body is None else json.dumps(body, sort_keys=True),
            ),
        )

    @storage_errors
    def record_receipt(self, receipt: ReceiptRecord) -> bool:
        """Store a receipt; False if it was already stored."""
        cur = self._db.execute(
            "INSERT INTO receipts VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                receipt.msg_id,
                receipt.recipient,
                receipt.notice_id,
                receipt.status,
                receipt.reason,
                receipt.at,
            ),
        )
        return bool(cur.rowcount == 1)

    @_locked
    def status(self, notice_id: str) -> list[RecipientStatus]:
        """Per recipient: every message sent for ``notice_id`` and the receipts that came back."""
        sent = self._db.execute(
            "SELECT msg_id, recipient, kind, status, reason, at, statement_hash, notice_type, "
            "deadline FROM sent "
            "WHERE notice_id = ? ORDER BY at, recipient",
            (notice_id,),
        ).fetchall()
        receipts = self._db.execute(
            "SELECT msg_id, recipient, status, reason, at FROM receipts WHERE notice_id = ?",
            (notice_id,),
        ).fetchall()
        return status_rows(sent, receipts)

    # --- reading --------------------------------------------------------------------------

    @_locked
    def notices(self) -> list[NoticeRow]:
        """Current notices (ids, type, sender, version, status), newest first."""
        rows = self._db.execute(
            "SELECT notice_id, sender, notice_type, version, status, state, state_reason, "  # noqa: S608 (constant text)
            f"updated_at, {self._VIEW_CODES} "
            "FROM notices ORDER BY updated_at DESC, notice_id"
        ).fetchall()
        return [
            NoticeRow(
                notice_id=r[0],
                sender=r[1],
                notice_type=r[2],
                version=r[3],
                status=r[4],
                state=r[5],
                state_reason=r[6],
                updated_at=r[7],
                handling=r[8],
                source_reliability=r[9],
                information_accuracy=r[10],
            )
            for r in rows
        ]

    @storage_errors
    def notice(self, notice_id: str, access: Access) -> NoticeRecord | None:
        """One notice with its disclosed view and withheld manifest (None if unknown): a
        ``consultation`` entry (``access``: who and why) is written in the same transaction."""
        if not isinstance(access, Access):
            msg = "reading a notice needs an Access(operator, purpose)"
            raise TypeError(msg)
        with self._lock, self._tx():
            record = self._notice(notice_id)
            if record is not None:
                event = consultation_event(
                    access,
                    record["notice_id"],
                    record["msg_id"],
                    record["sender"],
                    record["notice_type"],
                )
                self._audit(event, _now())
        return record

    @storage_errors
    def subject_lookup(
        self, family_name: str, date_of_birth: str | None, access: Access
    ) -> list[SubjectHit]:
        """The notices whose disclosed person may be the one asked about
        (:func:`broker.sinks.subject.matches`), ids and states only, oldest first; the lookup is
        audited as a consultation (``access``) in the same transaction. Purged notices hold no
        name any more and are never found."""
        if not isinstance(access, Access):
            msg = "a subject lookup needs an Access(operator, purpose)"
            raise TypeError(msg)
        with self._lock, self._tx():
            rows = self._db.execute(
                "SELECT notice_id, sender, notice_type, version, state, state_reason, "
                "updated_at, view FROM notices WHERE view IS NOT NULL "
                "ORDER BY updated_at, sender, notice_id"
            ).fetchall()
            hits = [
                SubjectHit(
                    notice_id=r[0],
                    sender=r[1],
                    notice_type=r[2],
                    version=r[3],
                    state=r[4],
                    state_reason=r[5],
                    updated_at=r[6],
                    handling=header_codes(view)[0],
                )
                for r in rows
                for view in (json.loads(r[7]),)
                if subject_matches(view, family_name, date_of_birth)
            ]
            now = _now()
            for event in lookup_events(access, hits):
                self._audit(event, now)
        return hits

    def _notice(self, notice_id: str) -> NoticeRecord | None:
        row = self._db.execute(
            "SELECT notice_id, sender, notice_type, version, status, view, withheld, policy, "
            "msg_id, updated_at, state, state_reason FROM notices WHERE notice_id = ? "
            "ORDER BY updated_at DESC",
            (notice_id,),
        ).fetchone()
        if row is None:
            return None
        flags = self._db.execute(
            "SELECT flags FROM flags WHERE sender = ? AND msg_id = ?", (row[1], row[8])
        ).fetchone()
        return {  # the key order is inbox show --json's
            "notice_id": row[0],
            "sender": row[1],
            "notice_type": row[2],
            "version": row[3],
            "status": row[4],
            "state": row[10],
            "state_reason": row[11],
            "view": json.loads(row[5]) if row[5] is not None else None,
            "withheld": json.loads(row[6]) if row[6] is not None else None,
            "policy": row[7],
            "msg_id": row[8],
            "updated_at": row[9],
            "flags": [] if flags is None else json.loads(flags[0]),
        }

    @_locked
    def delivery_log(self) -> list[DeliveryRow]:
        """Every message handled (ids, outcome), oldest first."""
        rows = self._db.execute(
            'SELECT msg_id, notice_id, sender, kind, topic, partition, "offset", outcome, reason '  # noqa: S608 (constant text)
            f"FROM deliveries ORDER BY {self._DELIVERY_ORDER}"
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

    # --- responses (answers to a notice) -------------------------------------------------

    def _keep_response(self, response: ResponseRecord, now: str) -> None:
        """Store a response sent or received (once per signer and msg id)."""
        self._db.execute(
            "INSERT INTO responses VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                response.by,
                response.msg_id,
                response.direction,
                response.notice_id,
                response.notice_type,
                response.issuer,
                response.kind,
                response.at,
                response.note,
                json.dumps(list(response.attachments), sort_keys=True),
                response.in_reply_to,
                json.dumps(list(response.to)),
                now,
            ),
        )

    @storage_errors
    def record_response(self, response: ResponseRecord) -> None:
        """Keep a response this bureau sent (in the open batch, or alone)."""
        with self._tx():
            self._keep_response(response, _now())

    @storage_errors
    @_locked
    def responses(self, notice_id: str) -> list[ResponseRecord]:
        """Every response sent or received about ``notice_id``, oldest first."""
        rows = self._db.execute(
            "SELECT direction, msg_id, notice_id, notice_type, issuer, by_bureau, kind, at, note, "
            "attachments, in_reply_to, recipients FROM responses WHERE notice_id = ? "
            "ORDER BY at, msg_id",
            (notice_id,),
        ).fetchall()
        return [
            ResponseRecord(
                direction=r[0],
                msg_id=r[1],
                notice_id=r[2],
                notice_type=r[3],
                issuer=r[4],
                by=r[5],
                kind=r[6],
                at=r[7],
                note=r[8],
                attachments=tuple(json.loads(r[9])),
                in_reply_to=r[10],
                to=tuple(json.loads(r[11])),
            )
            for r in rows
        ]

    @storage_errors
    @_locked
    def held_notice(self, notice_id: str, sender: str | None = None) -> HeldNotice | None:
        """The stored notice as a responder needs it (no view, no consultation entry)."""
        row = self._db.execute(
            "SELECT sender, notice_id, notice_type, state, msg_id, view FROM notices "
            "WHERE notice_id = ? AND (CAST(? AS TEXT) IS NULL OR sender = ?) "
            "ORDER BY updated_at DESC",
            (notice_id, sender, sender),
        ).fetchone()
        if row is None:
            return None
        audience = self._db.execute(
            "SELECT audience FROM statements WHERE sender = ? AND msg_id = ?", (row[0], row[4])
        ).fetchone()
        view = None if row[5] is None else json.loads(row[5])
        return HeldNotice(
            sender=row[0],
            notice_id=row[1],
            notice_type=row[2],
            state=row[3],
            msg_id=row[4],
            audience=tuple(json.loads(audience[0])) if audience and audience[0] else (),
            shared_with=shared_with_of(view if isinstance(view, dict) else None),
        )

    # --- retention and proven erasure (issue 18, part B) ----------------------------------

    @storage_errors
    @_locked
    def overdue(self, now: datetime) -> list[OverdueRow]:
        """Purging messages sent whose recipient has not confirmed them with a signed ``purged``
        receipt (for the order or any resend of it) by their deadline; one row per order and
        recipient (its latest message), oldest deadline first."""
        rows = self._db.execute(_OVERDUE, (stamp(now),)).fetchall()
        return [
            OverdueRow(
                notice_id=r[0],
                notice_type=r[1],
                recipient=r[2],
                msg_id=r[3],
                kind=r[4],
                sent_at=r[5],
                deadline=r[6],
            )
            for r in rows
        ]

    @storage_errors
    @_locked
    def pending_orders(self, now: datetime) -> list[PendingOrder]:
        """The overdue purging messages with what they said (to send them again)."""
        rows = self._db.execute(_OVERDUE_BODIES, (stamp(now),)).fetchall()
        return [
            PendingOrder(
                notice_id=r[0],
                notice_type=r[1],
                recipient=r[2],
                msg_id=r[3],
                kind=r[4],
                deadline=r[5],
                origin=r[6],
                body=json.loads(r[7]) if r[7] else {},
            )
            for r in rows
        ]

    @storage_errors
    def sweep(self, now: datetime) -> list[Expired]:
        """Purge every notice whose ``retain_until`` has passed, through the same derivation as
        a cancel (``expired`` status -> state ``purged``, reason ``retention-expired``), and
        remove this bureau's bookkeeping of sent notices past their ``retain_until`` (except
        purging messages still awaiting their ``purged`` receipt). Returns every expired notice
        whose receipt is not yet acknowledged (:meth:`answered`): also those of an earlier sweep
        whose receipt a crash kept from the broker."""
        at = stamp(now)
        with self._tx():
            rows = self._db.execute(
                "SELECT sender, notice_id FROM notices "  # noqa: S608
                "WHERE retain_until IS NOT NULL AND retain_until <= ? "
                f"AND status IN ('{NoticeStatus.ACTIVE}', '{NoticeStatus.SUSPENDED}') "
                f"AND state NOT IN ({_PURGED_STATE_LIST}) ORDER BY retain_until",
                (at,),
            ).fetchall()
            for sender, notice_id in rows:
                self._db.execute(
                    "UPDATE notices SET status = ?, updated_at = ? "
                    "WHERE sender = ? AND notice_id = ?",
                    (NoticeStatus.EXPIRED, at, sender, notice_id),
                )
                self._derive(sender, notice_id)
                self._purged = True
            self._db.execute(_SWEEP_SENT, (at,))
            self._db.execute(
                "DELETE FROM receipts WHERE NOT EXISTS (SELECT 1 FROM sent "
                "WHERE sent.msg_id = receipts.msg_id AND sent.recipient = receipts.recipient)"
            )
            # the responses about a notice go with the last of this bureau's records of it: its
            # bookkeeping of what it sent (the issuer's case file), or the notice it holds
            self._db.execute(
                "DELETE FROM responses WHERE NOT EXISTS (SELECT 1 FROM sent "
                "WHERE sent.notice_id = responses.notice_id) AND NOT EXISTS (SELECT 1 FROM "
                "notices n WHERE n.sender = responses.issuer AND n.notice_id = responses.notice_id)"
            )
            owed = self._db.execute(
                "SELECT sender, notice_id, notice_type, msg_id, retain_until FROM notices "
                "WHERE status = ? AND expiry_receipt IS NULL ORDER BY retain_until, notice_id",
                (NoticeStatus.EXPIRED,),
            ).fetchall()
        return [Expired(*r) for r in owed]

    @storage_errors
    def answered(self, expired: list[Expired], at: datetime) -> None:
        """The ``retention-expired`` receipts of ``expired`` were acknowledged by the broker at
        ``at``: the next sweep does not return them again."""
        with self._tx():
            self._db.executemany(
                "UPDATE notices SET expiry_receipt = ? WHERE sender = ? AND notice_id = ? "
                "AND status = ?",
                [(stamp(at), e.sender, e.notice_id, NoticeStatus.EXPIRED) for e in expired],
            )

    @storage_errors
    @_locked
    def expiring(self, now: datetime, within: timedelta) -> list[Expiring]:
        """Stored notices still holding data whose ``retain_until`` is at or before ``now``
        + ``within``, soonest first."""
        rows = self._db.execute(
            "SELECT sender, notice_id, notice_type, retain_until FROM notices "
            "WHERE retain_until IS NOT NULL AND retain_until <= ? "
            "AND (view IS NOT NULL OR withheld IS NOT NULL) ORDER BY retain_until, notice_id",
            (stamp(now + within),),
        ).fetchall()
        return [Expiring(*r) for r in rows]
