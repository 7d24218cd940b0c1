"""`nbx status`: the state of the notice at one recipient as the sender knows it, from what it
sent, the receipts and the decisions it received, and the network rules (unit tests)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.cli.node_cmds import recipient_state
from broker.keys.rules import NetworkRules
from broker.sinks.base import Fact

RULES = NetworkRules()  # red notices need review


def row(sent: str = "sent", *receipts: str, kind: str = "publish", h: str = "H1") -> Any:
    return {
        "recipient": "FR",
        "messages": [
            {
                "msg_id": "m1",
                "kind": kind,
                "status": sent,
                "reason": None,
                "at": "t",
                "receipts": [{"status": s, "reason": None, "at": "t"} for s in receipts],
                "statement_hash": h,
                "notice_type": "red",
            }
        ],
    }


def review(decision: str, h: str = "H1") -> Fact:
    return Fact("review", "XR", f"r-{decision}-{h}", "IT", "IT-1", h, "m1", decision)


def block(kind: str, case: str = "C1") -> Fact:
    return Fact(kind, "XO", f"{kind}-{case}", "IT", "IT-1", case_ref=case)


@pytest.mark.parametrize(
    ("the_row", "facts", "rules", "state"),
    [
        (row("sent"), [], RULES, "sent"),
        (row("held-for-review"), [], RULES, "held-for-review"),
        (row("sent", "delivered"), [], RULES, "pending-review"),
        (row("sent", "delivered"), [review("approved")], RULES, "actionable"),
        (row("sent", "delivered"), [review("approved", "H0")], RULES, "pending-review"),
        (row("sent", "delivered"), [], None, "delivered"),
        (row("sent", "delivered"), [review("refused")], RULES, "refused"),
        (row("sent", "delivered"), [review("approved"), block("block")], RULES, "blocked"),
        (row("sent", "delivered"), [block("block"), block("unblock")], RULES, "pending-review"),
        (row("sent", "delivered", "purged"), [], RULES, "purged"),
        (row("sent", "rejected"), [], RULES, "rejected"),
    ],
)
def test_the_state_at_a_recipient(
    the_row: Any, facts: list[Fact], rules: NetworkRules | None, state: str
) -> None:
    """Each branch, in the order the function decides: purged, refused, blocked, held, rejected,
    not yet answered, approved, unknown rules, needs review."""
    assert recipient_state(the_row, facts, rules) == state
