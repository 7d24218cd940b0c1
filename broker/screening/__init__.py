"""Screening aids: flags for the person who reviews a person-targeting message, each with its
reason; never an automatic decision.

Pure functions over a disclosed view (no Kafka, no store): :func:`screen` flags charges that match
the offence list (:mod:`.offences`, a bundled TOML a bureau may replace), a subject on the
bureau's protected-persons list (:mod:`.protected`, keyed hashes only, never names), a sender
under heightened supervision and a sender's high refusal rate. Nothing here logs.

Reading order: :mod:`.text`, :mod:`.offences`, :mod:`.protected`, :mod:`.screen`.
"""

from __future__ import annotations

from broker.screening.offences import (
    BUNDLED_OFFENCES,
    Category,
    OffenceList,
    OffencePattern,
    load_offences,
    parse_offences,
)
from broker.screening.protected import (
    ProtectedPersons,
    count_protected,
    load_protected,
    normalised_identity,
    save_protected,
    secret_from_env,
)
from broker.screening.screen import DEFAULT_REFUSAL_THRESHOLD, Flag, Screener, screen

__all__ = [
    "BUNDLED_OFFENCES",
    "DEFAULT_REFUSAL_THRESHOLD",
    "Category",
    "Flag",
    "OffenceList",
    "OffencePattern",
    "ProtectedPersons",
    "Screener",
    "count_protected",
    "load_offences",
    "load_protected",
    "normalised_identity",
    "parse_offences",
    "save_protected",
    "screen",
    "secret_from_env",
]
