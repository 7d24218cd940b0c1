"""The offence list: categories of offences typical of political persecution or excluded by the
rules, each with word patterns in several languages (format: the comments of ``offences.toml``).

:func:`load_offences` reads a list (the bundled :data:`BUNDLED_OFFENCES` by default) and checks
every pattern; a problem is one :class:`~broker.errors.ConfigError` line naming the file and the
category. :meth:`OffenceList.first_match` finds the first pattern of each category in a text.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from broker.errors import ConfigError
from broker.screening.text import words
from broker.vocab import ScreeningFlag

__all__ = [
    "BUNDLED_OFFENCES",
    "OFFENCES_FORMAT",
    "OFFENCE_FLAGS",
    "Category",
    "OffenceList",
    "OffencePattern",
    "compile_pattern",
    "load_offences",
    "parse_offences",
]

#: the offence list shipped with NBX (``[screening] offences`` defaults to it)
BUNDLED_OFFENCES = Path(__file__).with_name("offences.toml")
#: the ``format`` an offence list may declare
OFFENCES_FORMAT = "nbx-offences/1"
#: the flags an offence category may raise
OFFENCE_FLAGS: frozenset[ScreeningFlag] = frozenset(
    {ScreeningFlag.POLITICAL_OFFENCE, ScreeningFlag.EXCLUDED_OFFENCE}
)
#: how many other words ``...`` in a pattern stands for, at most
GAP_WORDS = 3
_GAP = "..."
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of one pattern, to search the space-joined :func:`words` of a text.

    Raises ``ValueError`` (with the problem) for a pattern without words, a ``*`` that does not
    end a word, or a ``...`` at either end or twice in a row.
    """
    parts: list[str] = []
    gap = False
    for token in pattern.split():
        if token == _GAP:
            if not parts or gap:
                msg = f"{_GAP!r} must stand between two words"
                raise ValueError(msg)
            gap = True
            continue
        star = token.endswith("*")
        body = words(token[:-1] if star else token)
        if not body or "*" in token[:-1]:
            msg = f"{token!r} is not a word (letters, then an optional '*')"
            raise ValueError(msg)
        regex = " ".join(re.escape(w) for w in body) + (r"\w*" if star else "")
        if parts:
            parts.append(rf"(?: \w+){{0,{GAP_WORDS}}} " if gap else " ")
        parts.append(regex)
        gap = False
    if not parts or gap:
        msg = "a pattern needs at least one word and may not end with '...'"
        raise ValueError(msg)
    return re.compile(r"(?<!\w)" + "".join(parts) + r"(?!\w)")


@dataclass(frozen=True)
class OffencePattern:
    """One pattern of a category: its text as written, its language and its expression."""

    text: str
    language: str
    regex: re.Pattern[str] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Category:
    """A category of offences: the flag it raises and its patterns."""

    id: str
    title: str
    flag: ScreeningFlag
    patterns: tuple[OffencePattern, ...]

    def first_match(self, folded: str) -> OffencePattern | None:
        """The first pattern found in ``folded`` (space-joined :func:`words`), or ``None``."""
        return next((p for p in self.patterns if p.regex.search(folded)), None)


@dataclass(frozen=True)
class OffenceList:
    """The categories of an offence list, in file order, and where it was read from."""

    source: str
    categories: tuple[Category, ...]

    @cached_property
    def _first_words(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """The first word of every pattern (whole words, and stems of ``word*``): a text in
        which none occurs matches no pattern, so the expressions are not run on it."""
        whole: set[str] = set()
        stems: list[str] = []
        for category in self.categories:
            for pattern in category.patterns:
                token = pattern.text.split()[0]
                first = words(token.rstrip("*"))[0]
                if token.endswith("*") and len(words(token.rstrip("*"))) == 1:
                    stems.append(first)
                else:
                    whole.add(first)
        return frozenset(whole), tuple(stems)

    def matches(self, text: str) -> list[tuple[Category, OffencePattern]]:
        """Each category with a pattern found in ``text`` (its first such pattern)."""
        tokens = words(text)
        whole, stems = self._first_words
        if not any(t in whole or t.startswith(stems) for t in tokens):
            return []  # the usual text: no pattern can start anywhere in it
        folded = " ".join(tokens)
        found = []
        for category in self.categories:
            pattern = category.first_match(folded)
            if pattern is not None:
                found.append((category, pattern))
        return found


def _category(cid: str, table: Any, where: str) -> Category:
    if not isinstance(table, dict):
        msg = f"{where}: category {cid!r}: expected a table"
        raise ConfigError(msg)
    if not _ID.match(cid):
        msg = f"{where}: category {cid!r}: an id is lower-case letters, digits and hyphens"
        raise ConfigError(msg)
    title, flag = table.get("title"), table.get("flag")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        msg = f"{where}: category {cid!r}: needs a title (a short text)"
        raise ConfigError(msg)
    if flag not in {f.value for f in OFFENCE_FLAGS}:
        allowed = ", ".join(sorted(OFFENCE_FLAGS))
        msg = f"{where}: category {cid!r}: flag must be one of {allowed}, got {flag!r}"
        raise ConfigError(msg)
    patterns: list[OffencePattern] = []
    for key, value in table.items():
        if key in ("title", "flag"):
            continue
        if not _LANGUAGE.match(key):
            msg = f"{where}: category {cid!r}: {key!r} is neither title, flag nor a language code"
            raise ConfigError(msg)
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            msg = f"{where}: category {cid!r}: {key} must be a list of patterns"
            raise ConfigError(msg)
        for text in value:
            try:
                regex = compile_pattern(text)
            except ValueError as exc:
                msg = f"{where}: category {cid!r}: pattern {text!r}: {exc}"
                raise ConfigError(msg) from None
            patterns.append(OffencePattern(" ".join(text.split()), key, regex))
    if not patterns:
        msg = f"{where}: category {cid!r}: has no patterns"
        raise ConfigError(msg)
    return Category(cid, " ".join(title.split()), ScreeningFlag(flag), tuple(patterns))


def parse_offences(text: str, where: str) -> OffenceList:
    """An offence list from its TOML ``text`` (``where`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{where}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    unknown = sorted(set(data) - {"format", "category"})
    if unknown:
        msg = f"{where}: unknown key {unknown[0]!r} (expected format and [category.<id>] tables)"
        raise ConfigError(msg)
    if data.get("format", OFFENCES_FORMAT) != OFFENCES_FORMAT:
        msg = f"{where}: format must be {OFFENCES_FORMAT!r}, got {data['format']!r}"
        raise ConfigError(msg)
    tables = data.get("category")
    if not isinstance(tables, dict) or not tables:
        msg = f"{where}: no [category.<id>] table"
        raise ConfigError(msg)
    return OffenceList(where, tuple(_category(cid, t, where) for cid, t in tables.items()))


@cache
def _bundled() -> OffenceList:
    return parse_offences(BUNDLED_OFFENCES.read_text(encoding="utf-8"), str(BUNDLED_OFFENCES))


def load_offences(path: Path | None = None) -> OffenceList:
    """The offence list in ``path`` (the bundled list when ``None`` or the bundled file)."""
    if path is None or path == BUNDLED_OFFENCES:
        return _bundled()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{path}: offence list not found"
        raise ConfigError(msg) from None
    except UnicodeDecodeError:
        msg = f"{path}: offence list is not UTF-8 text"
        raise ConfigError(msg) from None
    return parse_offences(text, str(path))
