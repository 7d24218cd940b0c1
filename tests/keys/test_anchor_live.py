"""Anchor rotation on the real broker (docs/security/anchor-rotation.md): running daemons pinned to
the old anchor follow the announcement and the take-over published on ``nbx.directory`` (and in a
directory file) without a restart, then refuse what the old anchor signs and what an unannounced
key signs, keeping their serial; a restarted node configured with the old anchor pins the
successor from the chain it stored, and from the chain in the body when that file is gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from broker.cli import keys_cmds
from broker.cli.anchor_cmds import rotate_anchor
from broker.keys import Directory, sign_directory
from broker.keys.anchor import kid_of
from broker.keys.directory_edit import reissue
from broker.keys.directory_topic import publish_directory
from broker.keys.files import init_anchor, load_signing_key
from broker.node import ConsumerDaemon
from broker.node.config import NodeConfig
from broker.node.runtime import FollowedDirectory
from broker.transport import KafkaSettings
from tests.keys.test_anchor import new_key
from tests.node.helpers import Net, example, wait_for


def _with_trust(config: NodeConfig, **changes: Any) -> NodeConfig:
    return config.model_copy(update={"trust": config.trust.model_copy(update=changes)})


def _serial(daemon: ConsumerDaemon) -> int:
    current: Any = getattr(daemon.directory, "current", None)
    return 0 if current is None else int(current.serial)


def _followed(daemon: ConsumerDaemon) -> FollowedDirectory:
    directory = daemon.directory
    assert isinstance(directory, FollowedDirectory)
    return directory


def _anchor(daemon: ConsumerDaemon) -> str:
    """The key id of the anchor the daemon's followed directory has pinned."""
    return kid_of(_followed(daemon).anchor)


async def _publish(folder: Path, bootstrap: str) -> None:
    """``nbx directory publish directory.json --anchor anchor/trust-anchor.pub`` (the old anchor:
    publishing follows the chain too)."""
    publish = keys_cmds.publish.callback
    assert publish is not None
    anchor = folder / "anchor" / "trust-anchor.pub"
    await asyncio.to_thread(publish, folder / "directory.json", anchor, bootstrap)


def _rotate(folder: Path, key: Path, successor: Path | None = None) -> None:
    """``nbx keys rotate-anchor --file directory.json --anchor-key KEY [--successor PUB]``."""
    callback = rotate_anchor.callback
    assert callback is not None
    callback(folder / "directory.json", key, successor, None)


