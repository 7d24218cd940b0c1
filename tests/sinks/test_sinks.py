"""Both sinks honour the same contract: replay guard, redelivery, lifecycle, purge on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.envelope import Grant, VerifiedPackage, open_package, seal
from broker.keys import BureauKeys, StaticDirectory
from broker.sinks import Applied, JsonlSink, Position, ReceiptRecord, Sink
from broker.vocab import MessageKind, Reason, ReceiptStatus, SendStatus
from tests.audit_access import READ
from tests.sinks.conftest import ALL_STORES, on_disk, open_store, purged_from_disk

IT, FR, ES = (BureauKeys.generate(cc) for cc in ("IT", "FR", "ES"))
DIRECTORY = StaticDirectory([IT.public(), FR.public(), ES.public()])
TOPIC = "nbx.inbox.FR"
CANARY = "CANARY-SURNAME-5512"


def package(
    kind: str = "publish",
    version: int = 1,
    notice_id: str = "IT-1",
    *,
    signer: BureauKeys = IT,
    msg_id: str | None = None,
) -> VerifiedPackage:
    """A real package sealed by ``signer`` (IT) for FR, with ``msg_id`` if given, opened by FR."""
    units = {"person.family_name": CANARY} if kind in ("publish", "update") else {}
    sealed = seal(
        signer=signer,
        kind=kind,
        notice_id=notice_id,
        notice_type="red",
        header={"notice_id": notice_id, "version": version},
        units=units,
        grants={"FR": Grant(frozenset(units), (), "FR@test")},
        handling="H0",
        msg_id=msg_id,
    )
    frame = sealed.package_for(
        "FR", topic=TOPIC, recipient_kid=FR.encryption_key_id,
        recipient_key=FR.encryption_key.public_key(),
    )  # fmt: skip
    return open_package(
        frame,
        topic=TOPIC,
        recipient="FR",
        decryption_keys={FR.encryption_key_id: FR.encryption_key},
        directory=DIRECTORY,
    )


def view(p: VerifiedPackage) -> dict[str, Any]:
    return {"notice_id": p.notice_id, "version": p.header["version"], **(
        {"person": {"family_name": CANARY}} if p.disclosed else {})}  # fmt: skip


@pytest.fixture(params=ALL_STORES)
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sink]:
    s = open_store(request.param, tmp_path / f"FR.{request.param}", request)
    yield s
    s.close()


def test_redelivery_and_replay(sink: Sink) -> None:
    """The same msg id at the same position is a redelivery; at another position a replay; the
    notice is stored once."""
    p = package()
    assert sink.apply(p, view(p), Position(TOPIC, 0, 5)) is Applied.DELIVERED
    assert sink.apply(p, view(p), Position(TOPIC, 0, 5)) is Applied.REDELIVERY
    assert sink.apply(p, view(p), Position(TOPIC, 0, 9)) is Applied.REPLAY
    assert len(sink.notices()) == 1
    seen = sink.seen(p.sender, p.msg_id)
    assert seen is not None
    assert seen.position == Position(TOPIC, 0, 5)
    assert seen.outcome is Applied.DELIVERED


def test_older_version_is_stale(sink: Sink) -> None:
    """Version 2 then version 1: version 1 is logged as stale and version 2 stays."""
    v2, v1 = package("update", 2), package("publish", 1)
    assert sink.apply(v2, view(v2), Position(TOPIC, 0, 1)) is Applied.DELIVERED
    assert sink.apply(v1, view(v1), Position(TOPIC, 0, 2)) is Applied.STALE
    stored = sink.notice("IT-1", READ)
    assert stored is not None
    assert stored["version"] == 2


def test_cancel_purges_the_values_from_the_file(sink: Sink) -> None:
    """After a cancel the notice is 'cancelled', its view and manifest are gone, and the
    surname no longer occurs anywhere in the store's files."""
    p = package()
    sink.apply(p, view(p), Position(TOPIC, 0, 1))
    assert CANARY.encode() in on_disk(sink)
    c = package("cancel")
    assert sink.apply(c, {}, Position(TOPIC, 0, 2)) is Applied.PURGED
    stored = sink.notice("IT-1", READ)
    assert stored is not None
    assert stored["status"] == "cancelled"
    assert stored["view"] is None
    assert purged_from_disk(sink, CANARY)
    later = package("update", 3)
    assert sink.apply(later, view(later), Position(TOPIC, 0, 3)) is Applied.STALE


def test_suspend_and_reject(sink: Sink) -> None:
    """Suspend marks an active notice; a rejection is recorded so a redelivery gets it again."""
    p = package()
    sink.apply(p, view(p), Position(TOPIC, 0, 1))
    s = package("suspend")
    assert sink.apply(s, {}, Position(TOPIC, 0, 2)) is Applied.SUSPENDED
    suspended = sink.notice("IT-1", READ)
    assert suspended is not None
    assert suspended["status"] == "suspended"
    r = package(notice_id="IT-2")
    assert sink.reject(r, Position(TOPIC, 0, 3), Reason.SCHEMA) is Applied.REJECTED
    seen = sink.seen(r.sender, r.msg_id)
    assert seen is not None
    assert (seen.outcome, seen.reason) == (Applied.REJECTED, "schema")
    assert sink.reject(r, Position(TOPIC, 0, 3), Reason.SCHEMA) is Applied.REDELIVERY


def test_sent_and_receipts_make_the_status(sink: Sink) -> None:
    """What was sent and the receipts that came back show per recipient; a duplicate receipt is
    stored once."""
    sink.record_sent("m1", "IT-1", "FR", MessageKind.PUBLISH, SendStatus.SENT, None)
    sink.record_sent("m1", "IT-1", "DE", MessageKind.PUBLISH, SendStatus.FAILED, "unknown bureau")
    receipt = ReceiptRecord(
        "m1", "IT-1", "FR", ReceiptStatus.DELIVERED, None, "2026-01-01T00:00:00+00:00"
    )
    assert sink.record_receipt(receipt) is True
    assert sink.record_receipt(receipt) is False
    status = {r["recipient"]: r["messages"][0] for r in sink.status("IT-1")}
    assert status["FR"]["status"] == "sent"
    assert [x["status"] for x in status["FR"]["receipts"]] == ["delivered"]
    assert status["DE"]["status"] == "failed"
    assert status["DE"]["receipts"] == []


def test_jsonl_state_survives_a_reopen(tmp_path: Path) -> None:
    """The JSON-lines sink rebuilds its replay guard from the file after a restart."""
    path = tmp_path / "FR.jsonl"
    p = package()
    first = JsonlSink(path)
    first.apply(p, view(p), Position(TOPIC, 0, 1))
    first.close()
    again = JsonlSink(path)
    try:
        assert again.apply(p, view(p), Position(TOPIC, 0, 1)) is Applied.REDELIVERY
        assert again.apply(p, view(p), Position(TOPIC, 0, 7)) is Applied.REPLAY
    finally:
        again.close()
