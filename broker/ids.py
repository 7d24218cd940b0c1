"""Identifiers: UUIDv7 message ids (time-ordered, RFC 9562)."""

from __future__ import annotations

import os
import time


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
