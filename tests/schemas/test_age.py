"""The minor test: the age at the time that matters for the person's role, estimated ages, related
persons, and which units are free text (the input of role-aware minor protection)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from broker.schemas import NOTICE_MODELS, NoticeBase, NoticeType
from broker.schemas.age import (
    AgeBasis,
    JudgedAt,
    MinorTest,
    minor_test,
    related_tests,
)
from broker.schemas.units import free_text_paths

from .conftest import example


def _notice(kind: str, **changes: Any) -> NoticeBase:
    """The example notice of ``kind`` with top-level ``changes``; validated by its model only
    (the minor test does not depend on the publication criteria)."""
    data = example(kind)
    data.update(changes)
    return NOTICE_MODELS[NoticeType(kind)].model_validate(data)


def _red(role: str, dob: str | None, committed: list[str | None], **changes: Any) -> NoticeBase:
    data = example("red")
    data["person"]["date_of_birth"] = dob
    charges = data["judicial"]["charges"]
    data["judicial"]["charges"] = [
        {**charges[i % len(charges)], "committed_on": day} for i, day in enumerate(committed)
    ]
    data["subject_category"] = role
    data.update(changes)
    return NOTICE_MODELS[NoticeType.RED].model_validate(data)


TODAY = date(2025, 6, 1)


def test_a_suspect_is_judged_on_the_day_of_the_earliest_offence() -> None:
    """Born 2005-03-01, 20 today, but 16 when the first offence was committed (June 2021, read as
    its first day): a protected minor, judged at the offence."""
    test = minor_test(_red("suspect", "2005-03-01", ["2023-05-02", "2021-06"]), TODAY)
    assert test == MinorTest(
        minor=True,
        role=test.role,
        at=date(2021, 6, 1),
        when=JudgedAt.OFFENCE,
        basis=AgeBasis.DATE_OF_BIRTH,
        inputs=frozenset({"person.date_of_birth", "judicial.charges"}),
    )
    assert test.role == "suspect"
    assert test.protected


@pytest.mark.parametrize("role", ["accused", "convicted"])
def test_accused_and_convicted_are_judged_at_the_offence_too(role: str) -> None:
    """Every role answering for an offence is judged on its day."""
    test = minor_test(_red(role, "2005-03-01", ["2022-12-31"]), TODAY)
    assert (test.minor, test.when, test.protected) == (True, JudgedAt.OFFENCE, True)


def test_an_offence_committed_as_an_adult_does_not_make_a_minor() -> None:
    """18 on 2023-03-01, offence on 2023-03-01: an adult then and today."""
    test = minor_test(_red("suspect", "2005-03-01", ["2023-03-01"]), TODAY)
    assert (test.minor, test.at, test.when) == (False, date(2023, 3, 1), JudgedAt.OFFENCE)
    assert not test.protected


def test_without_an_offence_date_today_decides() -> None:
    """No charge says when it was committed: judged today (an adult); still a minor today if so."""
    adult = minor_test(_red("suspect", "2005-03-01", [None]), TODAY)
    assert (adult.minor, adult.at, adult.when) == (False, TODAY, JudgedAt.TODAY)
    assert adult.inputs == {"person.date_of_birth"}
    young = minor_test(_red("suspect", "2008-03-01", [None]), TODAY)
    assert (young.minor, young.when, young.protected) == (True, JudgedAt.TODAY, True)


def test_a_witness_is_judged_today_whatever_the_offence_date() -> None:
    """Only the roles answering for the offence are judged at it; a witness is protected when a
    minor today."""
    data = example("blue")
    data["subject_category"] = "witness"
    data["person"]["date_of_birth"] = "2005-03-01"
    blue = NOTICE_MODELS[NoticeType.BLUE].model_validate(data)
    assert minor_test(blue, TODAY).minor is False
    test = minor_test(blue, date(2023, 2, 28))
    assert (test.minor, test.protected, test.when) == (True, True, JudgedAt.TODAY)


def test_a_missing_person_is_judged_on_the_day_they_went_missing() -> None:
    """Missing since 17 (2027-06-01, born 2010-01-01): still a minor in 2040, and sought (not
    protected: the engine withholds the identity, not the free text)."""
    data = example("yellow")
    data["person"]["date_of_birth"] = "2010-01-01"
    data["missing"]["missing_since"] = "2027-06"
    data["created_at"] = "2027-07-01T00:00:00Z"
    data["review_due"] = "2028-07-01"
    data["retention_until"] = "2032-07-01"
    yellow = NOTICE_MODELS[NoticeType.YELLOW].model_validate(data)
    test = minor_test(yellow, date(2040, 1, 1))
    assert (test.minor, test.at, test.when) == (True, date(2027, 6, 1), JudgedAt.MISSING_SINCE)
    assert test.inputs == {"person.date_of_birth", "missing.missing_since"}
    assert not test.protected
    data["missing"]["missing_since"] = "2028-01-01"  # went missing at 18
    adult = minor_test(NOTICE_MODELS[NoticeType.YELLOW].model_validate(data), date(2040, 1, 1))
    assert (adult.minor, adult.at) == (False, date(2028, 1, 1))


def test_a_victim_is_judged_today() -> None:
    """A yellow notice's victim: today decides (missing_since is not read)."""
    data = example("yellow")
    data["subject_category"] = "victim"
    data["person"]["date_of_birth"] = "2007-06-15"
    yellow = NOTICE_MODELS[NoticeType.YELLOW].model_validate(data)
    assert minor_test(yellow, date(2025, 6, 14)).minor is True
    test = minor_test(yellow, date(2025, 6, 15))
    assert (test.minor, test.when, test.inputs) == (
        False,
        JudgedAt.TODAY,
        frozenset({"person.date_of_birth"}),
    )


