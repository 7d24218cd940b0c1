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
"""

from __future__ import annotations

import json
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
from broker.wire.canonical import b64u

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
    new = ed25519.Ed25519PrivateKey.generate()
    new_kid = key_id(raw_public(new.public_key()))
    files.write_next_signing_key(following, new, passphrase)
    step = epochs.next_epoch(folder, bureau, now=now, passphrase=passphrase)
    encryption = json.loads(step.public.read_text())["keys"]
    public = b64u(raw_public(new.public_key()))
    sign = {"use": "sign", "alg": "Ed25519", "kid": new_kid, "public": public}
    document = {"bureau": bureau, "keys": [sign, *encryption]}
    step.public.write_text(json.dumps(document, indent=2) + "\n")
    return Rotation(keys.signing_key_id, new_kid, following, step, step.public)


__all__ = [
    "DEFAULT_SWITCH_AFTER",
    "Rotation",
    "SigningChoice",
    "retire_signing",
    "rotate",
    "select_signing",
    "usable_signing",
]
