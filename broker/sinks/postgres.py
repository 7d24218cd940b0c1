"""PostgreSQL sink: the store of a bureau that runs several daemon replicas, or whose national
systems read PostgreSQL (docs/storage.md).

The SQL logic is the SQLite store's (:class:`~broker.sinks.sql.SqlSink`); what is PostgreSQL's:

* the connection (psycopg 3, synchronous: the :class:`~broker.sinks.base.Sink` contract is
  synchronous; the daemon runs the commit on a worker thread), ``?`` placeholders turned into
  psycopg's, reconnected at the next :meth:`~broker.sinks.sql.SqlSink.begin` after it broke;
* the locks between replicas sharing the database: the replay guard waits for another replica's
  transaction about the same message (:data:`LOCK_MESSAGE`), the audit chain's head is read and
  extended just before the commit under :data:`LOCK_AUDIT`, the schema is created under
  :data:`LOCK_SCHEMA`; part R's replica lock is :data:`LOCK_REPLICA`;
* the schema, versioned by Alembic (:mod:`broker.sinks.migrations`): an empty database gets the
  whole schema at its first open, an older one is refused until ``nbx store migrate``;
* after a purge, ``VACUUM`` of the tables that held personal data and a ``CHECKPOINT``;
* failures as :class:`~broker.errors.SinkError` reasons (:func:`pg_reason`), and one line per
  failure to open (:func:`open_error`).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from broker.errors import ConfigError, SinkError
from broker.sinks.audit import AuditEvent
from broker.sinks.base import register_driver_errors
from broker.sinks.retention import default_limit
from broker.sinks.sql import SqlSink
from broker.vocab import StoreFailure

if TYPE_CHECKING:
    from broker.sinks.retention import RetentionLimit

#: advisory lock classes (the first key of ``pg_advisory_xact_lock(class, key)``): a message of
#: a sender (key ``hashtext(sender || '/' || msg_id)``), held to the end of the transaction
LOCK_MESSAGE = 1
#: the audit chain (key 0), held from reading its head to the end of the transaction
LOCK_AUDIT = 2
#: a daemon replica of a bureau (key ``hashtext(bureau || '/' || replica)``; a session lock on
#: a connection of its own, held for the daemon's life: broker/node/replicas.py)
LOCK_REPLICA = 3
#: creating or upgrading the schema (key 0)
LOCK_SCHEMA = 4
#: the Alembic revision this release reads and writes (broker/sinks/migrations/versions)
HEAD_REVISION = "0002"
#: the tables that hold personal data: vacuumed after a purge
PERSONAL_TABLES = ("notices", "flags", "responses", "held", "sent")
#: seconds to wait for the server when connecting
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Target:
    """Where a ``postgresql://USER@HOST:PORT/DATABASE`` url points, and where its password
    comes from (``password_env``; ``None``: libpq's own PGPASSWORD or ~/.pgpass)."""

    user: str | None
    host: str
    port: int
    database: str
    password_env: str | None = None

    @property
    def where(self) -> str:
        """``HOST:PORT`` as the error lines show it."""
        return f"{self.host}:{self.port}"

    def connect_args(self) -> dict[str, Any]:
        """The keyword arguments of :func:`psycopg.connect` (the password read from the
        environment now, never kept)."""
        args: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "nbx",
        }
        if self.user:
            args["user"] = self.user
        if self.password_env is not None:
            password = os.environ.get(self.password_env)
            if password is None:
                msg = (
                    "the store cannot be opened (access-denied): the environment variable "
                    f"${self.password_env} ([sink] password_env) is not set"
                )
                raise SinkError(msg, reason=StoreFailure.ACCESS_DENIED)
            args["password"] = password
        return args


