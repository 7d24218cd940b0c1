"""Publisher fan-out: one recipient's failure is reported, not fatal for the others; sender
restrictions exclude recipients before any policy applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import devbroker
from broker.policy import SenderRestrictions
from broker.schemas import HandlingCode
from broker.transport import KafkaSettings, list_topics
from tests.audit_access import READ
from tests.node.helpers import Net, example, read_topic

pytestmark = pytest.mark.e2e


async def test_unknown_recipient_fails_alone_and_restrictions_exclude(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Publishing to FR, DE, NL and ZZ (not in the directory) with NL excluded by the sender:
    FR and DE are sent, NL is 'excluded' by the sender, ZZ 'failed' naming the unknown bureau,
    the sent packages carry the sender's handling code override, and no topic is created for
    the unknown bureau."""
    net = Net(
        tmp_path,
        ("IT", "FR", "DE", "NL"),
        fresh_broker.bootstrap,
        idempotence=idempotence_supported,
    )
    result = await net.publish(
        "IT",
        example("red"),
        ["FR", "DE", "NL", "ZZ"],
        restrictions=SenderRestrictions(exclude=frozenset({"NL"}), handling=HandlingCode.H2),
    )
    by = {o.recipient: o for o in result.outcomes}
    assert by["FR"].status == by["DE"].status == "sent"
    assert by["NL"].status == "excluded"
    assert by["NL"].reason == "excluded-by-sender"
    assert by["ZZ"].status == "failed"
    assert "unknown bureau 'ZZ'" in (by["ZZ"].reason or "")
    assert len(await read_topic(fresh_broker.bootstrap, "nbx.inbox.FR", expect=1)) == 1
    await net.start("FR")
    try:
        from tests.node.helpers import wait_for

        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.sink.notice(result.notice_id, READ) is not None)
        stored = fr.sink.notice(result.notice_id, READ)
        assert stored is not None
        assert stored["view"] is not None
        assert stored["view"]["handling"] == {"code": "H2"}
    finally:
        await net.stop()
    topics = await list_topics(KafkaSettings(bootstrap=fresh_broker.bootstrap))
    assert "nbx.inbox.ZZ" not in topics
