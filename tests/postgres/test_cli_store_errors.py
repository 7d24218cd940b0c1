"""A node whose PostgreSQL store cannot be opened: one clear line through the real commands
(`nbx status`, `nbx consume`), exit code 3 (2 for a malformed url), and nothing committed to
Kafka before the store has it (the consumer group's offsets stay unset).

The lines are the sink's (docs/storage.md, "Error lines"); these tests run them through the CLI's
one error path."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import psycopg
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from broker import devbroker, devpg
from broker.examples import notices_dir
from broker.node.network import point_sink
from broker.node.provision import provision
from broker.sinks.postgres import HEAD_REVISION, parse_url, upgrade
from tests.conftest import PG_PASSWORD, PG_PASSWORD_ENV
from tests.node.test_cli_node import nbx_in_process

#: the variable a node reads a wrong password from (set per test)
WRONG_ENV = "NBX_TEST_PG_WRONG_PASSWORD"
NOTICE = "IT-2025-0001"


def _node(folder: Path, url: str, password_env: str, bootstrap: str = "127.0.0.1:1") -> Path:
    """FR's node file (provisioned with IT) with its store at ``url``."""
    configs = provision(
        folder,
        ["IT", "FR"],
        bootstrap=bootstrap,
        policies=Path("deploy/policies"),
        session_timeout_ms=6000,
    )
    point_sink(configs["FR"], "FR", url, password_env)
    return configs["FR"]


def _where(url: str) -> tuple[str, str]:
    """``127.0.0.1:PORT`` and the database of ``url``."""
    rest = url.split("@", 1)[1]
    host_port, _, db = rest.partition("/")
    return host_port, db


def _status(config: Path) -> tuple[int, str, str]:
    out = nbx_in_process("status", NOTICE, "--config", str(config))
    return out.returncode, out.stdout, out.stderr


