"""Publication criteria: what a schema-valid notice must also carry before it may be published.

:func:`publication_errors` returns ``(dotted.path, message)`` pairs; an empty list means the notice
may be published. The schema (:mod:`broker.schemas.notices`) says what a field may contain; this
module says which fields a notice type needs and refuses requests INTERPOL's rules exclude (red
notices below the penalty threshold, administrative violations, private disputes).
"""

from __future__ import annotations

from broker.schemas.common import NoticeType, Purpose, SubjectCategory
from broker.schemas.judicial import JudicialPurpose, OffenceNature
from broker.schemas.notices import (
    BlackNotice,
    BlueNotice,
    Diffusion,
    GreenNotice,
    NoticeBase,
    OrangeNotice,
    PurpleNotice,
    RedNotice,
    SilverNotice,
    UnNotice,
    YellowNotice,
)
from broker.schemas.person import Person

#: Minimum maximum-penalty for prosecution (2 years) and remaining sentence (6 months).
PROSECUTION_THRESHOLD_MONTHS = 24
SENTENCE_THRESHOLD_MONTHS = 6

Errors = list[tuple[str, str]]

_S = SubjectCategory
_ALL_SUBJECTS = frozenset(SubjectCategory)
ALLOWED_SUBJECTS: dict[NoticeType, frozenset[SubjectCategory]] = {
    NoticeType.RED: frozenset({_S.SUSPECT, _S.CONVICTED}),
    NoticeType.YELLOW: frozenset({_S.MISSING, _S.UNIDENTIFIED, _S.VICTIM}),
    NoticeType.BLUE: _ALL_SUBJECTS,
    NoticeType.BLACK: frozenset({_S.UNIDENTIFIED}),
    NoticeType.GREEN: frozenset({_S.SUSPECT, _S.CONVICTED}),
    NoticeType.ORANGE: _ALL_SUBJECTS,
    NoticeType.PURPLE: _ALL_SUBJECTS,
    NoticeType.SILVER: frozenset({_S.SUSPECT, _S.CONVICTED}),
    NoticeType.UN: _ALL_SUBJECTS,
    NoticeType.DIFFUSION: _ALL_SUBJECTS,
}
_P = Purpose
ALLOWED_PURPOSES: dict[NoticeType, frozenset[Purpose]] = {
    NoticeType.RED: frozenset({_P.ARREST_EXTRADITION}),
    NoticeType.YELLOW: frozenset({_P.LOCATE, _P.IDENTIFY}),
    NoticeType.BLUE: frozenset({_P.INFORMATION, _P.LOCATE, _P.IDENTIFY}),
    NoticeType.BLACK: frozenset({_P.IDENTIFY}),
    NoticeType.GREEN: frozenset({_P.WARNING}),
    NoticeType.ORANGE: frozenset({_P.THREAT_ALERT, _P.WARNING}),
    NoticeType.PURPLE: frozenset({_P.MODUS_OPERANDI, _P.INFORMATION}),
    NoticeType.SILVER: frozenset({_P.ASSET_RECOVERY, _P.INFORMATION}),
    NoticeType.UN: frozenset({_P.SANCTIONS}),
    NoticeType.DIFFUSION: frozenset(Purpose),
}

_REQUIRED = "required for publication"


def _has_biometric(person: Person | None) -> bool:
    b = person.biometrics if person else None
    return b is not None and bool(b.photos or b.fingerprints or b.dna_profile)


def _identifiable(person: Person, kind: str) -> Errors:
    if (person.family_name and person.date_of_birth) or _has_biometric(person):
        return []
    return [
        (
            "person",
            f"a {kind} notice needs the family name with the date of birth, "
            "or a biometric reference (photo, fingerprints or DNA profile)",
        )
    ]


