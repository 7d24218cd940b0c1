"""What the withheld-fields manifest may say (docs/security/metadata.md, 10d).

A label that names a rule chosen because the subject is a minor (``default-deny-minor``, or a rule
with ``subject = "minor"``) tells the recipient the subject is a minor even when the date of birth
was withheld. The manifest names a rule only when the decision for that field would be the same
whether or not the subject is a minor, or when the recipient sees the data the minor test reads;
otherwise it says ``withheld-by-policy``. ``nbx policy explain`` keeps the full reason.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from broker.cli import main as cli
from broker.envelope import open_package, seal
from broker.keys import BureauKeys, StaticDirectory
from broker.policy import decide, load_policies
from broker.policy.decision import DEFAULT_DENY_MINOR, WITHHELD_BY_POLICY
from broker.schemas import disclosure_units, non_redactable, parse_notice

CASES = Path(__file__).resolve().parent.parent / "policy_cases"
TODAY = date(2025, 6, 1)


def _case(name: str, **changes: Any) -> tuple[Any, Any]:
    data = json.loads((CASES / name / "notice.json").read_text())
    person = data.get("person")
    for key, value in changes.items():
        person[key] = value
    return parse_notice(data), load_policies(CASES / name / "policies")


def test_minor_rule_is_not_named_when_the_date_of_birth_is_withheld() -> None:
    """The minor's view: every field withheld because of the minor test is labelled
    withheld-by-policy in the grant, while the decision (explain) keeps default-deny-minor; a
    field withheld for a reason that holds for adults too keeps its rule."""
    notice, policies = _case("default-deny-minor")
    decision = decide(notice, "FR", policies, today=TODAY)
    full = dict(decision.withheld)
    assert full["person.date_of_birth"] == DEFAULT_DENY_MINOR
    manifest = dict(decision.grant().withheld)
    assert set(manifest) == set(full)
    assert DEFAULT_DENY_MINOR not in manifest.values()
    assert manifest["person.date_of_birth"] == WITHHELD_BY_POLICY
    assert manifest["person.family_name"] == WITHHELD_BY_POLICY
    # special-category data is withheld from adults by the same rule: naming it reveals nothing
    assert manifest["person.special.health"] == "default-deny-special"


def test_an_adult_view_does_not_differ_in_labels_from_a_minor_view() -> None:
    """The same notice about an adult, under the same policy with the date of birth withheld: a
    field whose decision would differ for a minor is labelled withheld-by-policy as well, so the
    label alone never tells minor from adult."""
    notice, policies = _case("match-subject-minor-withhold")
    minor = decide(notice, "NL", policies, today=TODAY)
    assert dict(minor.withheld)["missing.circumstances"] == "nl-minor-ops"  # a subject=minor rule
    assert dict(minor.grant().withheld)["missing.circumstances"] == WITHHELD_BY_POLICY
    adult_notice, _ = _case("match-subject-minor-withhold", date_of_birth="1970-01-01")
    adult = decide(adult_notice, "NL", policies, today=TODAY)
    assert "missing.circumstances" in adult.disclosed  # nl-data discloses it for adults
    labels = {dict(minor.grant().withheld)[p] for p in dict(adult.grant().withheld)}
    assert "nl-minor-ops" not in labels
    assert DEFAULT_DENY_MINOR not in labels
    assert set(dict(adult.grant().withheld).values()) <= {
        WITHHELD_BY_POLICY,
        "default-deny-biometric",
        "default-deny-special",
    }


def test_rules_are_named_when_the_recipient_sees_the_date_of_birth() -> None:
    """When the date of birth is disclosed the recipient can tell a minor itself: the manifest
    names the rules (a subject = 'minor' rule that discloses the date of birth)."""
    notice, policies = _case("default-deny-minor-lifted")
    decision = decide(notice, "FR", policies, today=TODAY)
    assert "person.date_of_birth" in decision.disclosed
    assert decision.grant().withheld == decision.withheld


def test_the_neutral_manifest_is_bound_into_the_grant_and_verifies() -> None:
    """Sealed with the manifest grant, the package opens (the grant hash covers the labels the
    recipient sees) and the recipient sees no minor rule."""
    notice, policies = _case("default-deny-minor")
    grant = decide(notice, "FR", policies, today=TODAY).grant()
    it, fr = BureauKeys.generate("IT"), BureauKeys.generate("FR")
    units = {u.path: u.value for u in disclosure_units(notice)}
    sealed = seal(
        signer=it,
        kind="publish",
        notice_id=notice.notice_id,
        notice_type=str(notice.notice_type),
        header=non_redactable(notice),
        units=units,
        grants={"FR": grant},
        handling="H1",
    )
    data = sealed.package_for(
        "FR",
        topic="nbx.inbox.FR",
        recipient_kid=fr.encryption_key_id,
        recipient_key=fr.encryption_key.public_key(),
    )
    opened = open_package(
        data,
        topic="nbx.inbox.FR",
        recipient="FR",
        decryption_keys={fr.encryption_key_id: fr.encryption_key},
        directory=StaticDirectory([it.public(), fr.public()]),
    )
    assert opened.withheld == grant.withheld
    assert DEFAULT_DENY_MINOR not in {rule for _, rule in opened.withheld}


def test_explain_shows_the_rule_and_the_manifest_label() -> None:
    """`nbx policy explain --json` keeps the deciding rule and adds what the recipient sees."""
    case = CASES / "default-deny-minor"
    result = CliRunner().invoke(
        cli,
        [
            "policy",
            "explain",
            str(case / "notice.json"),
            "--policies",
            str(case / "policies"),
            "--to",
            "FR",
            "--today",
            "2025-06-01",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    decision = data[0] if isinstance(data, list) else data
    by_path = {w["path"]: w for w in decision["withheld"]}
    assert by_path["person.date_of_birth"]["rule"] == DEFAULT_DENY_MINOR
    assert by_path["person.date_of_birth"]["manifest"] == WITHHELD_BY_POLICY
