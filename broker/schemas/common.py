"""Shared building blocks: the strict base model, code lists and validated scalar types.

Every model is frozen and rejects unknown keys. Codes are validated against ISO lists (pycountry):
countries ISO 3166-1 alpha-2, languages ISO 639 (two letters where ISO 639-1 has a code, else the
ISO 639-3 three-letter code), bureau ids alpha-2 or the user-assigned ``XA``..``XZ``.
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# National bureau id: an ISO 3166-1 alpha-2 code or an organisation in XA..XZ (re-exported)
from broker.ids import BureauId as BureauId


class StrictModel(BaseModel):
    """Base of every NBX model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoticeType(StrEnum):
    """The notice colours, the UN Security Council special notice, and diffusions."""

    RED = "red"
    YELLOW = "yellow"
    BLUE = "blue"
    BLACK = "black"
    GREEN = "green"
    ORANGE = "orange"
    PURPLE = "purple"
    SILVER = "silver"
    UN = "un"
    DIFFUSION = "diffusion"


class HandlingCode(StrEnum):
    """Handling restrictions the recipient must respect."""

    H0 = "H0"  # law-enforcement use only
    H1 = "H1"  # not for use in court without the originator's permission
    H2 = "H2"  # no onward sharing without the originator's permission
    H3 = "H3"  # other conditions, stated in ``Handling.conditions``


class SubjectCategory(StrEnum):
    """The role (status) of a person in a notice (RPD Art. 44, LED Art. 6)."""

    SUSPECT = "suspect"
    ACCUSED = "accused"  # charged or indicted, awaiting trial
    CONVICTED = "convicted"
    VICTIM = "victim"
    WITNESS = "witness"
    MISSING = "missing"
    UNIDENTIFIED = "unidentified"  # a living person unable to identify themselves, or a body
    PERSON_OF_INTEREST = "person_of_interest"  # sought for information, not suspected
    ASSOCIATE = "associate"  # a contact or associate of a suspect or convicted person
    POSSIBLE_THREAT = "possible_threat"  # a person who may pose a threat (orange, green)
    LISTED = "listed"  # subject to UN Security Council sanctions
    DECEASED = "deceased"  # a dead person (identified or not)


#: Roles whose person is protected: a minor in one of these roles is withheld, free text included,
#: unless a rule names minors. The others (missing, unidentified, victim, deceased) are sought.
PROTECTED_ROLES = frozenset(
    {
        SubjectCategory.SUSPECT,
        SubjectCategory.ACCUSED,
        SubjectCategory.CONVICTED,
        SubjectCategory.WITNESS,
        SubjectCategory.PERSON_OF_INTEREST,
        SubjectCategory.ASSOCIATE,
        SubjectCategory.POSSIBLE_THREAT,
        SubjectCategory.LISTED,
    }
)


class SourceReliability(StrEnum):
    """4x4 evaluation: reliability of the source (A reliable .. C not reliable, X unknown)."""

    A = "A"
    B = "B"
    C = "C"
    X = "X"


#: 4x4 evaluation: 1 known true without reservation .. 4 cannot be corroborated.
InformationAccuracy = Literal[1, 2, 3, 4]


class Purpose(StrEnum):
    """Why the notice is issued (always disclosed, so a closed list rather than free text)."""

    ARREST_EXTRADITION = "arrest_extradition"
    LOCATE = "locate"
    IDENTIFY = "identify"
    INFORMATION = "information"
    WARNING = "warning"
    THREAT_ALERT = "threat_alert"
    MODUS_OPERANDI = "modus_operandi"
    ASSET_RECOVERY = "asset_recovery"
    SANCTIONS = "sanctions"


class Handling(StrictModel):
    """Handling code, with the conditions text required for (and only allowed with) ``H3``."""

    code: HandlingCode
    conditions: Annotated[str, Field(min_length=1, max_length=1000)] | None = None

    @model_validator(mode="after")
    def _conditions_match_code(self) -> Handling:
        if self.code is HandlingCode.H3 and not self.conditions:
            raise ValueError("conditions: H3 requires the conditions text")
        if self.code is not HandlingCode.H3 and self.conditions is not None:
            raise ValueError(f"conditions: only allowed with H3, not {self.code.value}")
        return self


# Valid codes are remembered (the ISO lists bound them); an unknown code raises, and raising is
# not cached. pycountry's lookups were 9 per notice view checked.
@cache
def _country(code: str) -> str:
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"unknown ISO 3166-1 alpha-2 country code {code!r}")
    return code


@cache
def _language(code: str) -> str:
    if len(code) == 2:
        if pycountry.languages.get(alpha_2=code) is None:
            raise ValueError(f"unknown ISO 639-1 language code {code!r}")
        return code
    lang = pycountry.languages.get(alpha_3=code)
    if lang is None:
        raise ValueError(f"unknown ISO 639-3 language code {code!r}")
    two = getattr(lang, "alpha_2", None)
    if two:
        raise ValueError(f"use the ISO 639-1 code {two!r} instead of {code!r}")
    return code


#: ISO 3166-1 alpha-2 country code (upper case), checked against the ISO list.
CountryCode = Annotated[
    str, Field(pattern=r"^[A-Z]{2}$", examples=["FR"]), AfterValidator(_country)
]
#: ISO 639 language: the ISO 639-1 code where one exists, else the ISO 639-3 code (lower case).
LanguageCode = Annotated[
    str, Field(pattern=r"^[a-z]{2,3}$", examples=["en", "ast"]), AfterValidator(_language)
]
#: Hex SHA-256 of a referenced file's content (lower case).
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: A short single-line text (names, places, references).
ShortText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\r\n]*$")]
#: A free text that may span lines (summaries, descriptions).
LongText = Annotated[str, Field(min_length=1, max_length=10000)]
#: A notice id: letters, digits and ``._:-``, 3 to 64 characters.
NoticeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$")]

_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def partial_date_bounds(value: str) -> tuple[date, date]:
    """First and last day covered by a partial date (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``)."""
    m = _PARTIAL_DATE.match(value)
    if m is None:
        raise ValueError(f"{value!r} is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD")
    year = int(m.group(1))
    if m.group(2) is None:
        return date(year, 1, 1), date(year, 12, 31)
    month = int(m.group(2))
    if not 1 <= month <= 12:
        raise ValueError(f"{value!r} has no month {month}")
    if m.group(3) is None:
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    try:
        day = date(year, month, int(m.group(3)))
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date") from None
    return day, day


def _partial_date(value: str) -> str:
    partial_date_bounds(value)
    return value


#: A full date, year-month or year only (ISO 8601 reduced precision).
PartialDate = Annotated[
    str,
    Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$", examples=["1980-04-17", "1980-04", "1980"]),
    AfterValidator(_partial_date),
]
