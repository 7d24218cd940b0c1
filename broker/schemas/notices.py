"""The notice models: one header shared by all, one model per notice type, and the union ``Notice``.

Header fields (``x-nbx-header``) are always disclosed to every recipient; everything else lives in
blocks whose leaves carry a data category (``x-nbx-category``) and may be withheld per recipient.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from broker.schemas.blocks import (
    AssetAction,
    Assets,
    BodyFound,
    DiffusionRequest,
    InformationSought,
    MissingInfo,
    ModusOperandi,
    RepeatOffenceWarning,
    SanctionedEntity,
    Sanctions,
    Threat,
    ThreatLevel,
)
from broker.schemas.categories import DataCategory, header, tagged
from broker.schemas.common import (
    BureauId,
    Handling,
    InformationAccuracy,
    LanguageCode,
    NoticeId,
    NoticeType,
    Purpose,
    SourceReliability,
    StrictModel,
    SubjectCategory,
)
from broker.schemas.judicial import Judicial
from broker.schemas.person import Person, RelatedPerson


def check_header_dates(created_at: date, retention_until: date, review_due: date) -> list[str]:
    """Consistency errors between the creation, review and retention dates (empty when fine)."""
    errors = []
    if review_due < created_at:
        errors.append("review_due: must not be before created_at")
    if retention_until < review_due:
        errors.append("retention_until: must not be before review_due")
    return errors


class NoticeBase(StrictModel):
    """Message metadata shared by every notice type; always disclosed."""

    notice_id: NoticeId = header()
    notice_type: NoticeType = header(description="Each notice model narrows this to its own type.")
    issuing_bureau: BureauId = header()
    version: Annotated[int, Field(ge=1)] = header(1, description="1, then +1 for each update.")
    language: LanguageCode = header(description="Language the notice is written in.")
    handling: Handling = header()
    subject_category: SubjectCategory | None = header(
        None,
        description="The role of the notice's person (RPD Art. 44); absent only when the "
        "notice names no person.",
    )
    source_reliability: SourceReliability = header()
    information_accuracy: InformationAccuracy = header()
    purpose: Purpose = header()
    responses_shared_with: list[BureauId] | None = header(
        None,
        description="Bureaus a recipient may send its responses to besides the issuer "
        "(absent: the issuer only).",
    )
    created_at: AwareDatetime = header()
    retention_until: date = header()
    review_due: date = header()
    related_persons: list[RelatedPerson] = tagged(
        DataCategory.IDENTITY, default_factory=list, max_length=50
    )

    @model_validator(mode="after")
    def _dates_consistent(self) -> NoticeBase:
        errors = check_header_dates(self.created_at.date(), self.retention_until, self.review_due)
        if errors:
            raise ValueError("; ".join(errors))
        return self


class RedNotice(NoticeBase):
    """Red: locate and arrest a person with a view to extradition."""

    notice_type: Literal[NoticeType.RED] = header()
    person: Person
    judicial: Judicial


class YellowNotice(NoticeBase):
    """Yellow: locate a missing person, or identify a person unable to identify themselves."""

    notice_type: Literal[NoticeType.YELLOW] = header()
    person: Person
    missing: MissingInfo


class BlueNotice(NoticeBase):
    """Blue: collect information on a person's identity, location or activities."""

    notice_type: Literal[NoticeType.BLUE] = header()
    person: Person
    inquiry: InformationSought


class BlackNotice(NoticeBase):
    """Black: seek information on an unidentified body."""

    notice_type: Literal[NoticeType.BLACK] = header()
    person: Person | None = None
    body: BodyFound


class GreenNotice(NoticeBase):
    """Green: warn about a person likely to repeat offences."""

    notice_type: Literal[NoticeType.GREEN] = header()
    person: Person
    warning: RepeatOffenceWarning


class OrangeNotice(NoticeBase):
    """Orange: warn of an imminent threat (person, event, object or process)."""

    notice_type: Literal[NoticeType.ORANGE] = header()
    threat_level: ThreatLevel | None = header(
        None, description="Never withheld: every recipient must know how grave the threat is."
    )
    valid_until: date | None = header(
        None, description="The last day the warning applies (never withheld)."
    )
    person: Person | None = None
    threat: Threat


class PurpleNotice(NoticeBase):
    """Purple: modus operandi, objects, devices and concealment methods."""

    notice_type: Literal[NoticeType.PURPLE] = header()
    person: Person | None = None
    modus_operandi: ModusOperandi


class SilverNotice(NoticeBase):
    """Silver: locate, identify or obtain information on criminal assets."""

    notice_type: Literal[NoticeType.SILVER] = header()
    requested_action: Annotated[list[AssetAction], Field(min_length=1, max_length=4)] | None = (
        header(None, description="What the recipients are asked to do about the assets.")
    )
    person: Person | None = None
    assets: Assets


class UnNotice(NoticeBase):
    """INTERPOL-UN Security Council special notice: a person or entity subject to UN sanctions."""

    notice_type: Literal[NoticeType.UN] = header()
    person: Person | None = None
    entity: SanctionedEntity | None = None
    sanctions: Sanctions


class Diffusion(NoticeBase):
    """Diffusion: a request sent by one bureau directly to the countries it chooses."""

    notice_type: Literal[NoticeType.DIFFUSION] = header()
    addressees: Annotated[list[BureauId], Field(min_length=1)] = header()
    person: Person | None = None
    judicial: Judicial | None = None
    missing: MissingInfo | None = None
    inquiry: InformationSought | None = None
    details: DiffusionRequest


#: Any notice; pydantic picks the model from ``notice_type``.
Notice = Annotated[
    RedNotice
    | YellowNotice
    | BlueNotice
    | BlackNotice
    | GreenNotice
    | OrangeNotice
    | PurpleNotice
    | SilverNotice
    | UnNotice
    | Diffusion,
    Field(discriminator="notice_type"),
]

#: The model of each notice type.
NOTICE_MODELS: dict[NoticeType, type[NoticeBase]] = {
    NoticeType.RED: RedNotice,
    NoticeType.YELLOW: YellowNotice,
    NoticeType.BLUE: BlueNotice,
    NoticeType.BLACK: BlackNotice,
    NoticeType.GREEN: GreenNotice,
    NoticeType.ORANGE: OrangeNotice,
    NoticeType.PURPLE: PurpleNotice,
    NoticeType.SILVER: SilverNotice,
    NoticeType.UN: UnNotice,
    NoticeType.DIFFUSION: Diffusion,
}
