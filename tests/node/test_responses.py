"""Answers to a notice (issue 19, point 1): a recipient's signed ``response`` (located,
arrested, ...) reaches the issuer and the bureaus the notice shares responses with; the issuer
accepts it only from a bureau it sent the notice to that still holds it; a replay, a copy to a
bureau the notice does not share with, a purged notice and an invalid body are refused. On the
in-memory broker (both sinks); the e2e path with ``nbx respond`` / ``nbx status`` is in
tests/node/test_cli_respond.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.envelope import Grant
from broker.errors import NbxError
from broker.node import Publisher, PublishResult
from broker.sinks import open_sink
from broker.sinks.base import ResponseRecord
from broker.vocab import AuditAction, MessageKind, Reason, ResponseKind
from tests.node.helpers import Net, example, memory_net, wait_for

BUREAUS = ("IT", "FR", "DE", "ES")
NOTICE = "IT-2025-0001"
PHOTO = {
    "uri": "https://nbx.fr.example/evidence/arrest-photo-1",
    "sha256": "ab" * 32,
    "media_type": "image/jpeg",
    "title": "photo taken on arrest",
}


def _red() -> Any:
    """IT's red notice, sharing its responses with DE."""
    return example("red", responses_shared_with=["DE"])


def _responses(net: Net, cc: str) -> list[ResponseRecord]:
    return net.daemon(cc).sink.responses(NOTICE)


def _kinds(net: Net, cc: str) -> list[tuple[str, str, str]]:
    """(direction, responder, kind) of every response ``cc`` holds about the notice."""
    return [(r.direction, r.by, r.kind) for r in _responses(net, cc)]


def _respond(net: Net, cc: str, kind: str, **kw: Any) -> Any:
    async def send(pub: Publisher) -> PublishResult:
        return await pub.respond(NOTICE, kind, **kw)

    return net.with_publisher(cc, send)


async def _forge(
    net: Net,
    cc: str,
    to: list[str],
    *,
    issuer: str | None = "IT",
    kind: str = "located",
    body_changes: dict[str, Any] | None = None,
) -> PublishResult:
    """A validly signed response from ``cc`` to ``to`` that :meth:`Publisher.respond` would
    not send (the daemons' checks are what is tested)."""

    async def send(pub: Publisher) -> PublishResult:
        body = {"notice_id": NOTICE, "kind": kind, "at": datetime.now(UTC).isoformat()}
        body.update(body_changes or {})
        header: dict[str, Any] = {
            "notice_id": NOTICE,
            "notice_type": "red",
            MessageKind.RESPONSE.value: body,
        }
        if issuer is not None:
            header["issuing_bureau"] = issuer
        grants = {r: Grant(frozenset(), (), "response:forged") for r in to}
        return await pub._send(  # a hostile sender skips respond()'s checks
            kind=MessageKind.RESPONSE,
            notice_id=NOTICE,
            notice_type="red",
            header=header,
            units={},
            grants=grants,
            handling="H0",
        )

    result: PublishResult = await net.with_publisher(cc, send)
    return result


def _receipts(net: Net, cc: str, msg_id: str) -> set[tuple[str, str, str | None]]:
    """(recipient, status, reason) of the receipts ``cc`` holds for its message ``msg_id``."""
    return {
        (r["recipient"], x["status"], x["reason"])
        for r in net.daemon(cc).sink.status(NOTICE)
        for m in r["messages"]
        if m["msg_id"] == msg_id
        for x in m["receipts"]
    }