@pytest.mark.e2e
async def test_running_daemons_follow_an_anchor_rotation_without_restart(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR and DE read ``nbx.directory``, IT reads the directory file; all three are pinned to the
    old anchor A. A announces B and B takes over (``nbx keys rotate-anchor``, published with
    ``nbx directory publish``): each daemon pins B while running and a notice is delivered under
    B's directory. Then a higher serial signed by A, and one signed by a key nobody announced, are
    published: every daemon skips both and keeps the take-over's serial and anchor B."""
    net = Net(
        tmp_path, ["FR", "DE", "IT", "US"], kafka_bootstrap, idempotence=idempotence_supported
    )
    for cc in ("FR", "DE"):
        net.configs[cc] = _with_trust(net.configs[cc], directory="topic")
    net.configs["IT"] = _with_trust(net.configs["IT"], poll_interval_s=0.1)
    await _publish(tmp_path, kafka_bootstrap)
    await net.start("FR", "DE", "IT")
    daemons = [net.daemon(cc) for cc in ("FR", "DE", "IT")]
    old_key = tmp_path / "anchor" / "trust-anchor.key"
    successor = init_anchor(tmp_path / "successor")
    a, b = kid_of(load_signing_key(old_key).public_key()), kid_of(successor.public_key())
    try:
        first = example("red", issuing_bureau="US", notice_id="US-2026-0101")
        assert (await net.publish("US", first, ["FR", "DE", "IT"])).sent == ["DE", "FR", "IT"]
        assert await wait_for(lambda: all(d.stats.delivered == 1 for d in daemons))
        start = _serial(daemons[0])
        assert {_anchor(d) for d in daemons} == {a}

        _rotate(tmp_path, old_key, tmp_path / "successor" / "trust-anchor.pub")  # announce
        await _publish(tmp_path, kafka_bootstrap)
        assert await wait_for(lambda: all(_serial(d) == start + 1 for d in daemons), 30.0)
        assert {_anchor(d) for d in daemons} == {a}

        _rotate(tmp_path, tmp_path / "successor" / "trust-anchor.key")  # take over
        await _publish(tmp_path, kafka_bootstrap)
        taken = start + 2
        assert await wait_for(lambda: all(_serial(d) == taken for d in daemons), 30.0)
        assert {_anchor(d) for d in daemons} == {b}

        second = example("red", issuing_bureau="US", notice_id="US-2026-0102")
        assert (await net.publish("US", second, ["FR", "DE", "IT"])).sent == ["DE", "FR", "IT"]
        assert await wait_for(lambda: all(d.stats.delivered == 2 for d in daemons))

        # the old anchor signs a higher serial; a rogue key signs one naming itself the anchor
        old = load_signing_key(old_key)
        current = Directory.from_signed(
            (tmp_path / "directory.json").read_bytes(), successor.public_key()
        ).body
        late = reissue(current, now=datetime.now(UTC)).model_copy(
            update={"anchor_kid": a, "anchor_chain": ()}
        )
        rogue = new_key()
        unannounced = reissue(late, now=datetime.now(UTC)).model_copy(
            update={"anchor_kid": kid_of(rogue.public_key())}
        )
        settings = KafkaSettings(bootstrap=kafka_bootstrap, enable_idempotence=False)
        it_file = tmp_path / "directory.json"
        genuine = it_file.read_bytes()
        with capture_logs() as logs:
            await publish_directory(settings, sign_directory(late, old))
            await publish_directory(settings, sign_directory(unannounced, rogue))
            it_file.write_bytes(sign_directory(unannounced, rogue))

            def skipped(topic: str) -> int:
                return sum(
                    1 for e in logs if e["event"] == "directory.skipped" and e["topic"] == topic
                )

            # FR and DE skip both records, IT skips the file
            assert await wait_for(
                lambda: (
                    skipped("nbx.directory") >= 4 and skipped(_followed(daemons[2]).source) >= 1
                ),
                30.0,
            )
        reasons = {e["reason"] for e in logs if e["event"] == "directory.skipped"}
        assert reasons == {"unannounced-anchor"}
        assert [_serial(d) for d in daemons] == [taken] * 3
        assert {_anchor(d) for d in daemons} == {b}
        it_file.write_bytes(genuine)

        # nbx directory fetch --anchor OLD.pub follows the chain to the successor's newest serial
        fetch = keys_cmds.fetch.callback
        assert fetch is not None
        fetched = tmp_path / "fetched.json"
        old_pub = tmp_path / "anchor" / "trust-anchor.pub"
        await asyncio.to_thread(fetch, fetched, old_pub, kafka_bootstrap, None, 0)
        assert fetched.read_bytes() == genuine
        third = example("red", issuing_bureau="US", notice_id="US-2026-0103")
        assert (await net.publish("US", third, ["FR", "DE", "IT"])).sent == ["DE", "FR", "IT"]
        assert await wait_for(lambda: all(d.stats.delivered == 3 for d in daemons))
        assert [_serial(d) for d in daemons] == [taken] * 3
        assert {_anchor(d) for d in daemons} == {b}
    finally:
        await net.stop()


@pytest.mark.e2e
async def test_a_restarted_node_with_the_old_anchor_configured_pins_the_successor(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR followed the rotation on ``nbx.directory`` and stops; its node.toml still names the
    old anchor. Restarted, it pins the successor from the chain stored beside its store and
    delivers; restarted again with that serial file removed, it follows the chain in the body
    of the successor's directory. Old records of A on the topic change nothing."""
    net = Net(tmp_path, ["FR", "US"], kafka_bootstrap, idempotence=idempotence_supported)
    net.configs["FR"] = _with_trust(net.configs["FR"], directory="topic")
    config = net.configs["FR"]
    await _publish(tmp_path, kafka_bootstrap)
    old_key = tmp_path / "anchor" / "trust-anchor.key"
    successor = init_anchor(tmp_path / "successor")
    b = kid_of(successor.public_key())
    await net.start("FR")
    fr = net.daemon("FR")
    try:
        _rotate(tmp_path, old_key, tmp_path / "successor" / "trust-anchor.pub")
        await _publish(tmp_path, kafka_bootstrap)
        _rotate(tmp_path, tmp_path / "successor" / "trust-anchor.key")
        await _publish(tmp_path, kafka_bootstrap)
        assert await wait_for(lambda: _anchor(fr) == b, 30.0)
        taken = _serial(fr)
    finally:
        await net.stop()
    assert config.serial_path().exists()

    for n, remove in enumerate((False, True)):
        if remove:
            config.serial_path().unlink()
        await net.start("FR")
        again = net.daemon("FR")
        try:
            assert await wait_for(lambda: _serial(again) == taken, 30.0)  # noqa: B023
            assert _anchor(again) == b
            notice = example("red", issuing_bureau="US", notice_id=f"US-2026-020{n}")
            assert (await net.publish("US", notice, ["FR"])).sent == ["FR"]
            assert await wait_for(lambda: again.stats.delivered == 1)  # noqa: B023
        finally:
            await net.stop()
