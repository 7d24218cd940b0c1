"""Role-aware minor protection in the engine: a minor in a protected role (or none stated) has the
notice's free text protected too; sought minors (missing, unidentified, victim, deceased) keep the
identity protection only; a minor among the related persons protects that unit (and the free text
when protected); the labels of withheld fields never tell what a hidden test found. Matchers on the
source's reliability and the information's accuracy."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from broker.errors import PolicyError
from broker.policy import PolicySet, decide, parse_policy
from broker.policy.decision import DEFAULT_DENY_MINOR, WITHHELD_BY_POLICY
from broker.schemas import NOTICE_MODELS, NoticeBase, NoticeType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notices"
TODAY = date(2025, 6, 1)


def example(kind: str) -> dict[str, Any]:
    """A fresh copy of the example notice of ``kind``."""
    data: dict[str, Any] = json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8"))
    return data


#: Discloses everything not special or biometric, to adults and children alike (no minor rule).
OPEN = """
schema = "nbx-policy/1"
country = "FR"

[[rule]]
id = "fr-all"
action = "disclose"
reason = "everything but protected data"
category = ["identity", "physical", "judicial", "location", "contact", "operational"]
"""

#: OPEN plus a rule that discloses judicial data (free text included) of minors.
WITH_MINOR_RULE = (
    OPEN
    + """
[[rule]]
id = "fr-minor-judicial"
action = "disclose"
reason = "juvenile proceedings: the charges and facts"
category = "judicial"
subject = "minor"
"""
)


def _policies(text: str) -> PolicySet:
    return PolicySet([parse_policy(text.encode(), source="FR.toml")])


def _model(kind: str, data: dict[str, Any]) -> NoticeBase:
    return NOTICE_MODELS[NoticeType(kind)].model_validate(data)


def _red(dob: str, role: str = "suspect", **changes: Any) -> NoticeBase:
    data = example("red")
    data["person"]["date_of_birth"] = dob
    data["subject_category"] = role
    data.update(changes)
    return _model("red", data)


def _labels(notice: NoticeBase, policy: str, today: date = TODAY) -> tuple[Any, Any]:
    decision = decide(notice, "FR", _policies(policy), today=today)
    return dict(decision.withheld), dict(decision.grant().withheld)


def test_a_minor_suspects_free_text_is_protected() -> None:
    """A 17-year-old suspect: the charges and the summary of facts (free text) are withheld by
    default-deny-minor like the identity; the structured judicial data (warrants, dates) is not."""
    withheld, _ = _labels(_red("2008-01-01"), OPEN)
    assert withheld["judicial.charges"] == DEFAULT_DENY_MINOR
    assert withheld["judicial.summary_of_facts"] == DEFAULT_DENY_MINOR
    assert withheld["person.family_name"] == DEFAULT_DENY_MINOR
    decision = decide(_red("2008-01-01"), "FR", _policies(OPEN), today=TODAY)
    assert {"judicial.warrants", "judicial.limitation_date"} <= decision.disclosed


def test_a_rule_naming_minors_lifts_the_free_text_protection() -> None:
    """subject = "minor" on a rule for judicial data discloses the charges and facts."""
    decision = decide(_red("2008-01-01"), "FR", _policies(WITH_MINOR_RULE), today=TODAY)
    assert decision.rule_for("judicial.charges") == "fr-minor-judicial"
    assert decision.rule_for("judicial.summary_of_facts") == "fr-minor-judicial"
    assert decision.rule_for("person.family_name") == DEFAULT_DENY_MINOR


def test_an_adult_suspects_free_text_is_not_protected() -> None:
    """The same notice about an adult: everything but biometrics is disclosed."""
    decision = decide(_red("1979-11-03"), "FR", _policies(OPEN), today=TODAY)
    assert {"judicial.charges", "judicial.summary_of_facts", "person.family_name"} <= (
        decision.disclosed
    )


def test_a_suspect_who_was_a_minor_at_the_offence_is_protected_as_one() -> None:
    """20 today but 16 when the charge was committed: protected, free text included."""
    data = example("red")
    data["person"]["date_of_birth"] = "2005-03-01"
    for charge in data["judicial"]["charges"]:
        charge["committed_on"] = "2021-06"
    withheld, _ = _labels(_model("red", data), OPEN)
    assert withheld["judicial.summary_of_facts"] == DEFAULT_DENY_MINOR
    assert withheld["person.family_name"] == DEFAULT_DENY_MINOR


@pytest.mark.parametrize("role", ["missing", "victim", "unidentified"])
def test_a_sought_minors_free_text_is_not_protected(role: str) -> None:
    """A missing child (or a child victim): the identity waits for a rule naming minors, the
    circumstances (free text, operational) are disclosed."""
    data = example("yellow")
    data["subject_category"] = role
    data["person"]["date_of_birth"] = "2013-04-01"
    decision = decide(_model("yellow", data), "FR", _policies(OPEN), today=TODAY)
    assert decision.rule_for("missing.circumstances") == "fr-all"
    assert decision.rule_for("person.family_name") == DEFAULT_DENY_MINOR
    assert decision.rule_for("person.physical.height_cm") == DEFAULT_DENY_MINOR


def test_related_minors_protect_their_unit_and_the_free_text_when_protected() -> None:
    """An adult suspect with a 15-year-old witness among the related persons: related_persons and
    the notice's free text are withheld by default-deny-minor, the suspect's identity and own
    description are disclosed. A child victim among the related persons protects related_persons
    only."""
    witness = [{"role": "witness", "family_name": "BIANCHI", "date_of_birth": "2010-01-01"}]
    withheld, _ = _labels(_red("1979-11-03", related_persons=witness), OPEN)
    assert withheld == {
        "judicial.charges": DEFAULT_DENY_MINOR,
        "judicial.summary_of_facts": DEFAULT_DENY_MINOR,
        "person.biometrics.fingerprints": "default-deny-biometric",
        "person.biometrics.photos": "default-deny-biometric",
        "related_persons": DEFAULT_DENY_MINOR,
    }
    victim = [{"role": "victim", "family_name": "VERDI", "date_of_birth": "2010-01-01"}]
    withheld, _ = _labels(_red("1979-11-03", related_persons=victim), OPEN)
    assert withheld["related_persons"] == DEFAULT_DENY_MINOR
    assert "judicial.summary_of_facts" not in withheld
    lifted = decide(
        _red("1979-11-03", related_persons=witness),
        "FR",
        _policies(WITH_MINOR_RULE),
        today=TODAY,
    )
    assert lifted.rule_for("judicial.summary_of_facts") == "fr-minor-judicial"
    assert lifted.rule_for("related_persons") == DEFAULT_DENY_MINOR
    adults = [{"role": "witness", "family_name": "BIANCHI", "date_of_birth": "1990-01-01"}]
    decision = decide(_red("1979-11-03", related_persons=adults), "FR", _policies(OPEN))
    assert "related_persons" in decision.disclosed


#: OPEN, but the date of birth is withheld (the minor test is hidden from the recipient).
NO_DOB = (
    OPEN
    + """
