"""The person identity block: names, birth, documents, physical description, biometrics, contact.

Biometrics are references to files held by the issuing bureau (URI + SHA-256 of the content), never
inline blobs. Every leaf carries its :class:`~broker.schemas.categories.DataCategory`.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from broker.schemas.categories import DataCategory, tagged
from broker.schemas.common import (
    CountryCode,
    LanguageCode,
    LongText,
    PartialDate,
    Sha256Hex,
    ShortText,
    StrictModel,
    SubjectCategory,
)

_ID = DataCategory.IDENTITY
_PHYS = DataCategory.PHYSICAL
_BIO = DataCategory.BIOMETRIC


class Alias(StrictModel):
    """Another name the person is known by."""

    family_name: ShortText
    forenames: ShortText | None = None


class DocumentKind(StrEnum):
    """Kinds of identity document."""

    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    DRIVING_LICENCE = "driving_licence"
    RESIDENCE_PERMIT = "residence_permit"
    OTHER = "other"


class IdentityDocument(StrictModel):
    """A passport, identity card or similar document held by the person."""

    kind: DocumentKind
    number: ShortText
    issuing_country: CountryCode
    expires_on: date | None = None


class EyeColour(StrEnum):
    """Eye colours."""

    BLACK = "black"
    BLUE = "blue"
    BROWN = "brown"
    GREEN = "green"
    GREY = "grey"
    HAZEL = "hazel"
    OTHER = "other"


class HairColour(StrEnum):
    """Hair colours."""

    BLACK = "black"
    BROWN = "brown"
    BLOND = "blond"
    RED = "red"
    GREY = "grey"
    WHITE = "white"
    BALD = "bald"
    OTHER = "other"


class PhysicalDescription(StrictModel):
    """What the person looks like."""

    height_cm: Annotated[int, Field(ge=30, le=260)] | None = tagged(_PHYS)
    weight_kg: Annotated[int, Field(ge=1, le=400)] | None = tagged(_PHYS)
    eye_colour: EyeColour | None = tagged(_PHYS)
    hair_colour: HairColour | None = tagged(_PHYS)
    distinguishing_marks: LongText | None = tagged(_PHYS)


class BiometricRef(StrictModel):
    """A reference to a biometric file held by the issuing bureau, pinned by its content hash."""

    uri: Annotated[str, Field(pattern=r"^(https://|urn:)\S+$", max_length=2000)]
    sha256: Sha256Hex
    media_type: Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    captured_on: date | None = None


class DocumentRef(StrictModel):
    """A document held by the issuing bureau (a warrant copy, a disaster-victim-identification
    form), by reference and content hash, never inline."""

    uri: Annotated[str, Field(pattern=r"^(https://|urn:)\S+$", max_length=2000)]
    sha256: Sha256Hex
    media_type: Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    title: ShortText | None = None


class Biometrics(StrictModel):
    """Photos, fingerprints and DNA profile, as references."""

    photos: list[BiometricRef] = tagged(_BIO, default_factory=list)
    fingerprints: list[BiometricRef] = tagged(_BIO, default_factory=list)
    dna_profile: BiometricRef | None = tagged(_BIO)


class SpecialCategories(StrictModel):
    """Special categories of personal data, only where strictly necessary (e.g. to identify)."""

    ethnic_origin: LongText | None = tagged(DataCategory.ETHNIC_ORIGIN)
    religion: LongText | None = tagged(DataCategory.RELIGION)
    political_opinion: LongText | None = tagged(DataCategory.POLITICAL_OPINION)
    health: LongText | None = tagged(DataCategory.HEALTH)
    sexual_life: LongText | None = tagged(DataCategory.SEXUAL_LIFE)


class Contact(StrictModel):
    """How the person can be reached or traced."""

    phone_numbers: list[Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{4,32}$")]] = tagged(
        DataCategory.CONTACT, default_factory=list
    )
    email_addresses: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)]] = (
        tagged(DataCategory.CONTACT, default_factory=list)
    )
    last_known_addresses: list[LongText] = tagged(DataCategory.LOCATION, default_factory=list)


class Person(StrictModel):
    """Identity of the notice subject; every field is optional here, publication criteria decide."""

    family_name: ShortText | None = tagged(_ID)
    forenames: ShortText | None = tagged(_ID)
    aliases: list[Alias] = tagged(_ID, default_factory=list)
    sex: Literal["M", "F", "U"] | None = tagged(_ID)
    date_of_birth: PartialDate | None = tagged(_ID)
    place_of_birth: ShortText | None = tagged(_ID)
    country_of_birth: CountryCode | None = tagged(_ID)
    nationalities: list[CountryCode] = tagged(_ID, default_factory=list)
    parent_names: list[ShortText] = tagged(_ID, default_factory=list)
    identity_documents: list[IdentityDocument] = tagged(_ID, default_factory=list)
    languages: list[LanguageCode] = tagged(_ID, default_factory=list)
    occupation: ShortText | None = tagged(_ID)
    estimated_age_min: Annotated[int, Field(ge=0, le=130)] | None = tagged(
        _PHYS, description="For a person whose date of birth is unknown (unidentified)."
    )
    estimated_age_max: Annotated[int, Field(ge=0, le=130)] | None = tagged(_PHYS)
    physical: PhysicalDescription | None = None
    biometrics: Biometrics | None = None
    contact: Contact | None = None
    special: SpecialCategories | None = None


class RelatedPerson(StrictModel):
    """Another person named in a notice (an associate, a co-accused, a witness, a parent of a
    missing child), with their own role; the notice's ``person`` is the subject, whose role is
    the notice's ``subject_category``. Only what identifies them: no biometrics, no special
    categories, no contact data (the whole list is one identity unit)."""

    role: SubjectCategory
    relation: ShortText | None = None
    family_name: ShortText | None = None
    forenames: ShortText | None = None
    sex: Literal["M", "F", "U"] | None = None
    date_of_birth: PartialDate | None = None
    nationalities: list[CountryCode] = Field(default_factory=list)
