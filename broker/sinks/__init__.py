"""Where delivered notices go: SQLite (default), PostgreSQL or a JSON-lines file."""

from pathlib import Path

from broker.errors import ConfigError
from broker.sinks.base import (
    Applied,
    NoticeRecord,
    NoticeRow,
    Position,
    ReceiptRecord,
    RecipientStatus,
    Seen,
    Sink,
)
from broker.sinks.jsonl import JsonlSink
from broker.sinks.retention import RetentionLimit
from broker.sinks.sqlite import SqliteSink


def open_sink(
    url: str,
    *,
    password_env: str | None = None,
    durable: bool = True,
    retention: RetentionLimit | None = None,
) -> Sink:
    """Open the sink named by ``url``: ``sqlite:///rel/path``, ``sqlite:////abs/path``,
    ``postgresql://USER@HOST:PORT/DATABASE`` (password from the environment variable
    ``password_env``; :mod:`broker.sinks.postgres`), ``jsonl:///...``.

    ``retention``: the bureau's longest retention per notice type (:mod:`broker.sinks.retention`).
    """
    if url.startswith(("postgresql://", "postgres://")):
        from broker.sinks.postgres import open_postgres  # psycopg is imported only when used

        return open_postgres(url, password_env=password_env, durable=durable, retention=retention)
    scheme, sep, rest = url.partition(":///")
    if not sep or not rest:
        msg = f"sink url {url!r}: expected sqlite:///PATH, postgresql://HOST/DB or jsonl:///PATH"
        raise ConfigError(msg)
    if scheme == "sqlite":
        return SqliteSink(Path(rest), durable=durable, retention=retention)
    if scheme == "jsonl":
        return JsonlSink(Path(rest), durable=durable, retention=retention)
    msg = f"sink url {url!r}: unknown scheme {scheme!r} (sqlite, postgresql or jsonl)"
    raise ConfigError(msg)


__all__ = [
    "Applied",
    "JsonlSink",
    "NoticeRecord",
    "NoticeRow",
    "Position",
    "ReceiptRecord",
    "RecipientStatus",
    "Seen",
    "Sink",
    "SqliteSink",
    "open_sink",
]
