"""Finding the notices held about a person, for answering a subject access request.

A data subject (or their lawyer) asks a bureau which data it holds about them (EU LED Art. 14);
``nbx subject lookup`` answers with the notice ids and their states, never with the data itself,
and the lookup is an audited consultation with its purpose.

Matching is deliberately generous, because a missed notice is worse than a false candidate a
person then checks: names compare without case, accents, spaces and hyphens, and aliases count;
a partial date of birth (``1979`` or ``1979-11``) matches every full date it could be, both ways.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from broker.sinks.base import Access, AuditEvent, SubjectHit
from broker.vocab import AuditAction

#: the ``reason`` of the consultation entries a subject lookup writes
SUBJECT_LOOKUP = "subject-lookup"

#: Latin letters that Unicode does not decompose into a base letter and an accent
_UNDECOMPOSED = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ł": "l", "þ": "th"})


def name_key(name: str) -> str:
    """A name as compared: accents dropped, case folded, only letters and digits kept
    (``"Rossetti-Bianchi "`` and ``"ROSSETTI BIANCHI"`` are the same person's name, so are
    ``Røssi`` and ``Rossi``)."""
    decomposed = unicodedata.normalize("NFKD", name.casefold().translate(_UNDECOMPOSED))
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def dates_compatible(stored: str, asked: str) -> bool:
    """Whether two (partial) ISO dates can name the same day: one is a prefix of the other at a
    component boundary (``1979`` fits ``1979-11-03``, ``1979-11`` does not fit ``1979-12-01``)."""
    a, b = stored.strip(), asked.strip()
    if not a or not b:
        return False
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    return longer == shorter or longer.startswith(shorter + "-")


def _family_names(person: Mapping[str, Any]) -> Iterator[str]:
    name = person.get("family_name")
    if isinstance(name, str):
        yield name
    aliases = person.get("aliases")
    if isinstance(aliases, list):
        for alias in aliases:
            if isinstance(alias, Mapping) and isinstance(alias.get("family_name"), str):
                yield alias["family_name"]


def matches(view: Mapping[str, Any], family_name: str, date_of_birth: str | None) -> bool:
    """Whether the person of a disclosed ``view`` may be the one asked about: a family name or
    alias equal to ``family_name`` (:func:`name_key`) and, when asked, a compatible date of birth
    (:func:`dates_compatible`; a withheld or missing date of birth does not rule a notice out)."""
    person = view.get("person")
    if not isinstance(person, Mapping):
        return False
    wanted = name_key(family_name)
    if not wanted or not any(name_key(n) == wanted for n in _family_names(person)):
        return False
    born = person.get("date_of_birth")
    if date_of_birth is None or not isinstance(born, str):
        return True
    return dates_compatible(born, date_of_birth)


def lookup_events(access: Access, hits: list[SubjectHit]) -> list[AuditEvent]:
    """The audit entries of one lookup: a ``consultation`` of each notice found, or, when none
    matched, one ``consultation`` naming no notice (the search itself read every view)."""
    if not hits:
        return [
            AuditEvent(
                AuditAction.CONSULTATION,
                operator=access.operator,
                purpose=access.purpose,
                reason=SUBJECT_LOOKUP,
            )
        ]
    return [
        AuditEvent(
            AuditAction.CONSULTATION,
            notice_id=h["notice_id"],
            sender=h["sender"],
            notice_type=h["notice_type"],
            operator=access.operator,
            purpose=access.purpose,
            reason=SUBJECT_LOOKUP,
        )
        for h in hits
    ]
