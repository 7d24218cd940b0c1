"""Whether a person of a notice is (or may be) a minor: the input of the policy engine's minor
protection (:mod:`broker.policy.engine`).

"Minor" means under :data:`ADULT_AGE` *at the time that matters*, read conservatively (a person
who may be a minor is one):

* a suspect, accused or convicted person: on the day of the earliest offence (the first day a
  charge's ``committed_on`` allows) or on the day of the decision, whichever makes a minor;
* a missing person: on the day they went missing (``missing.missing_since``) or on the day of
  the decision;
* a body (black notice): on the day it was found (``body.found_on``, else the notice's creation),
  the latest day the person can have died; an estimated age of a body does not grow;
* anyone else: on the day of the decision.

The age comes from the date of birth (the latest day a partial date allows); without one, from
the estimated minimum age: a body's (``body.estimated_age_min``, or the person's), or a living
person's (``person.estimated_age_min``, estimated on the day they were found, ``missing.found_on``,
else on the notice's creation, and growing from then). Nothing else makes a minor.

The role decides what protection a minor gets (:data:`~broker.schemas.common.PROTECTED_ROLES`):
:attr:`MinorTest.protected` is true for a minor in a protected role, or in no stated role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from broker.schemas.common import PROTECTED_ROLES, SubjectCategory, partial_date_bounds
from broker.schemas.notices import BlackNotice, NoticeBase

#: The age of majority the minor protection uses.
ADULT_AGE = 18

#: Roles whose age is judged on the day of the offence (as well as on the day of the decision).
OFFENCE_ROLES = frozenset(
    {SubjectCategory.SUSPECT, SubjectCategory.ACCUSED, SubjectCategory.CONVICTED}
)

# The disclosure units the minor test may read (its *inputs*).
DATE_OF_BIRTH = "person.date_of_birth"
PERSON_ESTIMATE = "person.estimated_age_min"
BODY_ESTIMATE = "body.estimated_age_min"
BODY_FOUND_ON = "body.found_on"
CHARGES = "judicial.charges"
MISSING_SINCE = "missing.missing_since"
FOUND_ON = "missing.found_on"
#: Every input of the subject's test: a recipient that does not see them must not learn the
#: test's outcome from the labels of withheld fields.
SUBJECT_INPUTS = frozenset(
    {
        DATE_OF_BIRTH,
        PERSON_ESTIMATE,
        BODY_ESTIMATE,
        BODY_FOUND_ON,
        CHARGES,
        MISSING_SINCE,
        FOUND_ON,
    }
)
#: The unit holding the related persons (their dates of birth are inputs of their own tests).
RELATED_INPUT = "related_persons"
#: :data:`SUBJECT_INPUTS` and :data:`RELATED_INPUT`.
MINOR_INPUTS = SUBJECT_INPUTS | {RELATED_INPUT}


class JudgedAt(StrEnum):
    """What :attr:`MinorTest.when` names: the day the age was judged at."""

    TODAY = "today"
    OFFENCE = "offence"  # the earliest charge's committed_on
    MISSING_SINCE = "missing_since"
    DEATH = "death"  # a body: found_on, else the notice's creation


class AgeBasis(StrEnum):
    """What :attr:`MinorTest.basis` names: where the age came from."""

    DATE_OF_BIRTH = "date_of_birth"
    ESTIMATED_AGE = "estimated_age"


@dataclass(frozen=True)
class MinorTest:
    """The outcome of the minor test for one person of a notice.

    ``minor``: the person is (or may be) under 18 on ``at``; ``role``: the person's role
    (``None``: not stated); ``at``: the day the age was judged at, and ``when`` which day that is;
    ``basis``: where the age came from (``None``: nothing tells it); ``inputs``: the disclosure
    units the test read (paths of :data:`MINOR_INPUTS`).
    """

    minor: bool
    role: SubjectCategory | None
    at: date
    when: JudgedAt
    basis: AgeBasis | None
    inputs: frozenset[str]

    @property
    def protected(self) -> bool:
        """A minor in a protected role (or no stated role): free text is protected too."""
        return self.minor and (self.role is None or self.role in PROTECTED_ROLES)


def _adult_on(born_latest: date) -> date:
    """The day someone born on ``born_latest`` turns :data:`ADULT_AGE`."""
    return _add_years(born_latest, ADULT_AGE)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February: 1 March
        return date(day.year + years, 3, 1)


def _earliest(values: Iterable[str | None]) -> date | None:
    """The first day the earliest of the partial dates ``values`` allows."""
    days = [partial_date_bounds(v)[0] for v in values if v]
    return min(days) if days else None


def _times(
    notice: NoticeBase, role: SubjectCategory | None, today: date, *, body: bool
) -> tuple[date, JudgedAt, set[str]]:
    """The earliest day that matters for a person of ``role``, what it is, and the units read."""
    at, when, inputs = today, JudgedAt.TODAY, set[str]()
    candidates: list[tuple[date, JudgedAt, str]] = []
    if body and isinstance(notice, BlackNotice):
        found = notice.body.found_on
        candidates.append(
            (found, JudgedAt.DEATH, BODY_FOUND_ON)
            if found is not None
            else (notice.created_at.date(), JudgedAt.DEATH, "")
        )
    if role in OFFENCE_ROLES:
        judicial = getattr(notice, "judicial", None)
        charges = judicial.charges if judicial is not None else []
        offence = _earliest(c.committed_on for c in charges)
        if offence is not None:
            candidates.append((offence, JudgedAt.OFFENCE, CHARGES))
    if role is SubjectCategory.MISSING:
        missing = getattr(notice, "missing", None)
        since = _earliest([getattr(missing, "missing_since", None)])
        if since is not None:
            candidates.append((since, JudgedAt.MISSING_SINCE, MISSING_SINCE))
    for day, name, path in candidates:
        if day < at:
            at, when = day, name
        if path:
            inputs.add(path)
    return at, when, inputs


def minor_test(notice: NoticeBase, today: date) -> MinorTest:
    """The minor test of the notice's subject (its ``person``, or a black notice's body), judged
    with ``today`` as the day of the decision."""
    role = notice.subject_category
    person = getattr(notice, "person", None)
    black = isinstance(notice, BlackNotice)
    if person is None and not black:
        return MinorTest(False, role, today, JudgedAt.TODAY, None, frozenset())
    at, when, inputs = _times(notice, role, today, body=black)
    dob = person.date_of_birth if person is not None else None
    if dob is not None:
        inputs.add(DATE_OF_BIRTH)
        minor = at < _adult_on(partial_date_bounds(dob)[1])
        return MinorTest(minor, role, at, when, AgeBasis.DATE_OF_BIRTH, frozenset(inputs))
    estimates: list[tuple[int, str]] = []
    if person is not None and person.estimated_age_min is not None:
        estimates.append((person.estimated_age_min, PERSON_ESTIMATE))
    if isinstance(notice, BlackNotice) and notice.body.estimated_age_min is not None:
        estimates.append((notice.body.estimated_age_min, BODY_ESTIMATE))
    if not estimates:
        return MinorTest(False, role, at, when, None, frozenset(inputs))
    youngest = min(age for age, _ in estimates)
    inputs.update(path for _, path in estimates)
    if black:  # the age at death: it does not grow
        minor = youngest < ADULT_AGE
    else:  # a living person, estimated when found: adult at the latest 18 - min years later
        missing = getattr(notice, "missing", None)
        found = getattr(missing, "found_on", None)
        if found is not None:
            inputs.add(FOUND_ON)
        estimated_on = found if found is not None else notice.created_at.date()
        minor = at < _add_years(estimated_on, max(ADULT_AGE - youngest, 0))
    return MinorTest(minor, role, at, when, AgeBasis.ESTIMATED_AGE, frozenset(inputs))


def related_tests(notice: NoticeBase, today: date) -> tuple[MinorTest, ...]:
    """The minor test of each of the notice's ``related_persons``, in order (their own role;
    the age from their date of birth, judged as for a subject of that role)."""
    out = []
    for related in notice.related_persons:
        at, when, read = _times(notice, related.role, today, body=False)
        inputs = frozenset({RELATED_INPUT, *read})
        if related.date_of_birth is None:
            out.append(MinorTest(False, related.role, at, when, None, inputs))
            continue
        minor = at < _adult_on(partial_date_bounds(related.date_of_birth)[1])
        out.append(MinorTest(minor, related.role, at, when, AgeBasis.DATE_OF_BIRTH, inputs))
    return tuple(out)


def is_minor(notice: NoticeBase, at: date) -> bool:
    """Whether the notice's subject may be under 18 at the time that matters, ``at`` being the
    day of the decision (see :func:`minor_test`)."""
    return minor_test(notice, at).minor