[[rule]]
id = "fr-no-dob"
action = "withhold"
reason = "dates of birth are not needed"
path = "person.date_of_birth"
"""
)


def test_free_text_labels_do_not_tell_a_minor_from_an_adult() -> None:
    """Date of birth withheld: the minor's free text is labelled withheld-by-policy (the deciding
    rule stays default-deny-minor in explain); the date of birth, withheld by the same rule for
    both, keeps its rule; the adult's view has no label the minor's has not."""
    minor_full, minor_sent = _labels(_red("2008-01-01"), NO_DOB)
    assert minor_full["judicial.summary_of_facts"] == DEFAULT_DENY_MINOR
    assert minor_sent["judicial.summary_of_facts"] == WITHHELD_BY_POLICY
    assert DEFAULT_DENY_MINOR not in minor_sent.values()
    adult_full, adult_sent = _labels(_red("1979-11-03"), NO_DOB)
    assert adult_full["person.date_of_birth"] == "fr-no-dob"
    assert adult_sent["person.date_of_birth"] == minor_sent["person.date_of_birth"] == "fr-no-dob"
    assert set(adult_sent.values()) <= set(minor_sent.values())


def test_the_offence_date_is_an_input_of_the_test() -> None:
    """Date of birth disclosed but the charges (with their dates) withheld: the recipient cannot
    tell the age at the offence, so the labels do not tell it either."""
    data = example("red")
    data["person"]["date_of_birth"] = "2005-03-01"
    for charge in data["judicial"]["charges"]:
        charge["committed_on"] = "2021-06-01"
    policy = (
        OPEN.replace('"judicial", ', "")
        + """
