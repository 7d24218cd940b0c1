"""Publication criteria: what a schema-valid notice must also carry before it may be published.

:func:`publication_errors` returns ``(dotted.path, message)`` pairs; an empty list means the notice
may be published. The schema (:mod:`broker.schemas.notices`) says what a field may contain; this
module says which fields a notice type needs and refuses requests INTERPOL's rules exclude (red
notices below the penalty threshold, administrative violations, private disputes).
"""

from __future__ import annotations

from broker.schemas.blocks import AssetAction, DiffusionKind, InformationSought, MissingInfo
from broker.schemas.common import NoticeType, Purpose, SubjectCategory, partial_date_bounds
from broker.schemas.judicial import Judicial, JudicialPurpose, OffenceNature, WarrantKind
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
#: Roles of a person wanted for arrest (red notices, green notices, wanted diffusions).
WANTED_ROLES = frozenset({_S.SUSPECT, _S.ACCUSED, _S.CONVICTED})
#: Roles of a person sought to be found or identified (yellow notices, missing diffusions).
SOUGHT_ROLES = frozenset({_S.MISSING, _S.UNIDENTIFIED, _S.VICTIM})
ALLOWED_SUBJECTS: dict[NoticeType, frozenset[SubjectCategory]] = {
    NoticeType.RED: WANTED_ROLES,
    NoticeType.YELLOW: SOUGHT_ROLES,
    NoticeType.BLUE: _ALL_SUBJECTS,
    NoticeType.BLACK: frozenset({_S.UNIDENTIFIED, _S.DECEASED}),
    NoticeType.GREEN: WANTED_ROLES | {_S.POSSIBLE_THREAT},
    NoticeType.ORANGE: WANTED_ROLES | {_S.POSSIBLE_THREAT, _S.LISTED},
    NoticeType.PURPLE: WANTED_ROLES | {_S.PERSON_OF_INTEREST, _S.ASSOCIATE, _S.UNIDENTIFIED},
    NoticeType.SILVER: WANTED_ROLES | {_S.ASSOCIATE, _S.PERSON_OF_INTEREST, _S.LISTED},
    NoticeType.UN: frozenset({_S.LISTED}),
    NoticeType.DIFFUSION: _ALL_SUBJECTS,
}
#: The subjects a diffusion of each kind may have (the roles of its notice type).
DIFFUSION_SUBJECTS: dict[DiffusionKind, frozenset[SubjectCategory]] = {
    DiffusionKind.WANTED: WANTED_ROLES,
    DiffusionKind.MISSING: SOUGHT_ROLES,
    DiffusionKind.LOCATE: _ALL_SUBJECTS,
    DiffusionKind.INFORMATION: _ALL_SUBJECTS,
    DiffusionKind.OTHER: _ALL_SUBJECTS,
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
#: The purposes a diffusion of each kind may have.
DIFFUSION_PURPOSES: dict[DiffusionKind, frozenset[Purpose]] = {
    DiffusionKind.WANTED: frozenset({_P.ARREST_EXTRADITION}),
    DiffusionKind.MISSING: frozenset({_P.LOCATE, _P.IDENTIFY}),
    DiffusionKind.LOCATE: frozenset({_P.LOCATE}),
    DiffusionKind.INFORMATION: frozenset({_P.INFORMATION, _P.IDENTIFY}),
    DiffusionKind.OTHER: frozenset(Purpose) - {_P.ARREST_EXTRADITION},
}

_REQUIRED = "required for publication"
#: What may stand for a description of a wanted person (RPD Art. 83), and of a sought one.
_WANTED_DESCRIPTION = (
    "a physical description, a biometric reference (photo, fingerprints or DNA profile) "
    "or an identity document"
)
_SOUGHT_DESCRIPTION = (
    "a physical description or a biometric reference (photo, fingerprints or DNA profile)"
)


def _has_biometric(person: Person | None) -> bool:
    b = person.biometrics if person else None
    return b is not None and bool(b.photos or b.fingerprints or b.dna_profile)


def _described(person: Person) -> bool:
    """Whether the person's physical description holds anything."""
    return person.physical is not None and bool(person.physical.model_dump(exclude_none=True))


def _identifiable(person: Person, label: str) -> Errors:
    """The loose test of the requests whose rules ask no particular identifiers."""
    if (person.family_name and person.date_of_birth) or _has_biometric(person):
        return []
    return [
        (
            "person",
            f"{label} needs the family name with the date of birth, "
            "or a biometric reference (photo, fingerprints or DNA profile)",
        )
    ]


def _named(person: Person, label: str, article: str) -> Errors:
    """Family name, forenames, sex and date of birth (partial allowed), each required."""
    return [
        (f"person.{name}", f"required for {label} ({article})")
        for name in ("family_name", "forenames", "sex", "date_of_birth")
        if getattr(person, name) is None
    ]


def _wanted_identifiers(person: Person, label: str, article: str) -> Errors:
    """RPD Art. 83: family name, forename, sex, date of birth, and a description, a biometric
    reference or the data of an identity document."""
    errors = _named(person, label, article)
    if not (_described(person) or _has_biometric(person) or person.identity_documents):
        errors.append(("person", f"{label} needs {_WANTED_DESCRIPTION} ({article})"))
    return errors


def _sought_identifiers(person: Person, missing: MissingInfo, label: str) -> Errors:
    """RPD Art. 90: a missing person needs family name, forename, sex, date of birth and a
    description, photo, DNA profile or fingerprints, and the day they went missing; a person
    unable to identify themselves needs a description or a biometric reference."""
    article = "RPD Art. 90"
    if missing.missing_since is not None:
        errors = _named(person, label, article)
        if not (_described(person) or _has_biometric(person)):
            errors.append(("person", f"{label} needs {_SOUGHT_DESCRIPTION} ({article})"))
        if len(missing.missing_since) != len("YYYY-MM-DD"):
            errors.append(
                (
                    "missing.missing_since",
                    f"give the day the person went missing (YYYY-MM-DD) ({article})",
                )
            )
        return errors
    if missing.found_on is not None:
        if _described(person) or _has_biometric(person):
            return []
        return [
            (
                "person",
                f"a person unable to identify themselves needs {_SOUGHT_DESCRIPTION} ({article})",
            )
        ]
    return [
        (
            "missing",
            f"{label} needs missing_since (missing person) or found_on "
            "(person unable to identify themselves)",
        )
    ]


def _judicial(j: Judicial, n: NoticeBase, label: str) -> Errors:
    """What the judicial block of a red notice (or a wanted diffusion) must hold."""
    errors: Errors = []
    created = n.created_at.date()
    for name in ("requesting_authority", "purpose", "summary_of_facts"):
        if getattr(j, name) is None:
            errors.append((f"judicial.{name}", _REQUIRED))
    if not j.warrants:
        errors.append(("judicial.warrants", f"{label} needs at least one warrant or judgment"))
    for i, w in enumerate(j.warrants):
        p = f"judicial.warrants.{i}"
        for name in ("reference", "issued_on", "issuing_authority"):
            if getattr(w, name) is None:
                errors.append((f"{p}.{name}", _REQUIRED))
        if w.expires_on is not None and w.expires_on < created:
            errors.append((f"{p}.expires_on", f"the warrant expired on {w.expires_on.isoformat()}"))
        if w.kind is WarrantKind.JUDGMENT:
            for name in ("in_absentia", "final"):
                if getattr(w, name) is None:
                    errors.append((f"{p}.{name}", "required for a judgment"))
        elif w.in_absentia is not None or w.final is not None:
            name = "in_absentia" if w.in_absentia is not None else "final"
            errors.append((f"{p}.{name}", "only for a judgment"))
    if not j.charges:
        errors.append(("judicial.charges", f"{label} needs at least one charge"))
    refs = {w.reference for w in j.warrants}
    for i, c in enumerate(j.charges):
        p = f"judicial.charges.{i}"
        if c.legal_provision is None:
            errors.append((f"{p}.legal_provision", _REQUIRED))
        if c.warrant_reference is not None and c.warrant_reference not in refs:
            errors.append((f"{p}.warrant_reference", "refers to no warrant of this notice"))
        if c.translation is not None and c.translation_language is None:
            errors.append((f"{p}.translation_language", "required with a translation"))
        elif c.translation is None and c.translation_language is not None:
            errors.append((f"{p}.translation_language", "only with a translation"))
        if c.committed_on is not None and partial_date_bounds(c.committed_on)[0] > created:
            errors.append((f"{p}.committed_on", "is after the notice was created"))
        if c.nature is OffenceNature.ADMINISTRATIVE:
            errors.append(
                (
                    f"{p}.nature",
                    f"refused: {label} cannot be issued for an administrative violation",
                )
            )
        elif c.nature is OffenceNature.PRIVATE_DISPUTE:
            errors.append(
                (f"{p}.nature", f"refused: {label} cannot be issued for a private dispute")
            )
    if j.purpose is JudicialPurpose.PROSECUTION:
        if n.subject_category not in (None, SubjectCategory.SUSPECT, SubjectCategory.ACCUSED):
            errors.append(
                (
                    "subject_category",
                    "must be 'suspect' or 'accused' when the purpose is prosecution",
                )
            )
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
        if n.subject_category not in (None, SubjectCategory.CONVICTED):
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
                f"{label} needs the assurance that extradition will be requested",
            )
        )
    if n.issuing_bureau in j.extradition_countries:
        errors.append(("judicial.extradition_countries", "must not include the issuing country"))
    if len(set(j.extradition_countries)) != len(j.extradition_countries):
        errors.append(("judicial.extradition_countries", "must not repeat a country"))
    return errors


