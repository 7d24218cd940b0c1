"""Import of INTERPOL's public notices web service JSON (red, yellow and UN notices).

Accepts a detail record, a list page (``_embedded.notices``) or a JSON array of either. Real records
carry ``null`` or ``-`` placeholders, year-only dates (``YYYY``), CRLF inside charges, missing
optional fields and three-letter language and colour codes; all are handled here. Anything that
cannot be mapped is reported as an :class:`ImportProblem` for its record, never silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pycountry

from broker.errors import SchemaError
from broker.schemas.common import NoticeType, partial_date_bounds
from broker.schemas.criteria import publication_errors
from broker.schemas.notices import Notice
from broker.schemas.validation import NoticeInvalid, validate_notice

#: Values INTERPOL uses for "unknown".
PLACEHOLDERS = frozenset({"", "-", "--", "?", "n/a", "N/A", "null", "NULL"})

EYE_CODES = {
    "BLA": "black", "BLU": "blue", "BRO": "brown", "GRE": "green",
    "GRY": "grey", "GRA": "grey", "HAZ": "hazel", "OTH": "other",
}  # fmt: skip
HAIR_CODES = {
    "BLA": "black", "BRO": "brown", "BLO": "blond", "BLN": "blond", "RED": "red", "AUB": "red",
    "GRY": "grey", "GRA": "grey", "WHI": "white", "BAL": "bald", "OTH": "other",
}  # fmt: skip
#: UN sanctions list reference prefix -> committee.
UN_COMMITTEES = {
    "QD": "1267/1989/2253 ISIL (Da'esh) and Al-Qaida Sanctions Committee",
    "TA": "1988 Sanctions Committee (Taliban)",
    "KP": "1718 Sanctions Committee (DPRK)",
    "IQ": "1518 Sanctions Committee (Iraq)",
    "CD": "1533 Sanctions Committee (Democratic Republic of the Congo)",
    "SO": "751 Sanctions Committee (Al-Shabaab)",
    "LY": "1970 Sanctions Committee (Libya)",
    "SD": "1591 Sanctions Committee (Sudan)",
    "CF": "2127 Sanctions Committee (Central African Republic)",
    "YE": "2140 Sanctions Committee (Yemen)",
    "SS": "2206 Sanctions Committee (South Sudan)",
    "HT": "2653 Sanctions Committee (Haiti)",
}

_TYPE_IN_HREF = re.compile(r"/notices/v1/(red|yellow|un)/")
_SUPPORTED = (NoticeType.RED, NoticeType.YELLOW, NoticeType.UN)
_HEADER: dict[NoticeType, tuple[str, str]] = {  # subject category, purpose
    NoticeType.RED: ("suspect", "arrest_extradition"),
    NoticeType.YELLOW: ("missing", "locate"),
    NoticeType.UN: ("listed", "sanctions"),
}


@dataclass(frozen=True)
class ImportProblem:
    """Something in one record that did not make it into the notice as is.

    ``kind``: ``unmapped`` (a value was left out), ``invalid`` (the record was not imported),
    ``criteria`` (imported, but the notice must be completed before it can be published) or
    ``assumed`` (a required value the public record does not carry was set by the importer: the
    issuing bureau must confirm or correct it).
    """

    record: str
    kind: Literal["unmapped", "invalid", "criteria", "assumed"]
    path: str
    message: str


@dataclass
class ImportResult:
    """The notices imported and every problem met, in record order."""

    notices: list[Notice] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)


def _clean(value: object) -> Any:
    """``None`` for INTERPOL's placeholders; strings stripped, CRLF turned into LF."""
    if isinstance(value, str):
        text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
        return None if text in PLACEHOLDERS else text
    if isinstance(value, list):
        items = [_clean(v) for v in value]
        return [v for v in items if v is not None] or None
    return value


