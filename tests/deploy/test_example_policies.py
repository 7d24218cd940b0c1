"""The example policies (deploy/policies = broker/examples/policies) serve the search for missing,
unidentified and dead children, protect the minors a notice does not seek, and rest on correct
premises (issue 19, points 2 and 10)."""

from __future__ import annotations

import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from broker.examples import notices_dir, policies_dir
from broker.policy import PolicySet, decide, load_policies
from broker.schemas import NoticeBase, parse_notice

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "policies"
TODAY = date(2026, 6, 1)
POLICIES: PolicySet = load_policies(policies_dir())
#: the review body's file: it reviews, it does not search
REVIEWER = "XR"
#: the oversight body's file: it decides challenges, it does not search
OVERSIGHT = "XO"
#: every national bureau with its own example file, and IT, which falls back to default.toml
SEARCHERS = [
    *sorted(
        p.stem
        for p in policies_dir().glob("*.toml")
        if p.stem not in ("default", REVIEWER, OVERSIGHT)
    ),
    "IT",
]

#: what finding a missing child needs (issue 19, point 2)
MISSING_CHILD_NEEDS = (
    "person.family_name",
    "person.forenames",
    "person.date_of_birth",
    "person.sex",
    "person.biometrics.photos",
    "person.physical.height_cm",
    "missing.last_seen_place",
    "missing.missing_since",
    "missing.circumstances",
    "person.special.health",
)
#: what identifying a child's body needs
CHILD_BODY_NEEDS = (
    "person.sex",
    "person.physical.height_cm",
    "person.physical.distinguishing_marks",
    "person.biometrics.photos",
    "person.biometrics.fingerprints",
    "person.biometrics.dna_profile",
    "body.estimated_age_min",
    "body.estimated_age_max",
    "body.found_on",
    "body.found_place",
    "body.found_country",
)
_REF = {"uri": "https://nbx.example/bio/x", "sha256": "3f" * 32, "media_type": "image/jpeg"}


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((notices_dir() / f"{name}.json").read_text())
    return data


def missing_child() -> NoticeBase:
    """A yellow notice for a girl missing since she was 11 (13 on TODAY), with diabetes."""
    data = _example("yellow")
    data["subject_category"] = "missing"
    data["person"] = {
        **data["person"],
        "date_of_birth": "2013-03-10",
        "physical": {"height_cm": 148, "eye_colour": "green", "hair_colour": "brown"},
        "biometrics": {"photos": [_REF]},
        "special": {"health": "Type 1 diabetes; needs insulin daily"},
    }
    data["missing"] = {
        "missing_since": "2025-02-20",
        "last_seen_place": "Valencia, bus station",
        "last_seen_country": "ES",
        "circumstances": "Did not return from school.",
    }
    return parse_notice(data)


def child_body() -> NoticeBase:
    """A black notice for the body of a child aged about 8 to 11."""
    data = _example("black")
    data["subject_category"] = "unidentified"
    data["person"] = {
        "sex": "F",
        "physical": {
            "height_cm": 130,
            "hair_colour": "blond",
            "distinguishing_marks": "Scar on the left knee",
        },
        "biometrics": {
            "photos": [_REF],
            "fingerprints": [{**_REF, "media_type": "application/octet-stream"}],
            "dna_profile": {**_REF, "media_type": "application/xml"},
        },
    }
    data["body"] = {
        **data["body"],
        "estimated_age_min": 8,
        "estimated_age_max": 11,
        "cause_of_death": "Drowning",
    }
    return parse_notice(data)


def _rule_ids(recipient: str) -> set[str]:
    """The rule ids of the file that decides for ``recipient``."""
    path = policies_dir() / f"{recipient}.toml"
    if not path.exists():
        path = policies_dir() / "default.toml"
    rules = tomllib.loads(path.read_text())["rule"]
    return {str(r["id"]) for r in rules}


def test_deploy_policies_are_the_bundled_examples() -> None:
    """deploy/policies and broker/examples/policies are one folder (a link), so the files a
    deployment copies and the ones ``nbx demo`` and ``nbx node init`` ship cannot drift apart."""
    assert DEPLOY.resolve() == policies_dir().resolve()
    deployed = {p.name: p.read_bytes() for p in DEPLOY.iterdir()}
    bundled = {p.name: p.read_bytes() for p in policies_dir().iterdir() if p.is_file()}
    assert deployed == bundled
    assert "README.md" in bundled
    assert {"default.toml", "XR.toml", "XO.toml"} <= set(bundled)


def test_readme_says_they_are_examples_and_lists_every_file() -> None:
    """deploy/policies/README.md says the files are examples and has a line for each."""
    text = (DEPLOY / "README.md").read_text()
    assert "examples, not legal advice" in text
    for path in sorted(DEPLOY.glob("*.toml")):
        assert f"| `{path.name}` |" in text, path.name


