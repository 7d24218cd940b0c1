"""Issue 19, points 3, 4, 5 and 7-8 criteria: identifiers per RPD, roles, diffusion kinds,
court and threat fields; each rule accepted and refused with its exact message."""

from collections.abc import Callable
from typing import Any

import pytest

from broker.schemas import NoticeInvalid, disclosure_units, field_categories, parse_notice

from .conftest import example

JUDICIAL = example("red")["judicial"]
PERSON = example("red")["person"]


def errors_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(NoticeInvalid) as info:
        parse_notice(data)
    return info.value.errors


# --- point 4: yellow identifiers (RPD Art. 90) -------------------------------------------------


def test_missing_person_needs_full_identifiers_and_the_day() -> None:
    """A family name and a year no longer make a missing person's yellow notice."""
    data = example("yellow")
    data["person"] = {"family_name": "GARCIA LOPEZ", "date_of_birth": "2025"}
    data["missing"]["missing_since"] = "2025"
    data["created_at"] = "2025-12-01T09:00:00Z"
    assert errors_of(data) == [
        ("person.forenames", "required for a yellow notice (RPD Art. 90)"),
        ("person.sex", "required for a yellow notice (RPD Art. 90)"),
        (
            "person",
            "a yellow notice needs a physical description or a biometric reference (photo, "
            "fingerprints or DNA profile) (RPD Art. 90)",
        ),
        (
            "missing.missing_since",
            "give the day the person went missing (YYYY-MM-DD) (RPD Art. 90)",
        ),
    ]


def test_missing_person_with_a_description_only_is_accepted() -> None:
    """A physical description stands for the photo (as DNA or fingerprints would)."""
    data = example("yellow")
    del data["person"]["biometrics"]
    assert parse_notice(data).person.physical is not None  # type: ignore[union-attr]


def test_person_unable_to_identify_themselves_needs_a_description_or_biometric() -> None:
    """found_on: no name is needed (that is what is sought), but something to recognise."""
    data = example("yellow")
    data["subject_category"] = "unidentified"
    data["purpose"] = "identify"
    data["person"] = {"sex": "F", "estimated_age_min": 70, "estimated_age_max": 80}
    data["missing"] = {"found_on": "2025-02-20", "found_place": "Valencia"}
    assert errors_of(data) == [
        (
            "person",
            "a person unable to identify themselves needs a physical description or a "
            "biometric reference (photo, fingerprints or DNA profile) (RPD Art. 90)",
        )
    ]
    data["person"]["physical"] = {"height_cm": 160}
    assert parse_notice(data).person.estimated_age_min == 70  # type: ignore[union-attr]


def test_estimated_ages_must_be_ordered() -> None:
    data = example("yellow")
    data["person"].update(estimated_age_min=13, estimated_age_max=11)
    assert errors_of(data) == [("person.estimated_age_max", "must not be below estimated_age_min")]


def test_date_of_birth_after_the_notice_is_refused() -> None:
    data = example("yellow")
    data["person"]["date_of_birth"] = "2025-03-02"
    assert errors_of(data) == [("person.date_of_birth", "is after the notice was created")]


def test_green_needs_the_red_identifiers() -> None:
    data = example("green")
    del data["person"]["sex"]
    del data["person"]["physical"]
    assert errors_of(data) == [
        ("person.sex", "required for a green notice (RPD Art. 89)"),
        (
            "person",
            "a green notice needs a physical description, a biometric reference (photo, "
            "fingerprints or DNA profile) or an identity document (RPD Art. 89)",
        ),
    ]


# --- point 5: roles ------------------------------------------------------------------------------


def test_role_is_required_when_the_notice_names_a_person() -> None:
    data = example("red")
    del data["subject_category"]
    assert errors_of(data) == [
        (
            "subject_category",
            "required when the notice names a person (RPD Art. 44: the person's status), "
            "one of: accused, convicted, suspect",
        )
    ]


def test_role_may_be_absent_when_no_person_is_named() -> None:
    data = example("purple")
    del data["subject_category"]
    assert parse_notice(data).subject_category is None


def test_black_notice_states_the_role_of_the_body() -> None:
    """The body is a person even without a person block."""
    data = example("black")
    del data["person"]
    del data["subject_category"]
    assert errors_of(data) == [
        (
            "subject_category",
            "required when the notice names a person (RPD Art. 44: the person's status), "
            "one of: deceased, unidentified",
        )
    ]
    data["subject_category"] = "deceased"
    assert parse_notice(data).subject_category == "deceased"


