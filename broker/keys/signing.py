"""Signing-key rotation on a running node: which signing key a node signs with, how the next one
is made (``nbx keys rotate``) and when the old one is destroyed (docs/security/key-rotation.md).

**The rule.** A node signs with the newest signing key (latest ``not_before``) that its verified
directory lists as usable now (valid, not revoked) among the private signing keys it holds, once
it has seen that key listed for ``switch_after`` (``[keys] switch_after_s``); a key seen for less
than that is used only when no settled one is usable. Until the anchor publishes the new key the
node keeps signing with the old one; and because every node following the same directory gets a
new serial at about the same time, the wait means a package signed with the new key does not
reach a node whose directory does not list it yet (it would be quarantined ``key-unknown``).
Record keys follow the signing key (:mod:`broker.transport.record_keys` says why that is fine).

**Files.** ``nbx keys rotate CC --dir D`` (:func:`rotate`) writes the next signing key to
``D/CC.signing.next.key`` (0600, encrypted with the passphrase when one is set), starts the next
encryption epoch of the same suite (:func:`broker.keys.epochs.next_epoch`) and writes
``D/CC.next.public.json`` with both public keys: the input to ``nbx directory rotate CC --keys``.
A running node picks both files up without a restart (:class:`broker.node.keycare.KeyCare`).

**Destruction.** Once the directory has revoked the old signing key, or its ``not_after`` has
passed, and the next key is listed, :func:`broker.keys.epochs.retire_signing` (part of
:func:`broker.keys.epochs.shred`: the daemon's key care and ``nbx keys shred``) moves the next
key into ``CC.signing.key`` (the old key's bytes are overwritten,
:func:`broker.keys.epochs.replace_private`) and removes ``CC.signing.next.key``.
A signature never needs the private key again: nothing is lost by destroying it at once.

**History.** ``D/CC.signing-history.json`` lists the public half of every signing key the node
has held (written by :func:`rotate`), so what the node signed long ago (its audit checkpoints)
still verifies after the directory dropped the key: ``nbx audit verify`` reads it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.errors import KeyDirectoryError
from broker.keys import epochs, files
from broker.keys.bureau import BureauKeys
from broker.keys.directory import KeyRecord
from broker.keys.epochs import retire_signing, usable_signing
from broker.keys.key_ids import key_id, raw_public
from broker.wire.canonical import b64u, b64u_decode

#: default ``[keys] switch_after_s``: how long a node waits after it first sees its new signing
#: key listed before it signs with it (every other node's followed directory has it by then)
DEFAULT_SWITCH_AFTER = timedelta(seconds=60)


@dataclass
class SigningChoice:
    """Applies the rule (module docstring) and remembers when each key was first seen listed."""

    switch_after: timedelta = DEFAULT_SWITCH_AFTER
    #: key id -> the time this node first saw it listed as usable
    seen: dict[str, datetime] = field(default_factory=dict)
    #: the key id chosen last (``None`` before the first choice: then the key of
    #: ``CC.signing.key``); it counts as settled, so a node never waits to keep its key
    current: str | None = None

    def select(
        self, keys: BureauKeys, records: Iterable[KeyRecord] | None, now: datetime
    ) -> BureauKeys:
        """``keys`` signing with the key the rule picks at ``now`` from the directory's
        ``records`` of the bureau (``None``, or none of the held keys usable: ``keys`` as given,
        which sign with ``CC.signing.key``). ``keys`` as loaded from the files."""
        if not keys.spare_signing:  # no rotation under way (every message asks: keep it cheap)
            self.current = keys.signing_key_id
            return keys
        held = keys.signing_keys()
        usable = [r for r in usable_signing(records, now) if r.kid in held]
        for record in usable:
            self.seen.setdefault(record.kid, now)
        if not usable:
            chosen = keys
        else:
            current = self.current if self.current in held else keys.signing_key_id
            settled = [
                r for r in usable if r.kid == current or now - self.seen[r.kid] >= self.switch_after
            ]
            newest = max(settled or usable, key=lambda r: (r.not_before, r.kid))
            chosen = keys.signing_with(newest.kid)
        self.current = chosen.signing_key_id
        return chosen


def select_signing(
    keys: BureauKeys,
    records: Iterable[KeyRecord] | None,
    now: datetime,
    switch_after: timedelta = timedelta(0),
) -> BureauKeys:
    """The rule in one call, for a node that saw ``records`` for the first time at ``now``
    (``switch_after`` 0: the newest usable held key at once)."""
    return SigningChoice(switch_after).select(keys, records, now)


# --- nbx keys rotate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    """What :func:`rotate` did."""

    old_signing_kid: str
    new_signing_kid: str
    signing_path: Path
    encryption: epochs.NextEpoch
    public: Path


HISTORY_FORMAT = "nbx-signing-history/1"


def history_path(folder: Path, bureau: str) -> Path:
    """Path of a bureau's signing-key history in ``folder``."""
    return folder / f"{bureau}.signing-history.json"