def _red(n: RedNotice) -> Errors:
    label = "a red notice"
    return _wanted_identifiers(n.person, label, "RPD Art. 83") + _judicial(n.judicial, n, label)


def _yellow(n: YellowNotice) -> Errors:
    return _sought_identifiers(n.person, n.missing, "a yellow notice")


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
    errors = _wanted_identifiers(n.person, "a green notice", "RPD Art. 89")
    if n.warning.risk_summary is None:
        errors.append(("warning.risk_summary", _REQUIRED))
    return errors


def _orange(n: OrangeNotice) -> Errors:
    errors: Errors = [
        (f"threat.{name}", _REQUIRED)
        for name in ("kind", "description")
        if getattr(n.threat, name) is None
    ]
    if n.threat_level is None:
        errors.append(("threat_level", "an orange notice needs the threat level"))
    if n.valid_until is None:
        errors.append(("valid_until", "an orange notice needs the last day it applies"))
    elif n.valid_until < n.created_at.date():
        errors.append(("valid_until", "is before the notice was created"))
    elif n.valid_until > n.retention_until:
        errors.append(("valid_until", "must not be after retention_until"))
    return errors


def _purple(n: PurpleNotice) -> Errors:
    if n.modus_operandi.description is None:
        return [("modus_operandi.description", _REQUIRED)]
    return []