[[rule]]
id = "fr-minor-identity"
action = "disclose"
reason = "identity of minors"
category = "identity"
subject = "minor"
"""
    )
    full, sent = _labels(_model("red", data), policy)
    assert "person.date_of_birth" not in full
    assert full["judicial.summary_of_facts"] == DEFAULT_DENY_MINOR
    assert sent["judicial.summary_of_facts"] == WITHHELD_BY_POLICY
    assert sent["person.physical.height_cm"] == WITHHELD_BY_POLICY


def test_hidden_related_persons_hide_their_test_too() -> None:
    """related_persons withheld: whether the free text was withheld for a related minor is not
    told; shown, the recipient sees the ages itself and the rule is named."""
    witness = [{"role": "witness", "family_name": "BIANCHI", "date_of_birth": "2010-01-01"}]
    notice = _red("1979-11-03", related_persons=witness)
    full, sent = _labels(notice, OPEN)
    assert full["judicial.summary_of_facts"] == DEFAULT_DENY_MINOR
    assert sent["judicial.summary_of_facts"] == WITHHELD_BY_POLICY
    assert sent["related_persons"] == WITHHELD_BY_POLICY
    shown = OPEN + (
        '\n[[rule]]\nid = "fr-related"\naction = "disclose"\nreason = "related persons"\n'
        'path = "related_persons"\nsubject = "minor"\n'
    )
    full, sent = _labels(notice, shown)
    assert "related_persons" not in full
    assert sent["judicial.summary_of_facts"] == DEFAULT_DENY_MINOR


# -- reliability and accuracy ------------------------------------------------------------------

GRADED = """
schema = "nbx-policy/1"
country = "FR"

[[rule]]
id = "fr-ops"
action = "disclose"
reason = "case details"
category = "judicial"

[[rule]]
id = "fr-unreliable"
action = "withhold"
reason = "not acted on without corroboration"
category = "judicial"
reliability = ["C", "X"]

[[rule]]
id = "fr-uncorroborated"
action = "withhold"
reason = "not acted on without corroboration"
category = "judicial"
accuracy = 4
"""


@pytest.mark.parametrize(
    ("reliability", "accuracy", "rule"),
    [
        ("A", 1, "fr-ops"),
        ("B", 3, "fr-ops"),
        ("C", 1, "fr-unreliable"),
        ("X", 2, "fr-unreliable"),
        ("A", 4, "fr-uncorroborated"),
        ("B", 4, "fr-uncorroborated"),
    ],
)
def test_rules_match_on_reliability_and_accuracy(
    reliability: str, accuracy: int, rule: str
) -> None:
    """`reliability` and `accuracy` match the notice's evaluation codes (header)."""
    notice = _red("1979-11-03", source_reliability=reliability, information_accuracy=accuracy)
    decision = decide(notice, "FR", _policies(GRADED), today=TODAY)
    assert decision.rule_for("judicial.charges") == rule


def test_each_grade_matcher_counts_for_precedence() -> None:
    """A rule with both new matchers is one matcher more specific per key (precedence)."""
    text = GRADED + (
        '\n[[rule]]\nid = "fr-both"\naction = "disclose"\nreason = "graded"\n'
        'category = "judicial"\nreliability = "C"\naccuracy = [1, 2]\n'
    )
    notice = _red("1979-11-03", source_reliability="C", information_accuracy=2)
    decision = decide(notice, "FR", _policies(text), today=TODAY)
    assert decision.rule_for("judicial.charges") == "fr-both"


#: Withholds one field (PATH) and discloses the rest of the person's identity and location to
#: minors and adults alike; a minor rule discloses the circumstances only to minors.
ONE_HIDDEN = """
schema = "nbx-policy/1"
country = "FR"

[[rule]]
id = "fr-all"
action = "disclose"
reason = "identity and where"
category = ["identity", "physical", "location", "judicial"]
subject = ["minor", "suspect", "missing", "unidentified", "victim", "deceased"]

[[rule]]
id = "fr-hide"
action = "withhold"
reason = "the one hidden input"
path = "PATH"

[[rule]]
id = "fr-minor-ops"
action = "withhold"
reason = "circumstances of minors' cases"
category = "operational"
subject = "minor"

[[rule]]
id = "fr-ops"
action = "disclose"
reason = "circumstances"
category = "operational"
"""


