"""What only the PostgreSQL store has: replicas sharing one database (the replay guard and the
audit chain under advisory locks), the schema's revisions (Alembic), the one-line errors at open,
failures mapped to store reasons, and a server that goes away and comes back."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import errors as pg_errors

from broker import devpg
from broker.errors import ConfigError, SinkError
from broker.sinks import Applied, Position
from broker.sinks.audit import verify
from broker.sinks.postgres import (
    HEAD_REVISION,
    LOCK_AUDIT,
    LOCK_MESSAGE,
    PERSONAL_TABLES,
    PostgresSink,
    parse_url,
    pg_reason,
    revision_order,
    upgrade,
)
from broker.vocab import StoreFailure
from tests.conftest import PG_PASSWORD_ENV
from tests.sinks.test_sinks import TOPIC, package, view


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Wait for ``condition`` (polled), failing with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def waiting_for(server: devpg.DevPostgres, lock_class: int) -> int:
    """How many sessions wait for an advisory lock of ``lock_class``."""
    with server.connect() as db:  # type: ignore[attr-defined]
        row = db.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = %s",
            (lock_class,),
        ).fetchone()
    return int(row[0])


@pytest.fixture
def replicas(pg_store_url: str) -> Iterator[tuple[PostgresSink, PostgresSink]]:
    """Two stores on one database: two replicas of one bureau."""
    a = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    b = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    yield a, b
    a.close()
    b.close()


def test_two_replicas_handling_one_record_store_it_once(
    replicas: tuple[PostgresSink, PostgresSink], postgres_server: devpg.DevPostgres
) -> None:
    """A record handled by two replicas at once (a partition moved mid-batch): the second waits
    for the first one's transaction, then finds the message at the same position: a
    redelivery, answered again, stored once."""
    a, b = replicas
    p = package()
    at = Position(TOPIC, 0, 7)
    a.begin()
    assert a.apply(p, view(p), at) is Applied.DELIVERED
    outcome: list[Applied] = []

    def second() -> None:
        with b.batch():
            outcome.append(b.apply(p, view(p), at))

    thread = threading.Thread(target=second)
    thread.start()
    wait_until(lambda: waiting_for(postgres_server, LOCK_MESSAGE) == 1, "b to wait for a")
    a.end(commit=True)
    thread.join(30)
    assert outcome == [Applied.REDELIVERY]
    assert len(a.notices()) == 1
    assert [d["msg_id"] for d in a.delivery_log()] == [p.msg_id]
    # at another position it is a replay, whichever replica sees it
    assert b.apply(p, view(p), Position(TOPIC, 1, 3)) is Applied.REPLAY


def test_two_replicas_extend_one_audit_chain(
    replicas: tuple[PostgresSink, PostgresSink], postgres_server: devpg.DevPostgres
) -> None:
    """Two replicas' batches overlap; each chains its entries just before its commit, under
    the audit lock: one chain, seq 1..n, every link valid, whoever commits first."""
    a, b = replicas
    first = [package(notice_id=f"IT-A{i}") for i in range(3)]
    second = [package(notice_id=f"IT-B{i}") for i in range(3)]
    a.begin()
    for i, p in enumerate(first):
        a.apply(p, view(p), Position(TOPIC, 0, i))
    b.begin()
    for i, p in enumerate(second):
        b.apply(p, view(p), Position(TOPIC, 1, i))
    # neither holds the audit lock yet: both batches ran in parallel up to here
    assert waiting_for(postgres_server, LOCK_AUDIT) == 0
    b.end(commit=True)
    a.end(commit=True)
    entries = a.audit_entries()
    assert [e.seq for e in entries] == list(range(1, 7))
    assert [e.notice_id for e in entries] == [p.notice_id for p in second + first]
    assert verify(entries, [], lambda cp: None) is None


def test_a_rolled_back_batch_leaves_no_audit_entry(pg_store_url: str) -> None:
    """Entries held back for the commit go with a rollback."""
    sink = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    try:
        p = package()
        sink.begin()
        sink.apply(p, view(p), Position(TOPIC, 0, 1))
        sink.end(commit=False)
        assert sink.audit_entries() == []
        assert sink.seen(p.sender, p.msg_id) is None
        with sink.batch():
            sink.apply(p, view(p), Position(TOPIC, 0, 1))
        assert [e.seq for e in sink.audit_entries()] == [1]
    finally:
        sink.close()


def test_the_audit_log_refuses_updates_deletes_and_truncate(pg_store_url: str) -> None:
    """The audit table is append-only in the database itself."""
    sink = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    try:
        p = package()
        with sink.batch():
            sink.apply(p, view(p), Position(TOPIC, 0, 1))
        for statement in ("UPDATE audit SET reason = 'x'", "DELETE FROM audit", "TRUNCATE audit"):
            with (
                pytest.raises(psycopg.errors.RaiseException, match="append-only"),
                sink.connection() as db,
            ):
                db.execute(statement)
        assert len(sink.audit_entries()) == 1
    finally:
        sink.close()


def test_two_replicas_opening_an_empty_database_create_the_schema_once(pg_url: str) -> None:
    """Started together on an empty database, both replicas open it: the first creates the
    schema under the schema lock, the second finds it done."""
    opened: list[str | None] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            sink = PostgresSink(pg_url, password_env=PG_PASSWORD_ENV)
            opened.append(sink.revision())
            sink.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert opened == [HEAD_REVISION, HEAD_REVISION]


# --- schema revisions ---------------------------------------------------------------------


def test_the_revisions_end_at_the_release_s_head() -> None:
    """The scripts under broker/sinks/migrations/versions chain 0001 -> ... -> HEAD_REVISION."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from broker.sinks.migrations import LOCATION

    config = Config()
    config.set_main_option("script_location", str(LOCATION))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [HEAD_REVISION]
    assert revision_order() == ["0001", "0002"]
    assert revision_order()[-1] == HEAD_REVISION


