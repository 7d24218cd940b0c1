"""Issue 19, point 3: a diffusion goes to exactly its addressees. The publisher refuses any other
audience; a receiving bureau that is not an addressee (a diffusion from a sender that skipped the
check) quarantines it as ``not-in-addressees`` and answers ``rejected``; the reviewer may hold it.
In memory, and once on the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import devbroker
from broker.errors import NbxError
from broker.node import publisher as publisher_module
from broker.schemas import NoticeBase
from broker.vocab import ALL, Reason
from tests.audit_access import READ
from tests.node.helpers import Net, example, memory_net, wait_for

BUREAUS = ("SE", "NO", "DK", "FR")


def _diffusion(addressees: list[str]) -> NoticeBase:
    return example("diffusion", issuing_bureau="SE", addressees=addressees)


@pytest.mark.parametrize(
    ("to", "message"),
    [
        (
            ["NO"],
            "diffusion {id} goes to exactly its addressees (DK, NO); addressees not "
            "among the recipients: DK",
        ),
        (
            ["NO", "DK", "FR"],
            "diffusion {id} goes to exactly its addressees (DK, NO); recipients not "
            "among the addressees: FR",
        ),
        (
            ALL,
            "diffusion {id} goes to exactly its addressees (DK, NO); recipients not "
            "among the addressees: FR",
        ),
    ],
)
async def test_the_publisher_sends_a_diffusion_to_its_addressees_only(
    tmp_path: Path, to: list[str] | str, message: str
) -> None:
    """Too few, too many, or ``all`` on a larger network: refused before anything is sent."""
    net = memory_net(tmp_path / "net", BUREAUS)
    diffusion = _diffusion(["NO", "DK"])
    with pytest.raises(NbxError) as info:
        await net.publish("SE", diffusion, to)
    assert str(info.value) == message.format(id=diffusion.notice_id)
    assert net.daemon("SE").sink.status(diffusion.notice_id) == []


async def _story(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    """SE sends a diffusion addressed to NO to its addressee (delivered), then, with its own
    check switched off (an old or hostile sender), to FR as well: FR quarantines it."""
    diffusion = _diffusion(["NO"])
    await net.start("NO", "FR", "SE")
    try:
        sent = await net.publish("SE", diffusion, ["NO"])
        assert [o.status for o in sent.outcomes] == ["sent"]
        assert await wait_for(lambda: net.daemon("NO").stats.delivered == 1)
        monkeypatch.setattr(publisher_module, "addressee_problem", lambda *_: None)
        update = example("diffusion", issuing_bureau="SE", addressees=["NO"], version=2)
        await net.publish("SE", update, ["NO", "FR"])
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.stats.quarantined == 1)
        assert fr.stats.reasons == {Reason.NOT_IN_ADDRESSEES.value: 1}
        assert fr.stats.delivered == 0
        assert fr.sink.notice(diffusion.notice_id, READ) is None
        assert await wait_for(lambda: net.daemon("NO").stats.delivered == 2)

        def fr_rejected() -> bool:
            return any(
                x["status"] == "rejected" and x["reason"] == Reason.NOT_IN_ADDRESSEES
                for r in net.daemon("SE").sink.status(diffusion.notice_id)
                if r["recipient"] == "FR"
                for m in r["messages"]
                for x in m["receipts"]
            )

        assert await wait_for(fr_rejected)
    finally:
        await net.stop()


async def test_a_bureau_not_addressed_quarantines_the_diffusion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _story(memory_net(tmp_path / "net", BUREAUS), monkeypatch)


@pytest.mark.e2e
async def test_a_bureau_not_addressed_quarantines_the_diffusion_on_the_real_broker(
    tmp_path: Path,
    fresh_broker: devbroker.DevBroker,
    idempotence_supported: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same on the real broker (its own, so that FR's inbox holds only this story)."""
    net = Net(tmp_path, BUREAUS, fresh_broker.bootstrap, idempotence=idempotence_supported)
    await net.ensure_topics(*BUREAUS)
    await _story(net, monkeypatch)


async def test_the_reviewer_holds_a_diffusion_it_is_not_addressed(tmp_path: Path) -> None:
    """The reviewer is no addressee, yet it may be sent the diffusion and keeps its copy."""
    net = memory_net(tmp_path / "net", (*BUREAUS, "XR"), roles={"XR": ["reviewer"]})
    diffusion = _diffusion(["NO"])
    await net.start("NO", "XR")
    try:
        sent = await net.publish("SE", diffusion, ["NO", "XR"])
        assert sorted(o.recipient for o in sent.outcomes) == ["NO", "XR"]
        xr = net.daemon("XR")
        assert await wait_for(lambda: xr.stats.delivered == 1)
        assert xr.stats.quarantined == 0
        assert xr.sink.notice(diffusion.notice_id, READ) is not None
    finally:
        await net.stop()
