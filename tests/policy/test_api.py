"""The public API of broker.policy: exports, Decision conversions, speed for 195 recipients."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

import broker.policy
from broker.envelope import Grant
from broker.errors import PolicyError
from broker.policy import SenderRestrictions, decide, decide_all, load_policies
from broker.schemas import parse_notice

ROOT = Path(__file__).resolve().parents[2]
POLICIES = load_policies(ROOT / "deploy" / "policies")
RED = parse_notice((ROOT / "examples" / "notices" / "red.json").read_bytes())
TODAY = date(2025, 6, 1)


def _isort_key(name: str) -> tuple[int, str]:
    """ruff RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_resolves() -> None:
    """`broker.policy.__all__` is sorted (as ruff sorts it) and every name exists."""
    assert broker.policy.__all__ == sorted(broker.policy.__all__, key=_isort_key)
    for name in broker.policy.__all__:
        assert hasattr(broker.policy, name), name


def test_decision_grant_and_json() -> None:
    """A decision converts to the envelope Grant and to the documented JSON shape."""
    decision = decide(RED, "DE", POLICIES, today=TODAY)
    grant = decision.grant()
    assert grant == Grant(decision.disclosed, decision.withheld, decision.policy)
    data = decision.to_json()
    assert data["recipient"] == "DE"
    assert data["policy"] == decision.policy
    assert data["disclosed"] == sorted(decision.disclosed)
    assert {
        "path": "person.biometrics.photos",
        "rule": "de-no-biometrics",
        "manifest": "de-no-biometrics",
    } in data["withheld"]
    assert decision.rule_for("person.family_name") == "de-person"


def test_excluded_recipient_gets_no_grant() -> None:
    """A recipient excluded by the sender has no grant: asking for one is an error."""
    decision = decide(
        RED, "DE", POLICIES, restrictions=SenderRestrictions(exclude=frozenset({"DE"}))
    )
    assert not decision.allowed
    assert decision.reason == "excluded-by-sender"
    with pytest.raises(PolicyError, match="DE receives nothing"):
        decision.grant()


def test_restrictions_reject_bad_codes() -> None:
    """Sender restrictions only accept bureau codes and handling codes."""
    with pytest.raises(ValueError, match="ZZ"):
        SenderRestrictions(only=frozenset({"ZZ"}))
    with pytest.raises(ValueError, match="handling"):
        SenderRestrictions.model_validate({"handling": "H7"})


def test_decide_all_matches_decide_and_is_fast() -> None:
    """Deciding for 195 recipients takes well under a second and equals one-by-one decisions."""
    import pycountry

    recipients = sorted(c.alpha_2 for c in pycountry.countries)[:195]
    started = time.perf_counter()
    decisions = decide_all(RED, recipients, POLICIES, today=TODAY)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed
    for cc in recipients:  # those under default.toml share one evaluation, not its recipient
        assert decisions[cc] == decide(RED, cc, POLICIES, today=TODAY), cc
        assert decisions[cc].recipient == cc