def test_an_older_database_is_refused_then_migrated_keeping_its_data(pg_url: str) -> None:
    """A database at revision 0001 (written by an older release, with a notice in it) is
    refused with one line naming the command; ``upgrade`` brings it to the head (the
    ``responses`` table appears) and the notice is still there."""
    target = parse_url(pg_url, PG_PASSWORD_ENV)
    assert upgrade(target, "0001") == (None, "0001")
    p = package()
    with psycopg.connect(**target.connect_args(), autocommit=True) as db:
        db.execute(
            "INSERT INTO notices (notice_id, sender, notice_type, version, status, view, "
            "policy, msg_id, updated_at) VALUES (%s, 'IT', 'red', 1, 'active', '{}', 'p', "
            "%s, '2026-01-01T00:00:00.000+00:00')",
            (p.notice_id, p.msg_id),
        )
    database = pg_url.rsplit("/", 1)[1]
    with pytest.raises(SinkError) as refused:
        PostgresSink(pg_url, password_env=PG_PASSWORD_ENV)
    assert refused.value.reason is StoreFailure.SCHEMA_VERSION
    assert str(refused.value) == (
        f"the store cannot be opened (schema-version): database {database} is at schema "
        f"revision 0001, this release needs {HEAD_REVISION}: run nbx store migrate --config "
        "<this node's config>"
    )
    assert upgrade(target) == ("0001", HEAD_REVISION)
    assert upgrade(target) == (HEAD_REVISION, HEAD_REVISION)  # again: nothing to do
    sink = PostgresSink(pg_url, password_env=PG_PASSWORD_ENV)
    try:
        assert [n["notice_id"] for n in sink.notices()] == [p.notice_id]
        assert sink.responses(p.notice_id) == []
    finally:
        sink.close()


def test_a_newer_database_is_refused(pg_store_url: str) -> None:
    """A database a newer release upgraded: this one does not touch it."""
    target = parse_url(pg_store_url, PG_PASSWORD_ENV)
    with psycopg.connect(**target.connect_args(), autocommit=True) as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(SinkError) as refused:
        PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    assert refused.value.reason is StoreFailure.SCHEMA_VERSION
    assert str(refused.value) == (
        f"the store cannot be opened (schema-version): database {target.database} is at "
        f"schema revision 0099, newer than this release ({HEAD_REVISION}): upgrade nbx"
    )


# --- errors at open: one line each --------------------------------------------------------


