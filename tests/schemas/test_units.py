"""Disclosure units, header, view assembly and partial-view validation, categories, minors."""

from datetime import date
from typing import Any

import pytest

from broker.schemas import (
    CATEGORY_KEY,
    DataCategory,
    NoticeInvalid,
    NoticeType,
    assemble_view,
    disclosure_units,
    field_categories,
    is_minor,
    non_redactable,
    parse_notice,
    validate_view,
)
from broker.schemas.export import render_schemas
from broker.schemas.units import JSON, header_fields

from .conftest import example


def test_units_of_red_example() -> None:
    """Units carry dotted paths without list indices, sorted, with JSON values and categories."""
    units = disclosure_units(parse_notice(example("red")))
    paths = [u.path for u in units]
    assert paths == sorted(paths)
    by_path = {u.path: u for u in units}
    assert by_path["person.date_of_birth"].value == "1979-11-03"
    assert by_path["person.date_of_birth"].category is DataCategory.IDENTITY
    assert by_path["person.biometrics.fingerprints"].category is DataCategory.BIOMETRIC
    assert isinstance(by_path["person.biometrics.fingerprints"].value, list)
    charges = by_path["judicial.charges"].value
    assert isinstance(charges, list)
    assert charges[0]["legal_provision"] == "Art. 640 c.p."
    assert by_path["judicial.limitation_date"].value == "2034-06-30"
    assert "person.biometrics.dna_profile" not in by_path  # absent fields are not units
    assert not any(p[-1].isdigit() for p in paths)


def test_header_has_no_personal_data() -> None:
    """non_redactable returns exactly the header fields; no block is in it."""
    header = non_redactable(parse_notice(example("red")))
    assert list(header) == [f for f in header_fields("red") if f != "responses_shared_with"]
    assert header["handling"] == {"code": "H1"}
    assert "person" not in header
    assert "judicial" not in header


@pytest.mark.parametrize("kind", [t.value for t in NoticeType])
def test_header_is_the_full_dump_restricted_to_header_fields(kind: str) -> None:
    """non_redactable dumps only the header fields, with the same values and order as the whole
    notice dumped without nulls (also when optional header fields are null)."""
    notice = parse_notice(example(kind))
    full = notice.model_dump(mode="json", exclude_none=True)
    expected = {name: full[name] for name in header_fields(kind) if name in full}
    assert non_redactable(notice) == expected
    assert list(non_redactable(notice)) == list(expected)
    header_fields(kind).append("mutated")  # a copy: the cached list stays as it was
    assert "mutated" not in header_fields(kind)


@pytest.mark.parametrize("kind", [t.value for t in NoticeType])
def test_header_and_units_rebuild_the_notice(kind: str) -> None:
    """Header + every unit, assembled, parses back to the same notice, for every type."""
    notice = parse_notice(example(kind))
    units = {u.path: u.value for u in disclosure_units(notice)}
    view = assemble_view(non_redactable(notice), units)
    assert parse_notice(view) == notice
    assert validate_view(view) == view


def test_partial_view_is_valid_and_withheld_fields_are_absent() -> None:
    """A view without the withheld units passes validate_view and lacks those fields."""
    notice = parse_notice(example("red"))
    kept = {u.path: u.value for u in disclosure_units(notice) if u.category != "biometric"}
    view: dict[str, Any] = validate_view(assemble_view(non_redactable(notice), kept))
    assert "biometrics" not in view["person"]
    assert view["person"]["family_name"] == "ROSSETTI"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "person.date_of_birth",
            "1979-13",
            [("person.date_of_birth", "'1979-13' has no month 13")],
        ),
        ("person.shoe_size", 44, [("person.shoe_size", "Extra inputs are not permitted")]),
        (
            "person.physical.height_cm",
            "tall",
            [
                (
                    "person.physical.height_cm",
                    "Input should be a valid integer, unable to parse string as an integer",
                )
            ],
        ),
        (
            "judicial.charges",
            [{"legal_provision": "x"}],
            [("judicial.charges.0.description", "Field required")],
        ),
    ],
)
def test_validate_view_rejects_bad_present_fields(
    path: str, value: JSON, expected: list[tuple[str, str]]
) -> None:
    """Every present field of a partial view is checked, with its path."""
    notice = parse_notice(example("red"))
    with pytest.raises(NoticeInvalid) as info:
        validate_view(assemble_view(non_redactable(notice), {path: value}))
    assert info.value.errors == expected