@pytest.mark.parametrize("sink", ["sqlite", "jsonl"])
async def test_located_then_arrested_reach_the_issuer_and_the_bureaus_it_shares_with(
    tmp_path: Path, sink: str
) -> None:
    """FR answers IT's red notice ``located`` then ``arrested`` (with a photo by reference):
    IT holds both, DE (in ``responses_shared_with``) holds copies, ES (a recipient not shared
    with) none; each is answered with a delivered receipt; FR keeps what it answered; the audit
    logs hold a disclosure at FR and a collection at IT, each naming the response's kind."""
    net = memory_net(tmp_path, BUREAUS, sink=sink)
    await net.start("IT", "FR", "DE", "ES")
    try:
        await net.publish("IT", _red(), ["FR", "DE", "ES"])
        assert await wait_for(lambda: all(_held(net, cc) for cc in ("FR", "DE", "ES")))
        located = await _respond(net, "FR", "located", note="seen in Lyon, under surveillance")
        assert sorted(located.sent) == ["DE", "IT"]
        arrested = await _respond(
            net, "FR", ResponseKind.ARRESTED, note="provisionally arrested", attachments=[PHOTO]
        )
        want = [("received", "FR", "located"), ("received", "FR", "arrested")]
        assert await wait_for(lambda: _kinds(net, "IT") == want)
        assert await wait_for(lambda: _kinds(net, "DE") == want)
        assert _kinds(net, "FR") == [("sent", "FR", "located"), ("sent", "FR", "arrested")]
        assert _responses(net, "ES") == []
        last = _responses(net, "IT")[-1]
        assert (last.msg_id, last.issuer, last.notice_type) == (arrested.msg_id, "IT", "red")
        assert (last.note, last.attachments, last.to) == (
            "provisionally arrested",
            (PHOTO,),
            ("IT",),
        )
        assert _responses(net, "FR")[0].to == ("DE", "IT")
        delivered = {("IT", "delivered", None), ("DE", "delivered", None)}
        answered = [located.msg_id, arrested.msg_id]
        assert await wait_for(lambda: all(_receipts(net, "FR", m) == delivered for m in answered))
        disclosed = [
            (e.action, e.kind, e.outcome, e.bureaus)
            for e in net.daemon("FR").sink.audit_entries()
            if e.kind == MessageKind.RESPONSE
        ]
        assert disclosed == [
            (AuditAction.DISCLOSURE, "response", "located", ("DE", "IT")),
            (AuditAction.DISCLOSURE, "response", "arrested", ("DE", "IT")),
        ]
        collected = [
            (e.action, e.sender, e.outcome)
            for e in net.daemon("IT").sink.audit_entries()
            if e.kind == MessageKind.RESPONSE
        ]
        assert collected == [
            (AuditAction.COLLECTION, "FR", "located"),
            (AuditAction.COLLECTION, "FR", "arrested"),
        ]
    finally:
        await net.stop()


def _held(net: Net, cc: str) -> bool:
    """Whether ``cc``'s store file holds the notice, read on a connection of its own as a
    publisher (``nbx respond``) reads it: the daemon's own connection sees its batch before the
    commit reaches the file."""
    sink = open_sink(net.configs[cc].sink.url, durable=False)
    try:
        return sink.held_notice(NOTICE) is not None
    finally:
        sink.close()


async def test_the_issuer_refuses_a_response_from_a_bureau_it_did_not_send_the_notice_to(
    tmp_path: Path,
) -> None:
    """ES was never sent the notice: its (forged) response is quarantined ``not-a-recipient``
    at IT and answered rejected; nothing is stored."""
    net = memory_net(tmp_path, BUREAUS)
    await net.start("IT", "FR", "ES")
    try:
        await net.publish("IT", _red(), ["FR"])
        assert await wait_for(lambda: _held(net, "FR"))
        forged = await _forge(net, "ES", ["IT"])
        it = net.daemon("IT")
        assert await wait_for(lambda: it.stats.reasons == {Reason.NOT_A_RECIPIENT: 1})
        assert await wait_for(
            lambda: _receipts(net, "ES", forged.msg_id) == {("IT", "rejected", "not-a-recipient")}
        )
        assert _responses(net, "IT") == []
    finally:
        await net.stop()