def test_a_wrong_password_is_one_line_without_the_password(
    postgres_server: devpg.DevPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBX_WRONG_PG_PASSWORD", "not-the-password-8841")
    with pytest.raises(SinkError) as refused:
        PostgresSink(postgres_server.url("postgres"), password_env="NBX_WRONG_PG_PASSWORD")
    assert refused.value.reason is StoreFailure.ACCESS_DENIED
    assert str(refused.value) == (
        "the store cannot be opened (access-denied): password authentication failed for user "
        f'"nbx" at 127.0.0.1:{postgres_server.port}/postgres (password from '
        "$NBX_WRONG_PG_PASSWORD)"
    )
    assert "8841" not in str(refused.value)


def test_an_unset_password_variable_is_named(
    postgres_server: devpg.DevPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBX_UNSET_PG_PASSWORD", raising=False)
    with pytest.raises(SinkError) as refused:
        PostgresSink(postgres_server.url("postgres"), password_env="NBX_UNSET_PG_PASSWORD")
    assert refused.value.reason is StoreFailure.ACCESS_DENIED
    assert str(refused.value) == (
        "the store cannot be opened (access-denied): the environment variable "
        "$NBX_UNSET_PG_PASSWORD ([sink] password_env) is not set"
    )


def test_a_missing_database_is_one_line(postgres_server: devpg.DevPostgres) -> None:
    with pytest.raises(SinkError) as refused:
        PostgresSink(postgres_server.url("nbx_nowhere"), password_env=PG_PASSWORD_ENV)
    assert refused.value.reason is StoreFailure.MISSING
    assert str(refused.value) == (
        'the store cannot be opened (missing): database "nbx_nowhere" does not exist at '
        f"127.0.0.1:{postgres_server.port}; create it or fix [sink] url"
    )


def test_no_server_is_one_line() -> None:
    port = devpg.free_port()
    with pytest.raises(SinkError) as refused:
        PostgresSink(f"postgresql://nbx@127.0.0.1:{port}/nbx_fr", password_env=PG_PASSWORD_ENV)
    assert refused.value.reason is StoreFailure.UNREACHABLE
    assert str(refused.value) == (
        f"the store cannot be opened (unreachable): no PostgreSQL at 127.0.0.1:{port} "
        "(connection refused)"
    )


@pytest.mark.parametrize(
    ("url", "line"),
    [
        (
            "postgresql://nbx@127.0.0.1:5432/",
            "sink url 'postgresql://nbx@127.0.0.1:5432/': expected "
            "postgresql://USER@HOST:PORT/DATABASE",
        ),
        (
            "postgresql://nbx@127.0.0.1:notaport/db",
            "sink url 'postgresql://nbx@127.0.0.1:notaport/db': expected "
            "postgresql://USER@HOST:PORT/DATABASE",
        ),
        (
            "postgresql://nbx:s3cret@127.0.0.1:5432/db",
            "sink url 'postgresql://nbx:***@127.0.0.1:5432/db': a password does not belong in "
            "the url; put it in the environment variable named by [sink] password_env",
        ),
    ],
)
def test_a_malformed_url_is_a_config_error_without_the_password(url: str, line: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_url(url)
    assert str(refused.value) == line


# --- failures while running -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (pg_errors.DeadlockDetected("deadlock detected"), StoreFailure.CONFLICT),
        (pg_errors.SerializationFailure("could not serialize"), StoreFailure.CONFLICT),
        (pg_errors.AdminShutdown("terminating connection"), StoreFailure.UNREACHABLE),
        (pg_errors.CannotConnectNow("the database system is starting"), StoreFailure.UNREACHABLE),
        (psycopg.OperationalError("consuming input failed"), StoreFailure.UNREACHABLE),
        (pg_errors.DiskFull("could not extend file"), StoreFailure.DISK_FULL),
        (pg_errors.ReadOnlySqlTransaction("read-only"), StoreFailure.READ_ONLY),
        (pg_errors.InsufficientPrivilege("permission denied"), StoreFailure.ACCESS_DENIED),
        (pg_errors.UniqueViolation("duplicate key"), StoreFailure.STORAGE_ERROR),
    ],
)
def test_each_failure_has_its_reason(error: Exception, reason: StoreFailure) -> None:
    assert pg_reason(error) is reason


def test_a_real_deadlock_between_two_replicas_is_a_conflict(
    replicas: tuple[PostgresSink, PostgresSink], postgres_server: devpg.DevPostgres
) -> None:
    """Two replicas' transactions that wait for each other's message: PostgreSQL ends one with
    a deadlock, which the store reports as ``conflict`` (the daemon rolls back and retries);
    rolling back after it raises nothing."""
    a, b = replicas
    a.begin()
    b.begin()
    a._lock_message("IT", "m1")
    b._lock_message("IT", "m2")
    outcome: list[Exception | None] = []

    def lock(sink: PostgresSink, msg_id: str) -> None:
        try:
            sink._lock_message("IT", msg_id)
            outcome.append(None)
        except psycopg.Error as exc:
            outcome.append(exc)

    thread = threading.Thread(target=lock, args=(a, "m2"))
    thread.start()
    wait_until(lambda: waiting_for(postgres_server, LOCK_MESSAGE) == 1, "a to wait for b")
    lock(b, "m1")
    thread.join(30)
    errors = [e for e in outcome if e is not None]
    assert len(errors) == 1
    assert pg_reason(errors[0]) is StoreFailure.CONFLICT
    for sink in (a, b):
        sink.end(commit=False)


def test_a_lost_connection_is_unreachable_until_the_server_answers_again(
    pg_store_url: str, postgres_server: devpg.DevPostgres
) -> None:
    """The server ends the store's session mid-batch (what a restart does to it: PostgreSQL's
    ``AdminShutdown``): every later statement of the batch fails ``unreachable`` (none runs on a
    new connection outside the transaction), so does the commit; rolling back raises nothing else;
    ``begin`` says ``unreachable`` while no server answers and reconnects once one does; the
    message, never committed, is delivered again. (The daemons against a real restart:
    tests/replicas, tests/verify/test_postgres_faults.py.)"""
    sink = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    try:
        p = package()
        sink.begin()
        sink.apply(p, view(p), Position(TOPIC, 0, 1))
        with sink.connection() as db:
            pid = db.info.backend_pid
        with postgres_server.connect() as admin:  # type: ignore[attr-defined]
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(2):  # the loss, then no quiet reconnection in the middle of the batch
            with pytest.raises(SinkError) as lost:
                sink.seen(p.sender, p.msg_id)
            assert lost.value.reason is StoreFailure.UNREACHABLE
        with pytest.raises(SinkError) as lost:
            sink.end(commit=True)
        assert lost.value.reason is StoreFailure.UNREACHABLE
        sink.end(commit=False)  # the daemon's rollback after a failed batch
        there = sink._db.target
        nowhere = devpg.free_port()
        sink._db.target = dataclasses.replace(there, port=nowhere)  # the server is down
        with pytest.raises(SinkError) as down:
            sink.begin()
        assert down.value.reason is StoreFailure.UNREACHABLE
        assert str(down.value) == (
            "the store cannot be opened (unreachable): no PostgreSQL at "
            f"127.0.0.1:{nowhere} (connection refused)"
        )
        sink._db.target = there  # up again
        with sink.batch():
            assert sink.apply(p, view(p), Position(TOPIC, 0, 1)) is Applied.DELIVERED
        assert [e.seq for e in sink.audit_entries()] == [1]
    finally:
        sink.close()


def test_the_publisher_s_connection_does_not_wait_for_the_wal(pg_store_url: str) -> None:
    """``durable=False`` (the publisher's bookkeeping) turns synchronous_commit off for its
    session only; the daemon's connection keeps it on."""
    daemon = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    publisher = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV, durable=False)
    try:
        with daemon.connection() as db:
            assert db.execute("SHOW synchronous_commit").fetchone() == ("on",)
        with publisher.connection() as db:
            assert db.execute("SHOW synchronous_commit").fetchone() == ("off",)
    finally:
        daemon.close()
        publisher.close()