def test_validate_view_needs_the_header() -> None:
    """A view missing a header field is refused: withheld applies to tagged fields only."""
    notice = parse_notice(example("red"))
    header = non_redactable(notice)
    del header["handling"]
    with pytest.raises(NoticeInvalid) as info:
        validate_view(assemble_view(header, {}))
    assert info.value.errors == [("handling", "Field required")]


def test_assemble_view_refuses_header_paths() -> None:
    """A unit cannot overwrite a header field."""
    header = non_redactable(parse_notice(example("red")))
    with pytest.raises(NoticeInvalid, match=r"^handling\.code: not a disclosure unit path$"):
        assemble_view(header, {"handling.code": "H0"})


def test_field_categories_match_json_schema() -> None:
    """Every path from field_categories is tagged with the same category in the JSON Schema."""
    import json

    schema = json.loads(render_schemas()["notice.red.json"])
    tags = {}
    for model in schema["$defs"].values():
        for name, prop in model.get("properties", {}).items():
            if CATEGORY_KEY in prop:
                tags[(model["title"], name)] = prop[CATEGORY_KEY]
    cats = field_categories("red")
    assert cats["person.date_of_birth"] is DataCategory.IDENTITY
    assert tags[("Person", "date_of_birth")] == "identity"
    assert tags[("Biometrics", "fingerprints")] == cats["person.biometrics.fingerprints"]
    assert tags[("SpecialCategories", "health")] == "special.health"
    assert set(cats.values()) >= {
        DataCategory.IDENTITY,
        DataCategory.JUDICIAL,
        DataCategory.CONTACT,
    }


@pytest.mark.parametrize("kind", [t.value for t in NoticeType])
def test_every_field_is_header_tagged_or_block(kind: str) -> None:
    """Tagging is complete: each type's fields are all header, tagged or blocks (else TypeError)."""
    cats = field_categories(kind)
    assert cats
    assert all(isinstance(c, DataCategory) for c in cats.values())
    assert not set(header_fields(kind)) & {p.split(".")[0] for p in cats}


@pytest.mark.parametrize(
    ("dob", "at", "minor"),
    [
        ("2007-06-15", date(2025, 6, 14), True),
        ("2007-06-15", date(2025, 6, 15), False),
        ("2007-06", date(2025, 6, 29), True),
        ("2007-06", date(2025, 7, 1), False),
        ("2007", date(2025, 12, 30), True),
        ("2007", date(2026, 1, 1), False),
        ("2008-02-29", date(2026, 2, 28), True),
        ("2008-02-29", date(2026, 3, 1), False),
    ],
)
def test_is_minor_reads_partial_dates_conservatively(dob: str, at: date, minor: bool) -> None:
    """A year-only or year-month date of birth counts as a minor as long as it could be one."""
    data = example("yellow")
    data["subject_category"] = "victim"  # judged on the day of the decision (see test_age.py)
    data["person"]["date_of_birth"] = dob
    assert is_minor(parse_notice(data), at) is minor


def test_is_minor_without_date_of_birth() -> None:
    """No date of birth: not a minor, except a black notice whose estimated minimum age is < 18."""
    assert is_minor(parse_notice(example("orange")), date(2025, 1, 1)) is False
    data = example("black")
    data["body"].update(estimated_age_min=15, estimated_age_max=17)
    assert is_minor(parse_notice(data), date(2025, 1, 1)) is True


def test_validate_view_copies_unless_told_not_to() -> None:
    """``copy=False`` returns the same values (no deep copy) and checks exactly as much."""
    notice = parse_notice(example("red"))
    units = {u.path: u.value for u in disclosure_units(notice)}
    view: dict[str, Any] = assemble_view(non_redactable(notice), units)
    copied: dict[str, Any] = validate_view(view)
    shared: dict[str, Any] = validate_view(view, copy=False)
    assert copied == shared == view
    assert copied["judicial"]["charges"] is not view["judicial"]["charges"]
    assert shared["judicial"]["charges"] is view["judicial"]["charges"]
    bad = assemble_view(non_redactable(notice), {"judicial.charges": [{"legal_provision": "x"}]})
    with pytest.raises(NoticeInvalid):
        validate_view(bad, copy=False)
