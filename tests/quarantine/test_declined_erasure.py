"""Issue 20, point 9: a notice this bureau's inbound policy declines leaves no copy it could
decrypt: its quarantine record keeps headers only, its cancel is acknowledged ``purged`` (not
refused with the decline), and no store or topic of the bureau holds the notice's data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.node import Publisher, PublishResult
from broker.node.quarantine import DROPPED_HEADER, REASON_HEADER, SOURCE_HEADER
from broker.schemas import NoticeBase, parse_notice
from broker.transport import inbox, quarantine
from broker.vocab import LifecycleKind, Reason, ReceiptStatus
from tests.node.helpers import EXAMPLES, Net, memory_net, wait_for

#: a name that appears nowhere else: found anywhere, it is a copy of the notice's data
CANARY = "QUARANTINECANARYZZ"


def canary_notice() -> NoticeBase:
    """The example UN notice (which CH's example policy declines) about the canary."""
    data = json.loads((EXAMPLES / "un.json").read_text())
    data["person"]["family_name"] = CANARY
    return parse_notice(data)


def receipts(net: Net, cc: str, notice_id: str) -> list[tuple[str, str, str | None]]:
    """``(kind, status, reason)`` of every receipt ``cc`` holds for ``notice_id``."""
    return [
        (m["kind"], x["status"], x["reason"])
        for r in net.daemon(cc).sink.status(notice_id)
        for m in r["messages"]
        for x in m["receipts"]
    ]


def on_disk(path: Path) -> bytes:
    """A store's bytes with its SQLite companions."""
    extra = [Path(f"{path}-wal"), Path(f"{path}-journal")]
    return path.read_bytes() + b"".join(p.read_bytes() for p in extra if p.exists())


@pytest.mark.parametrize(
    ("sink", "kind"), [("sqlite", "cancel"), ("jsonl", "cancel"), ("sqlite", "erasure")]
)
async def test_a_declined_notice_leaves_no_decryptable_copy_and_its_cancel_is_purged(
    tmp_path: Path, sink: str, kind: LifecycleKind
) -> None:
    """XI publishes a UN notice to CH, whose inbound policy declines UN notices: CH answers
    ``rejected (declined-by-policy)`` and its quarantine record has an empty value with the
    reason, source position and dropped size as headers (no sender, no notice id). XI's cancel
    is then answered ``purged``; neither CH's store nor its quarantine topic holds the canary
    name, and the inbox record (under the topic retention) is the only sealed copy."""
    net = memory_net(tmp_path, ("XI", "CH"), sink=sink)
    notice = canary_notice()
    await net.start("XI", "CH")
    try:
        sent = await net.publish("XI", notice, ["CH"])
        assert sent.sent == ["CH"]

        def answered(kind: str) -> bool:
            return any(k == kind for k, _, _ in receipts(net, "XI", notice.notice_id))

        assert await wait_for(lambda: answered("publish"))
        assert receipts(net, "XI", notice.notice_id) == [
            ("publish", ReceiptStatus.REJECTED, Reason.DECLINED_BY_POLICY)
        ]
        assert net.kafka is not None
        [record] = net.kafka.log(quarantine("CH"))
        headers = dict(record.headers)
        assert record.value == b""
        assert headers[REASON_HEADER] == Reason.DECLINED_BY_POLICY.encode()
        assert headers[SOURCE_HEADER] == f"{inbox('CH')}:0:0".encode()
        assert set(headers) == {REASON_HEADER, SOURCE_HEADER, DROPPED_HEADER}
        assert int(headers[DROPPED_HEADER]) == len(net.kafka.values(inbox("CH"))[0])
        assert notice.notice_id.encode() not in b"".join(k.encode() + v for k, v in record.headers)

        details = {"notice_id": notice.notice_id, "reason": "delisted"}

        async def cancel(pub: Publisher) -> PublishResult:
            return await pub.lifecycle(kind, notice.notice_id, "un", ["CH"], details=details)

        result = await net.with_publisher("XI", cancel)
        assert result.sent == ["CH"]
        assert await wait_for(lambda: answered(kind))
        assert (kind, ReceiptStatus.PURGED, None) in receipts(net, "XI", notice.notice_id)
        assert net.daemon("CH").stats.reasons == {Reason.DECLINED_BY_POLICY.value: 1}
        assert len(net.kafka.log(quarantine("CH"))) == 1  # the cancel is not quarantined
        for value in net.kafka.values(quarantine("CH")):
            assert CANARY.encode() not in value
        store = net.configs["CH"].sink_path()
        assert CANARY.encode() not in on_disk(store)
        for path in store.parent.iterdir():  # every file of CH's store folder
            if path.is_file():
                assert CANARY.encode() not in path.read_bytes(), path
    finally:
        await net.stop()


async def test_a_suspend_of_a_declined_notice_is_acknowledged(tmp_path: Path) -> None:
    """A suspend of a notice CH declined is answered ``delivered`` (nothing held to suspend),
    not ``rejected (declined-by-policy)``, and is not quarantined."""
    net = memory_net(tmp_path, ("XI", "CH"))
    notice = canary_notice()
    await net.start("XI", "CH")
    try:
        await net.publish("XI", notice, ["CH"])
        details = {"notice_id": notice.notice_id, "reason": "under review"}

        async def suspend(pub: Publisher) -> PublishResult:
            return await pub.lifecycle("suspend", notice.notice_id, "un", ["CH"], details=details)

        assert (await net.with_publisher("XI", suspend)).sent == ["CH"]
        assert await wait_for(lambda: len(receipts(net, "XI", notice.notice_id)) == 2)
        assert sorted(receipts(net, "XI", notice.notice_id)) == [
            ("publish", ReceiptStatus.REJECTED, Reason.DECLINED_BY_POLICY),
            ("suspend", ReceiptStatus.DELIVERED, None),
        ]
        assert net.kafka is not None
        assert len(net.kafka.log(quarantine("CH"))) == 1
    finally:
        await net.stop()
