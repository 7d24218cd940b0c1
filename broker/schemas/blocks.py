"""Type-specific blocks: missing person, body found, information sought, warning, threat, modus
operandi, assets, sanctions, diffusion request. Every leaf carries its data category.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, Field

from broker.schemas.categories import DataCategory, tagged
from broker.schemas.common import CountryCode, LongText, PartialDate, ShortText, StrictModel

_LOC = DataCategory.LOCATION
_OPS = DataCategory.OPERATIONAL
_JUD = DataCategory.JUDICIAL
_ID = DataCategory.IDENTITY


class MissingInfo(StrictModel):
    """Yellow notice: when and where a missing person was last seen, or where a person unable to
    identify themselves was found."""

    missing_since: PartialDate | None = tagged(_LOC)
    last_seen_place: ShortText | None = tagged(_LOC)
    last_seen_country: CountryCode | None = tagged(_LOC)
    found_on: date | None = tagged(_LOC, description="For a person unable to identify themselves.")
    found_place: ShortText | None = tagged(_LOC)
    circumstances: LongText | None = tagged(_OPS)


class BodyFound(StrictModel):
    """Black notice: the unidentified body."""

    found_on: date | None = tagged(_LOC)
    found_place: ShortText | None = tagged(_LOC)
    found_country: CountryCode | None = tagged(_LOC)
    estimated_age_min: Annotated[int, Field(ge=0, le=130)] | None = tagged(DataCategory.PHYSICAL)
    estimated_age_max: Annotated[int, Field(ge=0, le=130)] | None = tagged(DataCategory.PHYSICAL)
    cause_of_death: LongText | None = tagged(DataCategory.HEALTH)
    circumstances: LongText | None = tagged(_OPS)


class InformationSought(StrictModel):
    """Blue notice: what is asked about the person and why."""

    sought: list[Literal["identity", "location", "activities"]] = tagged(_OPS, default_factory=list)
    reason: LongText | None = tagged(_OPS)
    related_offence: LongText | None = tagged(_JUD)


class RepeatOffenceWarning(StrictModel):
    """Green notice: why the person is likely to offend again."""

    risk_summary: LongText | None = tagged(_OPS)
    criminal_history: LongText | None = tagged(_JUD)
    offence_types: list[ShortText] = tagged(_JUD, default_factory=list)


class ThreatKind(StrEnum):
    """What the imminent threat is."""

    PERSON = "person"
    EVENT = "event"
    OBJECT = "object"
    PROCESS = "process"


class Threat(StrictModel):
    """Orange notice: the imminent threat."""

    kind: ThreatKind | None = tagged(_OPS)
    description: LongText | None = tagged(_OPS)
    location: ShortText | None = tagged(_LOC)
    valid_until: date | None = tagged(_OPS)


class ModusOperandi(StrictModel):
    """Purple notice: how offenders operate."""

    offence_type: ShortText | None = tagged(_OPS)
    description: LongText | None = tagged(_OPS)
    objects_and_devices: list[ShortText] = tagged(_OPS, default_factory=list)
    concealment_methods: list[LongText] = tagged(_OPS, default_factory=list)


def _currency(code: str) -> str:
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"unknown ISO 4217 currency code {code!r}")
    return code


class AssetKind(StrEnum):
    """Kinds of criminal asset."""

    REAL_ESTATE = "real_estate"
    BANK_ACCOUNT = "bank_account"
    VEHICLE = "vehicle"
    VESSEL = "vessel"
    COMPANY = "company"
    VIRTUAL_ASSET = "virtual_asset"
    OTHER = "other"


class Asset(StrictModel):
    """One asset to locate, identify or seize."""

    kind: AssetKind
    description: LongText
    estimated_value: Annotated[int, Field(ge=0)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)] | None = None
    country: CountryCode | None = None


class Assets(StrictModel):
    """Silver notice: criminal assets."""

    items: list[Asset] = tagged(_OPS, default_factory=list)
    related_offence: LongText | None = tagged(_JUD)


class SanctionedEntity(StrictModel):
    """A UN-sanctioned entity (group, undertaking) rather than a person."""

    name: ShortText | None = tagged(_ID)
    aliases: list[ShortText] = tagged(_ID, default_factory=list)
    addresses: list[LongText] = tagged(_LOC, default_factory=list)


class Sanctions(StrictModel):
    """UN Security Council special notice: the committee and its list reference."""

    committee: ShortText | None = tagged(_OPS)
    reference: ShortText | None = tagged(_OPS)
    listed_on: date | None = tagged(_OPS)
    measures: list[Literal["asset_freeze", "travel_ban", "arms_embargo"]] = tagged(
        _OPS, default_factory=list
    )
    narrative: LongText | None = tagged(_OPS)


class DiffusionRequest(StrictModel):
    """Diffusion: what the issuing bureau asks of the chosen countries."""

    request: LongText | None = tagged(_OPS)