def _missing(**person: Any) -> NoticeBase:
    data = example("yellow")
    data["person"].update(person)
    data["missing"]["missing_since"] = "2024-09-01"
    return _model("yellow", data)


def _living(**person: Any) -> NoticeBase:
    data = example("yellow")
    data["subject_category"] = "unidentified"
    data["person"].pop("date_of_birth", None)
    data["person"].update(person)
    data["missing"] = {"found_on": "2025-04-02", "found_place": "Lisbon", "circumstances": "Alone."}
    return _model("yellow", data)


def _body(**body: Any) -> NoticeBase:
    data = example("black")
    if body.get("estimated_age_min") is None:
        data["person"]["date_of_birth"] = "2009-01-01"
    data["body"].update(body)
    return _model("black", data)


@pytest.mark.parametrize(
    ("hidden", "notice"),
    [
        ("missing.missing_since", _missing(date_of_birth="2007-03-01")),
        ("person.estimated_age_min", _living(estimated_age_min=14, estimated_age_max=16)),
        ("missing.found_on", _living(estimated_age_min=14, estimated_age_max=16)),
        ("body.found_on", _body(estimated_age_min=None, estimated_age_max=None)),
        ("body.estimated_age_min", _body(estimated_age_min=8, estimated_age_max=11)),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_input_of_the_minor_test_hides_the_labels(hidden: str, notice: NoticeBase) -> None:
    """Whichever input of the test is the one withheld from a minor's view (the date of birth
    disclosed where there is one), the label chosen by the minor test is sent as
    withheld-by-policy, and the hidden input keeps its own rule."""
    full, sent = _labels(notice, ONE_HIDDEN.replace("PATH", hidden))
    assert (full[hidden], sent[hidden]) == ("fr-hide", "fr-hide")
    circumstances = next(p for p in full if p.endswith("circumstances"))
    assert full[circumstances] == "fr-minor-ops"
    assert sent[circumstances] == WITHHELD_BY_POLICY


def test_with_every_input_shown_the_minor_rule_is_named() -> None:
    """The control: the same missing child with only a field that is no input withheld; the
    recipient sees the date of birth and the day she went missing, the rule is named."""
    notice = _missing(date_of_birth="2007-03-01")
    full, sent = _labels(notice, ONE_HIDDEN.replace("PATH", "person.forenames"))
    assert sent == full
    assert sent["missing.circumstances"] == "fr-minor-ops"


#: ``minor = true`` narrowing ``subject``: witnesses' identity, only when they are minors.
MINOR_WITNESS = """
schema = "nbx-policy/1"
country = "FR"

[[rule]]
id = "fr-child-witness"
action = "disclose"
reason = "a child witness: identity for the juvenile liaison"
category = "identity"
subject = "witness"
minor = true

[[rule]]
id = "fr-adults-only"
action = "disclose"
reason = "adults' judicial data"
category = "judicial"
minor = false
"""


@pytest.mark.parametrize(
    ("dob", "role", "family_name", "charges"),
    [
        ("2012-05-05", "witness", "fr-child-witness", "default-deny-minor"),
        ("1980-05-05", "witness", "default-deny-unmatched", "fr-adults-only"),
        ("2012-05-05", "suspect", DEFAULT_DENY_MINOR, "default-deny-minor"),
    ],
)
def test_the_minor_matcher_narrows_the_subject(
    dob: str, role: str, family_name: str, charges: str
) -> None:
    """`subject = "witness"` with `minor = true` discloses a child witness's identity (and lifts
    default-deny-minor) but matches neither an adult witness nor a minor suspect; `minor = false`
    matches only an adult's fields (unlike `subject = ["witness", "minor"]`, which is either)."""
    data = example("blue")
    data["person"]["date_of_birth"] = dob
    data["subject_category"] = role
    decision = decide(_model("blue", data), "FR", _policies(MINOR_WITNESS), today=TODAY)
    assert decision.rule_for("person.family_name") == family_name
    assert decision.rule_for("inquiry.related_offence") == charges  # free text, judicial


def test_the_minor_matcher_takes_a_boolean_only() -> None:
    """`minor = "yes"` is an error naming the key, not a silent match."""
    bad = MINOR_WITNESS.replace("minor = true", 'minor = "yes"').encode()
    with pytest.raises(PolicyError, match=r"FR.toml:11: rule 'fr-child-witness': minor: Input "):
        parse_policy(bad, source="FR.toml")
