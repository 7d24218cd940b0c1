"""The sending side (in-memory broker): a publish held for review is one disclosure naming every
recipient it was sent or held for; the reviewer's approval is one decision and its forward of the
held packages one disclosure; an oversight decision is one decision; each carries the operator."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.node import Publisher
from broker.sinks.base import AuditEntry
from tests.node.helpers import Net, example, memory_net, wait_for
from tests.node.test_supervision import _held_publish, _net, _review


def _entries(net: Net, cc: str) -> list[AuditEntry]:
    return net.daemon(cc).sink.audit_entries()


async def test_held_publish_review_and_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBX_OPERATOR", "op-7")
    net = _net(tmp_path)
    try:
        published = await _held_publish(net)
        await _review(net, published, "approved")
        assert await wait_for(lambda: [len(_entries(net, cc)) for cc in ("FR", "DE")] == [2, 2])
        sent = [e for e in _entries(net, "IT") if e.action == "disclosure"]
        assert [(e.kind, e.bureaus, e.msg_id, e.operator) for e in sent] == [
            ("publish", ("DE", "FR", "XR"), published.msg_id, "op-7")
        ]
        xr = [
            (e.action, e.kind, e.outcome, e.bureaus, e.sender, e.operator)
            for e in _entries(net, "XR")
            if e.action != "consultation"  # the test's own reads
        ]
        assert xr == [
            ("collection", "publish", "delivered", (), "IT", None),
            ("decision", "review", "approved", ("DE", "FR", "IT"), "IT", "op-7"),
            # (nbx review approve names the held message's id and kind; this call does not)
            ("disclosure", None, "forwarded", ("DE", "FR"), "XR", "op-7"),
        ]
        fr = [
            (e.action, e.kind, e.bureaus) for e in _entries(net, "FR") if e.action != "consultation"
        ]
        assert fr == [("decision", "review", ("XR",)), ("collection", "publish", ())]
    finally:
        await net.stop()


async def test_an_oversight_decision_is_one_decision_entry(tmp_path: Path) -> None:
    net = memory_net(tmp_path, ("IT", "FR", "XO"), roles={"XO": ["oversight"]})
    try:
        await net.start("FR", "XO")
        red = example("red")
        await net.publish("IT", red, ["FR"])

        async def block(pub: Publisher) -> object:
            return await pub.oversight(
                "block",
                subject_sender="IT",
                notice_id=red.notice_id,
                notice_type="red",
                case_ref="CCF-2026-3",
                to=["FR", "IT"],
                reason="challenge pending",
            )

        await net.with_publisher("XO", block)
        decision = [e for e in _entries(net, "XO") if e.action == "decision"]
        assert [(e.kind, e.outcome, e.reason, e.bureaus, e.sender) for e in decision] == [
            ("block", "block", "CCF-2026-3", ("FR", "IT"), "IT")
        ]
        assert decision[0].operator
    finally:
        await net.stop()
