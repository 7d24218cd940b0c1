"""JSON-lines sink: one append-only file of records, for bureaus that feed another system.

Every change appends one JSON object (``type`` = ``delivery``, ``notice``, ``statement``,
``fact``, ``sent``, ``receipt``, ``audit``, ...) and is fsynced before the daemon commits its
offset. A notice's ``state`` is derived from its record and its facts
(:func:`~broker.sinks.base.derive_state`) whenever either changes; a notice that reaches
``refused`` or ``purged`` is purged as below. The state is rebuilt by reading the file at start.
A purge (cancel, erasure, refusal, delete, the retention sweep) rewrites the file without the
notice's personal data, atomically (temporary file, fsync, rename), so the values are gone from
disk; the audit log is kept, in order.

Several handles may share the file: a node's daemon and its publisher (``nbx publish``,
``nbx cancel``, ``nbx review approve``, ...) each open their own, often in two processes. Every
change (from reading the state it decides on to its append or rewrite) runs under an exclusive
``flock`` on the companion ``<file>.lock`` (created 0600, never replaced; the store itself is
replaced by a rewrite), and first catches up: it loads the lines other handles appended since the
end offset this handle last knew, or, when the file was replaced (another inode) or is smaller
than that offset, reloads it whole and appends to the new file from then on. So a rewrite keeps
every other handle's lines, and the audit entries appended chain from the file's true head: one
chain, ``seq`` 1, 2, 3, ... A read takes up other handles' lines the same way (under a shared
lock). When nothing changed the catch-up costs one ``stat``; appends go straight to the file (a
batch fsyncs once, at its end).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from broker.envelope import VerifiedPackage
from broker.sinks.audit import (
    GENESIS,
    Access,
    AuditEvent,
    Checkpoint,
    chain,
    checkpoint_json,
    consultation_event,
    entry_from_json,
    entry_json,
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
from broker.sinks.files import create_private, open_private
from broker.sinks.retention import (
    Expired,
    Expiring,
    PendingOrder,
    RetentionLimit,
    default_limit,
    erase_by_of,
    stamp,
    view_retain_until,
)
from broker.sinks.subject import lookup_events
from broker.sinks.subject import matches as subject_matches
from broker.vocab import MessageKind, NoticeState, NoticeStatus, Reason, ReceiptStatus, SendStatus

#: the state of a notice record written by an older release (no review, no facts then)
_STATE_OF_STATUS = {
    NoticeStatus.SUSPENDED: NoticeState.SUSPENDED,
    NoticeStatus.CANCELLED: NoticeState.CANCELLED,
    NoticeStatus.ERASED: NoticeState.PURGED,
}


P = ParamSpec("P")
R = TypeVar("R")

#: the companion file every handle locks (``flock``) to write: the store itself is replaced by
#: a purge's rewrite, its lock file stays (empty; created 0600 like the store)
LOCK_SUFFIX = ".lock"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _line(rec: dict[str, Any]) -> str:
    return json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n"


def _writes(method: Callable[P, R]) -> Callable[P, R]:
    """Run a change under the file's lock, on the state caught up with every other handle's
    writes (see :meth:`JsonlSink._acquire`)."""

    @functools.wraps(method)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        sink = args[0]
        assert isinstance(sink, JsonlSink)
        with sink._lock:
            sink._acquire()
            try:
                return method(*args, **kwargs)
            finally:
                sink._release()

    return locked


def _reads(method: Callable[P, R]) -> Callable[P, R]:
    """Run a read under the handle's thread lock, after taking up what other handles wrote
    (one ``stat`` when nothing changed; see :meth:`JsonlSink._refresh`)."""

    @functools.wraps(method)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        sink = args[0]
        assert isinstance(sink, JsonlSink)
        with sink._lock:
            sink._refresh()
            return method(*args, **kwargs)

    return locked


class JsonlSink:
    """A bureau's store as a JSON-lines file; several handles (threads, processes) may share
    it: every write is made under an exclusive lock on ``<file>.lock``, on a state caught up
    with the other handles' writes."""

    def __init__(
        self, path: Path, *, durable: bool = True, retention: RetentionLimit | None = None
    ) -> None:
        """Open ``path``, creating it (and its lock file ``<file>.lock``) if needed, and
        rebuild the state from it.

        ``durable`` fsyncs every append (or every batch); ``retention`` as for
        :class:`~broker.sinks.sqlite.SqliteSink`.
        """
        self.path = path
        self._name = os.fspath(path)
        self.retention: RetentionLimit = retention or default_limit
        self.durable = durable
        create_private(path)  # 0600: the file holds decrypted personal data
        self._reset()
        #: purge entries of the notice records being written (see _derived and _append)
        self._pending: list[AuditEvent] = []
        #: threads of this handle; the file lock (below) is for the other handles
        self._lock = threading.RLock()
        #: the lock file's descriptor (flock), and how deep this handle holds it
        self._lock_fd = os.open(
            path.with_name(path.name + LOCK_SUFFIX), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600
        )
        self._depth = 0
        #: the file this handle has read: (device, inode) and the end of what it loaded
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        #: the descriptor appends go to (O_APPEND; reopened when another handle replaced the file)
        self._fd = -1
        self._in_batch = False
        try:
            with self._writing():  # loads the whole file, under the lock
                pass
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _reset(self) -> None:
        """Forget the state (before loading the file again from its start)."""
        #: the replay guard, keyed by (sender, msg id)
        self._deliveries: dict[tuple[str, str], dict[str, Any]] = {}
        self._notices: dict[tuple[str, str], dict[str, Any]] = {}
        self._sent: dict[tuple[str, str], dict[str, Any]] = {}
        self._receipts: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: statement hashes of publish/update messages, keyed by (sender, msg id)
        self._statements: dict[tuple[str, str], dict[str, Any]] = {}
        #: attestations and oversight decisions, keyed by (signer, msg id)
        self._facts: dict[tuple[str, str], dict[str, Any]] = {}
        #: screening flags per (sender, msg id)
        self._flags: dict[tuple[str, str], dict[str, Any]] = {}
        #: a reviewer's held packages per position (topic, partition, offset)
        self._held: dict[tuple[str, int, int], dict[str, Any]] = {}
        #: responses sent and received, keyed by (responder, msg id)
        self._responses: dict[tuple[str, str], dict[str, Any]] = {}
        #: the audit log (kept across a purge's rewrite), its checkpoints, the chain's head and
        #: the positions of quarantined records already recorded
        self._audit: list[dict[str, Any]] = []
        self._checkpoints: list[dict[str, Any]] = []
        self._head: tuple[int, str] = (0, GENESIS)
        self._sources: set[str] = set()

    # --- several handles on one file ----------------------------------------------------------

    def _acquire(self) -> None:
        """Take the file's exclusive lock (re-entrant within this handle; the caller holds the
        thread lock) and catch up: every change, from reading the state it decides on to its
        append or rewrite, runs between this and :meth:`_release`, so no other handle writes in
        between and no line of theirs is lost."""
        if self._depth == 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._catch_up()
            except BaseException:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                raise
        self._depth += 1

    def _release(self) -> None:
        """Undo one :meth:`_acquire`; the last one lets the other handles write."""
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """:meth:`_acquire` to :meth:`_release`, under the thread lock."""
        with self._lock:
            self._acquire()
            try:
                yield
            finally:
                self._release()

    def _changed(self) -> bool:
        """Whether the file is not (or no longer only) what this handle loaded: another handle
        appended (larger), or rewrote it (another inode, or smaller)."""
        st = os.stat(self._name)  # noqa: PTH116 (a str: Path.stat costs more, on every write)
        return (st.st_dev, st.st_ino) != self._identity or st.st_size != self._offset

    def _refresh(self) -> None:
        """Before a read: take up what other handles wrote, if anything (one ``stat`` when
        nothing changed; under the thread lock)."""
        if self._depth > 0 or self._lock_fd < 0 or not self._changed():
            return  # this handle holds the file lock (nobody else wrote), is closed (it answers
            # from what it loaded), or nothing changed
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)  # no writer half-way through a line
        try:
            self._catch_up()
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _catch_up(self) -> None:
        """Under the file lock: load the lines appended since this handle's offset, or, if
        another handle replaced the file (a purge's rewrite), reload all of it and append to
        the new file from now on."""
        if not self._changed():
            return
        with self.path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            identity = (st.st_dev, st.st_ino)
            start = self._offset
            if identity != self._identity or st.st_size < self._offset:
                self._reset()
                start = 0
            fh.seek(start)
            data = fh.read()
        try:
            for line in data.splitlines():
                if line.strip():
                    self._load(json.loads(line))
        except BaseException:
            self._identity = None  # half loaded: next time from the file's start again
            raise
        self._offset = start + len(data)
        if identity != self._identity:
            fd = open_private(self.path, "a")
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = fd
            self._identity = identity

    def _write(self, data: bytes) -> None:
        """Append ``data`` at the end of the file (under the file lock, caught up); a failed
        write is cut off again, so the file never keeps half a line."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._offset)
            raise
        self._offset += len(data)

    # --- batches ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One fsync for every record appended inside the block."""
        if self._in_batch:
            yield
            return
        self.begin()
        try:
            yield
        finally:
            self.end(commit=True)

    @storage_errors
    def begin(self) -> None:
        """Open a batch: appends are fsynced once, by :meth:`end`."""
        if self._in_batch:
            msg = "a batch is already open"
            raise RuntimeError(msg)
        self._in_batch = True

    @storage_errors
    def end(self, *, commit: bool) -> None:
        """Fsync what the batch appended (lines written cannot be taken back, so
        ``commit=False`` makes them durable too; replaying the file gives the same state).
        Each append reached the file at once (other handles read it under the lock); if another
        handle has since rewritten the file, the rewrite holds those lines and was fsynced."""
        del commit
        with self._lock:
            self._in_batch = False
            if self.durable:
                os.fsync(self._fd)

    def _load(self, rec: dict[str, Any]) -> None:
        kind = rec["type"]
        if kind == "delivery":
            self._deliveries[(rec["sender"], rec["msg_id"])] = rec
        elif kind == "notice":
            self._notices[(rec["sender"], rec["notice_id"])] = rec
        elif kind == "sent":
            self._sent[(rec["msg_id"], rec["recipient"])] = rec
        elif kind == "receipt":
            self._receipts[(rec["msg_id"], rec["recipient"], rec["status"])] = rec
        elif kind == "statement":
            self._statements[(rec["sender"], rec["msg_id"])] = rec
        elif kind == "fact":
            self._facts[(rec["by"], rec["msg_id"])] = rec
        elif kind == "flags":
            self._flags[(rec["sender"], rec["msg_id"])] = rec
        elif kind == "held":
            self._held[(rec["topic"], rec["partition"], rec["offset"])] = rec
        elif kind == "response":
            self._responses[(rec["by"], rec["msg_id"])] = rec
        elif kind == "audit":
            self._audit.append(rec)
            self._head = (int(rec["seq"]), str(rec["hash"]))
            if rec.get("source"):
                self._sources.add(rec["source"])
        elif kind == "checkpoint":
            self._checkpoints.append(rec)

    def _append(
        self,
        *records: dict[str, Any],
        audit: Sequence[AuditEvent] = (),
        source: str | None = None,
    ) -> None:
        """Append ``records`` and the audit entries of ``audit`` (then of the purges the
        records carry) in one write: one fsync, or the batch's. Under the file lock, so the
        entries chain from the file's true head."""
        with self._lock:  # the public method holds both locks already: re-entered, cheap
            self._acquire()
            try:
                events = [*audit, *self._pending]
                self._pending = []
                lines = list(records)
                if events:
                    now = _now()
                    seq, prev = self._head
                    for event in events:
                        seq += 1
                        entry = chain(event, seq, now, prev)
                        prev = entry.hash
                        line = {"type": "audit", **entry_json(entry)}
                        if source is not None:
                            line["source"] = source
                        lines.append(line)
                self._write("".join(_line(rec) for rec in lines).encode("utf-8"))
                for rec in lines:
                    self._load(rec)
                if not self._in_batch and self.durable:
                    os.fsync(self._fd)
            finally:
                self._release()

    def _rewrite(self) -> None:
        """Replace the file by the state (temporary file, fsync, rename), under the file lock:
        the state holds every line the other handles wrote (caught up when the lock was
        taken)."""
        assert self._depth > 0, "a rewrite runs under the file lock"
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.unlink(missing_ok=True)  # created afresh, so with mode 0600
        groups = (
            self._deliveries,
            self._notices,
            self._statements,
            self._facts,
            self._flags,
            self._held,
            self._sent,
            self._receipts,
            self._responses,
        )
        data = "".join(_line(rec) for group in groups for rec in group.values())
        # the audit log survives, in order
        data += "".join(_line(rec) for rec in [*self._audit, *self._checkpoints])
        raw = data.encode("utf-8")
        with os.fdopen(open_private(tmp, "w"), "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        fd = open_private(self.path, "a")
        st = os.fstat(fd)
        os.close(self._fd)
        self._fd = fd
        self._identity = (st.st_dev, st.st_ino)
        self._offset = len(raw)

    def close(self) -> None:
        """Close the file (and its lock file)."""
        with self._lock:
            for fd in (self._fd, self._lock_fd):
                if fd >= 0:
                    os.close(fd)
            self._fd = self._lock_fd = -1

    @storage_errors
    @_reads
    def seen(self, sender: str, msg_id: str) -> Seen | None:
        """Where and how ``sender``'s message ``msg_id`` was handled, if it was."""
        rec = self._deliveries.get((sender, msg_id))
        if rec is None:
            return None
        position = Position(rec["topic"], rec["partition"], rec["offset"])
        return Seen(position, Applied(rec["outcome"]), rec.get("reason"))

    def _delivery(
        self, package: VerifiedPackage, at: Position, outcome: Applied, reason: str | None
    ) -> dict[str, Any]:
        return {
            "type": "delivery",
            "msg_id": package.msg_id,
            "notice_id": package.notice_id,
            "sender": package.sender,
            "kind": package.kind,
            "topic": at.topic,
            "partition": at.partition,
            "offset": at.offset,
            "outcome": outcome.value,
            "reason": reason,
            "at": _now(),
        }

    def _guard(self, package: VerifiedPackage, at: Position) -> Applied | None:
        seen = self.seen(package.sender, package.msg_id)
        if seen is None:
            return None
        return Applied.REDELIVERY if seen.position == at else Applied.REPLAY

    def _compute(self, sender: str, notice_id: str) -> Derived | None:
        current = self._notices.get((sender, notice_id))
        if current is None:
            return None
        statements = {
            r["statement_hash"]: r["msg_id"]
            for r in self._statements.values()
            if r["sender"] == sender and r["notice_id"] == notice_id
        }
        facts = [
            Fact(**{k: v for k, v in r.items() if k not in ("type", "at")})
            for r in self._facts.values()
            if r["subject_sender"] == sender and r["notice_id"] == notice_id
        ]
        hash_ = current.get("statement_hash")
        return derive_state(
            current["status"],
            hash_,
            statements.get(hash_ or ""),
            bool(current.get("review", False)),
            statements,
            facts,
        )

    def _derived(
        self, sender: str, notice_id: str, cause: str | None = None
    ) -> tuple[dict[str, Any], Derived] | None:
        """The notice's record with its state derived again (purged if the state holds no
        personal data); not yet appended. A purge of the data the record held leaves one
        ``erasure`` audit entry (``cause``: the message kind; ``None`` for the retention sweep),
        written by the next :meth:`_append` with the record."""
        derived = self._compute(sender, notice_id)
        if derived is None:
            return None
        current = self._notices[(sender, notice_id)]
        notice = current | {
            "state": derived.state,
            "state_reason": derived.reason,
        }
        if derived.state in PURGED_STATES:
            if current.get("view") is not None or current.get("withheld") is not None:
                self._pending.append(
                    purge_event(sender, notice_id, current.get("notice_type"), derived, cause)
                )
            notice |= {"view": None, "withheld": None}
            for key in [k for k, f in self._flags.items() if f["notice_id"] == notice_id
                        and f["sender"] == sender]:  # fmt: skip
                del self._flags[key]  # gone from the file at the purge's rewrite
            for key, r in self._responses.items():  # the responders' words go with it
                if r["issuer"] == sender and r["notice_id"] == notice_id:
                    self._responses[key] = r | {"note": None, "attachments": []}
        return notice, derived

    @storage_errors
    @_writes
    def apply(
        self,
        package: VerifiedPackage,
        view: dict[str, Any],
        at: Position,
        *,
        review: bool = False,
    ) -> Applied:
        """Apply a verified message; the delivery record and the notice are written together."""
        guard = self._guard(package, at)
        if guard is not None:
            return guard
        if package.kind in FACT_KINDS:
            return self._apply_fact(package, view, at)
        if package.kind == MessageKind.RESPONSE:
            response = self._response_record(response_from(package, view, package.recipient))
            self._append(
                self._delivery(package, at, Applied.DELIVERED, None),
                response,
                audit=[receive_event(package, Applied.DELIVERED.value)],
            )
            return Applied.DELIVERED
        key = (package.sender, package.notice_id)
        current = self._notices.get(key)
        base = {
            "type": "notice",
            "notice_id": package.notice_id,
            "sender": package.sender,
            "notice_type": package.notice_type,
            "policy": package.policy,
            "msg_id": package.msg_id,
            "updated_at": _now(),
        }
        purged = PURGED_STATUS.get(package.kind)
        if purged is not None:
            version = current["version"] if current else 0
            notice = base | {
                "version": version,
                "status": purged,
                "view": None,
                "withheld": None,
                "statement_hash": current.get("statement_hash") if current else None,
                "review": current.get("review", False) if current else False,
            }
            erasure = package.kind == MessageKind.ERASURE
            erase_by = erase_by_of(package.header) if erasure else None
            if erase_by is not None:  # purged at once; recorded: never kept past erase_by
                bound = stamp(erase_by)
                earlier = current.get("retain_until") if current else None
                notice["retain_until"] = min(bound, earlier) if earlier else bound
            elif current is not None and current.get("retain_until"):
                notice["retain_until"] = current["retain_until"]
            self._notices[key] = notice
            derived = self._derived(*key, package.kind)
            assert derived is not None
            self._append(
                self._delivery(package, at, Applied.PURGED, None),
                derived[0],
                audit=[receive_event(package, Applied.PURGED.value)],
            )
            self._rewrite()
            return Applied.PURGED
        if package.kind == MessageKind.SUSPEND:
            if current is not None and current["status"] == NoticeStatus.ACTIVE:
                self._notices[key] = current | {
                    "status": NoticeStatus.SUSPENDED,
                    "updated_at": _now(),
                }
                derived = self._derived(*key, package.kind)
                assert derived is not None
                self._append(
                    self._delivery(package, at, Applied.SUSPENDED, None),
                    derived[0],
                    audit=[receive_event(package, Applied.SUSPENDED.value)],
                )
            else:
                self._append(
                    self._delivery(package, at, Applied.SUSPENDED, None),
                    audit=[receive_event(package, Applied.SUSPENDED.value)],
                )
            return Applied.SUSPENDED
        statement = {
            "type": "statement",
            "sender": package.sender,
            "msg_id": package.msg_id,
            "notice_id": package.notice_id,
            "statement_hash": package.statement_hash,
            "audience": list(package.audience),
        }
        raw = package.header.get("version", 1)
        version = raw if isinstance(raw, int) and not isinstance(raw, bool) else 1
        if current is not None and (
            current["status"] in (NoticeStatus.CANCELLED, NoticeStatus.ERASED, NoticeStatus.EXPIRED)
            or current["version"] >= version
        ):
            self._statements[(package.sender, package.msg_id)] = statement
            derived = self._derived(*key, package.kind)
            assert derived is not None
            self._append(
                self._delivery(package, at, Applied.STALE, None),
                statement,
                derived[0],
                audit=[receive_event(package, Applied.STALE.value)],
            )
            if derived[1].state in PURGED_STATES and current.get("view") is not None:
                self._rewrite()
            return Applied.STALE
        notice = base | {
            "version": version,
            "status": NoticeStatus.ACTIVE,
            "view": view,
            "withheld": [list(w) for w in package.withheld],
            "statement_hash": package.statement_hash,
            "review": review,
            "retain_until": view_retain_until(
                view, package.notice_type, package.sender, self.retention, datetime.now(UTC)
            ),
        }
        self._statements[(package.sender, package.msg_id)] = statement
        self._notices[key] = notice
        derived = self._derived(*key, package.kind)
        assert derived is not None
        notice, state = derived
        if state.state in PURGED_STATES:  # refused or deleted before it arrived
            self._append(
                self._delivery(package, at, Applied.PURGED, state.reason),
                statement,
                notice,
                audit=[receive_event(package, Applied.PURGED.value)],
            )
            if current is not None and current.get("view") is not None:
                self._rewrite()
            return Applied.PURGED
        self._append(
            self._delivery(package, at, Applied.DELIVERED, None),
            statement,
            notice,
            audit=[receive_event(package, Applied.DELIVERED.value)],
        )
        return Applied.DELIVERED

    def _apply_fact(self, package: VerifiedPackage, body: dict[str, Any], at: Position) -> Applied:
        fact = fact_from(package, body)
        key = (fact.subject_sender, fact.notice_id)
        before = self._compute(*key)
        record = {"type": "fact", "at": _now(), **fact.__dict__}
        self._facts[(fact.by, fact.msg_id)] = record
        derived = self._derived(*key, fact.kind)
        if derived is None or before is None:  # not held: a refusal or delete confirms it
            held = Applied.PURGED if confirms_erasure(fact, None) else Applied.DELIVERED
            self._append(
                self._delivery(package, at, held, None),
                record,
                audit=[receive_event(package, held.value, fact)],
            )
            return held
        purged = before.state not in PURGED_STATES and derived[1].state in PURGED_STATES
        confirmed = purged or confirms_erasure(fact, derived[1])
        outcome = Applied.PURGED if confirmed else Applied.DELIVERED
        self._append(
            self._delivery(package, at, outcome, None),
            record,
            derived[0],
            audit=[receive_event(package, outcome.value, fact)],
        )
        if purged:
            self._rewrite()
        return outcome

    @storage_errors
    @_reads
    def state(self, sender: str, notice_id: str) -> Derived | None:
        """The derived state of the notice ``(sender, notice_id)`` (None if not stored)."""
        return self._compute(sender, notice_id)

    @storage_errors
    @_reads
    def statement(self, sender: str, msg_id: str) -> tuple[str, str] | None:
        """``(notice_id, statement_hash)`` of ``sender``'s publish/update ``msg_id``."""
        rec = self._statements.get((sender, msg_id))
        return None if rec is None else (rec["notice_id"], rec["statement_hash"])

    @storage_errors
    @_writes
    def set_flags(
        self, sender: str, msg_id: str, notice_id: str, flags: list[dict[str, str]]
    ) -> None:
        """Keep the screening flags of ``sender``'s message ``msg_id``."""
        record = {
            "type": "flags",
            "sender": sender,
            "msg_id": msg_id,
            "notice_id": notice_id,
            "flags": flags,
        }
        self._flags[(sender, msg_id)] = record
        self._append(record)

    @storage_errors
    @_writes
    def hold(self, frame: HeldFrame, at: Position) -> None:
        """Keep a held package (idempotent per position)."""
        if (at.topic, at.partition, at.offset) in self._held:
            return
        self._append(
            {
                "type": "held",
                "topic": at.topic,
                "partition": at.partition,
                "offset": at.offset,
                "statement_hash": frame.statement_hash,
                "recipient": frame.recipient,
                "value": base64.b64encode(frame.value).decode(),
                "headers": [[k, base64.b64encode(v).decode()] for k, v in frame.headers],
            }
        )

    @storage_errors
    @_reads
    def held(self, statement_hash: str) -> list[HeldFrame]:
        """The held packages of the message with ``statement_hash``, by recipient."""
        found = sorted(
            (r for r in self._held.values() if r["statement_hash"] == statement_hash),
            key=lambda r: (r["recipient"], r["topic"], r["partition"], r["offset"]),
        )
        return [
            HeldFrame(
                statement_hash,
                r["recipient"],
                base64.b64decode(r["value"]),
                tuple((k, base64.b64decode(v)) for k, v in r["headers"]),
            )
            for r in found
        ]

    @storage_errors
    @_writes
    def drop_held(self, statement_hash: str) -> None:
        """Forget the held packages of the message (the file is rewritten without them)."""
        keys = [k for k, r in self._held.items() if r["statement_hash"] == statement_hash]
        if not keys:
            return
        for key in keys:
            del self._held[key]
        self._rewrite()

    @storage_errors
    @_reads
    def refusal_rate(self, sender: str) -> float | None:
        """The share of the recent reviews of ``sender``'s messages held here that refused them."""
        since = refusal_window_start()
        decisions = [
            str(f["decision"])
            for f in self._facts.values()
            if f["kind"] == MessageKind.REVIEW
            and f["subject_sender"] == sender
            and str(f["at"]) >= since
        ]
        if not decisions:
            return None
        return decisions.count("refused") / len(decisions)

    @storage_errors
    @_reads
    def facts(self, sender: str, notice_id: str) -> list[Fact]:
        """Every attestation and oversight decision about ``(sender, notice_id)``, oldest first."""
        found = [
            Fact(**{k: v for k, v in r.items() if k not in ("type", "at")})
            for r in self._facts.values()
            if r["subject_sender"] == sender and r["notice_id"] == notice_id
        ]
        return sorted(found, key=lambda f: (f.msg_id, f.by))

    @storage_errors
    @_reads
    def audience(self, sender: str, msg_id: str) -> tuple[str, ...] | None:
        """Every bureau ``sender`` addressed its publish/update ``msg_id`` to, if received."""
        rec = self._statements.get((sender, msg_id))
        audience = None if rec is None else rec.get("audience")
        return None if audience is None else tuple(audience)

    @storage_errors
    @_writes
    def reject(self, package: VerifiedPackage, at: Position, reason: Reason) -> Applied:
        """Record a rejection of a verified message."""
        guard = self._guard(package, at)
        if guard is not None:
            return guard
        self._append(
            self._delivery(package, at, Applied.REJECTED, reason),
            audit=[rejection_event(package, reason.value)],
        )
        return Applied.REJECTED

    @storage_errors
    @_writes
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
        """Remember what this bureau sent to ``recipient``."""
        self._append(
            {
                "deadline": deadline,
                "retain_until": retain_until,
                "origin": origin,
                "body": body,
                "type": "sent",
                "msg_id": msg_id,
                "notice_id": notice_id,
                "recipient": recipient,
                "kind": kind,
                "status": status,
                "reason": reason,
                "at": _now(),
                "statement_hash": statement_hash,
                "notice_type": notice_type,
            }
        )

    @storage_errors
    @_writes
    def record_receipt(self, receipt: ReceiptRecord) -> bool:
        """Store a receipt; False if it was already stored."""
        key = (receipt.msg_id, receipt.recipient, receipt.status)
        if key in self._receipts:
            return False
        self._append({"type": "receipt", **receipt.__dict__})
        return True

    @storage_errors
    @_reads
    def status(self, notice_id: str) -> list[RecipientStatus]:
        """Per recipient: messages sent for ``notice_id`` and their receipts."""
        sent = sorted(
            (
                r["msg_id"],
                r["recipient"],
                r["kind"],
                r["status"],
                r["reason"],
                r["at"],
                r.get("statement_hash"),
                r.get("notice_type"),
                r.get("deadline"),
            )
            for r in self._sent.values()
            if r["notice_id"] == notice_id
        )
        receipts = [
            (r["msg_id"], r["recipient"], r["status"], r["reason"], r["at"])
            for r in self._receipts.values()
            if r["notice_id"] == notice_id
        ]
        return status_rows(sorted(sent, key=lambda row: row[5]), receipts)

    @storage_errors
    @_reads
    def notices(self) -> list[NoticeRow]:
        """Current notices without their views, newest first."""
        rows = [
            NoticeRow(
                notice_id=n["notice_id"],
                sender=n["sender"],
                notice_type=n["notice_type"],
                version=n["version"],
                status=n["status"],
                state=n.get("state", _STATE_OF_STATUS.get(n["status"], NoticeState.ACTIONABLE)),
                state_reason=n.get("state_reason"),
                updated_at=n["updated_at"],
                handling=codes[0],
                source_reliability=codes[1],
                information_accuracy=codes[2],
            )
            for n in self._notices.values()
            for codes in (header_codes(n.get("view")),)
        ]
        return sorted(rows, key=lambda r: r["updated_at"], reverse=True)

    @storage_errors
    @_writes
    def notice(self, notice_id: str, access: Access) -> NoticeRecord | None:
        """One notice with its view and withheld manifest; the read is appended as a
        ``consultation`` audit entry (``access``: who and why)."""
        if not isinstance(access, Access):
            msg = "reading a notice needs an Access(operator, purpose)"
            raise TypeError(msg)
        record = self._notice(notice_id)
        if record is not None:
            event = consultation_event(
                access, record["notice_id"], record["msg_id"], record["sender"],
                record["notice_type"],
            )  # fmt: skip
            self._append(audit=[event])
        return record

    @storage_errors
    @_writes
    def subject_lookup(
        self, family_name: str, date_of_birth: str | None, access: Access
    ) -> list[SubjectHit]:
        """The notices whose disclosed person may be the one asked about, ids and states only,
        oldest first; the lookup is appended as consultation entries (``access``)."""
        if not isinstance(access, Access):
            msg = "a subject lookup needs an Access(operator, purpose)"
            raise TypeError(msg)
        found = sorted(
            (
                n
                for n in self._notices.values()
                if n.get("view") is not None
                and subject_matches(n["view"], family_name, date_of_birth)
            ),
            key=lambda n: (n["updated_at"], n["sender"], n["notice_id"]),
        )
        hits = [
            SubjectHit(
                notice_id=n["notice_id"],
                sender=n["sender"],
                notice_type=n["notice_type"],
                version=n["version"],
                state=n.get("state", _STATE_OF_STATUS.get(n["status"], NoticeState.ACTIONABLE)),
                state_reason=n.get("state_reason"),
                updated_at=n["updated_at"],
                handling=header_codes(n["view"])[0],
            )
            for n in found
        ]
        self._append(audit=lookup_events(access, hits))
        return hits

    def _notice(self, notice_id: str) -> NoticeRecord | None:
        matches = [n for n in self._notices.values() if n["notice_id"] == notice_id]
        if not matches:
            return None
        latest = max(matches, key=lambda n: n["updated_at"])
        # a notice record (see apply) without its "type" and bookkeeping: the keys of
        # NoticeRecord, in the order the file holds them
        hidden = ("type", "statement_hash", "review", "retain_until", "expiry_receipt")
        record = {k: v for k, v in latest.items() if k not in hidden}
        record.setdefault("state", _STATE_OF_STATUS.get(latest["status"], NoticeState.ACTIONABLE))
        record.setdefault("state_reason", None)
        flags = self._flags.get((latest["sender"], latest["msg_id"]))
        record["flags"] = [] if flags is None else flags["flags"]
        return cast(NoticeRecord, record)

    # --- responses (answers to a notice) -------------------------------------------------

    @staticmethod
    def _response_record(response: ResponseRecord) -> dict[str, Any]:
        """The line of a response sent or received."""
        return {
            "type": "response",
            **response.to_json(),
            "stored_at": _now(),
        }

    @storage_errors
    @_writes
    def record_response(self, response: ResponseRecord) -> None:
        """Keep a response this bureau sent (in the open batch's fsync, or alone)."""
        if (response.by, response.msg_id) not in self._responses:
            self._append(self._response_record(response))

    @storage_errors
    @_reads
    def responses(self, notice_id: str) -> list[ResponseRecord]:
        """Every response sent or received about ``notice_id``, oldest first."""
        found = sorted(
            (r for r in self._responses.values() if r["notice_id"] == notice_id),
            key=lambda r: (r["at"], r["msg_id"]),
        )
        return [
            ResponseRecord(
                direction=r["direction"],
                msg_id=r["msg_id"],
                notice_id=r["notice_id"],
                notice_type=r["notice_type"],
                issuer=r["issuer"],
                by=r["by"],
                kind=r["kind"],
                at=r["at"],
                note=r.get("note"),
                attachments=tuple(r.get("attachments") or ()),
                in_reply_to=r.get("in_reply_to"),
                to=tuple(r.get("to") or ()),
            )
            for r in found
        ]

    @storage_errors
    @_reads
    def held_notice(self, notice_id: str, sender: str | None = None) -> HeldNotice | None:
        """The stored notice as a responder needs it (no view, no consultation entry)."""
        matches = [
            n
            for n in self._notices.values()
            if n["notice_id"] == notice_id and (sender is None or n["sender"] == sender)
        ]
        if not matches:
            return None
        n = max(matches, key=lambda n: n["updated_at"])
        derived = self._compute(n["sender"], notice_id)
        statement = self._statements.get((n["sender"], n["msg_id"]))
        return HeldNotice(
            sender=n["sender"],
            notice_id=notice_id,
            notice_type=n["notice_type"],
            state=derived.state if derived is not None else n.get("state", NoticeState.ACTIONABLE),
            msg_id=n["msg_id"],
            audience=tuple(statement.get("audience") or ()) if statement else (),
            shared_with=shared_with_of(n.get("view")),
        )

    # --- audit log ------------------------------------------------------------------------

    @storage_errors
    @_writes
    def record(self, event: AuditEvent) -> None:
        """Append an audit entry (in the open batch's write, or alone)."""
        self._append(audit=[event])

    @storage_errors
    @_writes
    def record_quarantine(
        self, reason: str, at: Position, package: VerifiedPackage | None = None
    ) -> None:
        """The ``quarantine`` entry of the record read at ``at`` (once per position)."""
        source = f"{at.topic}:{at.partition}:{at.offset}"
        if source in self._sources:
            return
        self._append(audit=[quarantine_event(reason, package)], source=source)

    @storage_errors
    @_reads
    def audit_entries(self, since: str | None = None, until: str | None = None) -> list[AuditEntry]:
        """The audit log in seq order; ``since`` / ``until`` bound ``at`` (from, before)."""
        return [
            entry_from_json(r)
            for r in sorted(self._audit, key=lambda r: int(r["seq"]))
            if (since is None or r["at"] >= since) and (until is None or r["at"] < until)
        ]

    @storage_errors
    @_reads
    def checkpoints(self) -> list[Checkpoint]:
        """The signed checkpoints of the audit log, oldest first."""
        keys = ("bureau", "count", "head", "at", "kid", "signature")
        found = [Checkpoint(*(r[k] for k in keys)) for r in self._checkpoints]
        return sorted(found, key=lambda c: c.count)

    @storage_errors
    @_writes
    def checkpoint(self, sign: Callable[[int, str], Checkpoint]) -> Checkpoint | None:
        """Sign the chain's head and append the checkpoint; ``None`` when the last one already
        covers every entry (or there is none)."""
        count, head = self._head
        if count == 0 or any(int(r["count"]) >= count for r in self._checkpoints):
            return None
        cp = sign(count, head)
        self._append({"type": "checkpoint", **checkpoint_json(cp)})
        return cp

    # --- retention and proven erasure (issue 18, part B) ----------------------------------

    def _origin(self, rec: dict[str, Any]) -> str:
        return str(rec.get("origin") or rec["msg_id"])

    def _confirmed(self, rec: dict[str, Any]) -> bool:
        """A ``purged`` receipt from the row's recipient for any message of its order."""
        origin = self._origin(rec)
        recipient = rec["recipient"]
        return any(
            r["recipient"] == recipient
            and r["status"] == ReceiptStatus.PURGED
            and (sent := self._sent.get((r["msg_id"], recipient))) is not None
            and self._origin(sent) == origin
            for r in self._receipts.values()
        )

    def _unconfirmed(self, rec: dict[str, Any]) -> bool:
        return (
            rec.get("deadline") is not None
            and rec["status"] == SendStatus.SENT
            and not self._confirmed(rec)
        )

    def _overdue_records(self, now: datetime) -> list[dict[str, Any]]:
        at = stamp(now)
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for rec in self._sent.values():
            if rec.get("deadline") is None or rec["status"] != SendStatus.SENT:
                continue
            key = (self._origin(rec), rec["recipient"])
            other = latest.get(key)
            if other is None or (rec["at"], rec["msg_id"]) > (other["at"], other["msg_id"]):
                latest[key] = rec
        found = [r for r in latest.values() if r["deadline"] < at and not self._confirmed(r)]
        return sorted(found, key=lambda r: (r["deadline"], r["notice_id"], r["recipient"]))

    @storage_errors
    @_reads
    def overdue(self, now: datetime) -> list[OverdueRow]:
        """Purging messages sent whose recipient has not confirmed them with a signed ``purged``
        receipt (for the order or any resend) by their deadline (see :class:`SqliteSink`)."""
        return [
            OverdueRow(
                notice_id=r["notice_id"],
                notice_type=r.get("notice_type"),
                recipient=r["recipient"],
                msg_id=r["msg_id"],
                kind=r["kind"],
                sent_at=r["at"],
                deadline=r["deadline"],
            )
            for r in self._overdue_records(now)
        ]

    @storage_errors
    @_reads
    def pending_orders(self, now: datetime) -> list[PendingOrder]:
        """The overdue purging messages with what they said (to send them again)."""
        return [
            PendingOrder(
                notice_id=r["notice_id"],
                notice_type=r.get("notice_type"),
                recipient=r["recipient"],
                msg_id=r["msg_id"],
                kind=r["kind"],
                deadline=r["deadline"],
                origin=self._origin(r),
                body=r.get("body") or {},
            )
            for r in self._overdue_records(now)
        ]

    @storage_errors
    @_writes
    def sweep(self, now: datetime) -> list[Expired]:
        """Purge every notice whose ``retain_until`` has passed like a cancel (``expired``
        status -> ``purged``, reason ``retention-expired``) and remove this bureau's bookkeeping
        of sent notices past their ``retain_until`` (except unconfirmed purging messages); the
        file is rewritten without them."""
        at = stamp(now)
        records: list[dict[str, Any]] = []
        for key, n in sorted(self._notices.items(), key=lambda kv: str(kv[1].get("retain_until"))):
            until = n.get("retain_until")
            if until is None or until > at:
                continue
            if n["status"] not in (NoticeStatus.ACTIVE, NoticeStatus.SUSPENDED):
                continue
            if n.get("state") in PURGED_STATES:
                continue
            self._notices[key] = n | {"status": NoticeStatus.EXPIRED, "updated_at": at}
            derived = self._derived(*key)
            assert derived is not None
            self._notices[key] = derived[0]
            records.append(derived[0])
        earliest: dict[str, str] = {}
        for rec in self._sent.values():
            until = rec.get("retain_until")
            if until is not None and (
                rec["notice_id"] not in earliest or until < earliest[rec["notice_id"]]
            ):
                earliest[rec["notice_id"]] = until
        gone = [
            key
            for key, rec in self._sent.items()
            if rec["notice_id"] in earliest
            and earliest[rec["notice_id"]] <= at
            and not self._unconfirmed(rec)
        ]
        for sent_key in gone:
            del self._sent[sent_key]
        orphans = [k for k in self._receipts if (k[0], k[1]) not in self._sent]
        for receipt_key in orphans:
            del self._receipts[receipt_key]
        # the responses about a notice go with the last of this bureau's records of it
        kept = {rec["notice_id"] for rec in self._sent.values()}
        answered = [
            key
            for key, r in self._responses.items()
            if r["notice_id"] not in kept and (r["issuer"], r["notice_id"]) not in self._notices
        ]
        for response_key in answered:
            del self._responses[response_key]
        if records or gone or orphans or answered:
            self._append(*records)
            self._rewrite()
        owed = [
            n
            for n in self._notices.values()
            if n["status"] == NoticeStatus.EXPIRED and n.get("expiry_receipt") is None
        ]
        return [
            Expired(n["sender"], n["notice_id"], n["notice_type"], n["msg_id"], n["retain_until"])
            for n in sorted(owed, key=lambda n: (n["retain_until"], n["notice_id"]))
        ]

    @storage_errors
    @_writes
    def answered(self, expired: list[Expired], at: datetime) -> None:
        """The ``retention-expired`` receipts of ``expired`` were acknowledged at ``at``."""
        records = []
        for e in expired:
            n = self._notices.get((e.sender, e.notice_id))
            if n is not None and n["status"] == NoticeStatus.EXPIRED:
                records.append(n | {"expiry_receipt": stamp(at)})
        if records:
            self._append(*records)

    @storage_errors
    @_reads
    def expiring(self, now: datetime, within: timedelta) -> list[Expiring]:
        """Stored notices still holding data whose ``retain_until`` is at or before ``now``
        + ``within``, soonest first."""
        limit = stamp(now + within)
        found = [
            Expiring(n["sender"], n["notice_id"], n["notice_type"], n["retain_until"])
            for n in self._notices.values()
            if n.get("retain_until") is not None
            and n["retain_until"] <= limit
            and (n.get("view") is not None or n.get("withheld") is not None)
        ]
        return sorted(found, key=lambda e: (e.retain_until, e.notice_id))
