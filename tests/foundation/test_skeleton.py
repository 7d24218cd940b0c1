"""The thinnest slice on the real broker: signed, encrypted, delivered, no plaintext on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import devbroker
from tests.audit_access import READ
from tests.node.helpers import Net, example, read_topic, wait_for

pytestmark = pytest.mark.e2e


async def test_published_notice_is_delivered_and_the_wire_holds_no_plaintext(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """IT publishes a red notice to nbx.inbox.FR; FR's daemon verifies and stores it; the raw
    record on the broker, read by a plain aiokafka consumer, holds none of the notice's values,
    field names or its type."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    red = example("red")
    result = await net.publish("IT", red, ["FR"])
    assert result.sent == ["FR"]
    await net.start("FR")
    try:
        fr = net.daemon("FR")
        assert await wait_for(lambda: fr.sink.notice(red.notice_id, READ) is not None)
        stored = fr.sink.notice(red.notice_id, READ)
        assert stored is not None
        assert stored["sender"] == "IT"
    finally:
        await net.stop()

    records = await read_topic(fresh_broker.bootstrap, "nbx.inbox.FR", expect=1)
    assert len(records) == 1
    key, value, headers = records[0]
    wire = key + value + b"".join(k.encode() + v for k, v in headers.items())
    person = red.person  # type: ignore[attr-defined]
    secrets = [
        person.family_name,
        person.forenames,
        str(person.date_of_birth),
        "Torino",
        "YA1234567",
        "Money laundering",
        "family_name",
        "judicial",
        '"red"',
    ]
    for text in secrets:
        assert text.encode() not in wire, text
    assert value.startswith(b"NBX\x00")
    assert set(headers) == {"nbx-format", "nbx-kid"}
