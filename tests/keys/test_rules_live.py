"""A running node sees new roles and network rules without a restart (docs/safeguards.md), on the
real broker: ``nbx directory add --role reviewer`` and ``nbx directory rules`` change the signed
directory while a daemon runs, reading either the directory file or the ``nbx.directory`` topic
(after ``nbx directory publish``), and the daemon's key lookup answers with the new roles and
rules."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from broker.cli import keys_cmds
from broker.keys import BureauKeys
from broker.keys.files import write_bureau_keys
from broker.node.config import NodeConfig
from broker.node.runtime import FileDirectory, TopicDirectory
from tests.node.helpers import Net, example, wait_for

pytestmark = pytest.mark.e2e


def _with_trust(config: NodeConfig, **changes: Any) -> NodeConfig:
    return config.model_copy(update={"trust": config.trust.model_copy(update=changes)})


def _command(name: str) -> Any:
    """The code of ``nbx directory NAME`` (called as the CLI calls it)."""
    command = getattr(keys_cmds, name).callback
    assert command is not None
    return command


async def _changed(folder: Path, bootstrap: str, source: str) -> None:
    """After a change of the directory file: publish it when the nodes read the topic."""
    if source == "topic":
        anchor = folder / "anchor" / "trust-anchor.pub"
        await asyncio.to_thread(_command("publish"), folder / "directory.json", anchor, bootstrap)


@pytest.mark.parametrize("source", ["file", "topic"])
async def test_a_running_node_sees_new_roles_and_rules(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path, source: str
) -> None:
    """FR runs; the anchor adds the reviewer XR (``add --role reviewer``), then puts US under
    ``pre`` supervision and narrows review to red notices (``rules``). FR's lookup gives XR's
    role, then the new rules, each within a bounded wait, without a restart (the daemon keeps
    running: nothing is quarantined)."""
    net = Net(tmp_path, ["FR", "US"], kafka_bootstrap, idempotence=idempotence_supported)
    directory_file, anchor_key = (
        tmp_path / "directory.json",
        tmp_path / "anchor" / "trust-anchor.key",
    )
    if source == "topic":
        net.configs["FR"] = _with_trust(net.configs["FR"], directory="topic")
        await _changed(tmp_path, kafka_bootstrap, source)
    else:
        net.configs["FR"] = _with_trust(net.configs["FR"], poll_interval_s=0.1)
    await net.start("FR")
    fr = net.daemon("FR")
    lookup = fr.directory
    assert isinstance(lookup, TopicDirectory if source == "topic" else FileDirectory)
    try:
        assert await wait_for(lambda: lookup.serial > 0, timeout_s=30.0)
        start = lookup.serial
        assert lookup.roles("XR") == frozenset()
        assert lookup.roles("US") == {"member"}
        assert not lookup.rules().needs_review("publish", "red")  # no reviewer yet
        # the node is up and taking notices (nothing needs review yet)
        notice = example("red", issuing_bureau="US", notice_id="US-2026-0101")
        assert (await net.publish("US", notice, ["FR"])).sent == ["FR"]
        assert await wait_for(lambda: fr.stats.delivered == 1)

        write_bureau_keys(tmp_path / "XR", BureauKeys.generate("XR"), None)
        add = _command("add")
        add(
            "XR",
            tmp_path / "XR" / "XR.public.json",
            "Review body",
            ("reviewer",),
            None,
            directory_file,
            anchor_key,
        )
        await _changed(tmp_path, kafka_bootstrap, source)
        assert await wait_for(lambda: lookup.serial == start + 1, timeout_s=15.0)
        assert lookup.roles("XR") == {"member", "reviewer"}
        assert lookup.rules().needs_review("publish", "red")
        assert lookup.rules().needs_review("update", "blue")
        assert lookup.rules().supervision_of("US") == "post"

        rules = _command("rules")
        rules("red", None, ("US=pre",), (), directory_file, anchor_key)
        await _changed(tmp_path, kafka_bootstrap, source)
        assert await wait_for(lambda: lookup.serial == start + 2, timeout_s=15.0)
        assert lookup.rules().supervision_of("US") == "pre"
        assert lookup.rules().needs_review("publish", "red")
        assert not lookup.rules().needs_review("update", "blue")
        assert fr.stats.quarantined == 0
    finally:
        await net.stop()