def test_no_password_leaks_into_the_environment_of_the_store(pg_store_url: str) -> None:
    """The sink reads the password when it connects and keeps no copy of it."""
    sink = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    try:
        password = os.environ[PG_PASSWORD_ENV]
        assert password not in repr(vars(sink))
        assert password not in repr(vars(sink._db))
    finally:
        sink.close()


def test_migration_scripts_are_package_data() -> None:
    """The scripts ship inside the package (a wheel includes broker/sinks/migrations)."""
    from broker.sinks.migrations import LOCATION

    assert (LOCATION / "env.py").is_file()
    assert sorted(p.name for p in (LOCATION / "versions").glob("r*.py")) == [
        "r0001_store.py",
        "r0002_responses.py",
    ]


def test_a_quarantined_position_is_recorded_once_by_two_replicas(
    replicas: tuple[PostgresSink, PostgresSink],
) -> None:
    """Both replicas quarantine the same record in overlapping batches (each held its entry
    back until its commit): the audit log gets one entry for the position, and a third try
    adds none."""
    a, b = replicas
    at = Position(TOPIC, 2, 40)
    a.begin()
    b.begin()
    a.record_quarantine("bad-signature", at)
    a.record_quarantine("bad-signature", at)  # twice in one batch: held back once
    b.record_quarantine("bad-signature", at)
    a.end(commit=True)
    b.end(commit=True)
    a.record_quarantine("bad-signature", at)
    entries = b.audit_entries()
    assert [(e.seq, e.action, e.reason) for e in entries] == [(1, "quarantine", "bad-signature")]


