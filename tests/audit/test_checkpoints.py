"""The daemon's housekeeping signs the chain head (count, head, its clock's time) with the
bureau's key; nothing new since the last checkpoint: none is added."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from broker.sinks.audit import checkpoint_payload
from broker.wire.canonical import b64u_decode
from tests.node.helpers import example, memory_net, wait_for


async def test_housekeeping_signs_a_checkpoint_at_the_clock_time(tmp_path: Path) -> None:
    net = memory_net(tmp_path, ("IT", "FR"))
    try:
        fr = net.daemon("FR")
        fr.clock = lambda: datetime(2029, 5, 4, 3, 2, 1, tzinfo=UTC)  # before the notice expires
        await net.start("FR")
        await net.publish("IT", example("red"), ["FR"])
        assert await wait_for(lambda: len(fr.sink.audit_entries()) == 1)
        await fr.housekeep(producer=None)  # type: ignore[arg-type]
        (cp,) = fr.sink.checkpoints()
        head = fr.sink.audit_entries()[-1].hash
        assert (cp.bureau, cp.count, cp.head, cp.at) == (
            "FR",
            1,
            head,
            "2029-05-04T03:02:01.000+00:00",
        )
        assert cp.kid == fr.keys.signing_key_id
        fr.keys.signing_key.public_key().verify(
            b64u_decode(cp.signature), checkpoint_payload("FR", 1, head, cp.at)
        )
        assert fr.audit_checkpoint() is None  # nothing new
        assert len(fr.sink.checkpoints()) == 1
    finally:
        await net.stop()
