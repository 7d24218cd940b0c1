"""Store files hold decrypted personal data: they are created 0600 and refused when readable by
anyone but their owner, as private keys are (:mod:`broker.keys.files`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from broker.errors import ConfigError

#: what SQLite adds beside a database in WAL mode (it creates them with the database's mode)
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def check_private(path: Path) -> None:
    """Raise :class:`ConfigError` if ``path`` exists and group or others may read or write it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        msg = (
            f"{path}: the store is readable by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"it holds decrypted personal data: chmod 600 {path}"
        )
        raise ConfigError(msg)


def create_private(path: Path, companions: tuple[str, ...] = ()) -> None:
    """Make sure ``path`` exists with mode 0600 (its folder 0700 if created here), refusing an
    existing file or companion (``path`` + suffix) that group or others may read."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for suffix in ("", *companions):
        check_private(path.with_name(path.name + suffix))
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    os.close(fd)


def open_private(path: Path, mode: str) -> int:
    """A new file descriptor of ``path`` created 0600 for writing (``"w"`` truncates, ``"a"``
    appends)."""
    flags = os.O_CREAT | os.O_WRONLY | (os.O_TRUNC if mode == "w" else os.O_APPEND)
    return os.open(path, flags, 0o600)