def test_wrong_password(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A password the server refuses: the line names the user, server, database and the
    variable the password came from, never the password; exit 3."""
    wrong = secrets.token_urlsafe(12)
    monkeypatch.setenv(WRONG_ENV, wrong)
    config = _node(tmp_path, pg_url, WRONG_ENV)
    code, out, err = _status(config)
    host_port, db = _where(pg_url)
    assert (code, out) == (3, "")
    assert err == (
        "nbx: error: the store cannot be opened (access-denied): password authentication failed "
        f'for user "nbx" at {host_port}/{db} (password from ${WRONG_ENV})\n'
    )
    assert wrong not in err


def test_password_variable_not_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """[sink] password_env names a variable that is not set: said before any connection; exit 3."""
    monkeypatch.delenv(WRONG_ENV, raising=False)
    config = _node(tmp_path, "postgresql://nbx@127.0.0.1:5432/nbx_fr", WRONG_ENV)
    code, out, err = _status(config)
    assert (code, out) == (3, "")
    assert err == (
        "nbx: error: the store cannot be opened (access-denied): the environment variable "
        f"${WRONG_ENV} ([sink] password_env) is not set\n"
    )


def test_missing_database(tmp_path: Path, postgres_server: devpg.DevPostgres) -> None:
    """A database that does not exist: named, with what to do; exit 3."""
    url = postgres_server.url(f"nbx_missing_{secrets.token_hex(4)}")
    config = _node(tmp_path, url, PG_PASSWORD_ENV)
    code, out, err = _status(config)
    host_port, db = _where(url)
    assert (code, out) == (3, "")
    assert err == (
        f'nbx: error: the store cannot be opened (missing): database "{db}" does not exist at '
        f"{host_port}; create it or fix [sink] url\n"
    )


def test_no_server_at_the_url(tmp_path: Path) -> None:
    """Nothing listens at the url's port: `nbx status` says so in one line; exit 3."""
    port = devpg.free_port()
    config = _node(tmp_path, f"postgresql://nbx@127.0.0.1:{port}/nbx_fr", PG_PASSWORD_ENV)
    code, out, err = _status(config)
    assert (code, out) == (3, "")
    assert err == (
        "nbx: error: the store cannot be opened (unreachable): no PostgreSQL at "
        f"127.0.0.1:{port} (connection refused)\n"
    )


def test_malformed_url(tmp_path: Path) -> None:
    """A url that is not one (a port out of range): a configuration error naming the url, one
    line, exit 1 (as every error in the node file)."""
    url = "postgresql://nbx@127.0.0.1:99999/nbx_fr"
    config = _node(tmp_path, url, PG_PASSWORD_ENV)
    code, out, err = _status(config)
    assert (code, out) == (1, "")
    assert err == f"nbx: error: sink url {url!r}: expected postgresql://USER@HOST:PORT/DATABASE\n"


def test_a_database_at_an_older_schema_revision(tmp_path: Path, pg_url: str) -> None:
    """A database whose schema an older release made (revision 0001): refused with the revision
    it is at, the one needed and the command that upgrades it; exit 3."""
    upgrade(parse_url(pg_url, PG_PASSWORD_ENV), "0001")
    config = _node(tmp_path, pg_url, PG_PASSWORD_ENV)
    code, out, err = _status(config)
    _, db = _where(pg_url)
    assert (code, out) == (3, "")
    assert err == (
        f"nbx: error: the store cannot be opened (schema-version): database {db} is at schema "
        f"revision 0001, this release needs {HEAD_REVISION}: run nbx store migrate --config "
        "<this node's config>\n"
    )


def test_a_database_at_a_newer_schema_revision(tmp_path: Path, pg_url: str) -> None:
    """A database a newer release upgraded (a revision this one does not know): refused, the
    operator told to upgrade nbx; exit 3; the database is left as it was."""
    config = _node(tmp_path, pg_url, PG_PASSWORD_ENV)
    first = nbx_in_process("inbox", "list", "--config", str(config))
    assert first.returncode == 0, first.stderr  # the first open made the whole schema
    with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as db:
        db.execute("UPDATE alembic_version SET version_num = '9001'")
    code, out, err = _status(config)
    _, name = _where(pg_url)
    assert (code, out) == (3, "")
    assert err == (
        f"nbx: error: the store cannot be opened (schema-version): database {name} is at schema "
        f"revision 9001, newer than this release ({HEAD_REVISION}): upgrade nbx\n"
    )
    with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("9001",)]


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` committed on ``topic`` (partition -> offset; none: empty)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, 0)]
        )
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def test_consume_with_a_refused_store_commits_nothing(
    tmp_path: Path,
    pg_url: str,
    fresh_broker: devbroker.DevBroker,
    idempotence_supported: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IT publishes to FR; FR's daemon (`nbx consume`) cannot open its store (a wrong password):
    one line, exit 3, and the group nbx.FR has committed no offset of FR's inbox, so the notice
    is still there for the daemon that opens the store."""
    monkeypatch.setenv(WRONG_ENV, secrets.token_urlsafe(12))
    configs = provision(
        tmp_path,
        ["IT", "FR"],
        bootstrap=fresh_broker.bootstrap,
        policies=Path("deploy/policies"),
        enable_idempotence=idempotence_supported,
        session_timeout_ms=6000,
    )
    point_sink(configs["FR"], "FR", pg_url, WRONG_ENV)
    sent = nbx_in_process(
        "publish", "--config", str(configs["IT"]), str(notices_dir() / "red.json"), "--to", "FR"
    )
    assert sent.returncode == 0, sent.stderr
    run = nbx_in_process("consume", "--config", str(configs["FR"]), "--until-idle", "2")
    host_port, db = _where(pg_url)
    assert run.returncode == 3
    assert run.stderr.splitlines()[-1] == (
        "nbx: error: the store cannot be opened (access-denied): password authentication failed "
        f'for user "nbx" at {host_port}/{db} (password from ${WRONG_ENV})'
    )
    assert asyncio.run(_committed(fresh_broker.bootstrap, "nbx.FR", "nbx.inbox.FR")) == {}