class _Record:
    """One source record being mapped; collects problems under the record's label."""

    def __init__(self, raw: Mapping[str, Any], label: str) -> None:
        self.raw = raw
        self.label = label
        self.problems: list[ImportProblem] = []
        self.used: set[str] = set()

    def get(self, key: str) -> Any:
        self.used.add(key)
        return _clean(self.raw.get(key))

    def drop(self, key: str, message: str) -> None:
        self.problems.append(ImportProblem(self.label, "unmapped", key, message))

    def date(self, key: str) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        text = str(value).replace("/", "-")
        try:
            partial_date_bounds(text)
        except ValueError:
            self.drop(key, f"not a date: {value!r}")
            return None
        return text

    def country(self, key: str, value: object) -> str | None:
        code = str(value).upper()
        if pycountry.countries.get(alpha_2=code) is None:
            self.drop(key, f"unknown country code {value!r}")
            return None
        return code

    def language(self, key: str, value: object) -> str | None:
        code = str(value).lower()
        lang = (
            pycountry.languages.get(alpha_3=code)
            or pycountry.languages.get(bibliographic=code)
            or pycountry.languages.get(alpha_2=code)
        )
        if lang is None:
            self.drop(key, f"unknown language code {value!r}")
            return None
        return str(getattr(lang, "alpha_2", None) or lang.alpha_3)

    def colour(self, key: str, table: Mapping[str, str]) -> str | None:
        value = self.get(key)
        codes = value if isinstance(value, list) else [value] if value is not None else []
        mapped = []
        for code in codes:
            colour = table.get(str(code).upper())
            if colour is None:
                self.drop(key, f"unknown colour code {code!r}")
            else:
                mapped.append(colour)
        if len(mapped) > 1:
            self.drop(key, f"only the first of several colours kept: {codes!r}")
        return mapped[0] if mapped else None

    def number(self, key: str) -> float | None:
        value = self.get(key)
        if value is None or value == 0:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            self.drop(key, f"not a number: {value!r}")
            return None

    def height_cm(self) -> int | None:
        """INTERPOL gives metres (``1.78``); a value that reads as centimetres is kept as is."""
        number = self.number("height")
        if number is None:
            return None
        if 0.3 <= number <= 2.6:
            return round(number * 100)
        if 30 <= number <= 260:
            return round(number)
        self.drop("height", f"implausible height {number!r}")
        return None

    def weight_kg(self) -> int | None:
        number = self.number("weight")
        if number is None:
            return None
        if 1 <= number <= 400:
            return round(number)
        self.drop("weight", f"implausible weight {number!r}")
        return None


def _person(rec: _Record) -> dict[str, Any]:
    person: dict[str, Any] = {
        "family_name": rec.get("name"),
        "forenames": rec.get("forename"),
        "date_of_birth": rec.date("date_of_birth"),
        "place_of_birth": rec.get("place_of_birth"),
    }
    sex = rec.get("sex_id")
    if sex is not None:
        if str(sex).upper() in {"M", "F", "U"}:
            person["sex"] = str(sex).upper()
        else:
            rec.drop("sex_id", f"unknown sex code {sex!r}")
    cob = rec.get("country_of_birth_id")
    if cob is not None:
        person["country_of_birth"] = rec.country("country_of_birth_id", cob)
    nats = [rec.country("nationalities", c) for c in rec.get("nationalities") or []]
    person["nationalities"] = sorted({c for c in nats if c})
    langs = [rec.language("languages_spoken_ids", c) for c in rec.get("languages_spoken_ids") or []]
    person["languages"] = list(dict.fromkeys(c for c in langs if c))
    parents = []
    for who in ("father", "mother"):
        parts = [rec.get(f"{who}_forename"), rec.get(f"{who}_name")]
        if any(parts):
            parents.append(f"{' '.join(str(p) for p in parts if p)} ({who})")
    person["parent_names"] = parents
    birth_name = rec.get("birth_name")
    if birth_name is not None:  # the family name at birth: a name the person was known by
        alias = {"family_name": birth_name} | ({"forenames": person["forenames"]}
                                                if person.get("forenames") else {})  # fmt: skip
        person["aliases"] = [alias]
    physical = {
        "height_cm": rec.height_cm(),
        "weight_kg": rec.weight_kg(),
        "eye_colour": rec.colour("eyes_colors_id", EYE_CODES),
        "hair_colour": rec.colour("hairs_id", HAIR_CODES),
        "distinguishing_marks": rec.get("distinguishing_marks"),
    }
    physical = {k: v for k, v in physical.items() if v is not None}
    if physical:
        person["physical"] = physical
    return {k: v for k, v in person.items() if v not in (None, [])}


