"""Identifiers: UUIDv7 message ids (time-ordered, RFC 9562) and bureau ids.

A bureau id is an ISO 3166-1 alpha-2 country code or an organisation's code in ``XA``..``XZ``
(ISO's user-assigned range). :data:`BureauId` (for pydantic models) and :func:`is_bureau_id`
(for everything else: the CLI, topic names, policy file names) are the one definition.
"""

from __future__ import annotations

import os
import re
import time
from functools import cache
from typing import Annotated

import pycountry
from pydantic import AfterValidator, Field

#: The shape of a bureau id: two upper-case letters.
BUREAU_ID_PATTERN = r"^[A-Z]{2}$"
_SHAPE = re.compile(r"[A-Z]{2}")
_ORGANISATION = re.compile(r"X[A-Z]")


# Valid codes are remembered (the ISO list bounds them); an unknown code raises, and raising is
# not cached.
@cache
def bureau_id(code: str) -> str:
    """``code`` if it is a bureau id, else :class:`ValueError` saying why."""
    if _SHAPE.fullmatch(code) is None:
        msg = f"invalid bureau id {code!r}: expected two upper-case letters such as FR"
        raise ValueError(msg)
    if _ORGANISATION.fullmatch(code) is None and pycountry.countries.get(alpha_2=code) is None:
        msg = f"unknown ISO 3166-1 alpha-2 country code {code!r}"
        raise ValueError(msg)
    return code


def is_bureau_id(code: str) -> bool:
    """Whether ``code`` is a bureau id (see :func:`bureau_id`)."""
    try:
        bureau_id(code)
    except ValueError:
        return False
    return True


#: A bureau id in a pydantic model: the pattern (in the JSON Schema), then :func:`bureau_id`.
BureauId = Annotated[
    str, Field(pattern=BUREAU_ID_PATTERN, examples=["FR", "XI"]), AfterValidator(bureau_id)
]


def uuid7(now_ms: int | None = None) -> str:
    """Return a new UUIDv7 string: 48-bit Unix milliseconds, version 7, 74 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"  # str(uuid.UUID(int=value)), without building the object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_HEX = frozenset("0123456789abcdef")


def uuid7_time_ms(text: str) -> int | None:
    """The Unix milliseconds of a canonical UUIDv7 string (lowercase, hyphenated, version 7,
    RFC 9562 variant), or ``None`` if ``text`` is not one."""
    if len(text) != 36 or [len(p) for p in text.split("-")] != [8, 4, 4, 4, 12]:
        return None
    digits = text.replace("-", "")
    if not _HEX.issuperset(digits) or digits[12] != "7" or digits[16] not in "89ab":
        return None
    return int(digits[:12], 16)