def parse_url(url: str, password_env: str | None = None) -> Target:
    """The target of a ``postgresql://USER@HOST[:PORT]/DATABASE`` url; a malformed url (or one
    holding a password) is a :class:`~broker.errors.ConfigError` naming it without the
    password."""
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        parts, port = None, 0
    shown = url if parts is None or parts.password is None else _without_password(url)
    if parts is None or parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        msg = f"sink url {shown!r}: expected postgresql://USER@HOST:PORT/DATABASE"
        raise ConfigError(msg)
    if parts.password is not None:
        msg = (
            f"sink url {shown!r}: a password does not belong in the url; put it in the "
            "environment variable named by [sink] password_env"
        )
        raise ConfigError(msg)
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database or parts.query or parts.fragment:
        msg = f"sink url {shown!r}: expected postgresql://USER@HOST:PORT/DATABASE"
        raise ConfigError(msg)
    user = unquote(parts.username) if parts.username else None
    return Target(user, parts.hostname, port, database, password_env)


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def open_error(exc: psycopg.Error, target: Target) -> SinkError:
    """The one line said when the store cannot be opened because connecting failed."""
    text = str(exc)
    detail = text.split("failed: ", 1)[-1].split("\n", 1)[0].strip()
    detail = re.sub(r"^FATAL:\s*", "", detail)
    lowered = detail.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        source = (
            f"password from ${target.password_env}"
            if target.password_env is not None
            else "password from PGPASSWORD or ~/.pgpass"
        )
        msg = (
            f"the store cannot be opened (access-denied): {detail} at "
            f"{target.where}/{target.database} ({source})"
        )
        return SinkError(msg, reason=StoreFailure.ACCESS_DENIED)
    if "does not exist" in lowered and "database" in lowered:
        msg = (
            f'the store cannot be opened (missing): database "{target.database}" does not exist '
            f"at {target.where}; create it or fix [sink] url"
        )
        return SinkError(msg, reason=StoreFailure.MISSING)
    if any(
        word in lowered
        for word in ("authentication", "permission denied", "role", "pg_hba", "not permitted")
    ):
        msg = f"the store cannot be opened (access-denied): {detail} at {target.where}"
        return SinkError(msg, reason=StoreFailure.ACCESS_DENIED)
    if "connection refused" in lowered:
        why = "connection refused"
    elif "timeout" in lowered or "timed out" in lowered:
        why = "no answer in time"
    elif "the database system is" in lowered:  # starting up / shutting down / in recovery
        why = detail
    else:
        why = detail or type(exc).__name__
    msg = f"the store cannot be opened (unreachable): no PostgreSQL at {target.where} ({why})"
    return SinkError(msg, reason=StoreFailure.UNREACHABLE)


def pg_reason(exc: Exception) -> StoreFailure:
    """Why a PostgreSQL operation failed (:class:`~broker.vocab.StoreFailure`): the connection
    refused, lost or closed by a server shutting down -> ``unreachable`` (transient); a deadlock
    or a serialization failure between replicas -> ``conflict`` (transient); disk full,
    read-only, no privilege -> their reasons; anything else -> ``storage-error``."""
    if isinstance(
        exc,
        pg_errors.DeadlockDetected | pg_errors.SerializationFailure | pg_errors.LockNotAvailable,
    ):
        return StoreFailure.CONFLICT
    if isinstance(exc, pg_errors.DiskFull | pg_errors.OutOfMemory):
        return StoreFailure.DISK_FULL
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return StoreFailure.READ_ONLY
    if isinstance(
        exc, pg_errors.InsufficientPrivilege | pg_errors.InvalidAuthorizationSpecification
    ):
        return StoreFailure.ACCESS_DENIED
    if isinstance(
        exc,
        pg_errors.AdminShutdown
        | pg_errors.CrashShutdown
        | pg_errors.CannotConnectNow
        | pg_errors.ConnectionException
        | pg_errors.IdleSessionTimeout,
    ):
        return StoreFailure.UNREACHABLE
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and (
        getattr(exc, "sqlstate", None) is None
    ):
        return StoreFailure.UNREACHABLE  # the connection is gone (no server answer)
    return StoreFailure.STORAGE_ERROR


register_driver_errors(psycopg.Error, pg_reason)


def _connect(target: Target, *, durable: bool = True) -> psycopg.Connection[Any]:
    """A new autocommit connection (transactions are begun explicitly); a failure is the one
    line of :func:`open_error`."""
    args = target.connect_args()
    try:
        conn = psycopg.connect(autocommit=True, **args)
    except psycopg.Error as exc:
        raise open_error(exc, target) from None
    if not durable:  # the publisher's bookkeeping: a lost commit is recorded again
        conn.execute("SET synchronous_commit = off")
    return conn