def vacuums(sink: PostgresSink, table: str) -> int:
    """How many times ``table`` was vacuumed (the server's statistics: VACUUM reports itself
    when it ends)."""
    with sink.connection() as db:
        row = db.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = %s", (table,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_purge_is_followed_by_a_vacuum(pg_store_url: str) -> None:
    """A batch that purged commits, then every table that held personal data is vacuumed (the
    purged row versions freed: docs/storage.md "Erasure"); a batch that purged nothing is
    not followed by one."""
    sink = PostgresSink(pg_store_url, password_env=PG_PASSWORD_ENV)
    try:
        p = package()
        with sink.batch():
            sink.apply(p, view(p), Position(TOPIC, 0, 1))
        runs = {t: vacuums(sink, t) for t in PERSONAL_TABLES}
        cancel = package("cancel")
        with sink.batch():
            assert sink.apply(cancel, {}, Position(TOPIC, 0, 2)) is Applied.PURGED
        assert {t: vacuums(sink, t) for t in PERSONAL_TABLES} == {t: n + 1 for t, n in runs.items()}
        again = package(notice_id="IT-2")
        with sink.batch():
            sink.apply(again, view(again), Position(TOPIC, 0, 3))
        assert vacuums(sink, "notices") == runs["notices"] + 1
    finally:
        sink.close()


def test_a_role_that_may_not_create_the_schema_is_one_line(
    pg_url: str, postgres_server: devpg.DevPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty database opened by a role without CREATE on its schema: one line
    (``access-denied``), nothing created."""
    database = pg_url.rsplit("/", 1)[1]
    role = "nbx_reader_" + database[-8:]
    with postgres_server.connect() as admin:  # type: ignore[attr-defined]
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader-pw-1'")
    try:
        with postgres_server.connect(database) as db:  # type: ignore[attr-defined]
            db.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        monkeypatch.setenv("NBX_READER_PG_PASSWORD", "reader-pw-1")
        url = pg_url.replace("postgresql://nbx@", f"postgresql://{role}@")
        with pytest.raises(SinkError) as refused:
            PostgresSink(url, password_env="NBX_READER_PG_PASSWORD")
        assert refused.value.reason is StoreFailure.ACCESS_DENIED
        assert str(refused.value) == (
            "the store cannot be opened (access-denied): creating or upgrading the schema of "
            f"database {database} failed: permission denied for schema public"
        )
        with postgres_server.connect(database) as db:  # type: ignore[attr-defined]
            assert db.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,)
    finally:
        postgres_server.drop_database(database)
        with postgres_server.connect() as admin:  # type: ignore[attr-defined]
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_opening_a_current_database_imports_neither_alembic_nor_sqlalchemy(
    pg_store_url: str,
) -> None:
    """The daemon's open reads the revision with psycopg; Alembic and SQLAlchemy are imported
    only to create or upgrade a schema (a new interpreter, so nothing imported them before)."""
    code = (
        "import sys\n"
        "from broker.sinks import open_sink\n"
        f"sink = open_sink({pg_store_url!r}, password_env={PG_PASSWORD_ENV!r})\n"
        "sink.notices()\n"
        "sink.close()\n"
        "print(sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
