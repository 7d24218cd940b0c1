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
from broker.schemas.common import CountryCode, LongText, PartialDate, ShortText, StrictModel

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


class Warrant(StrictModel):
    """An arrest warrant or a judgment."""

    kind: WarrantKind = WarrantKind.ARREST_WARRANT
    reference: ShortText | None = None
    issued_on: date | None = None
    issuing_authority: ShortText | None = None
    issuing_country: CountryCode | None = None
    expires_on: date | None = None


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