def _red(n: RedNotice) -> Errors:
    errors = _identifiable(n.person, "red")
    j = n.judicial
    created = n.created_at.date()
    for name in ("requesting_authority", "purpose", "summary_of_facts"):
        if getattr(j, name) is None:
            errors.append((f"judicial.{name}", _REQUIRED))
    if not j.warrants:
        errors.append(("judicial.warrants", "a red notice needs at least one warrant or judgment"))
    for i, w in enumerate(j.warrants):
        p = f"judicial.warrants.{i}"
        for name in ("reference", "issued_on", "issuing_authority"):
            if getattr(w, name) is None:
                errors.append((f"{p}.{name}", _REQUIRED))
        if w.expires_on is not None and w.expires_on < created:
            errors.append((f"{p}.expires_on", f"the warrant expired on {w.expires_on.isoformat()}"))
    if not j.charges:
        errors.append(("judicial.charges", "a red notice needs at least one charge"))
    refs = {w.reference for w in j.warrants}
    for i, c in enumerate(j.charges):
        p = f"judicial.charges.{i}"
        if c.legal_provision is None:
            errors.append((f"{p}.legal_provision", _REQUIRED))
        if c.warrant_reference is not None and c.warrant_reference not in refs:
            errors.append((f"{p}.warrant_reference", "refers to no warrant of this notice"))
        if c.nature is OffenceNature.ADMINISTRATIVE:
            errors.append(
                (
                    f"{p}.nature",
                    "refused: a red notice cannot be issued for an administrative violation",
                )
            )
        elif c.nature is OffenceNature.PRIVATE_DISPUTE:
            errors.append(
                (f"{p}.nature", "refused: a red notice cannot be issued for a private dispute")
            )
    if j.purpose is JudicialPurpose.PROSECUTION:
        if n.subject_category is not SubjectCategory.SUSPECT:
            errors.append(("subject_category", "must be 'suspect' when the purpose is prosecution"))
        if j.charges and not any(
            c.maximum_penalty_life
            or (c.maximum_penalty_months or 0) >= PROSECUTION_THRESHOLD_MONTHS
            for c in j.charges
        ):
            errors.append(
                (
                    "judicial.charges",
                    "refused: for prosecution, an offence must be punishable by at least 2 years "
                    "(give maximum_penalty_months or maximum_penalty_life)",
                )
            )
    elif j.purpose is JudicialPurpose.SENTENCE:
        if n.subject_category is not SubjectCategory.CONVICTED:
            errors.append(
                ("subject_category", "must be 'convicted' when the purpose is a sentence")
            )
        if j.sentence_imposed_months is None:
            errors.append(("judicial.sentence_imposed_months", _REQUIRED))
        remaining = j.sentence_remaining_months
        if remaining is None:
            errors.append(("judicial.sentence_remaining_months", _REQUIRED))
        elif remaining < SENTENCE_THRESHOLD_MONTHS:
            errors.append(
                (
                    "judicial.sentence_remaining_months",
                    f"refused: at least 6 months of the sentence must remain, not {remaining}",
                )
            )
        elif j.sentence_imposed_months is not None and remaining > j.sentence_imposed_months:
            errors.append(("judicial.sentence_remaining_months", "exceeds sentence_imposed_months"))
    if j.limitation_date is not None and j.limitation_date < created:
        errors.append(
            (
                "judicial.limitation_date",
                f"refused: the limitation period ended on {j.limitation_date.isoformat()}",
            )
        )
    if j.extradition_assurance is not True:
        errors.append(
            (
                "judicial.extradition_assurance",
                "a red notice needs the assurance that extradition will be requested",
            )
        )
    return errors


def _yellow(n: YellowNotice) -> Errors:
    errors: Errors = []
    if not (n.person.family_name or _has_biometric(n.person) or n.person.physical):
        errors.append(
            (
                "person",
                "a yellow notice needs the family name, a biometric reference "
                "or a physical description",
            )
        )
    if n.missing.missing_since is None and n.missing.found_on is None:
        errors.append(
            (
                "missing",
                "a yellow notice needs missing_since (missing person) or found_on "
                "(person unable to identify themselves)",
            )
        )
    return errors


def _blue(n: BlueNotice) -> Errors:
    errors: Errors = []
    if not n.inquiry.sought:
        errors.append(
            ("inquiry.sought", "name the information sought: identity, location or activities")
        )
    if n.inquiry.reason is None:
        errors.append(("inquiry.reason", _REQUIRED))
    return errors


