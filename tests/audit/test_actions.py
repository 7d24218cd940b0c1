"""Every action type leaves exactly one audit entry, filled as the plan's rule 1 says, in both
sinks: the receive path (collection, alteration, rejection, decision, erasure by cancel, refusal
and delete, a notice arriving deleted), quarantine (once per position), consultation (operator
and purpose required), and nothing for a redelivery or a rolled-back batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.sinks import JsonlSink, SqliteSink
from broker.sinks.audit import Access, AccessError, verify
from broker.sinks.base import AuditEntry, Position, Sink
from broker.vocab import MessageKind, Reason
from tests.node.states_kit import (
    NOTICE_ID,
    XO,
    Inbox,
    fact_sealed,
    notice,
    opened,
    oversight,
    pipeline,
    review,
)
from tests.node.test_states import fact_sealed_lifecycle
from tests.sinks.conftest import (  # the PostgreSQL case's fixtures too
    ALL_STORES,
    open_store,
    pg_store_url,  # noqa: F401
    pg_template,  # noqa: F401
)

Row = tuple[str, str | None, str | None, str | None, str | None, tuple[str, ...]]


@pytest.fixture(params=ALL_STORES)
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sink]:
    s = open_store(request.param, tmp_path / f"FR.{request.param}", request)
    yield s
    s.close()


def rows(entries: list[AuditEntry]) -> list[Row]:
    """(action, kind, outcome, reason, sender, bureaus) of each entry."""
    return [(e.action, e.kind, e.outcome, e.reason, e.sender, e.bureaus) for e in entries]


def new(sink: Sink, before: int) -> list[Row]:
    """The entries added since there were ``before``; the chain is intact."""
    entries = sink.audit_entries()
    assert verify(entries, [], lambda cp: None) is None
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    return rows(entries[before:])


def test_every_receive_action_leaves_one_entry(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink))
    red = notice()
    inbox.deliver(red)
    assert new(sink, 0) == [("collection", "publish", "delivered", None, "IT", ())]
    inbox.deliver(review(red))
    assert new(sink, 1) == [("decision", "review", "approved", None, "IT", ("XR",))]
    inbox.deliver(oversight(MessageKind.BLOCK))
    assert new(sink, 2) == [("decision", "block", "block", "CCF-2026-7", "IT", ("XO",))]
    inbox.deliver(oversight(MessageKind.UNBLOCK))
    assert new(sink, 3) == [("decision", "unblock", "unblock", "CCF-2026-7", "IT", ("XO",))]
    v2 = notice(2)
    inbox.deliver(v2)
    assert new(sink, 4) == [("alteration", "update", "delivered", None, "IT", ())]
    inbox.deliver(notice(1))  # older than the stored version
    assert new(sink, 5) == [("rejection", "publish", "stale", "stale", "IT", ())]
    inbox.deliver(opened(fact_sealed_lifecycle("suspend")))
    assert new(sink, 6) == [("alteration", "suspend", "suspended", None, "IT", ())]
    refusal = review(v2, "refused", grounds=("art3", "criteria"))
    inbox.deliver(refusal)
    assert new(sink, 7) == [
        ("decision", "review", "refused", "art3,criteria", "IT", ("XR",)),
        ("erasure", "review", "purged", "refused", "IT", ("XR",)),
    ]
    purge = sink.audit_entries()[-1]
    assert (purge.notice_id, purge.msg_id, purge.notice_type) == (NOTICE_ID, refusal.msg_id, "red")
    inbox.at(refusal, inbox.offset)  # a redelivery: answered again, no entry
    assert len(sink.audit_entries()) == 9
    inbox.deliver(opened(fact_sealed_lifecycle("cancel")))
    assert new(sink, 9) == [("erasure", "cancel", "purged", "cancel", "IT", ())]


def test_a_delete_purges_with_one_decision_and_one_erasure(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink, needs_review=lambda kind, notice_type, sender: False))
    inbox.deliver(notice())
    delete = oversight(MessageKind.DELETE, "CCF-2026-9")
    inbox.deliver(delete)
    assert new(sink, 1) == [
        ("decision", "delete", "delete", "CCF-2026-9", "IT", ("XO",)),
        ("erasure", "delete", "purged", "delete", "IT", ("XO",)),
    ]
    assert sink.audit_entries()[-1].msg_id == delete.msg_id


def test_a_notice_arriving_deleted_is_collected_and_erased(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink))
    inbox.deliver(oversight(MessageKind.DELETE, "CCF-2026-9"))
    red = notice()
    inbox.deliver(red)
    assert new(sink, 1) == [
        ("collection", "publish", "purged", None, "IT", ()),
        ("erasure", "publish", "purged", "delete", "IT", ("XO",)),
    ]


def test_an_erasure_order_is_one_erasure_entry(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink, needs_review=lambda kind, notice_type, sender: False))
    inbox.deliver(notice())
    inbox.deliver(opened(fact_sealed_lifecycle("erasure")))
    assert new(sink, 1) == [("erasure", "erasure", "purged", "erasure", "IT", ())]


def test_a_recorded_rejection_is_one_rejection_entry(sink: Sink) -> None:
    """A review from a bureau without the reviewer role: rejected (and quarantined by the
    daemon, which adds no second entry: the outcome says it is recorded)."""
    inbox = Inbox(pipeline(sink))
    body = {"subject_sender": "IT", "case_ref": "CCF-1", "reason": "x"}
    fake = opened(fact_sealed(MessageKind.BLOCK, body, signer=XO))
    out = Inbox(pipeline(sink, roles=lambda bureau: frozenset())).deliver(fake)
    assert (out.quarantine, out.recorded) == (Reason.NOT_OVERSIGHT, True)
    assert new(sink, 0) == [("rejection", "block", "rejected", "not-oversight", "XO", ())]
    del inbox


def test_a_quarantine_is_recorded_once_per_position(sink: Sink) -> None:
    red = notice()
    at = Position("nbx.inbox.FR", 0, 7)
    sink.record_quarantine(Reason.REPLAY.value, at, red)
    sink.record_quarantine(Reason.REPLAY.value, at, red)  # the same record read again
    sink.record_quarantine(Reason.FRAME.value, Position("nbx.inbox.FR", 0, 8))
    entries = sink.audit_entries()
    assert new(sink, 0) == [
        ("quarantine", "publish", None, "replay", "IT", ()),
        ("quarantine", None, None, "frame", None, ()),
    ]
    assert (entries[0].msg_id, entries[0].notice_id) == (red.msg_id, NOTICE_ID)
    assert (entries[1].msg_id, entries[1].notice_id) == (None, None)


def test_a_consultation_needs_an_operator_and_a_purpose(sink: Sink) -> None:
    inbox = Inbox(pipeline(sink))
    red = notice()
    inbox.deliver(red)
    stored = sink.notice(NOTICE_ID, Access("alice", "case 2026/41"))
    assert stored is not None
    last = sink.audit_entries()[-1]
    assert (last.action, last.operator, last.purpose) == ("consultation", "alice", "case 2026/41")
    assert (last.notice_id, last.msg_id, last.sender) == (NOTICE_ID, red.msg_id, "IT")
    assert sink.notice("IT-nothing", Access("alice", "x")) is None  # nothing read, no entry
    assert len(sink.audit_entries()) == 2
    with pytest.raises(AccessError, match="needs a purpose"):
        Access("alice", " ")
    with pytest.raises(AccessError, match="needs an operator"):
        Access("", "x")
    with pytest.raises(TypeError):
        sink.notice(NOTICE_ID)  # type: ignore[call-arg]


def test_a_rolled_back_batch_leaves_no_entry(tmp_path: Path) -> None:
    """The entry is in the action's transaction: rolled back with it, and the chain goes on
    from the committed head."""
    sink = SqliteSink(tmp_path / "FR.sqlite")
    try:
        inbox = Inbox(pipeline(sink))
        sink.begin()
        inbox.deliver(notice())
        sink.end(commit=False)
        assert sink.audit_entries() == []
        assert sink.delivery_log() == []
        sink.begin()
        inbox.deliver(notice())
        sink.end(commit=True)
        assert [e.seq for e in sink.audit_entries()] == [1]
    finally:
        sink.close()


def test_the_jsonl_log_survives_a_purge_rewrite_and_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "FR.jsonl"
    sink = JsonlSink(path)
    inbox = Inbox(pipeline(sink, needs_review=lambda kind, notice_type, sender: False))
    inbox.deliver(notice())
    inbox.deliver(opened(fact_sealed_lifecycle("cancel")))  # rewrites the file
    before = sink.audit_entries()
    sink.close()
    again = JsonlSink(path)
    try:
        assert again.audit_entries() == before
        assert [e.action for e in before] == ["collection", "erasure"]
        again.record_quarantine("frame", Position("t", 0, 1))
        assert [e.seq for e in again.audit_entries()] == [1, 2, 3]
        assert verify(again.audit_entries(), [], lambda cp: None) is None
    finally:
        again.close()
