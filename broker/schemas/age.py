"""Whether a notice's person is (or may be) a minor: the input of the policy engine's minor
protection (:mod:`broker.policy.engine`)."""

from __future__ import annotations

from datetime import date

from broker.schemas.common import partial_date_bounds
from broker.schemas.notices import BlackNotice, NoticeBase

#: The age of majority the minor protection uses.
ADULT_AGE = 18


def is_minor(notice: NoticeBase, at: date) -> bool:
    """Whether the subject may be under 18 on ``at``.

    Uses the latest day a partial date of birth allows (a year-only date counts as 31 December),
    so an uncertain age reads as a minor. Without a date of birth, a black notice's estimated
    minimum age decides; otherwise the subject is not known to be a minor.
    """
    person = getattr(notice, "person", None)
    dob = person.date_of_birth if person is not None else None
    if dob is not None:
        latest = partial_date_bounds(dob)[1]
        try:
            adult_on = latest.replace(year=latest.year + ADULT_AGE)
        except ValueError:  # born 29 February: adult on 1 March
            adult_on = date(latest.year + ADULT_AGE, 3, 1)
        return at < adult_on
    if isinstance(notice, BlackNotice) and notice.body.estimated_age_min is not None:
        return notice.body.estimated_age_min < ADULT_AGE
    return False
