"""The daemon's care for its encryption keys (issue 18, point 5): at each housekeeping round it
re-reads the key files (a key from ``nbx keys next-epoch`` opens packages without a restart),
destroys the private keys of epochs whose window has passed (:func:`broker.keys.epochs.shred`),
and warns once per key when the rotation is overdue.

Log events (key ids only): ``keys.destroyed`` (info), ``keys.rotation-overdue`` (warning),
``keys.care-failed`` (warning: the key files could not be read or written; the daemon keeps the
keys it has and tries again at the next round).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from broker.errors import KeyDirectoryError
from broker.keys.bureau import BureauKeys
from broker.keys.directory import Directory, KeyRecord
from broker.keys.epochs import (
    epoch_status,
    epochs_path,
    load_keys,
    read_epochs,
    rotation_due,
    shred,
)
from broker.keys.epochs import shred_window as window_for
from broker.keys.files import bureau_paths, hybrid_path
from broker.logging import get_logger
from broker.node.config import NodeConfig
from broker.wire.suites import RecipientPrivateKey


def own_records(lookup: object, bureau: str) -> tuple[KeyRecord, ...] | None:
    """The directory's key records of ``bureau`` from a key lookup (a followed directory's
    current one, or a :class:`Directory`); ``None`` if there is none or it does not list it."""
    current = getattr(lookup, "current", lookup)
    if not isinstance(current, Directory):
        return None
    try:
        return current.bureau(bureau).keys
    except KeyDirectoryError:
        return None


@dataclass
class KeyCare:
    """Where a node's keys are and the rules for their epochs (``[shredding]``)."""

    folder: Path
    bureau: str
    passphrase_env: str
    window: timedelta
    rotate_every: timedelta
    #: destroy expired keys (``[shredding] auto``); when off, only ``nbx keys shred`` does
    auto: bool = True
    _warned: set[str] = field(default_factory=set)
    #: the keys last loaded and the (inode, size, mtime) of the key files they came from
    _loaded: tuple[tuple[tuple[int, int, int], ...], BureauKeys] | None = None

    @classmethod
    def from_config(cls, config: NodeConfig) -> KeyCare:
        """The key care of a configured node."""
        s = config.shredding
        return cls(
            folder=config.keys.dir,
            bureau=config.bureau,
            passphrase_env=config.keys.passphrase_env,
            window=shred_window(config),
            rotate_every=timedelta(days=s.rotate_every_days),
            auto=s.auto,
        )

    def passphrase(self) -> bytes | None:
        """The key passphrase from the configured variable (``None`` if unset)."""
        secret = os.environ.get(self.passphrase_env)
        return secret.encode() if secret else None

    def _files(self) -> tuple[tuple[int, int, int], ...]:
        """What identifies the current content of the key files (a replaced file changes it)."""
        _, encryption, _ = bureau_paths(self.folder, self.bureau)
        names = (
            encryption,
            hybrid_path(self.folder, self.bureau),
            epochs_path(self.folder, self.bureau),
        )
        found = []
        for path in names:
            try:
                st = path.stat()
            except FileNotFoundError:
                found.append((0, 0, 0))
            else:
                found.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(found)

    def _keys(self) -> BureauKeys:
        """The key set, read again only when a key file changed (a round costs a few stat calls)."""
        files = self._files()
        if self._loaded is None or self._loaded[0] != files:
            self._loaded = (files, load_keys(self.folder, self.bureau, self.passphrase()))
        return self._loaded[1]

    def run(self, lookup: object, now: datetime) -> dict[str, RecipientPrivateKey] | None:
        """One round at ``now``: destroy what is due, warn about an overdue rotation, and return
        the private keys the node holds afterwards (``None`` if the key files could not be read:
        the caller keeps what it has)."""
        log = get_logger()
        records = own_records(lookup, self.bureau)
        try:
            keys = self._keys()
            if self.auto:
                for kid in shred(self.folder, keys, records, now=now, window=self.window):
                    log.info("keys.destroyed", bureau=self.bureau, key_id=kid)
                keys = self._keys()
            epochs = read_epochs(self.folder, self.bureau)
        except (KeyDirectoryError, OSError) as exc:
            log.warning("keys.care-failed", bureau=self.bureau, error_type=type(exc).__name__)
            return None
        rows = epoch_status(keys, epochs, records, now=now, window=self.window)
        due = rotation_due(rows, self.rotate_every)
        if due is not None and now >= due:
            current = [r for r in rows if r.state == "current" and r.created is not None]
            newest = max(current, key=lambda r: (r.created or now, r.kid)).kid
            if newest not in self._warned:
                self._warned.add(newest)
                log.warning(
                    "keys.rotation-overdue", bureau=self.bureau, key_id=newest, due=due.isoformat()
                )
        return keys.decryption_keys()


def shred_window(config: NodeConfig) -> timedelta:
    """The destruction window of a configured node (:func:`broker.keys.epochs.shred_window` of its
    topic retention and grace)."""
    s = config.shredding
    retention_ms = round(s.topic_retention_days * 86_400_000)  # as kafka_settings() sets it
    return window_for(retention_ms, timedelta(days=s.grace_days))
