"""A node follows its directory file while it runs, keeps the highest serial it verified beside its
store, and stops accepting when the directory is stale or too old (docs/security/directory.md).

Real files, real key material; no broker (the topic is covered by test_directory_live.py).
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ed25519
from structlog.testing import capture_logs

from broker.cli import main
from broker.errors import EnvelopeRejected, KeyDirectoryError
from broker.examples import policies_dir
from broker.keys import BureauKeys, Directory, DirectoryBody, sign_directory
from broker.keys.directory_edit import (
    PublicDocument,
    add_bureau,
    empty_directory,
    reissue,
    revoke_key,
)
from broker.keys.files import load_anchor_public_key, load_signing_key, public_document
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.node.runtime import (
    FileDirectory,
    Freshness,
    SerialFile,
    check_accepting,
    load_node,
)

FAST = Freshness(poll_interval_s=0.02, max_staleness_s=3600)


class World:
    """An anchor, two bureaus and the successive signed serials of their directory."""

    def __init__(self, folder: Path, issued: datetime | None = None) -> None:
        self.anchor = ed25519.Ed25519PrivateKey.generate()
        self.keys = {cc: BureauKeys.generate(cc) for cc in ("FR", "US")}
        now = issued or datetime.now(UTC) - timedelta(minutes=5)
        body = empty_directory(self.anchor.public_key(), now)
        for cc, keys in self.keys.items():
            doc = PublicDocument.model_validate(public_document(keys))
            body = add_bureau(body, doc, name=cc, now=now)
        self.body = body  # serial 3
        self.path = folder / "directory.json"
        self.write(body)

    def signed(self, body: DirectoryBody) -> bytes:
        return sign_directory(body, self.anchor)

    def write(self, body: DirectoryBody | bytes) -> None:
        """Replace the file atomically (as ``nbx directory`` does)."""
        data = body if isinstance(body, bytes) else self.signed(body)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(self.path)

    def revoked(self, body: DirectoryBody) -> DirectoryBody:
        us = self.keys["US"]
        now = datetime.now(UTC)
        return revoke_key(body, "US", us.signing_key_id, at=now, reason="key-compromise", now=now)


async def until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.01)
    return check()


def us_key(directory: FileDirectory, world: World) -> object:
    return directory.signing_key("US", world.keys["US"].signing_key_id, datetime.now(UTC))


async def test_a_replaced_file_is_picked_up_while_running(tmp_path: Path) -> None:
    """A revocation written to the directory file reaches the running lookup: the revoked key is
    refused as key-revoked, without a restart."""
    world = World(tmp_path)
    directory = FileDirectory(world.path, world.anchor.public_key(), FAST)
    owner = object()
    await directory.start(owner)
    try:
        assert us_key(directory, world) is not None
        world.write(world.revoked(world.body))
        assert await until(lambda: directory.serial == 4)
        with pytest.raises(EnvelopeRejected) as caught:
            us_key(directory, world)
        assert caught.value.reason == "key-revoked"
    finally:
        await directory.stop(owner)
    assert directory._task is None  # stopped cleanly


async def test_forged_and_lower_files_are_refused_and_logged(tmp_path: Path) -> None:
    """A file that does not verify, and one with a lower serial, are refused; the node keeps the
    serial it has and logs serials and the reason only."""
    world = World(tmp_path)
    newer = world.revoked(world.body)
    world.write(newer)
    directory = FileDirectory(world.path, world.anchor.public_key(), FAST)
    owner = object()
    await directory.start(owner)
    try:
        with capture_logs() as logs:
            forged = world.signed(newer).replace(b'"serial": 4', b'"serial": 9')
            world.write(forged)
            assert await until(lambda: any(e["event"] == "directory.skipped" for e in logs))
            world.write(world.body)  # serial 3, correctly signed: a rollback
            assert await until(lambda: any(e["event"] == "directory.refused" for e in logs))
        assert directory.serial == 4
        refused = next(e for e in logs if e["event"] == "directory.refused")
        assert refused == {
            "event": "directory.refused",
            "log_level": "warning",
            "topic": str(world.path),
            "serial": 3,
            "current_serial": 4,
            "reason": "rollback",
        }
        with pytest.raises(EnvelopeRejected, match="key-revoked"):
            us_key(directory, world)
    finally:
        await directory.stop(owner)


@pytest.mark.parametrize("sink", ["sqlite", "jsonl"])
def test_lower_serial_after_restart_is_refused(tmp_path: Path, sink: str) -> None:
    """The node verified serial 3; after a restart only serial 2 is available (an older file):
    it refuses to start with one line naming both serials. The serial lives beside the store
    (0600), for either sink."""
    configs = provision(
        tmp_path, ["FR", "DE"], bootstrap="127.0.0.1:9", sink=sink, policies=policies_dir()
    )
    config = NodeConfig.load(configs["FR"])
    node = load_node(config)
    assert isinstance(node.directory, FileDirectory)
    assert node.directory.serial == 3
    serial_file = config.serial_path()
    assert serial_file.parent == config.sink_path().parent
    assert stat.S_IMODE(serial_file.stat().st_mode) == 0o600
    assert SerialFile(serial_file).read() == 3

    anchor_key = load_signing_key(tmp_path / "anchor" / "trust-anchor.key", None)
    current = Directory.load(tmp_path / "directory.json", anchor_key.public_key()).body
    older = current.model_copy(update={"serial": 2, "bureaus": current.bureaus[:1]})
    (tmp_path / "directory.json").write_bytes(sign_directory(older, anchor_key))

    with pytest.raises(KeyDirectoryError) as caught:
        load_node(config)
    assert "directory serial 2 is older than serial 3 (rollback refused)" in str(caught.value)

    result = CliRunner().invoke(main, ["consume", "--config", str(configs["FR"])])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"nbx: error: {config.trust.directory}: directory serial 2 is older than serial 3 "
        "(rollback refused)"
    ], result.stderr


def test_the_serial_file_only_grows(tmp_path: Path) -> None:
    """Writing a lower serial leaves the higher one; an unreadable file is an error, not 0."""
    record = SerialFile(tmp_path / "FR.sqlite.directory-serial")
    assert record.read() == 0
    record.write(5)
    record.write(3)
    assert record.read() == 5
    record.path.write_text("{not json")
    with pytest.raises(KeyDirectoryError, match="unreadable directory serial file"):
        record.read()


async def test_a_directory_that_cannot_be_confirmed_stops_acceptance(tmp_path: Path) -> None:
    """The file disappears: after max_staleness_s the gate closes (logged as directory.stale, an
    error) and check_accepting refuses with one line; when the file is back it opens again."""
    world = World(tmp_path)
    freshness = Freshness(poll_interval_s=0.02, max_staleness_s=0.3)
    directory = FileDirectory(world.path, world.anchor.public_key(), freshness)
    owner = object()
    await directory.start(owner)
    try:
        assert directory.refusal() is None
        check_accepting(directory)
        saved = world.path.read_bytes()
        with capture_logs() as logs:
            world.path.unlink()
            assert await until(lambda: directory.refusal() == "stale")
            assert await until(lambda: any(e["event"] == "directory.stale" for e in logs))
            with pytest.raises(KeyDirectoryError, match=r"max_staleness_s = 0\.3 s"):
                check_accepting(directory)
            world.write(saved)
            assert await until(lambda: directory.refusal() is None)
            assert await until(lambda: any(e["event"] == "directory.confirmed" for e in logs))
        stale = next(e for e in logs if e["event"] == "directory.stale")
        assert stale["log_level"] == "error"
        assert stale["reason"] == "stale"
        check_accepting(directory)
    finally:
        await directory.stop(owner)


def test_a_directory_older_than_the_maximum_age_is_refused(tmp_path: Path) -> None:
    """A directory issued 31 days ago is refused with the limit named; re-issuing it (next
    serial, fresh issued_at) makes it acceptable again."""
    world = World(tmp_path, issued=datetime.now(UTC) - timedelta(days=31))
    anchor = world.anchor.public_key()
    with pytest.raises(KeyDirectoryError, match=r"more than trust\.max_directory_age_days = 30"):
        FileDirectory(world.path, anchor)
    fresh = reissue(world.body, now=datetime.now(UTC))
    assert fresh.serial == world.body.serial + 1
    assert fresh.bureaus == world.body.bureaus
    world.write(fresh)
    assert FileDirectory(world.path, anchor).serial == fresh.serial


async def test_a_directory_that_ages_past_the_limit_closes_the_gate(tmp_path: Path) -> None:
    """A running node whose directory was not re-issued in time reports it as too old."""
    world = World(tmp_path, issued=datetime.now(UTC) - timedelta(seconds=1))
    freshness = Freshness(poll_interval_s=0.02, max_age=timedelta(seconds=1.5))
    directory = FileDirectory(world.path, world.anchor.public_key(), freshness)
    owner = object()
    await directory.start(owner)
    try:
        assert await until(lambda: directory.refusal() == "too-old")
        with pytest.raises(KeyDirectoryError, match="nbx directory reissue"):
            check_accepting(directory)
    finally:
        await directory.stop(owner)


def test_cli_reissue_signs_the_next_serial_with_a_fresh_issue_time(tmp_path: Path) -> None:
    """``nbx directory reissue`` keeps the content, increments the serial, refreshes issued_at."""
    configs = provision(
        tmp_path,
        ["FR"],
        bootstrap="127.0.0.1:9",
        policies=policies_dir(),
        now=datetime.now(UTC) - timedelta(days=20),
    )
    assert configs
    path, anchor_key = tmp_path / "directory.json", tmp_path / "anchor" / "trust-anchor.key"
    pinned = load_anchor_public_key(tmp_path / "anchor" / "trust-anchor.pub")
    before = Directory.load(path, pinned).body
    env = {k: v for k, v in os.environ.items() if k != "NBX_KEY_PASSPHRASE"}
    result = CliRunner(env=env).invoke(
        main, ["directory", "reissue", "--file", str(path), "--anchor-key", str(anchor_key)]
    )
    assert result.exit_code == 0, result.output
    after = Directory.load(path, pinned).body
    assert after.serial == before.serial + 1
    assert after.bureaus == before.bureaus
    assert datetime.now(UTC) - after.issued_at < timedelta(minutes=1)
