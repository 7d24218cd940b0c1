"""Property: the final notice state does not depend on the order messages arrive in, and no
notice that is pending review, refused or blocked is ever listed as actionable (issue 17).

Generated: a subset of {publish v1, update v2, approvals of v1 and v2, a refusal of v1, a block,
its unblock, a cancel} and a random order of it, delivered to FR's pipeline and a real SQLite
store; after every message, every notice listed as actionable is checked against a reference
model of the rules (written here independently of the store's derivation)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.envelope import VerifiedPackage
from broker.sinks.base import Sink
from broker.sinks.jsonl import JsonlSink
from broker.sinks.sqlite import SqliteSink
from broker.vocab import MessageKind, NoticeState
from tests.audit_access import READ
from tests.node.states_kit import (
    IT,
    NOTICE_ID,
    Inbox,
    notice,
    opened,
    oversight,
    pipeline,
    review,
)

pytestmark = pytest.mark.hypothesis


def _cancel() -> VerifiedPackage:
    from broker.envelope import Grant, seal

    return opened(
        seal(
            signer=IT,
            kind=MessageKind.CANCEL,
            notice_id=NOTICE_ID,
            notice_type="red",
            header={"notice_id": NOTICE_ID, "notice_type": "red", "cancel": {"reason": "x"}},
            units={},
            grants={"FR": Grant(frozenset(), (), "lifecycle:cancel")},
            handling="H0",
        )
    )


V1, V2 = notice(1), notice(2)
#: every message of the generated histories, by name (sealed and opened once)
MESSAGES: dict[str, VerifiedPackage] = {
    "v1": V1,
    "v2": V2,
    "approve-v1": review(V1),
    "approve-v2": review(V2),
    "refuse-v1": review(V1, "refused", grounds=("art3",)),
    "block": oversight(MessageKind.BLOCK),
    "unblock": oversight(MessageKind.UNBLOCK),
    "cancel": _cancel(),
}
#: the order a well-behaved network would deliver them in
DELIVERY_ORDER = list(MESSAGES)


def expected(delivered: set[str]) -> str | None:
    """The state the rules give for the messages ``delivered`` (None: no notice stored)."""
    if "cancel" in delivered:
        return NoticeState.CANCELLED
    current = "v2" if "v2" in delivered else "v1" if "v1" in delivered else None
    if current is None:
        return None
    if "refuse-v1" in delivered and "v1" in delivered:
        return NoticeState.REFUSED
    if "block" in delivered and "unblock" not in delivered:
        return NoticeState.BLOCKED
    if f"approve-{current}" in delivered:
        return NoticeState.ACTIONABLE
    return NoticeState.PENDING_REVIEW


def final_state(order: list[str], folder: Path, store: str) -> str | None:
    """Deliver ``order`` to a new ``store`` (sqlite or jsonl); after each message, nothing that
    the rules do not make actionable may be listed as actionable. Returns the final state."""
    sink: Sink = SqliteSink(folder / "FR.sqlite") if store == "sqlite" else JsonlSink(folder / "j")
    try:
        inbox = Inbox(pipeline(sink))
        delivered: set[str] = set()
        for name in order:
            outcome = inbox.deliver(MESSAGES[name])
            assert outcome.quarantine is None, (name, outcome.quarantine)
            delivered.add(name)
            listed = [r for r in sink.notices() if r["state"] == NoticeState.ACTIONABLE]
            for row in listed:
                assert expected(delivered) == NoticeState.ACTIONABLE, (order, delivered, row)
        rows = sink.notices()
        assert len(rows) <= 1
        state = rows[0]["state"] if rows else None
        if state in (NoticeState.REFUSED, NoticeState.CANCELLED):
            stored = sink.notice(NOTICE_ID, READ)
            assert stored is not None
            assert stored["view"] is None
        return state
    finally:
        sink.close()


@pytest.mark.parametrize("store", ["sqlite", "jsonl"])
@settings(max_examples=40, deadline=None)
@given(
    chosen=st.sets(st.sampled_from(DELIVERY_ORDER), min_size=1),
    data=st.data(),
)
def test_the_final_state_does_not_depend_on_the_order(
    store: str, chosen: set[str], data: st.DataObject
) -> None:
    in_order = [name for name in DELIVERY_ORDER if name in chosen]
    shuffled = data.draw(st.permutations(in_order), label="arrival order")
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        reference = final_state(in_order, Path(a), store)
        assert reference == expected(chosen)
        assert final_state(list(shuffled), Path(b), store) == reference
