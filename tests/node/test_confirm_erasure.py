"""A refusal or a delete is answered ``purged`` whenever the recipient then holds no personal data
of the notice: purged now, purged before (cancelled), or never received; so the reviewer's and
the oversight body's proof of erasure (``nbx status --overdue``) clears everywhere it is true.
An approval, a block, or a refusal of a version not held while another is, is answered
``delivered`` (broker.sinks.base.confirms_erasure)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.envelope import Grant, VerifiedPackage, seal
from broker.node.pipeline import Outcome
from broker.sinks.base import Sink
from broker.sinks.jsonl import JsonlSink
from broker.sinks.sqlite import SqliteSink
from broker.vocab import MessageKind, ReceiptStatus
from tests.node.states_kit import (
    IT,
    NOTICE_ID,
    XR,
    Inbox,
    fact_sealed,
    notice,
    opened,
    oversight,
    pipeline,
    review,
)


@pytest.fixture(params=["sqlite", "jsonl"])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    path = tmp_path / f"FR.{request.param}"
    sink: Sink = SqliteSink(path) if request.param == "sqlite" else JsonlSink(path)
    yield Inbox(pipeline(sink))
    sink.close()


def answer_to_signer(outcome: Outcome) -> tuple[str, str]:
    """(to, status) of the receipt the fact's own signer gets."""
    assert outcome.answer is not None
    return outcome.answer.sender, outcome.answer.receipt["status"]


def cancel_of_it() -> VerifiedPackage:
    """IT's cancel of its notice, as FR opens it."""
    body = {"notice_id": NOTICE_ID, "reason": "arrested", "withdraw": False}
    return opened(
        seal(
            signer=IT,
            kind=MessageKind.CANCEL,
            notice_id=NOTICE_ID,
            notice_type="red",
            header={"notice_id": NOTICE_ID, "notice_type": "red", "cancel": body},
            units={},
            grants={"FR": Grant(frozenset(), (), "lifecycle:cancel")},
            handling="H0",
        )
    )


def test_a_delete_of_a_notice_never_received_is_confirmed(inbox: Inbox) -> None:
    assert answer_to_signer(inbox.deliver(oversight(MessageKind.DELETE))) == (
        "XO",
        ReceiptStatus.PURGED,
    )


def test_a_refusal_of_a_notice_never_received_is_confirmed_and_the_notice_purged_on_arrival(
    inbox: Inbox,
) -> None:
    red = notice()
    assert answer_to_signer(inbox.deliver(review(red, "refused", grounds=("art3",)))) == (
        "XR",
        ReceiptStatus.PURGED,
    )
    arrived = inbox.deliver(red)  # comes later: purged on arrival, its sender told so
    assert arrived.answer is not None
    assert (arrived.answer.sender, arrived.answer.receipt["status"]) == ("IT", "purged")


def test_a_delete_after_a_cancel_is_confirmed(inbox: Inbox) -> None:
    inbox.deliver(notice())
    inbox.deliver(cancel_of_it())
    assert answer_to_signer(inbox.deliver(oversight(MessageKind.DELETE))) == (
        "XO",
        ReceiptStatus.PURGED,
    )


def test_approvals_blocks_and_a_refusal_of_another_version_are_not_confirmations(
    inbox: Inbox,
) -> None:
    v1 = notice()
    inbox.deliver(v1)
    assert answer_to_signer(inbox.deliver(review(v1))) == ("XR", ReceiptStatus.DELIVERED)
    assert answer_to_signer(inbox.deliver(oversight(MessageKind.BLOCK))) == (
        "XO",
        ReceiptStatus.DELIVERED,
    )
    # a refusal naming a version FR never received, while it holds v1: FR still holds data
    v2 = notice(2)
    body = {
        "subject_sender": "IT",
        "subject_msg_id": v2.msg_id,
        "statement_hash": v2.statement_hash,
        "decision": "refused",
        "grounds": ["criteria"],
        "reason": "checked",
    }
    other = opened(fact_sealed(MessageKind.REVIEW, body, signer=XR))
    assert answer_to_signer(inbox.deliver(other)) == ("XR", ReceiptStatus.DELIVERED)
