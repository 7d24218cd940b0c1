"""Loading policy files: the example policies, ids, and errors that name the file, line and rule."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from broker.errors import PolicyError
from broker.policy import (
    PolicyInvalid,
    decide,
    inbound_check,
    load_policies,
    parse_policy,
)
from broker.schemas import parse_notice

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "policies"
NOTICES = ROOT / "examples" / "notices"
TODAY = date(2025, 6, 1)
MINIMAL = b'schema = "nbx-policy/1"\ncountry = "FR"\n'


def test_example_policies_load_and_cover_six_countries() -> None:
    """deploy/policies loads cleanly: a default and at least six countries."""
    policies = load_policies(DEPLOY)
    assert policies.default is not None
    assert len(policies.countries) >= 6


def test_example_policies_differ_meaningfully() -> None:
    """DE withholds biometrics outside yellow and black notices, ES keeps only identity+judicial
    of a red notice, NL withholds a victim's identity where the notice does not seek the victim
    (a missing child stays findable), CH declines UN notices, H2 changes nothing received
    (tests/deploy/test_example_policies.py has the rest)."""
    policies = load_policies(DEPLOY)
    red = parse_notice((NOTICES / "red.json").read_bytes())
    yellow = parse_notice((NOTICES / "yellow.json").read_bytes())
    de = decide(red, "DE", policies, today=TODAY)
    assert dict(de.withheld)["person.biometrics.photos"] == "de-no-biometrics"
    es = decide(red, "ES", policies, today=TODAY)
    assert all(p.startswith(("judicial.", "person.")) for p in es.disclosed)
    assert dict(es.withheld)["person.physical.height_cm"] == "es-red-nothing-else"
    nl = decide(yellow, "NL", policies, today=TODAY)
    assert nl.rule_for("person.family_name") == "nl-search-minors"
    blue = parse_notice({**_json(NOTICES / "blue.json"), "subject_category": "victim"})
    nl = decide(blue, "NL", policies, today=TODAY)
    assert dict(nl.withheld)["person.family_name"] == "nl-protect-minors-victims"
    fr = decide(yellow, "FR", policies, today=TODAY)
    assert "person.family_name" in fr.disclosed
    assert inbound_check(policies, notice_type="un", sender="IT", recipient="CH") == "ch-decline-un"
    assert inbound_check(policies, notice_type="red", sender="IT", recipient="CH") is None
    h2 = parse_notice({**_json(NOTICES / "red.json"), "handling": {"code": "H2"}})
    us = decide(h2, "US", policies, today=TODAY)
    assert us.disclosed == decide(red, "US", policies, today=TODAY).disclosed
    assert "person.family_name" in us.disclosed
    unknown = decide(red, "PT", policies, today=TODAY)
    assert unknown.policy.startswith("default@")


def _json(path: Path) -> dict[str, object]:
    import json

    data: dict[str, object] = json.loads(path.read_text())
    return data


def test_policy_id_is_country_and_content_hash() -> None:
    """The id names the country and changes with any byte of the file."""
    one = parse_policy(MINIMAL, source="FR.toml")
    two = parse_policy(MINIMAL + b"# a comment\n", source="FR.toml")
    assert one.id.startswith("FR@")
    assert len(one.id) == len("FR@") + 12
    assert one.id != two.id


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A TOML syntax error is reported with the file and its line."""
    (tmp_path / "FR.toml").write_text('schema = "nbx-policy/1"\ncountry = "FR"\n[[rule]\n')
    with pytest.raises(PolicyInvalid) as caught:
        load_policies(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'FR.toml'}:3: not valid TOML")


def test_bad_file_name_is_reported(tmp_path: Path) -> None:
    """A file that is not CC.toml or default.toml is an error."""
    (tmp_path / "france.toml").write_bytes(MINIMAL.replace(b'"FR"', b'"france"'))
    with pytest.raises(PolicyInvalid, match=r"file name must be CC\.toml"):
        load_policies(tmp_path)


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    """No policy file at all, or no directory, is one clear PolicyError."""
    with pytest.raises(PolicyError, match="no policy files"):
        load_policies(tmp_path)
    with pytest.raises(PolicyError, match="not a directory"):
        load_policies(tmp_path / "missing")


def test_no_policy_for_recipient_without_default() -> None:
    """Without default.toml, a country without a file cannot be decided for."""
    from broker.policy import PolicySet

    policies = PolicySet([parse_policy(MINIMAL, source="FR.toml")])
    red = parse_notice((NOTICES / "red.json").read_bytes())
    with pytest.raises(PolicyError, match="no policy for DE"):
        decide(red, "DE", policies, today=TODAY)


def test_decline_rule_needs_a_matcher() -> None:
    """An inbound decline rule without notice_type or sender would decline everything: refused."""
    text = MINIMAL + b'[[inbound.decline]]\nid = "x"\nreason = "r"\n'
    with pytest.raises(PolicyInvalid, match=r"FR\.toml:3: rule 'x': a decline rule needs"):
        parse_policy(text, source="FR.toml")


def test_inbound_check_on_a_set_needs_the_recipient() -> None:
    """A PolicySet holds every country's file: the receiving bureau must be named."""
    policies = load_policies(DEPLOY)
    with pytest.raises(PolicyError, match="recipient="):
        inbound_check(policies, notice_type="un", sender="IT")
    assert inbound_check(policies.for_recipient("CH"), notice_type="un", sender="IT")


def test_decline_rules_may_match_grades_review_rules_may_not() -> None:
    """A decline rule with only `reliability` is complete; `reliability` on a review rule is an
    unknown key (review rules match on notice type and sender only)."""
    text = MINIMAL + b'[[inbound.decline]]\nid = "x"\nreason = "r"\nreliability = "X"\n'
    policy = parse_policy(text, source="FR.toml")
    assert policy.declines[0].reliability == frozenset({"X"})
    review = MINIMAL + b'[[inbound.require_review]]\nid = "y"\nreason = "r"\nreliability = "X"\n'
    with pytest.raises(PolicyInvalid, match=r"FR\.toml:6: rule 'y': unknown key 'reliability'"):
        parse_policy(review, source="FR.toml")
    none = MINIMAL + b'[[inbound.decline]]\nid = "z"\nreason = "r"\n'
    with pytest.raises(
        PolicyInvalid,
        match="a decline rule needs 'notice_type' or 'sender' or 'reliability' or 'accuracy'",
    ):
        parse_policy(none, source="FR.toml")