def test_a_living_persons_estimated_age_grows_from_the_day_found() -> None:
    """A living unidentified person estimated at least 15 when found on 2025-01-10 may be a
    minor until 2028-01-10; without found_on the estimate dates from the notice's creation."""
    data = example("yellow")
    data["subject_category"] = "unidentified"
    del data["person"]["date_of_birth"]
    data["person"]["estimated_age_min"] = 15
    data["person"]["estimated_age_max"] = 17
    data["missing"] = {"found_on": "2025-01-10", "found_place": "Valencia"}
    found = NOTICE_MODELS[NoticeType.YELLOW].model_validate(data)
    test = minor_test(found, date(2028, 1, 9))
    assert (test.minor, test.basis) == (True, AgeBasis.ESTIMATED_AGE)
    assert test.inputs == {"person.estimated_age_min", "missing.found_on"}
    assert minor_test(found, date(2028, 1, 10)).minor is False
    data["missing"] = {"found_place": "Valencia"}  # created 2025-03-01
    created = NOTICE_MODELS[NoticeType.YELLOW].model_validate(data)
    assert minor_test(created, date(2028, 2, 29)).minor is True
    assert minor_test(created, date(2028, 3, 1)).minor is False


def test_a_bodys_estimated_age_does_not_grow() -> None:
    """A body estimated 8 to 11 is a child's body on any day; an adult's estimate is not; the
    person's estimate counts as the body's."""
    data = example("black")
    data["body"]["estimated_age_min"] = 8
    data["body"]["estimated_age_max"] = 11
    body = NOTICE_MODELS[NoticeType.BLACK].model_validate(data)
    test = minor_test(body, date(2070, 1, 1))
    assert (test.minor, test.basis, test.when) == (True, AgeBasis.ESTIMATED_AGE, JudgedAt.DEATH)
    assert test.inputs == {"body.estimated_age_min", "body.found_on"}
    assert not test.protected  # a body is sought
    data["body"]["estimated_age_min"] = 30
    data["body"]["estimated_age_max"] = 45
    assert minor_test(NOTICE_MODELS[NoticeType.BLACK].model_validate(data), TODAY).minor is False
    data["person"]["estimated_age_min"] = 16
    assert minor_test(NOTICE_MODELS[NoticeType.BLACK].model_validate(data), TODAY).minor is True


