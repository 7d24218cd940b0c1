"""The protected-persons list: keyed hashes of persons a bureau protects (recognised refugees),
never their names.

Each entry is HMAC-SHA-256, under a secret of the bureau, of the normalised
``family name|given names|date of birth`` (:func:`normalised_identity`: :func:`~.text.fold`,
punctuation and whitespace collapsed to one space, given names sorted so their order does not
matter). Without the secret nobody can test a guessed name against the list; with it, a notice's
subject is looked up in constant work.

The file (JSON, written 0600 by replacing it atomically) holds the format, a check value that
tells a wrong secret from a right one, and the sorted hashes::

    {"format": "nbx-protected-persons/1", "check": "<hex>", "hashes": ["<hex>", ...]}
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from broker.errors import ConfigError
from broker.screening.text import words

__all__ = [
    "MIN_SECRET_BYTES",
    "PROTECTED_FORMAT",
    "ProtectedPersons",
    "count_protected",
    "load_protected",
    "normalised_identity",
    "save_protected",
    "secret_from_env",
]

PROTECTED_FORMAT = "nbx-protected-persons/1"
#: the shortest secret accepted: a short one would let a holder of the file guess names
MIN_SECRET_BYTES = 16
_ENTRY_CONTEXT = b"nbx/protected-person/v1\0"
_CHECK_CONTEXT = b"nbx/protected-persons/check/v1\0"
_HEX = re.compile(r"^[0-9a-f]{64}$")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def normalised_identity(family_name: str, given_names: str, date_of_birth: str) -> str:
    """``family|given|dob``: names folded to words (given names sorted), the date stripped."""
    family = " ".join(words(family_name))
    given = " ".join(sorted(words(given_names)))
    return f"{family}|{given}|{date_of_birth.strip()}"


def secret_from_env(name: str) -> bytes:
    """The bureau's screening secret from the environment variable ``name``."""
    value = os.environ.get(name, "")
    if not value:
        msg = f"the protected-persons secret is not set: put it in ${name}"
        raise ConfigError(msg)
    secret = value.encode("utf-8")
    if len(secret) < MIN_SECRET_BYTES:
        msg = f"the protected-persons secret in ${name} is shorter than {MIN_SECRET_BYTES} bytes"
        raise ConfigError(msg)
    return secret


@dataclass(frozen=True)
class ProtectedPersons:
    """The keyed hashes of a protected-persons list, with the key that makes them."""

    key: bytes = field(repr=False)
    hashes: frozenset[str] = frozenset()

    def __len__(self) -> int:
        """How many persons are on the list."""
        return len(self.hashes)

    def digest(self, family_name: str, given_names: str, date_of_birth: str) -> str:
        """The keyed hash (hex) of one person."""
        identity = normalised_identity(family_name, given_names, date_of_birth)
        return hmac.new(self.key, _ENTRY_CONTEXT + identity.encode(), hashlib.sha256).hexdigest()

    def contains(self, family_name: str, given_names: str, date_of_birth: str) -> bool:
        """Whether the person is on the list (an empty family name or date never is)."""
        if not words(family_name) or not date_of_birth.strip():
            return False
        return self.digest(family_name, given_names, date_of_birth) in self.hashes

    def added(self, family_name: str, given_names: str, date_of_birth: str) -> ProtectedPersons:
        """The list with one more person (the same list if already on it).

        Raises :class:`~broker.errors.ConfigError` for a family name without letters or a date
        that is not ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.
        """
        if not words(family_name):
            msg = "the family name has no letters"
            raise ConfigError(msg)
        if not _DATE.match(date_of_birth.strip()):
            msg = "the date of birth must be YYYY-MM-DD (or YYYY-MM, YYYY)"
            raise ConfigError(msg)
        entry = self.digest(family_name, given_names, date_of_birth)
        return ProtectedPersons(self.key, self.hashes | {entry})

    def check(self) -> str:
        """The value stored beside the hashes that shows which key made them."""
        return hmac.new(self.key, _CHECK_CONTEXT, hashlib.sha256).hexdigest()


def _read(path: Path) -> tuple[str, frozenset[str]]:
    """The check value and hashes of a list file; a missing file is an empty list."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return "", frozenset()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and data.get("format") == PROTECTED_FORMAT:
        check, hashes = data.get("check"), data.get("hashes")
        if (
            isinstance(check, str)
            and isinstance(hashes, list)
            and all(isinstance(h, str) and _HEX.match(h) for h in hashes)
        ):
            return check, frozenset(hashes)
    msg = f"{path}: not a protected-persons list ({PROTECTED_FORMAT})"
    raise ConfigError(msg)


def count_protected(path: Path) -> int:
    """How many persons the list in ``path`` holds (0 if there is no file); needs no secret."""
    return len(_read(path)[1])


def load_protected(path: Path, secret: bytes, *, secret_name: str) -> ProtectedPersons:
    """The list in ``path`` (empty if there is no file yet), checked against ``secret``.

    A secret other than the one the file was made with is one clear error naming the variable
    ``secret_name`` it came from (never the secret).
    """
    check, hashes = _read(path)
    persons = ProtectedPersons(secret, hashes)
    if check and not hmac.compare_digest(check, persons.check()):
        msg = (
            f"{path}: the secret in ${secret_name} is not the one this protected-persons "
            "list was made with"
        )
        raise ConfigError(msg)
    return persons


def save_protected(path: Path, persons: ProtectedPersons) -> None:
    """Write the list to ``path``: a 0600 temporary file beside it, synced, then renamed over it."""
    body = {"format": PROTECTED_FORMAT, "check": persons.check(), "hashes": sorted(persons.hashes)}
    data = (json.dumps(body, indent=1) + "\n").encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # a stale file of that name may have had wider modes
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename is durable once the folder is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