async def test_a_copy_is_refused_by_a_bureau_the_notice_does_not_share_with(
    tmp_path: Path,
) -> None:
    """ES holds the notice but is not in ``responses_shared_with``: a copy of FR's response
    sent to it is refused ``not-shared``; a copy to a bureau that does not hold the notice
    (PT) likewise. A response whose issuer is not the receiver and whose responder was not
    addressed (PT to DE) is ``not-a-recipient``."""
    net = memory_net(tmp_path, (*BUREAUS, "PT"))
    await net.start("IT", "FR", "DE", "ES", "PT")
    try:
        await net.publish("IT", _red(), ["FR", "DE", "ES"])
        assert await wait_for(lambda: all(_held(net, cc) for cc in ("FR", "DE", "ES")))
        await _forge(net, "FR", ["ES", "PT"])
        await _forge(net, "PT", ["DE"])
        assert await wait_for(lambda: net.daemon("ES").stats.reasons == {Reason.NOT_SHARED: 1})
        assert await wait_for(lambda: net.daemon("PT").stats.reasons == {Reason.NOT_SHARED: 1})
        de = net.daemon("DE")
        assert await wait_for(lambda: de.stats.reasons == {Reason.NOT_A_RECIPIENT: 1})
        assert all(_responses(net, cc) == [] for cc in ("DE", "ES", "PT"))
    finally:
        await net.stop()


async def test_a_replayed_response_is_quarantined_as_a_replay(tmp_path: Path) -> None:
    """FR's ``located`` written again to IT's inbox: ``replay``, stored once."""
    net = memory_net(tmp_path, BUREAUS)
    assert net.kafka is not None
    await net.start("IT", "FR")
    try:
        await net.publish("IT", _red(), ["FR"])
        assert await wait_for(lambda: _held(net, "FR"))
        await _respond(net, "FR", "located")
        assert await wait_for(lambda: len(_responses(net, "IT")) == 1)
        (record,) = [r for r in net.kafka.log("nbx.inbox.IT") if r.offset == 0]
        net.kafka.append("nbx.inbox.IT", record.value or b"", key=record.key)
        it = net.daemon("IT")
        assert await wait_for(lambda: it.stats.reasons == {Reason.REPLAY: 1})
        assert len(_responses(net, "IT")) == 1
    finally:
        await net.stop()


async def test_only_a_bureau_holding_the_notice_may_respond_and_the_notes_go_with_a_purge(
    tmp_path: Path,
) -> None:
    """FR answers, then IT cancels the notice: FR's and DE's copies of the response keep their
    ids and kind but lose the note and attachments with the notice's data; FR can no longer
    respond (refused before anything is sent), and a response it forges anyway is refused by
    IT (``not-a-recipient``: FR's purged receipt says it holds no copy). The issuer cannot
    answer its own notice, nor can a bureau that never received it."""
    net = memory_net(tmp_path, BUREAUS)
    await net.start("IT", "FR", "DE")
    try:
        await net.publish("IT", _red(), ["FR", "DE"])
        assert await wait_for(lambda: _held(net, "FR") and _held(net, "DE"))
        await _respond(net, "FR", "hit", note="possible match", attachments=[PHOTO])
        assert await wait_for(lambda: len(_responses(net, "DE")) == 1)

        async def cancel(pub: Publisher) -> PublishResult:
            details = {"notice_id": NOTICE, "reason": "arrested", "withdraw": True}
            return await pub.lifecycle("cancel", NOTICE, "red", ["FR", "DE"], details=details)

        cancelled = await net.with_publisher("IT", cancel)
        purged = {("FR", "purged", None), ("DE", "purged", None)}
        assert await wait_for(lambda: _receipts(net, "IT", cancelled.msg_id) == purged)
        for cc in ("FR", "DE"):
            (kept,) = _responses(net, cc)
            assert (kept.kind, kept.note, kept.attachments) == ("hit", None, ())
        assert _responses(net, "IT")[0].note == "possible match"  # the issuer's own record
        with pytest.raises(NbxError, match=f"^{NOTICE}: cancelled here: only a bureau that"):
            await _respond(net, "FR", "arrested")
        with pytest.raises(NbxError, match=f"^{NOTICE}: no such notice received by this node"):
            await _respond(net, "IT", "located")
        with pytest.raises(NbxError, match=f"^{NOTICE}: no such notice received by this node"):
            await _respond(net, "ES", "located")
        await _forge(net, "FR", ["IT"], kind="arrested")
        it = net.daemon("IT")
        assert await wait_for(lambda: it.stats.reasons == {Reason.NOT_A_RECIPIENT: 1})
        assert len(_responses(net, "IT")) == 1
    finally:
        await net.stop()


