"""``nbx node join`` (the new node's folder) and the node that waits for its listing (on the
in-memory broker; the real broker: tests/keys/test_join_live.py)."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import MutableMapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from broker.cli import keys_cmds, main
from broker.errors import KeyDirectoryError
from broker.keys import Directory, StaticDirectory
from broker.keys.files import load_anchor_public_key, load_bureau_keys
from broker.keys.join import check_listed, listed, read_join_request
from broker.node import ConsumerDaemon, Publisher
from broker.node.config import NodeConfig
from tests.audit_access import READ
from tests.node.helpers import NO_BROKER, example, memory_net, wait_for


def run(*args: object, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    return result


def join(folder: Path, anchor: Path, cc: str = "PT", *more: object, ok: bool = True) -> Result:
    return run("node", "join", cc, "--dir", folder, "--bootstrap", NO_BROKER, "--anchor", anchor,
               "--name", "NCB Lisbon", "--contact", "ncb@example.pt", *more, ok=ok)  # fmt: skip


def test_node_join_writes_keys_config_and_a_request_that_verifies(tmp_path: Path) -> None:
    run("keys", "init-anchor", tmp_path / "anchor")
    anchor = tmp_path / "anchor" / "trust-anchor.pub"
    folder = tmp_path / "pt"
    out = join(folder, anchor, "PT", "--dev-broker", "tansu").output.splitlines()
    request = read_join_request(folder / "PT.join.json")
    assert out[0] == f"wrote {folder / 'keys'} (private keys mode 0600), {folder / 'node.toml'} " \
        f"and {folder / 'PT.join.json'}"  # fmt: skip
    assert out[1] == f"join request fingerprint {request.fingerprint}"
    assert f"start the daemon now: nbx consume --config {folder / 'node.toml'}" in out[-1]
    for name in ("PT.signing.key", "PT.encryption.key"):
        assert stat.S_IMODE((folder / "keys" / name).stat().st_mode) == 0o600
    keys = load_bureau_keys(folder / "keys", "PT")
    assert request.signing_kid == keys.signing_key_id
    assert request.body.name == "NCB Lisbon"
    assert request.body.contact == "ncb@example.pt"
    config = NodeConfig.load(folder / "node.toml")
    assert config.bureau == "PT"
    assert config.trust.directory == "topic"
    assert config.trust.anchor == folder / "trust-anchor.pub"
    assert (folder / "trust-anchor.pub").read_bytes() == anchor.read_bytes()
    assert config.kafka.bootstrap == NO_BROKER
    assert config.kafka.enable_idempotence is False  # tansu has no idempotent producer
    assert any((folder / "policies").glob("*.toml"))


def test_node_join_refuses_to_overwrite_and_checks_the_anchor(tmp_path: Path) -> None:
    run("keys", "init-anchor", tmp_path / "anchor")
    anchor = tmp_path / "anchor" / "trust-anchor.pub"
    folder = tmp_path / "pt"
    join(folder, anchor)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    result = join(folder, anchor, ok=False)
    key = folder / "keys" / "PT.signing.key"
    assert result.output == f"nbx: error: {key}: already exists; refusing to overwrite a key file\n"
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    # a different bureau in the same folder: the node files are there already
    result = join(folder, anchor, "ES", ok=False)
    assert result.output == (
        f"nbx: error: {folder / 'node.toml'}: already exists; `nbx node join` writes a new "
        "node's folder\n"
    )
    # the anchor given must be an Ed25519 public key; nothing is written
    result = join(tmp_path / "es", tmp_path / "anchor" / "trust-anchor.key", "ES", ok=False)
    assert result.output.startswith(f"nbx: error: {tmp_path / 'anchor' / 'trust-anchor.key'}: ")
    assert not (tmp_path / "es").exists()
    result = join(tmp_path / "es", anchor, "Spain", ok=False)
    assert result.exit_code == 2
    assert "is not a bureau id" in result.output


def add_request(request: Path, directory: Path, anchor_key: Path) -> None:
    """``nbx directory add --request REQUEST --file DIRECTORY --anchor-key ANCHOR_KEY``."""
    add = keys_cmds.add.callback
    assert add is not None
    add(None, None, None, (), None, directory, anchor_key, request)


def _file_directory(config: NodeConfig, directory: Path) -> NodeConfig:
    """``config`` reading the directory file (the in-memory broker has no nbx.directory)."""
    trust = config.trust.model_copy(update={"directory": str(directory), "poll_interval_s": 0.05})
    return config.model_copy(update={"trust": trust})


def _events(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[dict[str, Any]]:
    return [dict(e) for e in logs if e["event"] == event]


async def test_a_node_not_listed_waits_then_consumes_once_the_anchor_adds_it(
    tmp_path: Path,
) -> None:
    from structlog.testing import capture_logs

    from broker.logging import ALLOWED_KEYS, configure

    net = memory_net(tmp_path / "net", ["IT", "FR"])
    assert net.kafka is not None
    anchor = tmp_path / "net" / "anchor"
    directory = tmp_path / "net" / "directory.json"
    join(tmp_path / "pt", anchor / "trust-anchor.pub")
    config = _file_directory(NodeConfig.load(tmp_path / "pt" / "node.toml"), directory)
    daemon = ConsumerDaemon.from_config(config, transport=net.kafka.transport())
    daemon.listing_poll_s = 0.05
    configure(level="INFO")  # `nbx` (run above) logs warnings only; the daemon logs info too
    with capture_logs() as logs:
        task = asyncio.create_task(daemon.run())
        try:
            assert await wait_for(lambda: bool(_events(logs, "node.waiting-for-listing")))
            assert not daemon.listed()
            assert _events(logs, "daemon.started") == []
            assert len(_events(logs, "node.waiting-for-listing")) == 1
            # a publisher of the new bureau refuses in one line meanwhile
            publisher = Publisher.from_config(config, transport=net.kafka.transport())
            with pytest.raises(KeyDirectoryError) as refused:
                async with publisher as pub:
                    await pub.publish(example("red", issuing_bureau="PT", notice_id="PT-1"), ["IT"])
            assert str(refused.value) == (
                f"{directory}: directory serial 3 does not list PT: the anchor has not added it "
                "yet (nbx directory add --request, then publish)"
            )
            # the anchor adds it (the command's own code: `nbx` itself would set up logging anew)
            add_request(tmp_path / "pt" / "PT.join.json", directory, anchor / "trust-anchor.key")
            assert await wait_for(lambda: bool(_events(logs, "daemon.started")))
            assert daemon.listed()
            red = example("red")
            sent = await net.publish("IT", red, ["PT"])
            assert [o.status for o in sent.outcomes] == ["sent"]
            assert await wait_for(lambda: daemon.sink.notice(red.notice_id, READ) is not None)
        finally:
            daemon.stop()
            await task
            daemon.sink.close()
    waiting = _events(logs, "node.waiting-for-listing")
    kid = daemon.keys.signing_key_id
    assert waiting == [
        {
            "event": "node.waiting-for-listing",
            "log_level": "warning",
            "bureau": "PT",
            "key_id": kid,
            "serial": 3,
        },
    ]
    assert _events(logs, "node.listed") == [
        {"event": "node.listed", "log_level": "info", "bureau": "PT", "key_id": kid, "serial": 4}
    ]
    for event in (*waiting, *_events(logs, "node.listed")):
        assert set(event) - {"log_level"} <= ALLOWED_KEYS
    listed = Directory.load(directory, load_anchor_public_key(anchor / "trust-anchor.pub"))
    assert listed.bureau("PT").name == "NCB Lisbon"


async def test_a_daemon_stopped_while_waiting_for_its_listing_exits_cleanly(
    tmp_path: Path,
) -> None:
    net = memory_net(tmp_path / "net", ["IT", "FR"])
    assert net.kafka is not None
    join(tmp_path / "pt", tmp_path / "net" / "anchor" / "trust-anchor.pub")
    config = _file_directory(
        NodeConfig.load(tmp_path / "pt" / "node.toml"), tmp_path / "net" / "directory.json"
    )
    daemon = ConsumerDaemon.from_config(config, transport=net.kafka.transport())
    task = asyncio.create_task(daemon.run())
    try:
        assert await wait_for(lambda: daemon.directory.refusal() is None)
        assert not daemon.listed()
    finally:
        daemon.stop()
        stats = await task
        daemon.sink.close()
    assert stats.delivered == 0


def test_check_listed_refuses_a_bureau_not_listed() -> None:
    from broker.keys import BureauKeys

    pt, it = BureauKeys.generate("PT"), BureauKeys.generate("IT")
    with pytest.raises(KeyDirectoryError) as refused:
        check_listed(StaticDirectory([it.public()]), "PT")
    assert str(refused.value) == (
        "directory: the directory does not list PT: the anchor has not added it yet "
        "(nbx directory add --request, then publish)"
    )
    check_listed(StaticDirectory([it.public(), pt.public()]), "PT")
    # the daemon waits for its own signing key: listed under the id with another key is not it
    impostor = StaticDirectory([BureauKeys.generate("PT").public()])
    assert not listed(impostor, "PT", pt.signing_key_id, _now())
    assert listed(StaticDirectory([pt.public()]), "PT", pt.signing_key_id, _now())


def _now() -> datetime:
    return datetime.now(UTC)
