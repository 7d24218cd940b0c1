"""Text folding shared by the offence patterns and the protected-persons hashes.

:func:`fold` makes two spellings of one word equal: compatibility decomposition (NFKD), accents
and other combining marks removed, a few letters that do not decompose spelt in Latin (``ø`` as
``o``, ``ł`` as ``l``, ``æ`` as ``ae``...), case folded (``ß`` as ``ss``). :func:`words` then
keeps the words only: punctuation, hyphens, apostrophes and runs of whitespace become one space.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "words"]

#: letters NFKD leaves whole, spelt as a reader of Latin script would type them
_LATIN = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ı": "i",
    }
)
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """``text`` decomposed (NFKD), without combining marks, case folded."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LATIN))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The words of ``text`` after :func:`fold` (letters and digits; everything else splits)."""
    return _WORD.findall(fold(text))
