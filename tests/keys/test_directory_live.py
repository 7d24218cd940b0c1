"""Running nodes follow the signed directory (issue 15, findings 1 and 2) on the real broker.

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

from broker.cli import keys_cmds
from broker.node import ConsumerDaemon
from broker.node.config import NodeConfig
from tests.node.helpers import Net, example, wait_for

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
    current = getattr(daemon.directory, "current", None)
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
