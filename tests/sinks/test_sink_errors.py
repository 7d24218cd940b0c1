"""Sinks say why they failed: every SQLite or OS error from what the daemon calls becomes a
SinkError carrying one of the reasons read-only / disk-full / locked / storage-error."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from broker.errors import SinkError
from broker.sinks.base import storage_errors, storage_reason
from broker.sinks.sqlite import SqliteSink


def _coded(message: str, code: int) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code  # as SQLite's own errors carry it
    return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_coded("attempt to write a readonly database", 8), "read-only"),
        (_coded("access permission denied", 3), "read-only"),
        (_coded("database or disk is full", 13), "disk-full"),
        (_coded("database is locked", 5), "locked"),
        (_coded("database table is locked", 6), "locked"),
        (_coded("disk I/O error", 10 | (13 << 8)), "storage-error"),  # extended IOERR code
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.OperationalError("database or disk is full"), "disk-full"),
        (sqlite3.OperationalError("database is locked"), "locked"),
        (sqlite3.ProgrammingError("Cannot operate on a closed database."), "storage-error"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only"),
        (PermissionError(errno.EACCES, "Permission denied"), "read-only"),
        (OSError(errno.ENOSPC, "No space left on device", "/full/disk"), "disk-full"),
        (OSError(errno.EBUSY, "Device or resource busy"), "locked"),
        (OSError(errno.EIO, "Input/output error", "/read-only-looking/name"), "storage-error"),
    ],
)
def test_each_failure_has_its_reason(exc: sqlite3.Error | OSError, reason: str) -> None:
    """The SQLite result code or the errno decides; a code-less SQLite error is read by text."""
    assert storage_reason(exc) == reason

    @storage_errors
    def fails() -> None:
        raise exc

    with pytest.raises(SinkError) as raised:
        fails()
    assert raised.value.reason == reason
    assert raised.value.__cause__ is exc
    assert str(raised.value) == f"the store cannot be written ({reason})"


def test_other_errors_pass_through() -> None:
    """Only storage errors are mapped: a bug stays a bug (the daemon quarantines it)."""

    @storage_errors
    def bug() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        bug()


def test_a_real_sqlite_failure_is_a_sink_error(tmp_path: Path) -> None:
    """A store used after it was closed fails with SinkError, not sqlite3's own error."""
    sink = SqliteSink(tmp_path / "s.sqlite")
    sink.close()
    with pytest.raises(SinkError) as raised:
        sink.begin()
    assert raised.value.reason == "storage-error"
    with pytest.raises(SinkError):
        sink.seen("IT", "m1")
