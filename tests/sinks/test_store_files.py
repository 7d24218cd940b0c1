"""The store on disk (docs/security/receive-path.md): private file modes, and the replay guard keyed
by (sender, msg id), with stores of the previous schema migrated."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.envelope import VerifiedPackage
from broker.errors import ConfigError
from broker.ids import uuid7
from broker.sinks import Applied, JsonlSink, Position, SqliteSink, open_sink
from broker.sinks.sqlite import SCHEMA_VERSION
from tests.sinks.conftest import ALL_STORES, open_store

from .test_sinks import ES, IT, package


def verified(
    *, sender: str = "IT", notice_id: str = "IT-1", kind: str = "publish", msg_id: str | None = None
) -> VerifiedPackage:
    """A package sealed by ``sender`` (IT or ES) for FR, opened by FR (see test_sinks.package)."""
    return package(kind, notice_id=notice_id, signer=ES if sender == "ES" else IT, msg_id=msg_id)


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    """A permissive umask (the default on many systems): the store must not rely on it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_sqlite_store_and_its_wal_are_private(tmp_path: Path) -> None:
    """The SQLite file, its WAL and shared-memory files are 0600 under a 0022 umask, also after
    a delivery and a purge; a folder created for the store is 0700."""
    path = tmp_path / "new" / "FR.sqlite"
    sink = SqliteSink(path)
    try:
        sink.apply(verified(), {"notice_id": "IT-1"}, Position("t", 0, 1))
        sink.apply(verified(kind="cancel"), {}, Position("t", 0, 2))
        files = [path, path.with_name("FR.sqlite-wal"), path.with_name("FR.sqlite-shm")]
        assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
        assert mode(path.parent) == 0o700
    finally:
        sink.close()


def test_jsonl_store_is_private_also_after_a_purge_rewrite(tmp_path: Path) -> None:
    """The JSON-lines file is 0600, and stays 0600 after a purge rewrote it."""
    path = tmp_path / "FR.jsonl"
    sink = JsonlSink(path)
    try:
        sink.apply(verified(), {"notice_id": "IT-1"}, Position("t", 0, 1))
        assert mode(path) == 0o600
        sink.apply(verified(kind="cancel"), {}, Position("t", 0, 2))
        assert mode(path) == 0o600
    finally:
        sink.close()


@pytest.mark.parametrize("url", ["sqlite:///{}/FR.sqlite", "jsonl:///{}/FR.jsonl"])
def test_a_store_readable_by_others_is_refused(tmp_path: Path, url: str) -> None:
    """A store left readable by group or others (as older releases created it) is refused with
    one line naming the file, its mode and the fix."""
    target = url.format(tmp_path)
    path = Path(target.partition(":///")[2])
    path.write_bytes(b"")
    path.chmod(0o644)
    with pytest.raises(ConfigError) as exc:
        open_sink(target)
    assert str(exc.value) == (
        f"{path}: the store is readable by group or others (mode 0644); "
        f"it holds decrypted personal data: chmod 600 {path}"
    )


def test_a_wal_readable_by_others_is_refused(tmp_path: Path) -> None:
    """The WAL of a private database holds the same data: a readable one is refused too."""
    path = tmp_path / "FR.sqlite"
    SqliteSink(path).close()
    wal = path.with_name("FR.sqlite-wal")
    wal.write_bytes(b"")
    wal.chmod(0o640)
    with pytest.raises(ConfigError, match=r"FR\.sqlite-wal: the store is readable"):
        SqliteSink(path)


@pytest.mark.parametrize("kind", ALL_STORES)
def test_the_replay_guard_is_per_sender(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """Two senders' messages with the same msg id are two messages: the second is delivered,
    not taken for a replay (a co-recipient cannot spend another sender's msg id); the same
    sender's id at another position is still a replay."""
    sink = open_store(kind, tmp_path / f"s.{kind}", request)
    try:
        es = verified(sender="ES", notice_id="ES-1")
        it = verified(sender="IT", notice_id="IT-1", msg_id=es.msg_id)
        assert sink.apply(es, {}, Position("t", 0, 1)) is Applied.DELIVERED
        assert sink.apply(it, {}, Position("t", 0, 2)) is Applied.DELIVERED
        assert sink.seen("IT", it.msg_id) is not None
        assert sink.seen("DE", it.msg_id) is None
        assert sink.apply(it, {}, Position("t", 0, 3)) is Applied.REPLAY
        assert sink.apply(it, {}, Position("t", 0, 2)) is Applied.REDELIVERY
    finally:
        sink.close()


OLD_DELIVERIES = """
CREATE TABLE deliveries (
    msg_id TEXT PRIMARY KEY, notice_id TEXT NOT NULL, sender TEXT NOT NULL, kind TEXT NOT NULL,
    topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    outcome TEXT NOT NULL, reason TEXT, at TEXT NOT NULL
);
INSERT INTO deliveries VALUES ('{msg_id}', 'IT-0', 'IT', 'publish', 't', 0, 7, 'delivered', NULL,
    '2026-01-01T00:00:00+00:00');
"""


def test_a_store_of_the_previous_schema_is_migrated(tmp_path: Path) -> None:
    """A store whose replay guard was keyed by msg id alone is rebuilt keyed by (sender, msg id),
    keeping every delivery; a second open leaves it as it is."""
    # drawn now, not at import: a msg id must fit the time it is sealed at (MAX_CLOCK_SKEW), and
    # a whole suite can run between collection and this test
    OLD_MSG_ID = uuid7()  # noqa: N806 - the id the old store holds
    path = tmp_path / "FR.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_DELIVERIES.format(msg_id=OLD_MSG_ID))
    db.close()
    path.chmod(0o600)
    sink = SqliteSink(path)
    try:
        seen = sink.seen("IT", OLD_MSG_ID)
        assert seen is not None
        assert seen.position == Position("t", 0, 7)
        assert sink.seen("ES", OLD_MSG_ID) is None
        es = verified(sender="ES", notice_id="ES-1", msg_id=OLD_MSG_ID)
        assert sink.apply(es, {}, Position("t", 0, 8)) is Applied.DELIVERED
    finally:
        sink.close()
    again = SqliteSink(path)
    try:
        assert [d["sender"] for d in again.delivery_log()] == ["IT", "ES"]
    finally:
        again.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == 6
