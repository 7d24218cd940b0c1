"""Type-specific blocks: missing person, body found, information sought, warning, threat, modus
operandi, assets, sanctions, diffusion request. Every leaf carries its data category.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

import pycountry
from pydantic import AfterValidator, Field, model_validator

from broker.schemas.categories import DataCategory, tagged
from broker.schemas.common import CountryCode, LongText, PartialDate, ShortText, StrictModel
from broker.schemas.person import BiometricRef, DocumentRef

_LOC = DataCategory.LOCATION
_OPS = DataCategory.OPERATIONAL
_JUD = DataCategory.JUDICIAL
_ID = DataCategory.IDENTITY
_PHYS = DataCategory.PHYSICAL
_BIO = DataCategory.BIOMETRIC


def _dental_records() -> Any:
    return tagged(
        _BIO,
        default_factory=list,
        max_length=20,
        description="Dental records (charts, radiographs), by reference and hash.",
    )


def _dvi_forms() -> Any:
    return tagged(
        _BIO,
        default_factory=list,
        max_length=20,
        description="INTERPOL disaster-victim-identification forms (ante-mortem for a missing "
        "person, post-mortem for a body), by reference and hash.",
    )


class MissingInfo(StrictModel):
    """Yellow notice: when and where a missing person was last seen, or where a person unable to
    identify themselves was found."""

    missing_since: PartialDate | None = tagged(_LOC)
    last_seen_place: ShortText | None = tagged(_LOC)
    last_seen_country: CountryCode | None = tagged(_LOC)
    found_on: date | None = tagged(_LOC, description="For a person unable to identify themselves.")
    found_place: ShortText | None = tagged(_LOC)
    circumstances: LongText | None = tagged(_OPS)
    clothing: LongText | None = tagged(_PHYS, description="Clothing worn when last seen.")
    personal_effects: LongText | None = tagged(
        _PHYS, description="What the person carried (bag, jewellery, telephone, documents)."
    )
    dental_records: list[BiometricRef] = _dental_records()
    dvi_forms: list[DocumentRef] = _dvi_forms()


class BodyFound(StrictModel):
    """Black notice: the unidentified body."""

    found_on: date | None = tagged(_LOC)
    found_place: ShortText | None = tagged(_LOC)
    found_country: CountryCode | None = tagged(_LOC)
    estimated_age_min: Annotated[int, Field(ge=0, le=130)] | None = tagged(DataCategory.PHYSICAL)
    estimated_age_max: Annotated[int, Field(ge=0, le=130)] | None = tagged(DataCategory.PHYSICAL)
    cause_of_death: LongText | None = tagged(DataCategory.HEALTH)
    circumstances: LongText | None = tagged(_OPS)
    clothing: LongText | None = tagged(_PHYS, description="Clothing found on the body.")
    personal_effects: LongText | None = tagged(
        _PHYS, description="Effects found with the body (jewellery, watch, documents, keys)."
    )
    dental_records: list[BiometricRef] = _dental_records()
    dvi_forms: list[DocumentRef] = _dvi_forms()


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


class ThreatLevel(StrEnum):
    """How likely and how grave the threat is (an orange notice's header: never withheld)."""

    LOW = "low"
    MODERATE = "moderate"
    SUBSTANTIAL = "substantial"
    SEVERE = "severe"
    CRITICAL = "critical"


class Threat(StrictModel):
    """Orange notice: the imminent threat (its level and validity are header fields of the
    notice, so that no policy can withhold them)."""

    kind: ThreatKind | None = tagged(_OPS)
    description: LongText | None = tagged(_OPS)
    location: ShortText | None = tagged(_LOC)


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


class AssetIdentifierKind(StrEnum):
    """Kinds of asset identifier; the first four have their format checked."""

    IBAN = "iban"  # ISO 13616, check digits verified
    VIN = "vin"  # ISO 3779 vehicle identification number (17 characters, no I, O or Q)
    IMO = "imo"  # IMO ship number (7 digits, check digit verified)
    WALLET_ADDRESS = "wallet_address"  # a virtual-asset address
    COMPANY_NUMBER = "company_number"  # a company registry number
    LAND_REGISTRY = "land_registry"  # a land-registry (cadastral) reference
    OTHER = "other"


def _iban_error(value: str) -> str | None:
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", value):
        return "an IBAN is 2 letters, 2 check digits and 11 to 30 letters or digits, no spaces"
    digits = "".join(str(int(c, 36)) for c in value[4:] + value[:4])
    return None if int(digits) % 97 == 1 else "the IBAN's check digits are wrong"


def _imo_error(value: str) -> str | None:
    if not re.fullmatch(r"[0-9]{7}", value):
        return "an IMO number is 7 digits (without the 'IMO' prefix)"
    check = sum(int(d) * w for d, w in zip(value[:6], range(7, 1, -1), strict=True)) % 10
    return None if check == int(value[6]) else "the IMO number's check digit is wrong"


_PATTERNS: dict[AssetIdentifierKind, tuple[str, str]] = {
    AssetIdentifierKind.VIN: (
        r"[A-HJ-NPR-Z0-9]{17}",
        "a VIN is 17 letters or digits, without I, O or Q",
    ),
    AssetIdentifierKind.WALLET_ADDRESS: (
        r"[A-Za-z0-9:_-]{20,128}",
        "a wallet address is 20 to 128 letters, digits or ':_-'",
    ),
}


def asset_identifier_error(kind: AssetIdentifierKind, value: str) -> str | None:
    """Why ``value`` is not a well-formed identifier of ``kind`` (``None`` when it is, or when
    the kind has no checkable format)."""
    if kind is AssetIdentifierKind.IBAN:
        return _iban_error(value)
    if kind is AssetIdentifierKind.IMO:
        return _imo_error(value)
    if kind in _PATTERNS:
        pattern, message = _PATTERNS[kind]
        return None if re.fullmatch(pattern, value) else message
    return None


class AssetIdentifier(StrictModel):
    """An identifier that pins an asset down: IBAN, VIN, IMO number, wallet address, company or
    land-registry number."""

    kind: AssetIdentifierKind
    value: ShortText
    network: ShortText | None = Field(
        None, description="For a wallet address: the ledger (e.g. bitcoin, ethereum)."
    )

    @model_validator(mode="after")
    def _format(self) -> AssetIdentifier:
        error = asset_identifier_error(self.kind, self.value)
        if error is not None:
            raise ValueError(f"value: {error}")
        return self


class AssetAction(StrEnum):
    """What a silver notice asks the recipients to do about the assets."""

    LOCATE = "locate"
    IDENTIFY = "identify"
    OBTAIN_INFORMATION = "obtain_information"
    MONITOR_DISCREETLY = "monitor_discreetly"


class Asset(StrictModel):
    """One asset to locate, identify or seize."""

    kind: AssetKind
    description: LongText
    identifiers: list[AssetIdentifier] = Field(default_factory=list, max_length=20)
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


class DiffusionKind(StrEnum):
    """What a diffusion asks; each kind needs the structure of its notice type."""

    WANTED = "wanted"  # locate and arrest with a view to extradition: as a red notice
    LOCATE = "locate"  # locate a person (no arrest): as a blue notice's inquiry
    MISSING = "missing"  # a missing person or one unable to identify themselves: as a yellow
    INFORMATION = "information"  # obtain information: as a blue notice's inquiry
    OTHER = "other"  # anything else: the free-text request says what


class DiffusionRequest(StrictModel):
    """Diffusion: what the issuing bureau asks of the chosen countries."""

    kind: DiffusionKind = tagged(_OPS, DiffusionKind.OTHER)
    request: LongText | None = tagged(_OPS)
