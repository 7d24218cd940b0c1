"""Policy cases written as data: every folder of ``tests/policy_cases`` (see its README.md)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from broker.policy import (
    PolicyInvalid,
    SenderRestrictions,
    check_policies,
    decide,
    inbound_check,
    load_policies,
)
from broker.policy.policy import policy_id
from broker.schemas import disclosure_units, parse_notice

CASES = Path(__file__).resolve().parent.parent / "policy_cases"
CASE_DIRS = sorted(p for p in CASES.iterdir() if p.is_dir())


def test_there_are_enough_cases() -> None:
    """The issue asks for at least 25 cases covering precedence, default deny, restrictions."""
    names = [p.name for p in CASE_DIRS]
    assert len(names) >= 25
    for prefix in ("precedence-", "default-deny-", "sender-", "match-", "bad-", "inbound-"):
        assert any(n.startswith(prefix) for n in names), prefix


@pytest.mark.parametrize("case", CASE_DIRS, ids=lambda p: p.name)
def test_case(case: Path) -> None:
    """The case's policies give exactly the expected decisions, inbound results or errors."""
    expected = json.loads((case / "expected.json").read_text())
    notice = parse_notice((case / "notice.json").read_bytes())
    policy_dir = case / "policies"
    if "errors" in expected:
        with pytest.raises(PolicyInvalid):
            load_policies(policy_dir)
        _, problems = check_policies(policy_dir)
        lines = [str(p) for p in problems]
        for wanted in expected["errors"]:
            assert any(all(part in line for part in wanted) for line in lines), (wanted, lines)
        assert len(lines) == len(expected["errors"]), lines
        return
    policies = load_policies(policy_dir)
    today = date.fromisoformat(expected["today"])
    restrictions = (
        SenderRestrictions.model_validate(expected["restrictions"])
        if "restrictions" in expected
        else None
    )
    units = {u.path for u in disclosure_units(notice)}
    for recipient, want in expected.get("decisions", {}).items():
        got = decide(notice, recipient, policies, restrictions=restrictions, today=today)
        assert got.recipient == recipient
        assert got.allowed is want["allowed"]
        if not want["allowed"]:
            assert got.reason == want["reason"]
            assert got.disclosed == frozenset()
            assert got.withheld == ()
            continue
        assert got.reason is None
        assert set(want["disclosed"]) | set(want["withheld"]) == units, "expected covers every unit"
        assert dict(got.disclosed_by) == want["disclosed"], recipient
        assert dict(got.withheld) == want["withheld"], recipient
        assert got.disclosed == frozenset(want["disclosed"])
        if "policy_file" in want:
            content = (policy_dir / want["policy_file"]).read_bytes()
            assert got.policy == policy_id(Path(want["policy_file"]).stem, content)
    for check in expected.get("inbound", []):
        declined = inbound_check(
            policies,
            notice_type=check["notice_type"],
            sender=check["sender"],
            recipient=check["recipient"],
            reliability=check.get("reliability"),
            accuracy=check.get("accuracy"),
        )
        assert declined == check["declined_by"], check
