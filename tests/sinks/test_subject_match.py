"""Matching a person for a subject access request (broker.sinks.subject)."""

from __future__ import annotations

import pytest

from broker.sinks.subject import dates_compatible, matches, name_key

VIEW = {
    "person": {
        "family_name": "Rossetti-Bianchi",
        "aliases": [{"family_name": "Røssi"}, {"family_name": "Müller"}],
        "date_of_birth": "1979-11",
    }
}


def test_name_key_drops_case_accents_and_separators() -> None:
    assert name_key(" Rossetti-Bianchi ") == name_key("ROSSETTI BIANCHI") == "rossettibianchi"
    assert name_key("Müller") == name_key("MULLER")
    assert name_key("--") == ""


@pytest.mark.parametrize(
    ("stored", "asked", "expected"),
    [
        ("1979-11-03", "1979-11-03", True),
        ("1979", "1979-11-03", True),
        ("1979-11", "1979-11-03", True),
        ("1979-11-03", "1979-11", True),
        ("1979-11", "1979-12-01", False),
        ("1979-1", "1979-11-03", False),  # not at a component boundary
        ("1980", "1979", False),
        ("", "1979", False),
    ],
)
def test_partial_dates_match_every_day_they_could_be(
    stored: str, asked: str, expected: bool
) -> None:
    assert dates_compatible(stored, asked) is expected


def test_a_family_name_or_an_alias_and_a_compatible_date_match() -> None:
    assert matches(VIEW, "rossetti bianchi", "1979-11-03")
    assert matches(VIEW, "MULLER", "1979-11-30")
    assert matches(VIEW, "Rossi", None)  # no date asked: the name decides


def test_a_different_name_or_date_does_not_match() -> None:
    assert not matches(VIEW, "Rossetti", "1979-11-03")
    assert not matches(VIEW, "Rossetti-Bianchi", "1979-12-03")
    assert not matches(VIEW, "", None)


def test_a_notice_without_a_person_or_without_a_date_of_birth() -> None:
    assert not matches({"event": {"summary": "x"}}, "Rossi", None)
    withheld_birth = {"person": {"family_name": "Rossi"}}
    assert matches(withheld_birth, "Rossi", "1979-11-03")  # a withheld date rules nothing out
