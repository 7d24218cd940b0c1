"""Pieces the command modules share: the bureau id argument check and the atomic write of a
public file (a signed directory)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from broker.ids import is_bureau_id


def bureau_param(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """Click callback: ``value`` must be a bureau id (``FR``, ``XI``), else a usage error."""
    if not is_bureau_id(value):
        msg = f"{value!r} is not a bureau id (two upper-case letters, e.g. FR or XI)"
        raise click.BadParameter(msg)
    return value


def write_atomic(path: Path, data: bytes) -> None:
    """Write the public file ``path`` (mode 0644) atomically: a temporary file in the same
    folder, then a rename, so a reader (a node following a directory file) never sees half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path(), prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