async def test_an_invalid_response_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    """``no-action`` without a note, an unknown kind, a note over the schema's limit, an
    attachment without a content hash and more than 20 attachments: one clear error each,
    nothing sent."""
    net = memory_net(tmp_path, BUREAUS)
    await net.start("FR")
    try:
        await net.publish("IT", _red(), ["FR"])
        assert await wait_for(lambda: _held(net, "FR"))
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("no-action", {}, "note: required for a no-action response"),
            ("caught", {}, "kind: Input should be 'hit', 'located'"),
            ("located", {"note": "x" * 20_001}, "note: String should have at most"),
            (
                "located",
                {"attachments": [{"uri": "https://x.example/a", "media_type": "image/png"}]},
                "attachments.0.sha256: Field required",
            ),
            ("hit", {"attachments": [PHOTO] * 21}, "attachments: List should have at most 20"),
        ]
        for kind, kw, message in cases:
            with pytest.raises(NbxError, match="^invalid response: .*" + message):
                await _respond(net, "FR", kind, **kw)
        assert net.daemon("FR").sink.responses(NOTICE) == []
        assert net.daemon("FR").sink.status(NOTICE) == []
    finally:
        await net.stop()


@pytest.mark.parametrize("sink", ["sqlite", "jsonl"])
async def test_the_responses_go_with_the_last_record_of_the_notice_at_the_retention_sweep(
    tmp_path: Path, sink: str
) -> None:
    """Past every retention: IT's sweep removes its bookkeeping of the notice and the responses
    it received with it; FR's sweep purges the notice (kept as a purged row) and keeps its
    response's id and kind without the note."""
    from datetime import timedelta

    from broker.sinks import open_sink

    net = memory_net(tmp_path, BUREAUS, sink=sink)
    await net.start("IT", "FR")
    try:
        await net.publish("IT", _red(), ["FR"])
        assert await wait_for(lambda: _held(net, "FR"))
        await _respond(net, "FR", "located", note="seen in Lyon")
        assert await wait_for(lambda: len(_responses(net, "IT")) == 1)
    finally:
        await net.stop()
    later = datetime.now(UTC) + timedelta(days=365 * 50)
    for cc in ("IT", "FR"):
        store = open_sink(net.configs[cc].sink.url)
        try:
            store.sweep(later)
            kept = [(r.direction, r.kind, r.note) for r in store.responses(NOTICE)]
        finally:
            store.close()
        assert kept == ([] if cc == "IT" else [("sent", "located", None)]), cc


async def test_a_malformed_response_from_a_recipient_is_refused_with_its_reason(
    tmp_path: Path,
) -> None:
    """Validly signed by FR (a recipient), but: no issuing bureau, an unknown kind, a no-action
    without a note (``schema``); a body naming another notice (``header-mismatch``). Each is
    answered rejected with that reason; nothing is stored."""
    net = memory_net(tmp_path, BUREAUS)
    await net.start("IT", "FR")
    try:
        await net.publish("IT", _red(), ["FR"])
        assert await wait_for(lambda: _held(net, "FR"))
        sent = [
            await _forge(net, "FR", ["IT"], issuer=None),
            await _forge(net, "FR", ["IT"], kind="caught"),
            await _forge(net, "FR", ["IT"], kind="no-action"),
            await _forge(net, "FR", ["IT"], body_changes={"notice_id": "IT-2025-0999"}),
        ]
        reasons = ["schema", "schema", "schema", "header-mismatch"]
        assert await wait_for(
            lambda: (
                [_receipts(net, "FR", r.msg_id) for r in sent]
                == [{("IT", "rejected", reason)} for reason in reasons]
            )
        )
        assert net.daemon("IT").stats.reasons == {Reason.SCHEMA: 3, Reason.HEADER_MISMATCH: 1}
        assert _responses(net, "IT") == []
    finally:
        await net.stop()
