"""Notice lifecycle on the in-memory broker: update ordering, cancel purges the store, receipts.

Receipts over a real broker are tested in test_receipts.py."""

from __future__ import annotations

from pathlib import Path

from broker.node import Publisher, PublishResult
from tests.audit_access import READ
from tests.node.helpers import Net, example, memory_net, wait_for

BUREAUS = ("IT", "FR", "DE")


def _receipts(net: Net, cc: str, notice_id: str, status: str) -> list[str]:
    return [
        r["recipient"]
        for r in net.daemon(cc).sink.status(notice_id)
        for m in r["messages"]
        for x in m["receipts"]
        if x["status"] == status
    ]


async def test_older_version_arriving_later_does_not_overwrite(tmp_path: Path) -> None:
    """Version 2 delivered first, then version 1: the store keeps version 2 and its content."""
    net = memory_net(tmp_path, BUREAUS)
    v1 = example("red")
    v2 = example("red", version=2, language="fr")
    await net.start("FR")
    try:
        await net.publish("IT", v2, ["FR"])
        fr = net.daemon("FR").sink

        def version() -> int | None:
            stored = fr.notice(v1.notice_id, READ)
            return None if stored is None else stored["version"]

        assert await wait_for(lambda: version() == 2)
        await net.publish("IT", v1, ["FR"])
        assert await wait_for(lambda: net.daemon("FR").stats.stale == 1)
        stored = fr.notice(v1.notice_id, READ)
        assert stored is not None
        assert stored["version"] == 2
        assert stored["view"] is not None
        assert stored["view"]["language"] == "fr"
    finally:
        await net.stop()


async def test_cancel_purges_personal_data_from_the_file_and_receipts_reach_the_sender(
    tmp_path: Path,
) -> None:
    """After a cancel, the recipients' SQLite files (and WAL) no longer contain the subject's
    name, the notice is marked cancelled, and IT records a 'purged' receipt from each."""
    net = memory_net(tmp_path, BUREAUS)
    red = example("red")
    family = red.person.family_name.encode()  # type: ignore[attr-defined]
    await net.start(*BUREAUS)
    try:
        sent = await net.publish("IT", red, ["FR", "DE"])
        assert sorted(sent.sent) == ["DE", "FR"]
        assert await wait_for(lambda: sorted(_receipts(net, "IT", red.notice_id, "delivered"))
                              == ["DE", "FR"])  # fmt: skip
        files = {cc: net.configs[cc].sink_path() for cc in ("FR", "DE")}

        def on_disk(cc: str) -> bytes:
            path = files[cc]
            extra = [Path(f"{path}-wal"), Path(f"{path}-journal")]
            return path.read_bytes() + b"".join(p.read_bytes() for p in extra if p.exists())

        assert any(family in on_disk(cc) for cc in files), "the name must be stored before"

        async def cancel(pub: Publisher) -> PublishResult:
            return await pub.lifecycle(
                "cancel",
                red.notice_id,
                "red",
                pub.recipients_of(red.notice_id),
                details={"notice_id": red.notice_id, "reason": "arrested", "withdraw": True},
            )

        result = await net.with_publisher("IT", cancel)
        assert sorted(result.sent) == ["DE", "FR"]
        assert await wait_for(lambda: sorted(_receipts(net, "IT", red.notice_id, "purged"))
                              == ["DE", "FR"])  # fmt: skip
        for cc in files:
            stored = net.daemon(cc).sink.notice(red.notice_id, READ)
            assert stored is not None
            assert stored["status"] == "cancelled"
            assert stored["view"] is None
            assert family not in on_disk(cc)
    finally:
        await net.stop()
