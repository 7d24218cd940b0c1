"""Running nodes follow the signed directory (docs/security/directory.md) on the real broker.

A revocation published with ``nbx directory publish`` while daemons run reaches every daemon within
seconds (measured here; the figure is in docs/security/directory.md), a directory file replaced on
disk is picked up, a lower serial after a restart is refused, and a node that cannot confirm its
directory for longer than ``trust.max_staleness_s`` stops accepting.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from broker import devbroker
from broker.cli import keys_cmds
from broker.node import ConsumerDaemon
from broker.node.config import NodeConfig
from broker.node.runtime import TopicDirectory
from tests.conftest import broker_impl
from tests.node.helpers import Net, example, wait_for, wait_until_idle

pytestmark = pytest.mark.e2e


def _with_trust(config: NodeConfig, **changes: Any) -> NodeConfig:
    return config.model_copy(update={"trust": config.trust.model_copy(update=changes)})


def _signing_kid(net_folder: Path, cc: str) -> str:
    doc = json.loads((net_folder / cc / "keys" / f"{cc}.public.json").read_text())
    return str(next(k["kid"] for k in doc["keys"] if k["use"] == "sign"))


async def _cli_publish(folder: Path, bootstrap: str) -> None:
    """``nbx directory publish`` (the command's own code, in a thread: it runs its own loop)."""
    publish = keys_cmds.publish.callback
    assert publish is not None
    anchor = folder / "anchor" / "trust-anchor.pub"
    await asyncio.to_thread(publish, folder / "directory.json", anchor, bootstrap)


def _cli_revoke(folder: Path, cc: str, kid: str) -> None:
    """``nbx directory revoke CC --kid KID --reason key-compromise`` (at now)."""
    revoke = keys_cmds.revoke.callback
    assert revoke is not None
    revoke(
        cc,
        kid,
        "now",
        "key-compromise",
        folder / "directory.json",
        folder / "anchor" / "trust-anchor.key",
    )


def _serial(daemon: ConsumerDaemon) -> int:
    """The serial the daemon's lookup holds (a followed directory's current one, or a plain
    loaded Directory's)."""
    current: Any = getattr(daemon.directory, "current", daemon.directory)
    return 0 if current is None else int(current.serial)


async def test_revocation_reaches_running_daemons(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Two daemons read ``nbx.directory``; US's signing key is revoked and the revocation is
    published with ``nbx directory publish`` while they run. Each daemon holds the new serial
    within 5 s (the time is printed: run with -s), and the next notice signed with the revoked
    key is quarantined by both as ``key-revoked`` rather than delivered."""
    net = Net(tmp_path, ["FR", "DE", "US"], kafka_bootstrap, idempotence=idempotence_supported)
    for cc in ("FR", "DE"):
        net.configs[cc] = _with_trust(net.configs[cc], directory="topic")
    await _cli_publish(tmp_path, kafka_bootstrap)
    await net.start("FR", "DE")
    fr, de = net.daemon("FR"), net.daemon("DE")
    try:
        first = example("red", issuing_bureau="US", notice_id="US-2026-0001")
        assert (await net.publish("US", first, ["FR", "DE"])).sent == ["DE", "FR"]
        assert await wait_for(lambda: fr.stats.delivered == 1 and de.stats.delivered == 1)
        before = _serial(fr)
        assert before == _serial(de) > 0

        _cli_revoke(tmp_path, "US", _signing_kid(tmp_path, "US"))
        started = time.monotonic()
        await _cli_publish(tmp_path, kafka_bootstrap)
        took: dict[str, float] = {}

        def followed() -> bool:
            for cc, daemon in (("FR", fr), ("DE", de)):
                if cc not in took and _serial(daemon) > before:
                    took[cc] = time.monotonic() - started
            return len(took) == 2

        assert await wait_for(followed, timeout_s=15.0), f"still on serial {before}: {took}"
        print(f"\nrevocation published -> daemon refuses the key: {took}")
        assert max(took.values()) < 5.0, took

        second = example("red", issuing_bureau="US", notice_id="US-2026-0002")
        assert (await net.publish("US", second, ["FR", "DE"])).sent == ["DE", "FR"]
        assert await wait_for(lambda: fr.stats.quarantined == 1 and de.stats.quarantined == 1)
        assert fr.stats.reasons == de.stats.reasons == {"key-revoked": 1}
        assert fr.stats.delivered == de.stats.delivered == 1
    finally:
        await net.stop()


async def test_a_directory_file_replaced_on_disk_is_picked_up(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """A daemon reading a directory file: ``nbx directory revoke`` rewrites the file while it
    runs, and the next notice signed with the revoked key is quarantined as key-revoked."""
    net = Net(tmp_path, ["FR", "US"], kafka_bootstrap, idempotence=idempotence_supported)
    net.configs["FR"] = _with_trust(net.configs["FR"], poll_interval_s=0.1)
    await net.start("FR")
    fr = net.daemon("FR")
    try:
        first = example("red", issuing_bureau="US", notice_id="US-2026-0011")
        assert (await net.publish("US", first, ["FR"])).sent == ["FR"]
        assert await wait_for(lambda: fr.stats.delivered == 1)
        before = _serial(fr)
        _cli_revoke(tmp_path, "US", _signing_kid(tmp_path, "US"))
        assert await wait_for(lambda: _serial(fr) == before + 1, timeout_s=15.0)
        second = example("red", issuing_bureau="US", notice_id="US-2026-0012")
        assert (await net.publish("US", second, ["FR"])).sent == ["FR"]
        assert await wait_for(lambda: fr.stats.quarantined == 1)
        assert fr.stats.reasons == {"key-revoked": 1}
        assert fr.stats.delivered == 1
    finally:
        await net.stop()


async def test_a_lower_serial_on_the_topic_after_a_restart_is_refused(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR ran with serial 3 (a directory file); it restarts reading ``nbx.directory``, where only
    serial 2 of its anchor is (a re-created topic, an old record produced again): the daemon
    refuses to start with one line naming both serials, rather than bring revoked keys back."""
    net = Net(tmp_path, ["FR", "US"], kafka_bootstrap, idempotence=idempotence_supported)
    directory = tmp_path / "directory.json"
    newest = directory.read_bytes()  # serial 3
    await net.start("FR")
    fr = net.daemon("FR")
    try:
        notice = example("red", issuing_bureau="US", notice_id="US-2026-0021")
        assert (await net.publish("US", notice, ["FR"])).sent == ["FR"]
        assert await wait_for(lambda: fr.stats.delivered == 1)
        assert _serial(fr) == 3
    finally:
        await net.stop()

    from broker.keys import Directory, sign_directory
    from broker.keys.files import load_signing_key

    anchor = load_signing_key(tmp_path / "anchor" / "trust-anchor.key", None)
    body = Directory.from_signed(newest, anchor.public_key()).body
    older = body.model_copy(update={"serial": 2})
    directory.write_bytes(sign_directory(older, anchor))
    await _cli_publish(tmp_path, kafka_bootstrap)  # the topic holds serial 2 only

    restarted = ConsumerDaemon.from_config(_with_trust(net.configs["FR"], directory="topic"))
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the message is what matters
            await asyncio.wait_for(restarted.run(connect_timeout_s=20), 60)
    finally:
        restarted.sink.close()
    assert str(caught.value) == (
        f"nbx.directory: the newest directory on {kafka_bootstrap} is serial 2, older than "
        "serial 3 this node already verified (rollback refused)"
    )


async def test_a_stale_directory_stops_acceptance_without_losing_anything(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR's directory file disappears; after ``max_staleness_s`` the daemon pauses (a notice that
    arrives meanwhile is neither delivered nor quarantined nor committed) and a publisher using
    the same directory refuses to publish; when the file is back the notice is delivered."""
    from broker.node import Publisher

    net = Net(tmp_path, ["FR", "US"], kafka_bootstrap, idempotence=idempotence_supported)
    own = tmp_path / "FR" / "directory.json"
    own.write_bytes((tmp_path / "directory.json").read_bytes())
    net.configs["FR"] = _with_trust(
        net.configs["FR"], directory=str(own), poll_interval_s=0.1, max_staleness_s=1.0
    )
    await net.start("FR")
    fr = net.daemon("FR")
    try:
        first = example("red", issuing_bureau="US", notice_id="US-2026-0031")
        assert (await net.publish("US", first, ["FR"])).sent == ["FR"]
        assert await wait_for(lambda: fr.stats.delivered == 1)

        saved = own.read_bytes()
        own.unlink()
        assert await wait_for(lambda: fr.stats.paused > 0, timeout_s=15.0)
        second = example("red", issuing_bureau="US", notice_id="US-2026-0032")
        assert (await net.publish("US", second, ["FR"])).sent == ["FR"]
        paused = fr.stats.paused
        # the daemon keeps polling (paused) for a while: nothing is taken in meanwhile
        assert await wait_for(lambda: fr.stats.paused >= paused + 10, timeout_s=15.0)
        assert fr.stats.delivered == 1
        assert fr.stats.quarantined == 0

        fr_pub = Publisher(fr.keys, fr.directory, fr.settings, policies=fr.policies)
        async with fr_pub:
            notice = example("red", issuing_bureau="FR", notice_id="FR-2026-0031")
            with pytest.raises(Exception, match=r"trust\.max_staleness_s = 1 s"):
                await fr_pub.publish(notice, ["US"])

        own.write_bytes(saved)
        assert await wait_for(lambda: fr.stats.delivered == 2, timeout_s=15.0)
        assert fr.stats.quarantined == 0
    finally:
        await net.stop()


@pytest.mark.skipif(
    broker_impl() == "tansu", reason="tansu keeps its data in memory: a restart loses it"
)
async def test_a_directory_topic_that_cannot_be_read_stops_acceptance(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """The broker goes away under a daemon that reads ``nbx.directory``: after
    ``max_staleness_s`` the directory is stale and the daemon pauses; once the broker is back the
    reader catches up, the directory is confirmed again and the daemon delivers."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ["FR", "US"], bootstrap, idempotence=idempotence_supported)
    net.configs["FR"] = _with_trust(
        net.configs["FR"], directory="topic", poll_interval_s=0.2, max_staleness_s=2.0
    )
    await _cli_publish(tmp_path, bootstrap)
    await net.start("FR")
    fr = net.daemon("FR")
    directory = fr.directory
    assert isinstance(directory, TopicDirectory)
    try:
        first = example("red", issuing_bureau="US", notice_id="US-2026-0041")
        assert (await net.publish("US", first, ["FR"])).sent == ["FR"]
        assert await wait_for(lambda: fr.stats.delivered == 1)
        assert directory.refusal() is None
        # the batch is committed (its receipt acknowledged) before the broker goes: a batch in
        # flight would wait for the broker's acknowledgements instead of reaching the gate
        idle = await wait_until_idle(fr, net.tasks["FR"], bootstrap, "nbx.FR", ("nbx.inbox.FR",))
        assert idle

        await asyncio.to_thread(fresh_broker.stop, clean=False)
        assert await wait_for(lambda: directory.refusal() == "stale", timeout_s=30.0)
        assert await wait_for(lambda: fr.stats.paused > 0)

        again = await asyncio.to_thread(
            devbroker.start,
            fresh_broker.impl,
            port=fresh_broker.port,
            data_dir=fresh_broker.data_dir,
        )
        again.owns_data_dir = False
        fresh_broker.process, fresh_broker._log_file = again.process, again._log_file
        fresh_broker.log_path = again.log_path
        assert await wait_for(lambda: directory.refusal() is None, timeout_s=60.0)
        second = example("red", issuing_bureau="US", notice_id="US-2026-0042")
        assert (await net.publish("US", second, ["FR"])).sent == ["FR"]
        assert await wait_for(lambda: fr.stats.delivered == 2, timeout_s=60.0)
        assert fr.stats.quarantined == 0
    finally:
        # bounded: a daemon whose broker is gone for good can wait on it (a failure, not a hang)
        await asyncio.wait_for(net.stop(), timeout=120)


async def test_forged_and_older_records_on_the_topic_are_refused_while_running(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Someone with write access to ``nbx.directory`` produces a forged directory (a higher serial
    that does not verify) and the previous serial again while a daemon follows the topic: both
    are refused and logged (offsets, serials, reason; nothing else), the daemon keeps the newest
    serial and the revoked key stays revoked."""
    from structlog.testing import capture_logs

    from broker.keys.directory_topic import publish_directory
    from broker.transport import KafkaSettings

    net = Net(tmp_path, ["FR", "US"], kafka_bootstrap, idempotence=idempotence_supported)
    net.configs["FR"] = _with_trust(net.configs["FR"], directory="topic")
    older = (tmp_path / "directory.json").read_bytes()  # serial 3
    _cli_revoke(tmp_path, "US", _signing_kid(tmp_path, "US"))  # serial 4
    await _cli_publish(tmp_path, kafka_bootstrap)
    await net.start("FR")
    fr = net.daemon("FR")
    try:
        assert await wait_for(lambda: _serial(fr) == 4)
        forged = (tmp_path / "directory.json").read_bytes().replace(b'"serial": 4', b'"serial": 5')
        settings = KafkaSettings(bootstrap=kafka_bootstrap, enable_idempotence=False)
        with capture_logs() as logs:
            await publish_directory(settings, forged)
            await publish_directory(settings, older)

            def seen(event: str) -> bool:
                return any(e["event"] == event for e in logs)

            assert await wait_for(lambda: seen("directory.skipped") and seen("directory.refused"))
        refused = next(e for e in logs if e["event"] == "directory.refused")
        assert set(refused) == {
            "event",
            "log_level",
            "topic",
            "offset",
            "serial",
            "current_serial",
            "reason",
        }
        assert (refused["serial"], refused["current_serial"], refused["reason"]) == (
            3,
            4,
            "rollback",
        )
        skipped = next(e for e in logs if e["event"] == "directory.skipped")
        assert skipped["reason"] == "unverified"
        assert _serial(fr) == 4

        notice = example("red", issuing_bureau="US", notice_id="US-2026-0051")
        assert (await net.publish("US", notice, ["FR"])).sent == ["FR"]
        assert await wait_for(lambda: fr.stats.quarantined == 1)
        assert fr.stats.reasons == {"key-revoked": 1}
    finally:
        await net.stop()
