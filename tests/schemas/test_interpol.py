"""INTERPOL public-JSON import: every quirk of real records is mapped or reported, never dropped."""

import json
from datetime import UTC, datetime

import pytest

from broker.errors import SchemaError
from broker.schemas import NoticeType
from broker.schemas.interpol import ImportResult, import_interpol
from broker.schemas.notices import UnNotice

from .conftest import FIXTURES

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def load(name: str) -> ImportResult:
    return import_interpol((FIXTURES / name).read_bytes(), now=NOW)


def problems(result: ImportResult, kind: str | None = None) -> list[tuple[str, str, str]]:
    return [(p.record, p.path, p.message) for p in result.problems if kind in (None, p.kind)]


def test_red_detail_record_is_mapped() -> None:
    """Names, slash dates, metres, 3-letter language and colour codes, CRLF charges are mapped."""
    result = load("red_detail.json")
    (notice,) = result.notices
    assert notice.notice_type is NoticeType.RED
    assert notice.notice_id == "INTERPOL-2021-48211"
    p = notice.person
    assert (p.family_name, p.forenames, p.sex) == ("MARCHAND", "JEAN-LUC", "M")
    assert p.date_of_birth == "1976-08-30"
    assert p.languages == ["fr", "en"]
    assert p.nationalities == ["FR"]
    assert p.physical is not None
    assert (p.physical.height_cm, p.physical.weight_kg) == (183, None)  # weight 0 = unknown
    assert (p.physical.eye_colour, p.physical.hair_colour) == ("blue", "brown")
    assert p.physical.distinguishing_marks is None  # "-" placeholder
    charge = notice.judicial.charges[0]
    assert charge.description == "Trafic de stupéfiants en bande organisée\nBlanchiment d'argent"
    assert charge.translation == "Organised drug trafficking\nMoney laundering"
    assert [w.issuing_country for w in notice.judicial.warrants] == ["FR", "BE"]


def test_red_detail_reports_what_it_could_not_map() -> None:
    """Unknown codes, extra colours, chargeless warrants and photo links are reported by record."""
    assert problems(load("red_detail.json"), "unmapped") == [
        ("2021/48211", "nationalities", "unknown country code 'ZZ'"),
        ("2021/48211", "languages_spoken_ids", "unknown language code 'XXQ'"),
        ("2021/48211", "hairs_id", "only the first of several colours kept: ['BRO', 'GRY']"),
        ("2021/48211", "arrest_warrants.1.charge", "warrant without a charge"),
        (
            "2021/48211",
            "_links.images",
            "link not imported: a biometric reference needs a content hash",
        ),
        (
            "2021/48211",
            "_links.thumbnail",
            "link not imported: a biometric reference needs a content hash",
        ),
    ]


def test_imported_red_is_flagged_as_incomplete_for_publication() -> None:
    """The public record lacks judicial detail: the criteria gaps are reported, not hidden."""
    gaps = problems(load("red_detail.json"), "criteria")
    assert ("2021/48211", "judicial.purpose", "required for publication") in gaps
    assert (
        "2021/48211",
        "judicial.extradition_assurance",
        "a red notice needs the assurance that extradition will be requested",
    ) in gaps


def test_list_format_year_only_and_bad_dates() -> None:
    """List format: one notice per entry; year-only dates kept, impossible ones reported."""
    result = load("red_list.json")
    assert [n.notice_id for n in result.notices] == ["INTERPOL-2023-7001", "INTERPOL-2019-15"]
    assert result.notices[0].person is not None
    assert result.notices[1].person is not None
    assert result.notices[0].person.date_of_birth == "1990"
    assert result.notices[0].person.forenames is None  # null
    assert result.notices[1].person.date_of_birth is None
    assert problems(result, "unmapped") == [
        ("2019/15", "date_of_birth", "not a date: '1969/13/45'")
    ]


def test_yellow_detail_record() -> None:
    """Yellow: event date and place become last-seen data; parents kept; bad hair code reported."""
    result = load("yellow_detail.json")
    (notice,) = result.notices
    assert notice.notice_type is NoticeType.YELLOW
    assert notice.subject_category == "missing"
    assert notice.missing.missing_since == "2024-11-18"
    assert (notice.missing.last_seen_place, notice.missing.last_seen_country) == ("Gdańsk", "PL")
    assert notice.person.parent_names == ["TOMASZ NOWAK (father)"]
    assert notice.person.languages == ["pl"]
    assert notice.person.physical is not None
    assert notice.person.physical.height_cm == 160
    assert problems(result, "unmapped") == [("2024/3310", "hairs_id", "unknown colour code 'XXX'")]