@pytest.mark.parametrize(
    ("kind", "role"),
    [
        ("red", "accused"),
        ("green", "possible_threat"),
        ("yellow", "victim"),
        ("un", "listed"),
        ("blue", "person_of_interest"),
        ("blue", "associate"),
    ],
)
def test_new_roles_accepted_where_they_fit(kind: str, role: str) -> None:
    data = example(kind)
    data["subject_category"] = role
    assert parse_notice(data).subject_category == role


@pytest.mark.parametrize(
    ("kind", "role", "message"),
    [
        ("un", "suspect", "an un notice's subject must be one of: listed"),
        ("black", "victim", "a black notice's subject must be one of: deceased, unidentified"),
        (
            "yellow",
            "deceased",
            "a yellow notice's subject must be one of: missing, unidentified, victim",
        ),
    ],
)
def test_roles_refused_where_they_do_not_fit(kind: str, role: str, message: str) -> None:
    data = example(kind)
    data["subject_category"] = role
    assert errors_of(data) == [("subject_category", message)]


def test_related_persons_have_their_own_role_and_a_name() -> None:
    data = example("red")
    data["related_persons"] = [
        {"role": "associate", "relation": "business partner", "family_name": "BIANCHI"},
        {"role": "witness", "sex": "F", "date_of_birth": "2026"},
    ]
    assert errors_of(data) == [
        ("related_persons.1", "a related person needs a family name or forenames"),
        ("related_persons.1.date_of_birth", "is after the notice was created"),
    ]
    data["related_persons"][1].update(forenames="Anna", date_of_birth="2009")
    assert [p.role for p in parse_notice(data).related_persons] == ["associate", "witness"]


# --- point 7: what a court needs ------------------------------------------------------------


def test_court_fields_consistency() -> None:
    """A translation names its language; a judgment says whether it was given in absence and
    whether it is final (and only a judgment does); extradition is not sought from oneself."""
    data = example("red")
    j = data["judicial"]
    j["charges"][0]["translation"] = "Truffa aggravata"
    j["charges"][1]["translation_language"] = "fr"
    j["charges"][1]["committed_on"] = "2025-04"
    j["warrants"][0]["final"] = True
    j["warrants"].append(
        {
            "kind": "judgment",
            "reference": "TO-2022/17",
            "issued_on": "2022-06-01",
            "issuing_authority": "Tribunale di Torino",
        }
    )
    j["extradition_countries"] = ["CH", "IT", "CH"]
    assert errors_of(data) == [
        ("judicial.warrants.0.final", "only for a judgment"),
        ("judicial.warrants.1.in_absentia", "required for a judgment"),
        ("judicial.warrants.1.final", "required for a judgment"),
        ("judicial.charges.0.translation_language", "required with a translation"),
        ("judicial.charges.1.translation_language", "only with a translation"),
        ("judicial.charges.1.committed_on", "is after the notice was created"),
        ("judicial.extradition_countries", "must not include the issuing country"),
        ("judicial.extradition_countries", "must not repeat a country"),
    ]


# --- point 8: orange and silver ----------------------------------------------------------------


def test_orange_needs_threat_level_and_validity() -> None:
    data = example("orange")
    del data["threat_level"]
    data["valid_until"] = "2025-02-01"
    assert errors_of(data) == [
        ("threat_level", "an orange notice needs the threat level"),
        ("valid_until", "is before the notice was created"),
    ]
    del data["valid_until"]
    data["threat_level"] = "critical"
    assert errors_of(data) == [("valid_until", "an orange notice needs the last day it applies")]
    data["valid_until"] = "2031-01-01"
    assert errors_of(data) == [("valid_until", "must not be after retention_until")]


def test_silver_needs_the_requested_action() -> None:
    data = example("silver")
    del data["requested_action"]
    assert errors_of(data) == [
        (
            "requested_action",
            "a silver notice needs the action requested: locate, identify, "
            "obtain_information, monitor_discreetly",
        )
    ]


# --- point 3: diffusion kinds ------------------------------------------------------------------


def _wanted(d: dict[str, Any]) -> None:
    d.update(purpose="arrest_extradition", person=PERSON, judicial=JUDICIAL)
    d["details"] = {"kind": "wanted"}
    d.pop("inquiry", None)


def _missing(d: dict[str, Any]) -> None:
    yellow = example("yellow")
    d.update(subject_category="missing", person=yellow["person"], missing=yellow["missing"])
    d["details"] = {"kind": "missing"}
    d.pop("inquiry", None)


