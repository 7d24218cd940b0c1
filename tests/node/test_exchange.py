"""Several bureaus with different policies exchange every notice type over the real broker; each
recipient's store holds exactly the view its policy allows, and declines land in quarantine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker import devbroker
from broker.policy import decide, inbound_check, load_policies
from broker.schemas import NoticeType
from tests.audit_access import READ
from tests.node.helpers import Net, example, wait_for

pytestmark = pytest.mark.e2e

BUREAUS = ("IT", "ES", "FR", "DE", "NL", "US")


def _leaves(view: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(view, dict) and view:
        out: dict[str, Any] = {}
        for key, value in view.items():
            out |= _leaves(value, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): view}


async def test_every_notice_type_reaches_each_recipient_with_exactly_its_view(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Each notice type is published to all by a different bureau; every recipient stores the
    units its policy decision discloses (values equal to the original), the withheld manifest of
    that decision, and nothing else; a recipient whose inbound policy declines the type
    quarantines it as 'declined-by-policy' and the sender gets a 'rejected' receipt."""
    net = Net(tmp_path, BUREAUS, fresh_broker.bootstrap, idempotence=idempotence_supported)
    policies = load_policies(net.configs["IT"].policy.dir)
    await net.start(*BUREAUS)
    try:
        expected: list[tuple[str, Any, str, Any]] = []
        for i, notice_type in enumerate(NoticeType):
            sender = BUREAUS[i % len(BUREAUS)]
            others = [b for b in BUREAUS if b != sender]  # "all": a diffusion's addressees
            audience = {"addressees": others} if notice_type is NoticeType.DIFFUSION else {}
            notice = example(
                notice_type.value,
                issuing_bureau=sender,
                notice_id=f"{sender}-2026-{i:04d}",
                **audience,
            )
            result = await net.publish(sender, notice, "all")
            assert not result.failed, result.failed
            for outcome in result.outcomes:
                decision = decide(notice, outcome.recipient, policies)
                assert (outcome.status == "sent") == decision.allowed
                if decision.allowed:
                    expected.append((outcome.recipient, notice, sender, decision))

        def settled() -> bool:
            handled = sum(
                net.daemon(cc).stats.delivered + net.daemon(cc).stats.quarantined for cc in BUREAUS
            )
            return handled >= len(expected)

        assert await wait_for(settled, timeout_s=120)
        from broker.schemas import disclosure_units

        for recipient, notice, sender, decision in expected:
            stored = net.daemon(recipient).sink.notice(notice.notice_id, READ)
            declined = inbound_check(
                policies, notice_type=notice.notice_type, sender=sender, recipient=recipient
            )
            if declined is not None:
                assert stored is None, (recipient, notice.notice_type)
                continue
            assert stored is not None, (recipient, notice.notice_type)
            assert stored["sender"] == sender
            assert stored["view"] is not None
            assert stored["withheld"] is not None
            units = {u.path: u.value for u in disclosure_units(notice)}
            disclosed = {p: v for p, v in units.items() if p in decision.disclosed}
            view_leaves = _leaves(stored["view"])
            for path, value in disclosed.items():
                got: Any = stored["view"]
                for part in path.split("."):
                    got = got[part]
                assert got == value, (recipient, path)
            for path, _rule in decision.withheld:
                assert not any(
                    leaf == path or leaf.startswith(path + ".") for leaf in view_leaves
                ), (recipient, path)
            # the manifest the recipient sees (rule ids, or withheld-by-policy:
            # docs/security/metadata.md, 10d)
            assert sorted(map(tuple, stored["withheld"])) == sorted(decision.grant().withheld)
    finally:
        await net.stop()