@pytest.mark.parametrize("recipient", SEARCHERS)
def test_missing_child_is_findable_at_every_bureau(recipient: str) -> None:
    """A missing child's yellow notice gives every bureau her name, date of birth, sex, photo,
    description, last-seen place, the date she went missing, the circumstances and her medical
    needs, each by a named rule of that bureau's file (never a built-in default)."""
    decision = decide(missing_child(), recipient, POLICIES, today=TODAY)
    assert decision.allowed
    ids = _rule_ids(recipient)
    for path in MISSING_CHILD_NEEDS:
        assert path in decision.disclosed, (recipient, path, decision.rule_for(path))
        assert decision.rule_for(path) in ids, (recipient, path)
    assert [p for p, rule in decision.withheld if rule.startswith("default-")] == []


@pytest.mark.parametrize("recipient", SEARCHERS)
def test_child_body_is_identifiable_at_every_bureau(recipient: str) -> None:
    """A child's body (black notice, estimated age 8-11) gives every bureau the description,
    the estimated age, photos, fingerprints and the DNA profile by reference, and where and when
    it was found."""
    decision = decide(child_body(), recipient, POLICIES, today=TODAY)
    ids = _rule_ids(recipient)
    for path in CHILD_BODY_NEEDS:
        assert path in decision.disclosed, (recipient, path, decision.rule_for(path))
        assert decision.rule_for(path) in ids, (recipient, path)


@pytest.mark.parametrize(
    ("body", "rule"), [(REVIEWER, "xr-review-minors"), (OVERSIGHT, "xo-challenge-minors")]
)
def test_network_bodies_get_identity_not_the_search_data(body: str, rule: str) -> None:
    """XR reviews (the refugee check needs the child's identity) and XO decides challenges, but
    neither searches: no photo, description, place or health, also when a notice is sent to
    every bureau listed (the default's search rules do not reach them)."""
    decision = decide(missing_child(), body, POLICIES, today=TODAY)
    assert not decision.policy.startswith("default@")
    for path in ("person.family_name", "person.date_of_birth", "person.nationalities"):
        assert decision.rule_for(path) == rule
        assert path in decision.disclosed
    withheld = dict(decision.withheld)
    for path in ("person.biometrics.photos", "missing.last_seen_place", "person.special.health"):
        assert path in withheld, path


def minor_suspect() -> NoticeBase:
    """A red notice for a 17-year-old suspect."""
    data = _example("red")
    data["person"] = {**data["person"], "date_of_birth": "2009-01-15"}
    return parse_notice(data)


@pytest.mark.parametrize("recipient", SEARCHERS)
def test_minor_suspect_stays_protected(recipient: str) -> None:
    """The search rules name yellow and black notices only: a 17-year-old red-notice suspect's
    identity, description and photo stay withheld at every national bureau."""
    decision = decide(minor_suspect(), recipient, POLICIES, today=TODAY)
    for path in ("person.family_name", "person.date_of_birth", "person.biometrics.photos"):
        assert path not in decision.disclosed, (recipient, path)


def test_reviewer_reviews_a_minor_suspect() -> None:
    """XR reviews the minor suspect's notice: identity and the judicial block by its minors
    rule, no photo or description."""
    decision = decide(minor_suspect(), REVIEWER, POLICIES, today=TODAY)
    for path in ("person.family_name", "person.date_of_birth", "judicial.charges"):
        assert path in decision.disclosed, path
    assert decision.rule_for("person.family_name") == "xr-review-minors"
    for path in ("person.biometrics.photos", "person.physical.height_cm"):
        assert path not in decision.disclosed, path


@pytest.mark.parametrize("recipient", SEARCHERS)
def test_an_adult_missing_person_is_findable_too(recipient: str) -> None:
    """The same search data for a missing adult (no minor rule needed)."""
    data = _example("yellow")
    data["person"] = {**data["person"], "date_of_birth": "1980-03-10"}
    decision = decide(parse_notice(data), recipient, POLICIES, today=TODAY)
    for path in ("person.family_name", "person.biometrics.photos", "missing.last_seen_place"):
        assert path in decision.disclosed, (recipient, path)
    assert "person.special.health" in decision.disclosed


def test_h2_does_not_change_what_is_received() -> None:
    """H2 binds what the recipient does with a notice (no onward dissemination without the
    provider's permission), it is no reason to receive less: every bureau receives of an H2
    notice exactly what it receives of the same notice under H0."""
    data = _example("red")
    h0 = parse_notice({**data, "handling": {"code": "H0"}})
    h2 = parse_notice({**data, "handling": {"code": "H2"}})
    for recipient in [*SEARCHERS, REVIEWER, OVERSIGHT]:
        a = decide(h0, recipient, POLICIES, today=TODAY)
        b = decide(h2, recipient, POLICIES, today=TODAY)
        assert (a.disclosed, a.withheld) == (b.disclosed, b.withheld), recipient
    for path in policies_dir().glob("*.toml"):
        rules = tomllib.loads(path.read_text()).get("rule", [])
        assert not [r["id"] for r in rules if "handling" in r], path.name


