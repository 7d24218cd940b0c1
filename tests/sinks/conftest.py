"""The stores under test: every contract test of this folder runs against SQLite, the JSON-lines
file (where it applies) and PostgreSQL (issue 23: one contract for every store).

The PostgreSQL half stays cheap: the schema is created once per session in a template database,
and each test gets a copy of it (``CREATE DATABASE ... TEMPLATE``: a file copy, no migration).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker import devpg
from broker.sinks import JsonlSink, Sink, SqliteSink
from broker.sinks.retention import RetentionLimit
from tests.conftest import PG_PASSWORD_ENV

#: the PostgreSQL case of a parametrised store fixture (marked like the tests that use the
#: PostgreSQL fixtures directly: ``make quick`` leaves them out)
POSTGRESQL = pytest.param("postgresql", marks=(pytest.mark.postgres, pytest.mark.process))
#: the SQL stores
SQL_STORES = ["sqlite", POSTGRESQL]
#: every store
ALL_STORES = ["sqlite", "jsonl", POSTGRESQL]


@pytest.fixture(scope="session")
def pg_template(postgres_server: devpg.DevPostgres) -> Iterator[str]:
    """A database holding the store's schema at this release's revision, created once per
    session (the first open of an empty database runs the migrations)."""
    from broker.sinks.postgres import PostgresSink

    name = "nbx_template_" + secrets.token_hex(4)
    PostgresSink(postgres_server.create_database(name), password_env=PG_PASSWORD_ENV).close()
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
def pg_store_url(
    postgres_server: devpg.DevPostgres, pg_template: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The url of a new database with the store's schema (a copy of :func:`pg_template`),
    dropped after the test."""
    from psycopg import sql

    name = "s_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    name += "_" + secrets.token_hex(4)
    with devpg_connect(postgres_server) as db:
        db.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(pg_template)
            )
        )
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


def devpg_connect(server: devpg.DevPostgres, database: str = "postgres") -> Any:
    """An autocommit superuser connection to ``database`` of ``server``."""
    return server.connect(database)


def open_store(
    kind: str,
    path: Path,
    request: pytest.FixtureRequest,
    *,
    retention: RetentionLimit | None = None,
) -> Sink:
    """A new store of ``kind`` (``sqlite``, ``jsonl``: at ``path``; ``postgresql``: a new
    database of the session's server)."""
    if kind == "sqlite":
        return SqliteSink(path, retention=retention)
    if kind == "jsonl":
        return JsonlSink(path, retention=retention)
    from broker.sinks.postgres import PostgresSink

    url = request.getfixturevalue("pg_store_url")
    return PostgresSink(url, password_env=PG_PASSWORD_ENV, retention=retention)


def on_disk(sink: Sink) -> bytes:
    """Everything the store keeps in its files: the SQLite file and its journals, the JSON-lines
    file, or the PostgreSQL data files (main fork and TOAST) of the tables that hold personal
    data, read after a CHECKPOINT (the test runs as root: it may read the data directory)."""
    from broker.sinks.postgres import PostgresSink

    if not isinstance(sink, PostgresSink):
        path: Path = sink.path  # type: ignore[attr-defined]
        files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    return b"".join(p.read_bytes() for p in pg_files(sink) if p.exists())


def pg_files(sink: Any) -> list[Path]:
    """The data files of the PostgreSQL store's personal-data tables and their TOAST tables."""
    from broker.sinks.postgres import PERSONAL_TABLES

    with sink.connection() as db:
        db.execute("CHECKPOINT")
        root = Path(db.execute("SELECT current_setting('data_directory')").fetchone()[0])
        rows = db.execute(
            "SELECT pg_relation_filepath(c.oid), pg_relation_filepath(c.reltoastrelid) "
            "FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
            (list(PERSONAL_TABLES),),
        ).fetchall()
    files: list[Path] = []
    for main, toast in rows:
        for rel in (main, toast):
            if rel:
                base = root / rel
                files += [base, *sorted(base.parent.glob(base.name + ".[0-9]*"))]
    return files


def purged_from_disk(sink: Sink, text: str) -> bool:
    """Whether ``text`` is gone from the store's files. PostgreSQL: it is first checked to be
    gone from every row of every table (what the automatic VACUUM after a purge guarantees),
    then the tables are rewritten (``nbx store compact``, :meth:`PostgresSink.compact`): a plain
    VACUUM frees a dead row's space but does not overwrite it (docs/storage.md "Erasure")."""
    from broker.sinks.postgres import PostgresSink

    if isinstance(sink, PostgresSink):
        with sink.connection() as db:
            tables = [
                r[0]
                for r in db.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                ).fetchall()
            ]
            for table in tables:
                found = db.execute(
                    f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s",  # noqa: S608
                    (f"%{text}%",),
                ).fetchone()
                if found is not None and found[0]:
                    return False
        sink.compact()
    return text.encode() not in on_disk(sink)
