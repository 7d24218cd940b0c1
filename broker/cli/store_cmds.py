"""``nbx store status``, ``nbx store migrate`` and ``nbx store compact``: the node's store and its
schema (docs/storage.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from broker.cli.node_cmds import CONFIG, _config


@click.group()
def store() -> None:
    """The node's store: its schema revision, upgrading it, compacting it."""


def _kind(config: Any) -> str:
    url: str = config.sink.url
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    return url.partition(":")[0]


def _status(config: Any) -> dict[str, Any]:
    """What ``nbx store status`` says: the store's kind, where it is, its schema revision and
    the one this release needs."""
    kind = _kind(config)
    out: dict[str, Any] = {"bureau": config.bureau, "kind": kind, "url": config.sink.url}
    if kind == "postgresql":
        from broker.sinks.postgres import HEAD_REVISION, connect, parse_url, schema_revision

        target = parse_url(config.sink.url, config.sink.password_env)
        with connect(target) as conn:
            revision = schema_revision(conn)
        out |= {"revision": revision, "release": HEAD_REVISION}
    elif kind == "sqlite":
        import sqlite3

        from broker.sinks.sqlite import SCHEMA_VERSION

        path: Path = config.sink_path()
        revision = None
        if path.exists():
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                revision = str(db.execute("PRAGMA user_version").fetchone()[0])
        out |= {"revision": revision, "release": str(SCHEMA_VERSION)}
    else:
        out |= {"revision": None, "release": None}
    out["state"] = _state(kind, out["revision"], out["release"])
    return out


def _state(kind: str, revision: str | None, release: str | None) -> str:
    if release is None:
        return "unversioned"  # the JSON-lines file
    if revision is None:
        return "empty"  # created at the first open
    if revision == release:
        return "current"
    if kind == "postgresql":
        from broker.sinks.postgres import revision_order

        known = revision_order()
        older = revision in known and known.index(revision) < known.index(release)
    else:
        older = int(revision) < int(release)
    return "older" if older else "newer"


@store.command("status")
@CONFIG
def status_cmd(config_path: Path) -> None:
    """Show the store's kind, its schema revision and the one this release needs (``empty``,
    ``current``, ``older``: run ``nbx store migrate``, ``newer``: upgrade nbx)."""
    out = _status(_config(config_path))
    revision = out["revision"] or "-"
    release = out["release"] or "-"
    click.echo(
        f"store of {out['bureau']}: {out['kind']} {out['url']}, schema revision {revision} "
        f"(this release: {release}): {out['state']}"
    )


@store.command("migrate")
@CONFIG
def migrate_cmd(config_path: Path) -> None:
    """Bring the store's schema to this release's revision (PostgreSQL: Alembic, under a lock
    that two replicas' migrations share; SQLite: done at every open)."""
    config = _config(config_path)
    kind = _kind(config)
    if kind == "postgresql":
        from broker.sinks.postgres import (
            HEAD_REVISION,
            check_schema,
            connect,
            parse_url,
            schema_revision,
            upgrade,
        )

        target = parse_url(config.sink.url, config.sink.password_env)
        with connect(target) as conn:
            if _state(kind, schema_revision(conn), HEAD_REVISION) == "newer":
                check_schema(conn, target)  # refused: one line, exit 3
        before, after = upgrade(target)
        if before == after:
            click.echo(f"store of {config.bureau}: schema revision {after}: nothing to do")
        else:
            click.echo(
                f"store of {config.bureau}: schema revision {before or 'none'} -> {after} "
                f"(this release: {HEAD_REVISION})"
            )
        return
    from broker.sinks import open_sink

    sink = open_sink(config.sink.url, password_env=config.sink.password_env, durable=False)
    sink.close()
    out = _status(config)
    click.echo(
        f"store of {config.bureau}: {kind} schema revision {out['revision'] or '-'}: "
        f"{out['state']} (a file store is brought up to date at every open)"
    )


@store.command("compact")
@CONFIG
def compact_cmd(config_path: Path) -> None:
    """Rewrite the tables that hold personal data (PostgreSQL ``VACUUM FULL``): what purges
    freed leaves the data files (docs/storage.md "Erasure"). Locks each table while it is
    rewritten: run it when the daemon is quiet (e.g. nightly)."""
    config = _config(config_path)
    kind = _kind(config)
    if kind != "postgresql":
        click.echo(
            f"store of {config.bureau}: {kind}: nothing to do (SQLite overwrites purged content "
            "and checkpoints its WAL at each purge; the JSON-lines file is rewritten)"
        )
        return
    from broker.sinks.postgres import PERSONAL_TABLES, open_postgres

    sink = open_postgres(config.sink.url, password_env=config.sink.password_env, durable=False)
    try:
        sink.compact()
    finally:
        sink.close()
    click.echo(f"store of {config.bureau}: rewrote {', '.join(PERSONAL_TABLES)}")


def register(group: click.Group) -> None:
    """Add ``nbx store`` to ``group``."""
    group.add_command(store)