def test_dna_is_received_where_identification_is_the_purpose() -> None:
    """No example refuses DNA everywhere: every bureau receives a DNA profile (by reference) on
    yellow and black notices; FR and DE keep it out of red notices, with a neutral reason."""
    yellow = parse_notice(
        {
            **_example("yellow"),
            "person": {
                **_example("yellow")["person"],
                "date_of_birth": "1980-03-10",
                "biometrics": {"dna_profile": {**_REF, "media_type": "application/xml"}},
            },
        }
    )
    for recipient in SEARCHERS:
        decision = decide(yellow, recipient, POLICIES, today=TODAY)
        assert "person.biometrics.dna_profile" in decision.disclosed, recipient
    red = _example("red")
    red["person"] = {
        **red["person"],
        "biometrics": {"dna_profile": {**_REF, "media_type": "application/xml"}},
    }
    red_notice = parse_notice(red)
    assert decide(red_notice, "FR", POLICIES, today=TODAY).rule_for(
        "person.biometrics.dna_profile"
    ) == ("fr-dna")
    assert decide(red_notice, "DE", POLICIES, today=TODAY).rule_for(
        "person.biometrics.dna_profile"
    ) == ("de-no-biometrics")


def test_no_reason_rests_on_a_mistaken_premise() -> None:
    """The reasons the issue found wrong are gone: H2 as a reason to receive less, the traffic
    data provision (StPO 100g) for telephone numbers, Nordic-only location data, the claim that
    biometrics are never received by notice."""
    text = "\n".join(p.read_text() for p in policies_dir().glob("*.toml"))
    for wrong in ("100g", "H2 forbids", "never received by notice", "Prüm"):
        assert wrong not in text, wrong
    se = tomllib.loads((policies_dir() / "SE.toml").read_text())
    for rule in se["rule"]:
        if "sender" in rule:
            assert rule["category"] == "contact"


def test_nl_protects_a_victim_a_notice_does_not_seek() -> None:
    """NL withholds a victim's identity in a notice that does not seek the victim (a blue
    notice), but not in a yellow notice seeking a victim of trafficking."""
    blue = _example("blue")
    blue["subject_category"] = "victim"
    decision = decide(parse_notice(blue), "NL", POLICIES, today=TODAY)
    assert dict(decision.withheld)["person.family_name"] == "nl-protect-minors-victims"
    yellow = _example("yellow")
    yellow["subject_category"] = "victim"
    yellow["person"] = {**yellow["person"], "date_of_birth": "2010-03-10"}
    decision = decide(parse_notice(yellow), "NL", POLICIES, today=TODAY)
    assert decision.rule_for("person.family_name") == "nl-search-minors"
    assert "person.biometrics.photos" in decision.disclosed


def missing_child_diffusion() -> NoticeBase:
    """A diffusion (kind missing) for a 10-year-old girl missing since 2025-05-18."""
    path = ROOT / "tests" / "policy_cases" / "match-minor-narrows-subject" / "notice.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return parse_notice(data)


@pytest.mark.parametrize("recipient", SEARCHERS)
def test_a_missing_child_in_a_diffusion_is_findable_at_every_bureau(recipient: str) -> None:
    """A diffusion seeking a missing child is a search too: every bureau receives her name, date
    of birth, sex, description and where and when she was last seen, by its
    ``*-search-diffusion-minors`` rule (``subject`` missing... with ``minor = true``)."""
    decision = decide(missing_child_diffusion(), recipient, POLICIES, today=TODAY)
    needs = (
        "person.family_name",
        "person.date_of_birth",
        "person.sex",
        "person.physical.height_cm",
        "missing.last_seen_place",
        "missing.missing_since",
    )
    for path in needs:
        assert path in decision.disclosed, (recipient, path, decision.rule_for(path))
        rule = decision.rule_for(path)
        assert rule is not None, (recipient, path)
        assert rule.endswith("-search-diffusion-minors"), (recipient, path)


@pytest.mark.parametrize("recipient", SEARCHERS)
def test_a_minor_suspect_in_a_diffusion_stays_protected(recipient: str) -> None:
    """The same diffusion about a 10-year-old *suspect* (kind locate): the diffusion search rules
    do not match (role suspect), so her identity stays withheld by default-deny-minor."""
    data = json.loads(missing_child_diffusion().model_dump_json(exclude_none=True))
    data["subject_category"] = "suspect"
    data["details"] = {"kind": "locate", "request": "Locate and report."}
    data.pop("missing")
    data["inquiry"] = {"sought": ["location"], "reason": "Witnessed a robbery."}
    decision = decide(parse_notice(data), recipient, POLICIES, today=TODAY)
    for path in ("person.family_name", "person.date_of_birth"):
        assert path not in decision.disclosed, (recipient, path, decision.rule_for(path))
