"""Onboarding on the real broker (docs/onboarding.md): a new bureau's daemon, started before the
anchor lists it, waits; the anchor adds its join request and publishes the directory on
``nbx.directory``; the daemon starts consuming and a notice sent to it is delivered, the receipt
reaching the sender. A bad join request meanwhile changes nothing: the directory file and the
waiting node's serial stay as they were."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from broker.cli import keys_cmds, main
from broker.errors import KeyDirectoryError
from broker.logging import configure
from broker.node import ConsumerDaemon
from broker.node.config import NodeConfig
from tests.audit_access import READ
from tests.conftest import broker_impl
from tests.node.helpers import Net, example, wait_for

pytestmark = pytest.mark.e2e


def _events(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[dict[str, Any]]:
    return [dict(e) for e in logs if e["event"] == event]


async def _publish(folder: Path, bootstrap: str) -> None:
    """``nbx directory publish DIR/directory.json --anchor ... --bootstrap`` (its own code, in a
    thread: it runs its own event loop)."""
    publish = keys_cmds.publish.callback
    assert publish is not None
    anchor = folder / "anchor" / "trust-anchor.pub"
    await asyncio.to_thread(publish, folder / "directory.json", anchor, bootstrap)


def _add_request(folder: Path, request: Path) -> None:
    """``nbx directory add --request REQUEST --file DIR/directory.json --anchor-key ...``."""
    add = keys_cmds.add.callback
    assert add is not None
    anchor_key = folder / "anchor" / "trust-anchor.key"
    add(None, None, None, (), None, folder / "directory.json", anchor_key, request)


def _serial(daemon: ConsumerDaemon) -> int:
    """The serial of the directory the daemon follows."""
    return int(getattr(daemon.directory, "serial", 0))


def _delivered(net: Net, notice_id: str, recipient: str) -> bool:
    rows = net.daemon("IT").sink.status(notice_id)
    return any(
        r["recipient"] == recipient
        and any(x["status"] == "delivered" for m in r["messages"] for x in m["receipts"])
        for r in rows
    )


async def test_a_joining_node_waits_for_its_listing_then_receives(
    kafka_bootstrap: str, idempotence_supported: bool, tmp_path: Path
) -> None:
    net = Net(tmp_path / "net", ["IT", "FR"], kafka_bootstrap, idempotence=idempotence_supported)
    folder = tmp_path / "net"
    await _publish(folder, kafka_bootstrap)  # what `nbx network up` does at its start
    joined = CliRunner().invoke(
        main,
        ["node", "join", "PT", "--dir", str(tmp_path / "pt"), "--bootstrap", kafka_bootstrap,
         "--anchor", str(folder / "anchor" / "trust-anchor.pub"), "--name", "NCB Lisbon",
         "--contact", "ncb@example.pt", "--dev-broker", broker_impl()],
    )  # fmt: skip
    assert joined.exit_code == 0, joined.output
    # and a request for a bureau id already taken (FR), to be refused below
    taken = tmp_path / "fr-again"
    again = CliRunner().invoke(
        main,
        ["node", "join", "FR", "--dir", str(taken), "--bootstrap", kafka_bootstrap, "--anchor",
         str(folder / "anchor" / "trust-anchor.pub"), "--name", "NCB Paris", "--contact", "x"],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    config = NodeConfig.load(tmp_path / "pt" / "node.toml")
    config = config.model_copy(
        update={"trust": config.trust.model_copy(update={"poll_interval_s": 0.2})}
    )
    assert config.trust.directory == "topic"
    pt = ConsumerDaemon.from_config(config)
    pt.listing_poll_s = 0.1
    configure(level="INFO")  # `nbx` (run above) logs warnings only; the daemon logs info too
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        task = asyncio.create_task(pt.run())
        await net.start("IT")
        try:
            assert await wait_for(lambda: bool(_events(logs, "node.waiting-for-listing")))
            assert _serial(pt) == 3  # IT and FR, as `network init` signed it
            assert not pt.listed()
            assert [e["bureau"] for e in _events(logs, "daemon.started")] in ([], ["IT"])
            # a bad request (the bureau id is taken) is refused: nothing changes anywhere
            before = (folder / "directory.json").read_bytes()
            with pytest.raises(KeyDirectoryError) as refused:
                _add_request(folder, taken / "FR.join.json")
            assert str(refused.value) == (
                f"{taken / 'FR.join.json'}: bureau FR is already in directory serial 3"
            )
            assert (folder / "directory.json").read_bytes() == before
            assert _serial(pt) == 3  # the waiting node keeps the directory it had
            # the anchor lists PT and publishes: the waiting daemon starts consuming
            _add_request(folder, tmp_path / "pt" / "PT.join.json")
            await _publish(folder, kafka_bootstrap)
            assert await wait_for(
                lambda: any(e["bureau"] == "PT" for e in _events(logs, "daemon.started"))
            )
            assert _serial(pt) == 4
            assert [e["serial"] for e in _events(logs, "node.listed")] == [4]
            # IT's daemon, which checks the answer's signature, follows its file within a second
            assert await wait_for(lambda: _serial(net.daemon("IT")) == 4)
            red = example("red")
            sent = await net.publish("IT", red, ["PT"])
            assert [(o.recipient, o.status) for o in sent.outcomes] == [("PT", "sent")]
            assert await wait_for(lambda: pt.sink.notice(red.notice_id, READ) is not None)
            assert await wait_for(lambda: _delivered(net, red.notice_id, "PT"))
        finally:
            pt.stop()
            await task
            pt.sink.close()
            await net.stop()
    waiting = _events(logs, "node.waiting-for-listing")
    assert [(e["bureau"], e["serial"]) for e in waiting] == [("PT", 3)]
    assert json.loads((tmp_path / "pt" / "PT.join.json").read_text())["join_request"]["bureau"]
