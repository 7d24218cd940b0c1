"""Every action leaves exactly one audit entry (in-memory broker): collection, alteration,
erasure (cancel), rejection (stale, declined-by-policy), quarantine, disclosure, consultation;
a redelivery adds none."""

from __future__ import annotations

from pathlib import Path

from broker.sinks import Sink
from broker.sinks.audit import verify
from broker.sinks.base import AuditEntry
from broker.vocab import AuditAction
from tests.audit_access import READ
from tests.node.helpers import example, memory_net, wait_for


def actions(sink: Sink) -> list[tuple[str, str | None, str | None, str | None]]:
    """(action, kind, outcome, reason) of every entry, in order."""
    return [(e.action, e.kind, e.outcome, e.reason) for e in sink.audit_entries()]


def intact(entries: list[AuditEntry]) -> bool:
    return verify(entries, [], lambda cp: None) is None


async def test_receive_and_send_paths_leave_one_entry_each(tmp_path: Path) -> None:
    net = memory_net(tmp_path, ("IT", "FR"))
    v1 = example("red")
    v2 = example("red", version=2)
    await net.start("FR", "IT")
    try:
        first = await net.publish("IT", v1, ["FR"])
        fr = net.daemon("FR").sink
        assert await wait_for(lambda: len(fr.audit_entries()) == 1)
        await net.publish("IT", v2, ["FR"])
        assert await wait_for(lambda: len(fr.audit_entries()) == 2)
        await net.publish("IT", v1, ["FR"])  # older than v2: stale
        assert await wait_for(lambda: len(fr.audit_entries()) == 3)

        async def cancel(pub: object) -> object:
            return await pub.lifecycle(  # type: ignore[attr-defined]
                "cancel", v1.notice_id, "red", ["FR"], details={"reason": "arrested"}
            )

        cancelled = await net.with_publisher("IT", cancel)
        assert await wait_for(lambda: len(fr.audit_entries()) == 4)
        entries = fr.audit_entries()
        assert actions(fr) == [
            (AuditAction.COLLECTION, "publish", "delivered", None),
            (AuditAction.ALTERATION, "update", "delivered", None),
            (AuditAction.REJECTION, "publish", "stale", "stale"),
            (AuditAction.ERASURE, "cancel", "purged", "cancel"),
        ]
        assert [e.seq for e in entries] == [1, 2, 3, 4]
        assert {e.sender for e in entries} == {"IT"}
        assert entries[0].msg_id == first.msg_id
        assert entries[3].msg_id == cancelled.msg_id
        assert all(e.notice_id == v1.notice_id and e.notice_type == "red" for e in entries)
        assert intact(entries)
        # the sender's side: one disclosure per message sent, with its recipients
        it = net.daemon("IT").sink
        sent = [e for e in it.audit_entries() if e.action == AuditAction.DISCLOSURE]
        assert [(e.kind, e.bureaus, e.sender) for e in sent] == [
            ("publish", ("FR",), "IT"),
            ("update", ("FR",), "IT"),
            ("publish", ("FR",), "IT"),
            ("cancel", ("FR",), "IT"),
        ]
        assert all(e.operator for e in sent)
        # a read of the view: one consultation with operator and purpose
        fr.notice(v1.notice_id, READ)
        last = fr.audit_entries()[-1]
        assert (last.action, last.operator, last.purpose) == ("consultation", "test", "test")
        assert intact(fr.audit_entries())
    finally:
        await net.stop()