def _judicial(rec: _Record) -> dict[str, Any]:
    warrants, charges = [], []
    for i, raw in enumerate(rec.get("arrest_warrants") or []):
        if not isinstance(raw, Mapping):
            rec.drop(f"arrest_warrants.{i}", "not an object")
            continue
        charge = _clean(raw.get("charge"))
        country = _clean(raw.get("issuing_country_id"))
        warrant: dict[str, Any] = {}
        if country is not None:
            warrant["issuing_country"] = rec.country(
                f"arrest_warrants.{i}.issuing_country_id", country
            )
        warrants.append({k: v for k, v in warrant.items() if v is not None})
        if charge is None:
            rec.drop(f"arrest_warrants.{i}.charge", "warrant without a charge")
        else:
            translation = _clean(raw.get("charge_translation"))
            charges.append(
                {"description": charge} | ({"translation": translation} if translation else {})
            )
        for extra in sorted(set(raw) - {"charge", "issuing_country_id", "charge_translation"}):
            if _clean(raw[extra]) is not None:
                rec.drop(f"arrest_warrants.{i}.{extra}", "field not mapped")
    return {"warrants": warrants, "charges": charges}


def _missing(rec: _Record) -> dict[str, Any]:
    missing = {"missing_since": rec.date("date_of_event"), "last_seen_place": rec.get("place")}
    country = rec.get("country")
    if country is not None:
        missing["last_seen_country"] = rec.country("country", country)
    return {k: v for k, v in missing.items() if v is not None}


def _sanctions(rec: _Record) -> dict[str, Any]:
    reference = rec.get("un_reference")
    sanctions: dict[str, Any] = {"reference": reference}
    if reference is not None:
        committee = UN_COMMITTEES.get(str(reference)[:2].upper())
        if committee is None:
            rec.drop("un_reference", f"no known sanctions committee for reference {reference!r}")
        sanctions["committee"] = committee
    listed = rec.date("un_reference_date")
    if listed is not None:
        if len(listed) == len("YYYY-MM-DD"):
            sanctions["listed_on"] = listed
        else:
            rec.drop("un_reference_date", f"listing date is not a full date: {listed!r}")
    return {k: v for k, v in sanctions.items() if v is not None}


def _notice_type(raw: Mapping[str, Any], forced: NoticeType | None) -> NoticeType | None:
    if forced is not None:
        return forced
    links = raw.get("_links")
    href = links.get("self", {}).get("href") if isinstance(links, Mapping) else None
    m = _TYPE_IN_HREF.search(href) if isinstance(href, str) else None
    return NoticeType(m.group(1)) if m else None


#: the required values INTERPOL's public records do not carry, as the importer sets them
_ASSUMED = (
    ("source_reliability", "A", "the public record gives no source evaluation"),
    ("information_accuracy", "2", "the public record gives no accuracy evaluation"),
    ("handling.code", "H0", "the public record gives no handling code"),
)


def _is_entity(raw: Mapping[str, Any]) -> bool:
    """A UN special notice about an entity (its record's link names ``/un/entities/``)."""
    links = raw.get("_links")
    href = links.get("self", {}).get("href") if isinstance(links, Mapping) else None
    return isinstance(href, str) and "/un/entities/" in href


