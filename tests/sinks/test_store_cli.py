"""``nbx store status``, ``nbx store migrate`` and ``nbx store compact`` on a node whose store is
a PostgreSQL database (run in process: the same commands, output and exit codes)."""

from __future__ import annotations

import re
from pathlib import Path

from broker.node.provision import provision
from broker.sinks.postgres import HEAD_REVISION, parse_url, upgrade
from tests.conftest import PG_PASSWORD_ENV
from tests.node.test_cli_node import nbx_in_process


def postgres_node(tmp_path: Path, url: str) -> Path:
    """FR's node.toml with its store in the database at ``url``."""
    config = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    text = re.sub(r'(?m)^url = "sqlite:///[^"]*"$', f'url = "{url}"', config.read_text())
    config.write_text(text.replace("[sink]\n", f'[sink]\npassword_env = "{PG_PASSWORD_ENV}"\n'))
    return config


def test_status_migrate_and_compact_an_older_database(tmp_path: Path, pg_url: str) -> None:
    """An empty database says so; one at 0001 is ``older`` and refused by the commands that
    open the store (exit 3, one line); ``nbx store migrate`` brings it to the head, once."""
    config = postgres_node(tmp_path, pg_url)
    status = nbx_in_process("store", "status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    assert status.stdout == (
        f"store of FR: postgresql {pg_url}, schema revision - (this release: "
        f"{HEAD_REVISION}): empty\n"
    )
    upgrade(parse_url(pg_url, PG_PASSWORD_ENV), "0001")
    status = nbx_in_process("store", "status", "--config", str(config))
    assert status.stdout == (
        f"store of FR: postgresql {pg_url}, schema revision 0001 (this release: "
        f"{HEAD_REVISION}): older\n"
    )
    refused = nbx_in_process("inbox", "list", "--config", str(config))
    assert refused.returncode == 3
    database = pg_url.rsplit("/", 1)[1]
    assert refused.stderr == (
        f"nbx: error: the store cannot be opened (schema-version): database {database} is at "
        f"schema revision 0001, this release needs {HEAD_REVISION}: run nbx store migrate "
        "--config <this node's config>\n"
    )
    migrated = nbx_in_process("store", "migrate", "--config", str(config))
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == (
        f"store of FR: schema revision 0001 -> {HEAD_REVISION} (this release: {HEAD_REVISION})\n"
    )
    again = nbx_in_process("store", "migrate", "--config", str(config))
    assert again.stdout == f"store of FR: schema revision {HEAD_REVISION}: nothing to do\n"
    listed = nbx_in_process("inbox", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    compacted = nbx_in_process("store", "compact", "--config", str(config))
    assert compacted.returncode == 0, compacted.stderr
    assert compacted.stdout == "store of FR: rewrote notices, flags, responses, held, sent\n"


def test_a_sqlite_store_needs_no_migrate(tmp_path: Path) -> None:
    """A file store is brought up to date at every open: ``migrate`` opens it and says so."""
    config = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    migrated = nbx_in_process("store", "migrate", "--config", str(config))
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == (
        "store of FR: sqlite schema revision 6: current (a file store is brought up to date "
        "at every open)\n"
    )
