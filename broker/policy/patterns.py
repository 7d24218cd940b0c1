"""Field path patterns: the ``path`` matcher of a rule, compiled once when a policy is loaded.

A pattern is a dotted path whose segments are lower-case names (``[a-z0-9_]``) with two wildcards:

* ``*`` inside a segment matches any part of one segment: ``person.biometrics.*`` matches
  ``person.biometrics.photos``; ``person.*_name`` matches ``person.family_name``;
* ``**`` as a whole segment matches one or more segments: ``person.**`` matches every field under
  ``person`` (including ``person.biometrics.photos``).

A pattern without wildcards names exactly one field. Patterns never cross a dot except through
``**``, and they always match the whole path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SEGMENT = re.compile(r"^[a-z0-9_*]+$")
_ONE_SEGMENT = r"[a-z0-9_]+"


class PatternError(ValueError):
    """A path pattern is malformed; the message says why."""


@dataclass(frozen=True)
class PathPattern:
    """One compiled path pattern."""

    text: str
    regex: re.Pattern[str]

    @property
    def is_exact(self) -> bool:
        """Whether the pattern names one field (no wildcard)."""
        return "*" not in self.text

    @property
    def has_deep_wildcard(self) -> bool:
        """Whether the pattern uses ``**`` (matches across blocks)."""
        return "**" in self.text.split(".")

    def matches(self, path: str) -> bool:
        """Whether ``path`` (a dotted disclosure unit path) matches the whole pattern."""
        return self.regex.fullmatch(path) is not None


def compile_pattern(text: str) -> PathPattern:
    """Compile ``text``; raise :class:`PatternError` naming the problem if it is malformed."""
    if not text:
        raise PatternError("empty pattern")
    parts: list[str] = []
    for segment in text.split("."):
        if not segment:
            raise PatternError(f"bad pattern {text!r}: empty segment (two dots or a dot at an end)")
        if segment == "**":
            parts.append(rf"{_ONE_SEGMENT}(?:\.{_ONE_SEGMENT})*")
            continue
        if "**" in segment:
            raise PatternError(f"bad pattern {text!r}: '**' must be a whole segment")
        if not _SEGMENT.match(segment):
            raise PatternError(
                f"bad pattern {text!r}: segment {segment!r} may hold only a-z, 0-9, '_' and '*'"
            )
        parts.append("[a-z0-9_]*".join(re.escape(piece) for piece in segment.split("*")))
    regex = re.compile(r"\.".join(parts))
    return PathPattern(text, regex)


def any_matches(patterns: Iterable[PathPattern], path: str) -> bool:
    """Whether any of ``patterns`` matches ``path``."""
    return any(p.matches(path) for p in patterns)
