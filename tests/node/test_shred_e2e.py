"""Crypto-shredding by key epoch on the real broker (issue 18, point 5).

DE rotates its encryption key with the documented steps (``nbx keys next-epoch`` on the node,
``nbx directory add-key`` at the anchor). A notice sealed to the old key stays on DE's inbox. Once
the window after the old key's retirement has passed (the daemon's fake clock), DE's daemon has
destroyed the old private key: the old record is still on the topic but DE can no longer open it
(``decrypt``, because no key with its key id is held), while the update of that notice sent under
the new key, and the receipts, keep flowing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from broker import devbroker
from broker.cli import main
from broker.envelope import open_package
from broker.errors import EnvelopeRejected
from broker.keys.epochs import epochs_path, read_epochs
from broker.logging import configure
from broker.node.keycare import own_records
from broker.vocab import Reason
from broker.wire import frame
from tests.audit_access import READ
from tests.node.helpers import Net, example, read_topic, wait_for

pytestmark = pytest.mark.e2e


def nbx(*args: object) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line (DEBUG and up, through the allow-list) into a buffer."""
    buf = io.StringIO()
    configure("DEBUG", stream=buf)
    try:
        yield buf
    finally:
        configure()


def _events(buf: io.StringIO, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event]


def _delivered(net: Net, cc: str, notice_id: str) -> list[str]:
    """The statuses of the receipts ``cc`` holds for ``notice_id`` from DE, per message."""
    return [
        x["status"]
        for r in net.daemon(cc).sink.status(notice_id)
        if r["recipient"] == "DE"
        for m in r["messages"]
        for x in m["receipts"]
    ]


async def test_after_the_window_the_old_record_cannot_be_opened_and_nothing_else_breaks(
    fresh_broker: devbroker.DevBroker,
    idempotence_supported: bool,
    tmp_path: Path,
    log_lines: io.StringIO,
) -> None:
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("FR", "DE"), bootstrap, idempotence=idempotence_supported)
    keys_dir = tmp_path / "DE" / "keys"
    de = net.daemon("DE")
    clock: list[datetime] = [datetime.now(UTC)]
    de.clock = lambda: clock[0]
    de.housekeeping_interval_s = 0.0  # every round of the loop: the test moves the clock
    [old_kid] = list(de.decryption_keys)
    await net.start("FR", "DE")
    try:
        v1 = example("red", issuing_bureau="FR", notice_id="FR-2026-0077")
        await net.publish("FR", v1, ["DE"])
        assert await wait_for(lambda: _delivered(net, "FR", v1.notice_id) == ["delivered"])

        # the node starts its next epoch; the running daemon takes the new key up by itself
        out = nbx("keys", "next-epoch", "DE", "--dir", keys_dir)
        new_kid = json.loads((keys_dir / "DE.next.public.json").read_text())["keys"][0]["kid"]
        assert f"new encryption key {new_kid} (X25519)" in out
        assert await wait_for(lambda: set(de.decryption_keys) == {old_kid, new_kid})
        # the anchor publishes it: senders encrypt to it from now, the old key is retired
        nbx(
            "directory",
            "add-key",
            "DE",
            "--keys",
            keys_dir / "DE.next.public.json",
            "--file",
            tmp_path / "directory.json",
            "--anchor-key",
            tmp_path / "anchor" / "trust-anchor.key",
        )
        assert await wait_for(
            lambda: new_kid in {r.kid for r in own_records(de.directory, "DE") or ()}
        )
        v2 = example("red", issuing_bureau="FR", notice_id=v1.notice_id, version=2, language="fr")
        await net.publish("FR", v2, ["DE"])
        assert await wait_for(lambda: _delivered(net, "FR", v1.notice_id) == ["delivered"] * 2)
        assert de.sink.notice(v1.notice_id, READ)["version"] == 2  # type: ignore[index]

        # inside the window nothing is destroyed
        retired = max(r.not_before for r in own_records(de.directory, "DE") or ())
        status = json.loads(nbx("keys", "status", "--config", net.paths["DE"], "--json"))
        [old_row] = [e for e in status["epochs"] if e["kid"] == old_kid]
        assert old_row["state"] == "retired"
        destroy_after = datetime.fromisoformat(old_row["destroy_after"])
        assert destroy_after == retired + timedelta(days=26)
        clock[0] = destroy_after - timedelta(minutes=1)
        de.shred_keys()
        assert old_kid in de.decryption_keys

        # after the window the daemon destroys the old private key
        configure("DEBUG", stream=log_lines)  # the nbx commands above configured their own
        assert _events(log_lines, "keys.destroyed") == []
        clock[0] = destroy_after + timedelta(minutes=1)
        assert await wait_for(lambda: set(de.decryption_keys) == {new_kid})
        destroyed = _events(log_lines, "keys.destroyed")
        assert [(e["bureau"], e["key_id"]) for e in destroyed] == [("DE", old_kid)]
        [epoch] = read_epochs(keys_dir, "DE")
        assert (epoch.kid, epoch.private) == (old_kid, None)
        assert epoch.destroyed == destroy_after + timedelta(minutes=1)
        assert b"PRIVATE KEY" not in epochs_path(keys_dir, "DE").read_bytes()

        # the old record is still on the topic, and its recipient can no longer open it
        records = await read_topic(bootstrap, "nbx.inbox.DE", expect=2)
        kids = [frame.decode(value).recipient_kid for _, value, _ in records]
        assert kids == [old_kid, new_kid]
        with pytest.raises(EnvelopeRejected) as rejected:
            _open(records[0][1], de)
        assert rejected.value.reason == Reason.DECRYPT
        causes = [(e["reason"], e["error_type"]) for e in _events(log_lines, "envelope.rejected")]
        assert causes == [("decrypt", "unknown-recipient-kid")]  # no key with that id is held
        opened = _open(records[1][1], de)
        assert (opened.notice_id, opened.header["version"]) == (v1.notice_id, 2)

        # receipts keep flowing: a third version goes under the new key and is confirmed
        v3 = example("red", issuing_bureau="FR", notice_id=v1.notice_id, version=3)
        await net.publish("FR", v3, ["DE"])
        assert await wait_for(lambda: _delivered(net, "FR", v1.notice_id) == ["delivered"] * 3)
        assert de.sink.notice(v1.notice_id, READ)["version"] == 3  # type: ignore[index]
        # a new daemon of DE (restart) loads the key set with the destroyed epoch
        status = json.loads(nbx("keys", "status", "--config", net.paths["DE"], "--json"))
        assert [(e["kid"], e["state"]) for e in status["epochs"]] == [
            (old_kid, "destroyed"),
            (new_kid, "current"),
        ]
    finally:
        await net.stop()


def _open(value: bytes, daemon: Any) -> Any:
    """Open a record of DE's inbox with exactly the keys DE's daemon holds."""
    return open_package(
        value,
        topic="nbx.inbox.DE",
        recipient="DE",
        decryption_keys=daemon.decryption_keys,
        directory=daemon.directory,
    )