class _Connection:
    """The psycopg connection as :class:`~broker.sinks.sql.SqlSink` uses it (``execute`` with
    ``?`` placeholders, ``executemany``, ``in_transaction``); a broken connection is replaced
    by a new one at the next statement outside a transaction."""

    def __init__(self, target: Target, *, durable: bool) -> None:
        self.target = target
        self.durable = durable
        self._conn = _connect(target, durable=durable)
        self._texts: dict[str, str] = {}
        self._guard = threading.Lock()

    def _sql(self, text: str) -> str:
        sql = self._texts.get(text)
        if sql is None:
            sql = text.replace("?", "%s")
            self._texts[text] = sql
        return sql

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The live connection, reconnected if it broke while no transaction was open."""
        conn = self._conn
        if (conn.closed or conn.broken) and not self.in_transaction:
            with self._guard:
                if self._conn.closed or self._conn.broken:
                    self._conn.close()
                    self._conn = _connect(self.target, durable=self.durable)
        return self._conn

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (never on a broken connection: the server rolled it
        back when the connection went)."""
        conn = self._conn
        if conn.closed or conn.broken:
            return False
        return conn.info.transaction_status in (
            TransactionStatus.INTRANS,
            TransactionStatus.INERROR,
            TransactionStatus.ACTIVE,
        )

    def execute(self, text: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        """Run one statement (``?`` placeholders)."""
        if text in ("ROLLBACK", "COMMIT") or text.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            return self._conn.execute(text)
        return self.connection.execute(self._sql(text), params or None)

    def executemany(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows`` (psycopg pipelines them: one round trip)."""
        with self.connection.cursor() as cur:
            cur.executemany(self._sql(text), rows)

    def begin(self) -> None:
        """Open a transaction, on a new connection if the last one broke."""
        self.connection.execute("BEGIN")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def schema_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The database's Alembic revision (``None``: no NBX schema yet)."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except pg_errors.UndefinedTable:
        return None
    return None if row is None else str(row[0])


def _revision_order() -> list[str]:
    """Every revision this release knows, oldest first (read from the scripts' names)."""
    from broker.sinks.migrations import LOCATION

    found = sorted(p.stem for p in (LOCATION / "versions").glob("r[0-9]*.py"))
    return [name[1:].split("_", 1)[0] for name in found]


def upgrade(target: Target, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the database to ``revision`` with Alembic, under :data:`LOCK_SCHEMA` (two replicas
    starting together: the second waits and finds the work done). Returns the revision before
    and after. Imports Alembic and SQLAlchemy: never on the daemon's hot path."""
    import sqlalchemy
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.pool import NullPool

    from broker.sinks.migrations import LOCATION

    args = target.connect_args()

    def creator() -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(**args)
        except psycopg.Error as exc:
            raise open_error(exc, target) from None

    engine = sqlalchemy.create_engine("postgresql+psycopg://", creator=creator, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_SCHEMA}, 0)")
            before = _sa_revision(conn)
            config = Config()
            config.set_main_option("script_location", str(LOCATION))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            after = _sa_revision(conn)
    finally:
        engine.dispose()
    return before, after


def _sa_revision(conn: Any) -> str | None:
    import sqlalchemy

    exists = conn.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar()
    if exists is None:
        return None
    value = conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def check_schema(conn: psycopg.Connection[Any], target: Target) -> str | None:
    """The database's revision if it is this release's; a :class:`SinkError`
    (``schema-version``) if it is older or newer; ``None`` if there is no schema yet."""
    revision = schema_revision(conn)
    if revision is None or revision == HEAD_REVISION:
        return revision
    known = _revision_order()
    if revision in known and known.index(revision) < known.index(HEAD_REVISION):
        msg = (
            f"the store cannot be opened (schema-version): database {target.database} is at "
            f"schema revision {revision}, this release needs {HEAD_REVISION}: run nbx store "
            "migrate --config <this node's config>"
        )
    else:
        msg = (
            f"the store cannot be opened (schema-version): database {target.database} is at "
            f"schema revision {revision}, newer than this release ({HEAD_REVISION}): upgrade nbx"
        )
    raise SinkError(msg, reason=StoreFailure.SCHEMA_VERSION)


class PostgresSink(SqlSink):
    """A bureau's store in a PostgreSQL database, which several daemon replicas (and the CLI,
    and the bureau's own systems) may share."""

    _VIEW_CODES = (
        "(view::jsonb) #> '{handling,code}', (view::jsonb) -> 'source_reliability', "
        "(view::jsonb) -> 'information_accuracy'"
    )
    _DELIVERY_ORDER = "seq"

    def __init__(
        self,
        url: str,
        *,
        password_env: str | None = None,
        durable: bool = True,
        retention: RetentionLimit | None = None,
    ) -> None:
        """Open the store at ``url`` (``postgresql://USER@HOST:PORT/DATABASE``; the password
        from the environment variable ``password_env``). An empty database gets the schema;
        a database at another revision is refused (``schema-version``). ``durable=False``
        (the publisher's bookkeeping) commits without waiting for the WAL flush."""
        self.target = parse_url(url, password_env)
        self.url = url
        self.retention = retention or default_limit
        self._db = _Connection(self.target, durable=durable)
        try:
            if check_schema(self._db.connection, self.target) is None:
                upgrade(self.target)
                check_schema(self._db.connection, self.target)
        except BaseException:
            self._db.close()
            raise
        self._init_state()

    def _begin(self) -> None:
        self._db.begin()

    def _lock_message(self, sender: str, msg_id: str) -> None:
        self._db.execute(
            f"SELECT pg_advisory_xact_lock({LOCK_MESSAGE}, hashtext(?))",
            (f"{sender}/{msg_id}",),
        )

    def _lock_audit(self) -> None:
        self._db.execute(f"SELECT pg_advisory_xact_lock({LOCK_AUDIT}, 0)")

    def _audit(self, event: AuditEvent, now: str, source: str | None = None) -> None:
        """Hold the entry back until just before the commit (:meth:`_before_commit`): the
        chain's head is read under :data:`LOCK_AUDIT`, which replicas take one at a time, so
        it is taken as late as possible."""
        self._pending.append((event, now, source))

    def _before_commit(self) -> None:
        """Chain the held-back audit entries (a quarantine entry of a position another replica
        already recorded is dropped, as :meth:`record_quarantine` drops its own)."""
        pending, self._pending = self._pending, []
        for event, now, source in pending:
            if (
                source is not None
                and self._db.execute("SELECT 1 FROM audit WHERE source = ?", (source,)).fetchone()
            ):
                continue
            SqlSink._audit(self, event, now, source)

    def _after_purge(self) -> None:
        """VACUUM the tables that held the purged data (their dead row versions are freed and
        their index entries removed) and CHECKPOINT; see docs/storage.md "Erasure" for what
        this does not reach. Either failing leaves the commit as it is."""
        with self._lock:
            try:
                self._db.execute("VACUUM " + ", ".join(PERSONAL_TABLES))
                self._db.execute("CHECKPOINT")
            except (pg_errors.InsufficientPrivilege, pg_errors.ObjectInUse):
                pass  # CHECKPOINT needs pg_checkpoint: the next automatic one does it

    def compact(self) -> None:
        """Rewrite the tables that hold personal data (``VACUUM FULL``) and CHECKPOINT: the
        bytes of purged rows, which a plain VACUUM frees but does not overwrite, leave the data
        files (``nbx store compact``; it locks each table while it is rewritten)."""
        with self._lock:
            self._db.execute("VACUUM FULL " + ", ".join(PERSONAL_TABLES))
            # without pg_checkpoint: the next automatic checkpoint removes the old files
            with contextlib.suppress(pg_errors.InsufficientPrivilege):
                self._db.execute("CHECKPOINT")

    def revision(self) -> str | None:
        """The database's schema revision."""
        return schema_revision(self._db.connection)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The store's connection under its lock (tests and ``nbx store status``)."""
        with self._lock:
            yield self._db.connection


def open_postgres(
    url: str,
    *,
    password_env: str | None = None,
    durable: bool = True,
    retention: RetentionLimit | None = None,
) -> PostgresSink:
    """Open the PostgreSQL store at ``url`` (see :class:`PostgresSink`)."""
    return PostgresSink(url, password_env=password_env, durable=durable, retention=retention)