def _silver(n: SilverNotice) -> Errors:
    errors: Errors = []
    if not n.assets.items:
        errors.append(("assets.items", "a silver notice needs at least one asset"))
    if not n.requested_action:
        actions = ", ".join(AssetAction)
        errors.append(
            ("requested_action", f"a silver notice needs the action requested: {actions}")
        )
    return errors


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


def _inquiry(inquiry: InformationSought | None) -> Errors:
    if inquiry is None:
        return [("inquiry", "name the information sought and why")]
    errors: Errors = []
    if not inquiry.sought:
        errors.append(
            ("inquiry.sought", "name the information sought: identity, location or activities")
        )
    if inquiry.reason is None:
        errors.append(("inquiry.reason", _REQUIRED))
    return errors


def _diffusion(n: Diffusion) -> Errors:
    errors: Errors = []
    if n.issuing_bureau in n.addressees:
        errors.append(("addressees", "must not include the issuing bureau"))
    if len(set(n.addressees)) != len(n.addressees):
        errors.append(("addressees", "must not repeat a bureau"))
    kind = n.details.kind
    label = f"a {kind} diffusion"
    if n.subject_category is not None and n.subject_category not in DIFFUSION_SUBJECTS[kind]:
        allowed = ", ".join(sorted(DIFFUSION_SUBJECTS[kind]))
        errors.append(("subject_category", f"{label}'s subject must be one of: {allowed}"))
    if n.purpose not in DIFFUSION_PURPOSES[kind]:
        if n.purpose is Purpose.ARREST_EXTRADITION:
            message = "a diffusion asking for arrest must be of kind 'wanted'"
            errors.append(("details.kind", message))
        else:
            allowed = ", ".join(sorted(DIFFUSION_PURPOSES[kind]))
            errors.append(("purpose", f"{label}'s purpose must be one of: {allowed}"))
    if kind is DiffusionKind.WANTED:
        if n.person is None:
            errors.append(("person", f"{label} needs the person, as a red notice"))
        else:
            errors.extend(_wanted_identifiers(n.person, label, "as a red notice, RPD Art. 83"))
        if n.judicial is None:
            errors.append(("judicial", f"{label} needs the judicial block of a red notice"))
        else:
            errors.extend(_judicial(n.judicial, n, label))
    elif kind is DiffusionKind.MISSING:
        if n.person is None:
            errors.append(("person", f"{label} needs the person, as a yellow notice"))
        if n.missing is None:
            errors.append(("missing", f"{label} needs the missing block of a yellow notice"))
        elif n.person is not None:
            errors.extend(_sought_identifiers(n.person, n.missing, label))
    elif kind in (DiffusionKind.LOCATE, DiffusionKind.INFORMATION):
        if kind is DiffusionKind.LOCATE:
            if n.person is None:
                errors.append(("person", f"{label} needs the person to locate"))
            else:
                errors.extend(_identifiable(n.person, label))
        errors.extend(_inquiry(n.inquiry))
    elif n.details.request is None:
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