@pytest.mark.parametrize(
    "mutate",
    [
        _wanted,
        _missing,
        lambda d: d.update(purpose="information", details={"kind": "information"}),
        lambda d: (d.pop("inquiry"), d.update(details={"kind": "other", "request": "Call us."})),
    ],
)
def test_each_diffusion_kind_with_its_structure_is_accepted(
    mutate: Callable[[dict[str, Any]], object],
) -> None:
    data = example("diffusion")
    mutate(data)
    assert parse_notice(data).details.kind == data["details"]["kind"]  # type: ignore[union-attr]


def test_arrest_diffusion_without_warrant_or_charges_is_refused() -> None:
    """Issue 19, point 3: it used to validate with a free-text request only."""
    data = example("diffusion")
    data.update(purpose="arrest_extradition")
    assert errors_of(data) == [
        ("details.kind", "a diffusion asking for arrest must be of kind 'wanted'")
    ]
    _wanted(data)
    data["judicial"] = {"requesting_authority": "Åklagarmyndigheten", "purpose": "prosecution"}
    data["person"] = {"family_name": "LINDQVIST"}
    assert errors_of(data) == [
        ("person.forenames", "required for a wanted diffusion (as a red notice, RPD Art. 83)"),
        ("person.sex", "required for a wanted diffusion (as a red notice, RPD Art. 83)"),
        (
            "person.date_of_birth",
            "required for a wanted diffusion (as a red notice, RPD Art. 83)",
        ),
        (
            "person",
            "a wanted diffusion needs a physical description, a biometric reference (photo, "
            "fingerprints or DNA profile) or an identity document (as a red notice, "
            "RPD Art. 83)",
        ),
        ("judicial.summary_of_facts", "required for publication"),
        ("judicial.warrants", "a wanted diffusion needs at least one warrant or judgment"),
        ("judicial.charges", "a wanted diffusion needs at least one charge"),
        (
            "judicial.extradition_assurance",
            "a wanted diffusion needs the assurance that extradition will be requested",
        ),
    ]
    del data["judicial"]
    del data["person"]
    assert errors_of(data) == [
        ("person", "a wanted diffusion needs the person, as a red notice"),
        ("judicial", "a wanted diffusion needs the judicial block of a red notice"),
    ]


def test_wanted_diffusion_subject_and_purpose_follow_the_red_notice() -> None:
    data = example("diffusion")
    _wanted(data)
    data.update(subject_category="witness", purpose="locate")
    assert errors_of(data) == [
        (
            "subject_category",
            "a wanted diffusion's subject must be one of: accused, convicted, suspect",
        ),
        ("purpose", "a wanted diffusion's purpose must be one of: arrest_extradition"),
        ("subject_category", "must be 'suspect' or 'accused' when the purpose is prosecution"),
    ]


def test_missing_diffusion_needs_the_yellow_structure() -> None:
    data = example("diffusion")
    _missing(data)
    del data["missing"]
    assert errors_of(data) == [
        ("missing", "a missing diffusion needs the missing block of a yellow notice")
    ]
    _missing(data)
    del data["person"]["forenames"]
    assert errors_of(data) == [
        ("person.forenames", "required for a missing diffusion (RPD Art. 90)")
    ]


def test_locate_diffusion_needs_the_inquiry_and_an_identifiable_person() -> None:
    data = example("diffusion")
    del data["inquiry"]
    data["person"] = {"family_name": "LINDQVIST"}
    assert errors_of(data) == [
        (
            "person",
            "a locate diffusion needs the family name with the date of birth, or a biometric "
            "reference (photo, fingerprints or DNA profile)",
        ),
        ("inquiry", "name the information sought and why"),
    ]


def test_other_diffusion_needs_the_free_text_request() -> None:
    data = example("diffusion")
    data["details"] = {"kind": "other"}
    assert errors_of(data) == [("details.request", "required for publication")]


def test_the_examples_are_a_missing_child_and_a_childs_body() -> None:
    """The bundled yellow notice is a missing 12-year-old with what a search needs (photo,
    last-seen place, the day, her diabetes as special.health); the black notice a child's body."""
    yellow = parse_notice(example("yellow"))
    assert yellow.subject_category == "missing"
    assert yellow.person is not None
    assert yellow.person.date_of_birth == "2012-10-14"
    assert yellow.missing.missing_since == "2025-02-20"  # type: ignore[union-attr]
    categories = field_categories("yellow")
    units = {u.path for u in disclosure_units(yellow)}
    assert {
        "person.family_name",
        "person.date_of_birth",
        "person.biometrics.photos",
        "missing.last_seen_place",
        "missing.missing_since",
        "person.special.health",
    } <= units
    assert categories["person.special.health"] == "special.health"
    black = parse_notice(example("black"))
    assert black.subject_category == "unidentified"
    body = black.body  # type: ignore[union-attr]
    assert (body.estimated_age_min, body.estimated_age_max) == (8, 11)