def _entry(key: ed25519.Ed25519PrivateKey) -> dict[str, str]:
    raw = raw_public(key.public_key())
    return {"use": "sign", "alg": "Ed25519", "kid": key_id(raw), "public": b64u(raw)}


def read_history(folder: Path, bureau: str) -> dict[str, ed25519.Ed25519PublicKey]:
    """The public signing keys the bureau's node has held, by key id (none without a history
    file); :class:`KeyDirectoryError` naming the file if it is not one. A key whose id does not
    match its public key is refused, so the file cannot vouch for a key under another id."""
    path = history_path(folder, bureau)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        msg = f"{path}: not an NBX signing-key history"
        raise KeyDirectoryError(msg) from None
    try:
        if data["format"] != HISTORY_FORMAT or data["bureau"] != bureau:
            raise ValueError
        keys: dict[str, ed25519.Ed25519PublicKey] = {}
        for entry in data["keys"]:
            raw = b64u_decode(entry["public"])
            if entry["kid"] != key_id(raw):
                raise ValueError
            keys[entry["kid"]] = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except (KeyError, TypeError, ValueError):
        msg = f"{path}: not an NBX signing-key history of {bureau}"
        raise KeyDirectoryError(msg) from None
    return keys


def _write_history(
    folder: Path, bureau: str, keys: BureauKeys, new: ed25519.Ed25519PrivateKey
) -> None:
    """Add ``new`` (and the keys held now, the first time) to the history, atomically."""
    path = history_path(folder, bureau)
    entries = {e["kid"]: e for e in (_entry(k) for k in keys.signing_keys().values())}
    if path.exists():
        known = json.loads(path.read_bytes())["keys"]
        entries = {e["kid"]: e for e in known} | entries
    entries[_entry(new)["kid"]] = _entry(new)
    body = {"format": HISTORY_FORMAT, "bureau": bureau, "keys": list(entries.values())}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(body, indent=2) + "\n")
        Path(tmp).chmod(0o644)  # public keys only
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rotate(
    folder: Path, bureau: str, *, now: datetime, passphrase: bytes | None = None
) -> Rotation:
    """Make the bureau's next signing key and next encryption epoch (same suite) and write the
    public document for ``nbx directory rotate`` (``CC.next.public.json``, both keys).

    Refused (nothing written) while a rotation is under way: ``CC.signing.next.key`` exists
    until the old signing key was destroyed (:func:`retire_signing`).
    """
    following = files.next_signing_path(folder, bureau)
    if following.exists():
        msg = (
            f"{following}: already exists: a signing-key rotation is under way (the anchor "
            "publishes the new key, then revokes the old one; nbx keys shred removes it)"
        )
        raise KeyDirectoryError(msg)
    keys = epochs.load_keys(folder, bureau, passphrase)  # readable with this passphrase
    read_history(folder, bureau)  # a damaged history refuses before anything is written
    new = ed25519.Ed25519PrivateKey.generate()
    new_kid = key_id(raw_public(new.public_key()))
    _write_history(folder, bureau, keys, new)
    files.write_next_signing_key(following, new, passphrase)
    step = epochs.next_epoch(folder, bureau, now=now, passphrase=passphrase)
    encryption = json.loads(step.public.read_text())["keys"]
    document = {"bureau": bureau, "keys": [_entry(new), *encryption]}
    step.public.write_text(json.dumps(document, indent=2) + "\n")
    return Rotation(keys.signing_key_id, new_kid, following, step, step.public)


__all__ = [
    "DEFAULT_SWITCH_AFTER",
    "HISTORY_FORMAT",
    "Rotation",
    "SigningChoice",
    "history_path",
    "read_history",
    "retire_signing",
    "rotate",
    "select_signing",
    "usable_signing",
]