def _black(n: BlackNotice) -> Errors:
    errors: Errors = [
        (f"body.{name}", _REQUIRED)
        for name in ("found_on", "found_place", "found_country")
        if getattr(n.body, name) is None
    ]
    lo, hi = n.body.estimated_age_min, n.body.estimated_age_max
    if lo is not None and hi is not None and lo > hi:
        errors.append(("body.estimated_age_max", "must not be below estimated_age_min"))
    return errors


def _green(n: GreenNotice) -> Errors:
    errors = _identifiable(n.person, "green")
    if n.warning.risk_summary is None:
        errors.append(("warning.risk_summary", _REQUIRED))
    return errors


def _orange(n: OrangeNotice) -> Errors:
    return [
        (f"threat.{name}", _REQUIRED)
        for name in ("kind", "description")
        if getattr(n.threat, name) is None
    ]


def _purple(n: PurpleNotice) -> Errors:
    if n.modus_operandi.description is None:
        return [("modus_operandi.description", _REQUIRED)]
    return []


def _silver(n: SilverNotice) -> Errors:
    if not n.assets.items:
        return [("assets.items", "a silver notice needs at least one asset")]
    return []


def _un(n: UnNotice) -> Errors:
    errors: Errors = [
        (f"sanctions.{name}", _REQUIRED)
        for name in ("committee", "reference")
        if getattr(n.sanctions, name) is None
    ]
    if n.person is None and n.entity is None:
        errors.append(("person", "a UN notice needs the sanctioned person or entity"))
    elif n.person is not None and n.entity is not None:
        errors.append(("entity", "give either the person or the entity, not both"))
    elif n.entity is not None and n.entity.name is None:
        errors.append(("entity.name", _REQUIRED))
    elif n.person is not None and n.person.family_name is None:
        errors.append(("person.family_name", _REQUIRED))
    return errors


def _diffusion(n: Diffusion) -> Errors:
    errors: Errors = []
    if n.issuing_bureau in n.addressees:
        errors.append(("addressees", "must not include the issuing bureau"))
    if len(set(n.addressees)) != len(n.addressees):
        errors.append(("addressees", "must not repeat a bureau"))
    if n.details.request is None:
        errors.append(("details.request", _REQUIRED))
    return errors


def _type_rules(n: NoticeBase) -> Errors:
    if isinstance(n, RedNotice):
        return _red(n)
    if isinstance(n, YellowNotice):
        return _yellow(n)
    if isinstance(n, BlueNotice):
        return _blue(n)
    if isinstance(n, BlackNotice):
        return _black(n)
    if isinstance(n, GreenNotice):
        return _green(n)
    if isinstance(n, OrangeNotice):
        return _orange(n)
    if isinstance(n, PurpleNotice):
        return _purple(n)
    if isinstance(n, SilverNotice):
        return _silver(n)
    if isinstance(n, UnNotice):
        return _un(n)
    if isinstance(n, Diffusion):
        return _diffusion(n)
    raise TypeError(f"not a notice model: {type(n).__name__}")


def publication_errors(notice: NoticeBase) -> Errors:
    """Every reason ``notice`` may not be published, as ``(dotted.path, message)``."""
    kind = notice.notice_type
    article = "an" if kind.value[0] in "aeiou" else "a"
    errors: Errors = []
    if notice.subject_category not in ALLOWED_SUBJECTS[kind]:
        allowed = ", ".join(sorted(ALLOWED_SUBJECTS[kind]))
        errors.append(
            ("subject_category", f"{article} {kind} notice's subject must be one of: {allowed}")
        )
    if notice.purpose not in ALLOWED_PURPOSES[kind]:
        allowed = ", ".join(sorted(ALLOWED_PURPOSES[kind]))
        errors.append(("purpose", f"{article} {kind} notice's purpose must be one of: {allowed}"))
    errors.extend(_type_rules(notice))
    return errors