def test_un_detail_record() -> None:
    """UN: reference, listing date and committee (from the reference prefix) are mapped."""
    result = load("un_detail.json")
    (notice,) = result.notices
    assert notice.notice_type is NoticeType.UN
    assert notice.sanctions.reference == "TAi.900"
    assert notice.sanctions.committee == "1988 Sanctions Committee (Taliban)"
    assert notice.sanctions.listed_on is not None
    assert notice.sanctions.listed_on.isoformat() == "2001-01-25"
    assert problems(result, "unmapped") == [("2010/90001", "summary", "field not mapped")]
    assert isinstance(notice, UnNotice)
    assert notice.person is not None
    assert notice.entity is None


def test_record_of_unknown_type_is_reported_not_dropped() -> None:
    """A record whose type cannot be told is reported as invalid, and the others still import."""
    doc = [
        {"entity_id": "2020/1", "name": "X"},
        json.loads((FIXTURES / "un_detail.json").read_text()),
    ]
    result = import_interpol(json.dumps(doc), now=NOW)
    assert len(result.notices) == 1
    assert problems(result, "invalid") == [
        ("2020/1", "_links.self.href", "cannot tell red, yellow or UN notice; use --type")
    ]


def test_record_failing_schema_is_reported() -> None:
    """A record that cannot form a valid notice is reported with the schema errors."""
    doc = {"entity_id": "2020/2", "name": "Y" * 300}
    result = import_interpol(json.dumps(doc), now=NOW, notice_type=NoticeType.YELLOW)
    assert result.notices == []
    assert problems(result, "invalid") == [
        ("2020/2", "person.family_name", "String should have at most 200 characters"),
    ]


def test_not_json() -> None:
    """Garbage input is one SchemaError."""
    with pytest.raises(SchemaError, match="invalid JSON"):
        import_interpol(b"<html>", now=NOW)


def test_values_the_public_record_lacks_are_reported_as_assumed() -> None:
    """Evaluation and handling codes are not in INTERPOL's public data: the importer sets them and
    says so for every record, so the issuing bureau confirms or corrects them."""
    assert problems(load("yellow_detail.json"), "assumed") == [
        ("2024/3310", "source_reliability", "set to A: the public record gives no source "
         "evaluation; confirm or correct it"),
        ("2024/3310", "information_accuracy", "set to 2: the public record gives no accuracy "
         "evaluation; confirm or correct it"),
        ("2024/3310", "handling.code", "set to H0: the public record gives no handling code; "
         "confirm or correct it"),
    ]  # fmt: skip


def test_a_un_entity_is_imported_as_an_entity_not_a_person() -> None:
    """A record from INTERPOL's UN entities list becomes the notice's `entity`, no person."""
    record = json.loads((FIXTURES / "un_detail.json").read_text())
    record["_links"]["self"]["href"] = (
        "https://ws-public.interpol.int/notices/v1/un/entities/2010-90002"
    )
    record["name"] = "AL-EXAMPLE TRADING COMPANY"
    for key in ("forename", "date_of_birth", "sex_id", "nationalities"):
        record.pop(key)
    result = import_interpol(json.dumps(record), now=NOW)
    (notice,) = result.notices
    assert isinstance(notice, UnNotice)
    assert notice.person is None
    assert notice.entity is not None
    assert notice.entity.name == "AL-EXAMPLE TRADING COMPANY"
    assert problems(result, "unmapped") == [("2010/90001", "summary", "field not mapped")]


def test_a_birth_name_becomes_an_alias() -> None:
    """`birth_name` (the family name at birth) is kept as an alias, so it is searchable."""
    record = json.loads((FIXTURES / "red_detail.json").read_text())
    record["birth_name"] = "DUPONT"
    result = import_interpol(json.dumps(record), now=NOW)
    (notice,) = result.notices
    assert notice.person is not None
    assert [(a.family_name, a.forenames) for a in notice.person.aliases] == [("DUPONT", "JEAN-LUC")]
    assert all(p.path != "birth_name" for p in result.problems)