def test_a_body_with_a_date_of_birth_is_judged_on_the_day_it_was_found() -> None:
    """Born 2000-01-01, found dead on 2015-05-01: a child's body, also in 2030; found_on
    absent: the notice's creation is the latest day of death."""
    data = example("black")
    data["subject_category"] = "deceased"
    data["person"]["date_of_birth"] = "2000-01-01"
    data["body"]["found_on"] = "2015-05-01"
    body = NOTICE_MODELS[NoticeType.BLACK].model_validate(data)
    test = minor_test(body, date(2030, 1, 1))
    assert (test.minor, test.at, test.when) == (True, date(2015, 5, 1), JudgedAt.DEATH)
    assert test.basis is AgeBasis.DATE_OF_BIRTH
    del data["body"]["found_on"]  # created 2025-03-01: 25 then
    assert minor_test(NOTICE_MODELS[NoticeType.BLACK].model_validate(data), TODAY).minor is False


def test_the_date_of_birth_beats_an_estimate() -> None:
    """A date of birth decides even where an estimate would say otherwise."""
    data = example("black")
    data["person"]["date_of_birth"] = "1990-01-01"
    data["body"]["estimated_age_min"] = 10
    data["body"]["estimated_age_max"] = 12
    test = minor_test(NOTICE_MODELS[NoticeType.BLACK].model_validate(data), TODAY)
    assert (test.minor, test.basis) == (False, AgeBasis.DATE_OF_BIRTH)


def test_no_person_no_minor() -> None:
    """A notice naming no person (no subject category) has no minor subject."""
    data = example("purple")
    data.pop("person", None)
    data.pop("subject_category", None)
    purple = NOTICE_MODELS[NoticeType.PURPLE].model_validate(data)
    test = minor_test(purple, TODAY)
    assert (test.minor, test.role, test.basis, test.inputs) == (False, None, None, frozenset())


def test_a_minor_of_no_stated_role_is_protected() -> None:
    """A person whose role is not stated gets the protected roles' protection."""
    data = example("blue")
    data.pop("subject_category", None)
    data["person"]["date_of_birth"] = "2012-01-01"
    test = minor_test(NOTICE_MODELS[NoticeType.BLUE].model_validate(data), TODAY)
    assert (test.minor, test.role, test.protected) == (True, None, True)


def test_related_persons_have_their_own_role_and_age() -> None:
    """Each related person is judged for its own role: a co-accused at the offence, a witness
    and a victim today, one without a date of birth is not known to be a minor."""
    notice = _red(
        "suspect",
        "1979-11-03",
        ["2021-06-01"],
        related_persons=[
            {"role": "accused", "family_name": "ROSSI", "date_of_birth": "2004-01-01"},
            {"role": "witness", "family_name": "BIANCHI", "date_of_birth": "2010-05-05"},
            {"role": "victim", "family_name": "VERDI", "date_of_birth": "2012-05-05"},
            {"role": "associate", "family_name": "NERI"},
        ],
    )
    co_accused, witness, victim, associate = related_tests(notice, TODAY)
    assert (co_accused.minor, co_accused.when, co_accused.protected) == (
        True,
        JudgedAt.OFFENCE,
        True,
    )
    assert co_accused.inputs == {"related_persons", "judicial.charges"}
    assert (witness.minor, witness.protected, witness.inputs) == (
        True,
        True,
        frozenset({"related_persons"}),
    )
    assert (victim.minor, victim.protected) == (True, False)
    assert (associate.minor, associate.basis) == (False, None)
    assert minor_test(notice, TODAY).minor is False


def test_free_text_units() -> None:
    """Free text is every unit that may hold a LongText, also inside a list or a nested model,
    whatever its category; structured units are not free text."""
    red = free_text_paths("red")
    assert {"judicial.summary_of_facts", "judicial.charges"} <= red
    assert "person.physical.distinguishing_marks" in red
    assert not {"judicial.warrants", "person.family_name", "related_persons"} & red
    assert "missing.circumstances" in free_text_paths("yellow")
    assert "missing.last_seen_place" not in free_text_paths("yellow")
    assert {"body.circumstances", "body.cause_of_death"} <= free_text_paths("black")
    assert "details.request" in free_text_paths(NoticeType.DIFFUSION)