def _persons(notice: NoticeBase) -> Errors:
    """Checks on every person of any notice: the birth date is not after the notice, estimated
    ages are ordered, related persons are named."""
    errors: Errors = []
    created = notice.created_at.date()
    person: Person | None = getattr(notice, "person", None)
    if person is not None:
        dob = person.date_of_birth
        if dob is not None and partial_date_bounds(dob)[0] > created:
            errors.append(("person.date_of_birth", "is after the notice was created"))
        lo, hi = person.estimated_age_min, person.estimated_age_max
        if lo is not None and hi is not None and lo > hi:
            errors.append(("person.estimated_age_max", "must not be below estimated_age_min"))
    for i, related in enumerate(notice.related_persons):
        p = f"related_persons.{i}"
        if related.family_name is None and related.forenames is None:
            errors.append((p, "a related person needs a family name or forenames"))
        dob = related.date_of_birth
        if dob is not None and partial_date_bounds(dob)[0] > created:
            errors.append((f"{p}.date_of_birth", "is after the notice was created"))
    return errors


def _subject_errors(notice: NoticeBase) -> Errors:
    """RPD Art. 44: the status of the notice's person is stated, and fits the notice type."""
    kind = notice.notice_type
    article = "an" if kind.value[0] in "aeiou" else "a"
    subject = notice.subject_category
    if subject is None:
        if getattr(notice, "person", None) is not None or kind is NoticeType.BLACK:
            return [
                (
                    "subject_category",
                    "required when the notice names a person (RPD Art. 44: the person's "
                    "status), one of: " + ", ".join(sorted(ALLOWED_SUBJECTS[kind])),
                )
            ]
        return []
    if subject not in ALLOWED_SUBJECTS[kind]:
        allowed = ", ".join(sorted(ALLOWED_SUBJECTS[kind]))
        return [
            ("subject_category", f"{article} {kind} notice's subject must be one of: {allowed}")
        ]
    return []


def publication_errors(notice: NoticeBase) -> Errors:
    """Every reason ``notice`` may not be published, as ``(dotted.path, message)``."""
    kind = notice.notice_type
    article = "an" if kind.value[0] in "aeiou" else "a"
    errors = _subject_errors(notice)
    if notice.purpose not in ALLOWED_PURPOSES[kind]:
        allowed = ", ".join(sorted(ALLOWED_PURPOSES[kind]))
        errors.append(("purpose", f"{article} {kind} notice's purpose must be one of: {allowed}"))
    errors.extend(_type_rules(notice))
    errors.extend(_persons(notice))
    return errors
