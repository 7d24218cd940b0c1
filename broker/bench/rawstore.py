"""The ``raw+store`` baseline's store: what a consumer of plain Kafka writes to be durable.

One plain table, ``records (topic, partition, kafka_offset, record_key, record_value)`` keyed by
the record's position, in the same kind of store the daemon uses: a SQLite file with the daemon's
settings (WAL, ``synchronous=FULL``), or a PostgreSQL database (psycopg, ``executemany`` in one
transaction, the server's default ``synchronous_commit = on``). Each consumer batch is one
transaction, committed before the batch's offsets are committed to Kafka; a redelivered record
(the same position) is skipped (``ON CONFLICT DO NOTHING``), so a crash between the two commits
stores nothing twice. No crypto, no policy, no receipts: the cost of durability alone.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

#: the environment variable the benchmark's helper processes read the PostgreSQL password from
PASSWORD_ENV = "NBX_BENCH_PG_PASSWORD"  # noqa: S105 - the name of a variable, not a secret

#: a record as stored: topic, partition, offset, key, value
Row = tuple[str, int, int, bytes | None, bytes | None]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS records (topic TEXT NOT NULL, partition INTEGER NOT NULL, "
    "kafka_offset BIGINT NOT NULL, record_key {blob}, record_value {blob}, "
    "PRIMARY KEY (topic, partition, kafka_offset))"
)
_INSERT = (
    "INSERT INTO records (topic, partition, kafka_offset, record_key, record_value) "
    "VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT DO NOTHING"
)


class RecordStore(Protocol):
    """Writes one consumer batch per transaction."""

    def write(self, rows: Sequence[Row]) -> None:
        """Store ``rows`` in one committed transaction."""

    def count(self) -> int:
        """Rows stored so far."""

    def close(self) -> None:
        """Close the store."""


class SqliteRecords:
    """The table in a SQLite file, with the daemon's durability settings."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the store at ``path``."""
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_TABLE.format(blob="BLOB"))
        self._insert = _INSERT.format(p="?")

    def write(self, rows: Sequence[Row]) -> None:
        """Store ``rows`` in one committed transaction."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany(self._insert, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def count(self) -> int:
        """Rows stored so far."""
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    def close(self) -> None:
        """Close the file."""
        self._db.close()


class PostgresRecords:
    """The table in a PostgreSQL database (password from the environment variable
    ``password_env``)."""

    def __init__(self, url: str, password_env: str = PASSWORD_ENV) -> None:
        """Connect to ``url`` and create the table if missing."""
        import psycopg

        self._db: Any = psycopg.connect(url, password=os.environ.get(password_env))
        self._db.execute(_TABLE.format(blob="BYTEA"))
        self._db.commit()
        self._insert = _INSERT.format(p="%s")

    def write(self, rows: Sequence[Row]) -> None:
        """Store ``rows`` in one committed transaction."""
        try:
            with self._db.cursor() as cur:
                cur.executemany(self._insert, rows)
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    def count(self) -> int:
        """Rows stored so far."""
        row = self._db.execute("SELECT count(*) FROM records").fetchone()
        self._db.commit()
        return int(row[0])

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def open_records(url: str, password_env: str = PASSWORD_ENV) -> RecordStore:
    """``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresRecords(url, password_env)
    scheme, _, path = url.partition(":///")
    if scheme != "sqlite" or not path:
        msg = f"raw+store: expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB, not {url!r}"
        raise ValueError(msg)
    return SqliteRecords(Path(path))
