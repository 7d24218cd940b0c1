"""The judicial block of a red notice (and optionally of a diffusion): warrants, charges, penalties.

Most fields are optional in the schema so that partial records (imports, drafts) can be represented;
:mod:`broker.schemas.criteria` decides whether a red notice carries enough to be published.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from broker.schemas.categories import DataCategory, tagged
from broker.schemas.common import (
    CountryCode,
    LanguageCode,
    LongText,
    PartialDate,
    ShortText,
    StrictModel,
)
from broker.schemas.person import DocumentRef

_JUD = DataCategory.JUDICIAL

#: A duration in months (penalties, sentences).
Months = Annotated[int, Field(ge=0, le=1200)]


class JudicialPurpose(StrEnum):
    """Why the person is sought."""

    PROSECUTION = "prosecution"
    SENTENCE = "sentence"  # to serve a sentence


class WarrantKind(StrEnum):
    """The decision the request rests on."""

    ARREST_WARRANT = "arrest_warrant"
    JUDGMENT = "judgment"


class OffenceNature(StrEnum):
    """Nature of an offence; red notices are refused for anything but ``criminal``."""

    CRIMINAL = "criminal"
    ADMINISTRATIVE = "administrative"
    PRIVATE_DISPUTE = "private_dispute"


class Participation(StrEnum):
    """The person's part in an offence."""

    PRINCIPAL = "principal"  # committed it
    CO_PERPETRATOR = "co_perpetrator"  # committed it jointly with others
    ACCOMPLICE = "accomplice"  # aided or abetted it
    INSTIGATOR = "instigator"  # incited or ordered it
    ORGANISER = "organiser"  # directed a group that committed it
    OTHER = "other"


class Warrant(StrictModel):
    """An arrest warrant or a judgment."""

    kind: WarrantKind = WarrantKind.ARREST_WARRANT
    reference: ShortText | None = None
    issued_on: date | None = None
    issuing_authority: ShortText | None = None
    issuing_country: CountryCode | None = None
    expires_on: date | None = None
    in_absentia: bool | None = Field(
        None, description="A judgment given in the person's absence (judgments only)."
    )
    final: bool | None = Field(
        None, description="False: the judgment is not final (appeal possible or pending)."
    )
    document: DocumentRef | None = Field(
        None, description="The copy of the warrant or judgment, by reference and hash."
    )


class Charge(StrictModel):
    """One offence, with the legal provision and the penalty."""

    description: LongText
    translation: LongText | None = None
    legal_provision: ShortText | None = None
    nature: OffenceNature = OffenceNature.CRIMINAL
    maximum_penalty_months: Months | None = None
    maximum_penalty_life: bool = False
    warrant_reference: ShortText | None = None
    committed_on: PartialDate | None = None
    committed_place: ShortText | None = None
    committed_country: CountryCode | None = None
    participation: Participation | None = None
    attempted: bool | None = Field(None, description="True: the offence was attempted only.")
    translation_language: LanguageCode | None = Field(
        None, description="The language of ``translation`` (required with it)."
    )


class Judicial(StrictModel):
    """Judicial information of a request for arrest with a view to extradition."""

    requesting_authority: ShortText | None = tagged(_JUD)
    purpose: JudicialPurpose | None = tagged(_JUD)
    warrants: list[Warrant] = tagged(_JUD, default_factory=list)
    charges: list[Charge] = tagged(_JUD, default_factory=list)
    sentence_imposed_months: Months | None = tagged(_JUD)
    sentence_remaining_months: Months | None = tagged(_JUD)
    summary_of_facts: LongText | None = tagged(_JUD)
    limitation_date: date | None = tagged(_JUD)
    extradition_assurance: bool | None = tagged(
        _JUD, description="The requesting country undertakes to request extradition."
    )
    extradition_countries: list[CountryCode] = tagged(
        _JUD,
        default_factory=list,
        max_length=250,
        description="The countries extradition will be sought from (empty: any country where "
        "the person is found).",
    )