def _map_record(
    raw: Mapping[str, Any], label: str, kind: NoticeType, now: datetime, bureau: str
) -> tuple[dict[str, Any], list[ImportProblem]]:
    rec = _Record(raw, label)
    entity_id = str(rec.get("entity_id") or "")
    subject, purpose = _HEADER[kind]
    notice: dict[str, Any] = {
        "notice_id": "INTERPOL-" + re.sub(r"[^A-Za-z0-9]+", "-", entity_id).strip("-"),
        "notice_type": kind.value,
        "issuing_bureau": bureau,
        "version": 1,
        "language": "en",
        "handling": {"code": "H0"},
        "subject_category": subject,
        "source_reliability": "A",
        "information_accuracy": 2,
        "purpose": purpose,
        "created_at": now.isoformat(),
        "retention_until": (now + timedelta(days=5 * 365)).date().isoformat(),
        "review_due": (now + timedelta(days=365)).date().isoformat(),
    }
    if kind is NoticeType.UN and _is_entity(raw):  # a sanctioned group or undertaking
        entity = {"name": rec.get("name")}
        notice["entity"] = {k: v for k, v in entity.items() if v is not None}
    else:
        notice["person"] = _person(rec)
    if kind is NoticeType.RED:
        notice["judicial"] = _judicial(rec)
    elif kind is NoticeType.YELLOW:
        notice["missing"] = _missing(rec)
    else:
        notice["sanctions"] = _sanctions(rec)
    for path, value, why in _ASSUMED:
        rec.problems.append(
            ImportProblem(label, "assumed", path, f"set to {value}: {why}; confirm or correct it")
        )
    links = rec.get("_links")
    if isinstance(links, Mapping):
        for name in sorted(set(links) - {"self"}):
            rec.drop(
                f"_links.{name}", "link not imported: a biometric reference needs a content hash"
            )
    embedded = rec.get("_embedded")
    if isinstance(embedded, Mapping):
        for name, value in sorted(embedded.items()):
            if _clean(value) is not None:
                rec.drop(f"_embedded.{name}", "embedded data not mapped")
    for key in sorted(set(raw) - rec.used):
        if _clean(raw[key]) is not None:
            rec.drop(key, "field not mapped")
    return notice, rec.problems


def records_of(document: object) -> list[Mapping[str, Any]]:
    """The notice records in a detail record, a list page or a JSON array of either."""
    if isinstance(document, list):
        return [r for item in document for r in records_of(item)]
    if not isinstance(document, Mapping):
        raise SchemaError("not an INTERPOL notices document: expected a JSON object or array")
    embedded = document.get("_embedded")
    if isinstance(embedded, Mapping) and isinstance(embedded.get("notices"), list):
        return [r for r in embedded["notices"] if isinstance(r, Mapping)]
    return [document]


def _count(
    records: list[Mapping[str, Any]], on_record: Callable[[int, int], None]
) -> Iterator[Mapping[str, Any]]:
    """Yield each record; report it done when the loop asks for the next (after its body)."""
    for done, record in enumerate(records, start=1):
        yield record
        on_record(done, len(records))


def import_interpol(
    document: bytes | str | object,
    *,
    now: datetime,
    bureau: str = "XI",
    notice_type: NoticeType | None = None,
    on_record: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Map INTERPOL public-API records to NBX notices.

    ``now`` (timezone-aware) dates the imported notices; ``bureau`` issues them (default ``XI``,
    the General Secretariat); ``notice_type`` overrides the type read from each record's
    ``_links.self.href``. Records that cannot be imported are reported, never dropped silently.
    ``on_record(done, total)`` is called after each record (the progress of a large file).
    """
    if isinstance(document, bytes | str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise SchemaError(f"invalid JSON: {exc}") from None
    result = ImportResult()
    found = records_of(document)
    records: Iterable[Mapping[str, Any]] = found if on_record is None else _count(found, on_record)
    for i, raw in enumerate(records):
        label = str(_clean(raw.get("entity_id")) or f"record {i}")
        kind = _notice_type(raw, notice_type)
        if kind not in _SUPPORTED:
            result.problems.append(
                ImportProblem(
                    label,
                    "invalid",
                    "_links.self.href",
                    "cannot tell red, yellow or UN notice; use --type",
                )
            )
            continue
        data, problems = _map_record(raw, label, kind, now, bureau)
        result.problems.extend(problems)
        try:
            notice = validate_notice(data)
        except NoticeInvalid as exc:
            result.problems.extend(ImportProblem(label, "invalid", p, m) for p, m in exc.errors)
            continue
        result.notices.append(notice)
        result.problems.extend(
            ImportProblem(label, "criteria", p, m) for p, m in publication_errors(notice)
        )
    return result


def problem_lines(problems: Sequence[ImportProblem]) -> list[str]:
    """One readable line per problem: ``<record>: <kind>: <path>: <message>``."""
    return [f"{p.record}: {p.kind}: {p.path}: {p.message}" for p in problems]
