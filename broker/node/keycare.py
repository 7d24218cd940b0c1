"""A node's care for its keys (issue 18, point 5; issue 21: signing keys): at each housekeeping
round it re-reads the key files (a key from ``nbx keys next-epoch`` opens packages without a
restart), destroys the private keys of epochs whose window has passed and the old signing key of
a finished rotation (:func:`broker.keys.epochs.shred`), and warns once per key when the rotation
is overdue.

Between rounds :meth:`KeyCare.current` gives the keys to use now: the key files are checked
(a few ``stat`` calls) and read again when one changed, and the signing key is the one the rule
of :mod:`broker.keys.signing` picks from the node's followed directory. The publisher (every
message) and the daemon (every poll: receipts, audit checkpoints, the keys that open packages)
ask it, so ``nbx keys rotate`` and a new directory take effect without a restart.

Log events (key ids only): ``keys.destroyed`` (info), ``keys.rotation-overdue`` (warning),
``keys.care-failed`` (warning: the key files could not be read or written; the node keeps the
keys it has and tries again later), ``keys.signing-switched`` (info: the node signs with another
key from now on).
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
from broker.keys.files import bureau_paths, hybrid_path, next_signing_path
from broker.keys.signing import SigningChoice
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
    #: which signing key to use (``[keys] switch_after_s``; :mod:`broker.keys.signing`)
    choice: SigningChoice = field(default_factory=SigningChoice)
    #: the key id signed with last (for ``keys.signing-switched``)
    _signing_kid: str | None = None
    _failing: bool = False
    #: how many times the key files were read (a change tells the daemon to take up new keys)
    loads: int = 0

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
            choice=SigningChoice(timedelta(seconds=config.keys.switch_after_s)),
        )

    def passphrase(self) -> bytes | None:
        """The key passphrase from the configured variable (``None`` if unset)."""
        secret = os.environ.get(self.passphrase_env)
        return secret.encode() if secret else None

    def _files(self) -> tuple[tuple[int, int, int], ...]:
        """What identifies the current content of the key files (a replaced file changes it)."""
        signing, encryption, _ = bureau_paths(self.folder, self.bureau)
        names = (
            signing,
            next_signing_path(self.folder, self.bureau),
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
            self.loads += 1
        return self._loaded[1]

    def current(self, lookup: object, now: datetime) -> BureauKeys | None:
        """The keys to use at ``now``: read again if a key file changed, signing with the key the
        rule picks from ``lookup``'s records of this bureau (:mod:`broker.keys.signing`).
        ``None`` when the key files cannot be read (logged once; the caller keeps its keys)."""
        try:
            keys = self._keys()
        except (KeyDirectoryError, OSError) as exc:
            if not self._failing:
                self._failing = True
                get_logger().warning(
                    "keys.care-failed", bureau=self.bureau, error_type=type(exc).__name__
                )
            return None
        self._failing = False
        chosen = self.choice.select(keys, own_records(lookup, self.bureau), now)
        if chosen.signing_key_id != self._signing_kid:
            if self._signing_kid is not None:
                get_logger().info(
                    "keys.signing-switched",
                    bureau=self.bureau,
                    key_id=chosen.signing_key_id,
                    old_key_id=self._signing_kid,
                )
            self._signing_kid = chosen.signing_key_id
        return chosen

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
