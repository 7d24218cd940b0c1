"""Encryption key epochs: rotation on a schedule, and crypto-shredding of old private keys.

Every package on an inbox (and every copy of it: quarantine, holding topic, a backup of the
topic) stays decryptable as long as the private key it was sealed to exists. NBX bounds that
(docs/safeguards.md, "Erasure on the broker: bounded retention and crypto-shredding"):

* Each encryption key is an **epoch**: its key id, its suite, when it became valid in the
  directory (``created``: the key's ``not_before``) and when it was **retired**: the first moment
  senders stopped encrypting to it, which is the earliest of its successor's ``not_before`` (the
  newest valid encryption key is what senders encrypt to), its ``not_after`` and its revocation.
  The directory decides both, so a key the anchor has not yet superseded is never retired, however
  long ago the node generated its successor.
* A record sealed to a key leaves the broker's log at most one *record lifetime* after it was
  appended (``retention.ms`` plus one segment age:
  :func:`broker.transport.admin.record_lifetime_ms`).
  A package can pass through three bounded topics one after the other (a holding topic, then the
  inbox when the reviewer forwards it, then the quarantine if it fails a check there), so the last
  copy sealed to a key is gone at most ``3 x lifetime`` after the key was retired; a **grace**
  (default 2 days) covers senders whose directory lags, the broker's retention check and clocks.
  That is the :func:`shred_window`: a retired epoch's private key is destroyed
  ``retired + shred_window`` (``destroy_after``).
* **Destroyed** means removed from the key files: the file is rewritten without it (a new 0600
  file, fsync, rename over the old one, fsync of the folder) and the old file's bytes are
  overwritten before its inode is released. The epoch stays listed (key id, suite, when it was
  destroyed), so ``nbx keys status`` shows it and an old record addressed to it is rejected as
  ``decrypt`` (``unknown-recipient-kid``), exactly as a package for a key the node never had.
  Overwriting a file is best effort on copy-on-write or flash storage; keep the key folder on an
  encrypted volume and its backups no longer than the window (docs/safeguards.md).

Files in the keys folder (:mod:`broker.keys.files` describes the others)::

    DIR/<CC>.encryption.key / <CC>.hybrid.key   the current encryption key(s), as before
    DIR/<CC>.epochs.json     (0600) the retired encryption keys (PKCS#8 PEM, encrypted with the
                             passphrase when one is set) and the record of the destroyed ones
    DIR/<CC>.next.public.json  the public half of the newest key, for ``nbx directory add-key``

:func:`next_epoch` (``nbx keys next-epoch``) starts a new epoch on the node itself: it generates
the next key pair of the same suite, moves the current private key into the epochs file and writes
the public document the anchor adds with ``nbx directory add-key``; until the anchor publishes it,
senders keep encrypting to the old key, which the node still holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from broker.errors import KeyDirectoryError
from broker.keys import files
from broker.keys.bureau import BureauKeys
from broker.keys.directory import KeyRecord
from broker.keys.hybrid import HybridEncryptionKey
from broker.keys.key_ids import key_id, raw_public
from broker.transport.admin import record_lifetime_ms
from broker.wire.canonical import b64u
from broker.wire.suites import RecipientPrivateKey

EPOCHS_FORMAT = "nbx-key-epochs/1"
X25519_ALG = "X25519"
HYBRID_ALG = "MLKEM768-X25519"
#: default ``[shredding] grace_days``
DEFAULT_GRACE = timedelta(days=2)
#: how many bounded topics one package can pass through in turn (holding, inbox, quarantine)
TOPICS_IN_TURN = 3

EpochState = Literal["current", "retired", "due", "destroyed"]


def shred_window(retention_ms: int, grace: timedelta = DEFAULT_GRACE) -> timedelta:
    """How long after its retirement an epoch's private key is destroyed: three record lifetimes
    (holding topic, inbox, quarantine in turn) plus ``grace``."""
    return TOPICS_IN_TURN * timedelta(milliseconds=record_lifetime_ms(retention_ms)) + grace


def epochs_path(folder: Path, bureau: str) -> Path:
    """Path of a bureau's epochs file in ``folder``."""
    return folder / f"{bureau}.epochs.json"


def next_public_path(folder: Path, bureau: str) -> Path:
    """Path of the public document :func:`next_epoch` writes for the anchor."""
    return folder / f"{bureau}.next.public.json"


@dataclass(frozen=True)
class Epoch:
    """One retired (or destroyed) encryption key as the epochs file holds it."""

    kid: str
    alg: str
    #: when the node moved it out of the current key file (the node's clock)
    archived: datetime
    destroyed: datetime | None = None
    #: PKCS#8 PEM (one block for X25519, two for the hybrid key); ``None`` once destroyed
    private: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The file's entry."""
        return {
            "kid": self.kid,
            "alg": self.alg,
            "archived": self.archived.isoformat(),
            "destroyed": None if self.destroyed is None else self.destroyed.isoformat(),
            "private": self.private,
        }

    @classmethod
    def from_json(cls, path: Path, entry: Any) -> Epoch:
        """An entry of the file; :class:`KeyDirectoryError` naming ``path`` if malformed."""
        try:
            destroyed = entry["destroyed"]
            epoch = cls(
                kid=str(entry["kid"]),
                alg=str(entry["alg"]),
                archived=datetime.fromisoformat(entry["archived"]),
                destroyed=None if destroyed is None else datetime.fromisoformat(destroyed),
                private=entry["private"],
            )
        except (KeyError, TypeError, ValueError):
            msg = f"{path}: not an NBX key epochs file (bad entry)"
            raise KeyDirectoryError(msg) from None
        if epoch.alg not in (X25519_ALG, HYBRID_ALG) or (
            (epoch.private is None) == (epoch.destroyed is None)
        ):
            msg = f"{path}: epoch {epoch.kid}: needs its private key or a destruction time"
            raise KeyDirectoryError(msg)
        return epoch


def read_epochs(folder: Path, bureau: str) -> list[Epoch]:
    """The epochs file's entries (none if there is no file); the file must be mode 0600."""
    path = epochs_path(folder, bureau)
    if not path.exists():
        return []
    try:
        data = json.loads(files.read_private(path))
        if data["format"] != EPOCHS_FORMAT or data["bureau"] != bureau:
            raise ValueError
        entries = data["epochs"]
    except (ValueError, KeyError, TypeError):
        msg = f"{path}: not an NBX key epochs file of {bureau}"
        raise KeyDirectoryError(msg) from None
    return [Epoch.from_json(path, entry) for entry in entries]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_private(path: Path, data: bytes | None) -> None:
    """Replace the private file ``path`` with ``data`` (``None``: remove it) atomically, keeping
    mode 0600, and overwrite the old file's bytes before its inode is released.

    The new content goes to a temporary 0600 file in the same folder (fsync), which is renamed
    over ``path`` (fsync of the folder); only then are the old bytes overwritten with zeros
    (fsync), so a crash leaves either the old or the new file, never none.
    """
    old_fd: int | None = None
    with contextlib.suppress(FileNotFoundError):
        old_fd = os.open(path, os.O_WRONLY)
    try:
        if data is None:
            path.unlink(missing_ok=True)
        else:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                Path(tmp).replace(path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        _fsync_dir(path.parent)
        if old_fd is not None:
            size = os.fstat(old_fd).st_size
            os.pwrite(old_fd, b"\0" * size, 0)
            os.fsync(old_fd)
    finally:
        if old_fd is not None:
            os.close(old_fd)


def write_epochs(folder: Path, bureau: str, epochs: Sequence[Epoch]) -> None:
    """Write the epochs file atomically (mode 0600; the old copy overwritten)."""
    body = {"format": EPOCHS_FORMAT, "bureau": bureau, "epochs": [e.to_json() for e in epochs]}
    replace_private(epochs_path(folder, bureau), (json.dumps(body, indent=2) + "\n").encode())


def _private_key(path: Path, epoch: Epoch, passphrase: bytes | None) -> RecipientPrivateKey:
    if epoch.private is None:
        msg = f"{path}: epoch {epoch.kid} was destroyed"
        raise KeyDirectoryError(msg)
    data = epoch.private.encode()
    if epoch.alg == X25519_ALG:
        key = files.parse_private(path, data, passphrase)
        if not isinstance(key, x25519.X25519PrivateKey):
            msg = f"{path}: epoch {epoch.kid} is not an X25519 key"
            raise KeyDirectoryError(msg)
        return key
    return files.parse_hybrid(path, data, passphrase).hpke_private_key()


def load_retired_keys(
    folder: Path, bureau: str, passphrase: bytes | None
) -> dict[str, RecipientPrivateKey]:
    """The private keys of the retired epochs not destroyed yet, by key id."""
    path = epochs_path(folder, bureau)
    return {
        e.kid: _private_key(path, e, passphrase)
        for e in read_epochs(folder, bureau)
        if e.private is not None
    }


def load_keys(folder: Path, bureau: str, passphrase: bytes | None = None) -> BureauKeys:
    """A bureau's keys as a node uses them: :func:`broker.keys.files.load_bureau_keys` plus the
    private keys of its retired epochs (so packages sealed to them still open until destroyed)."""
    keys = files.load_bureau_keys(folder, bureau, passphrase)
    retired = load_retired_keys(folder, bureau, passphrase)
    for kid in keys.current_encryption_kids():
        retired.pop(kid, None)  # moved back by hand, or a crash during next-epoch
    return replace(keys, retired=retired)


# --- epochs and their state --------------------------------------------------------------------


@dataclass(frozen=True)
class EpochStatus:
    """An epoch as ``nbx keys status`` shows it."""

    kid: str
    alg: str
    #: valid in the directory from (``not_before``); ``None`` if the directory does not list it
    created: datetime | None
    #: when senders stopped encrypting to it (``None``: still the key they use, or not listed)
    retired: datetime | None
    #: when its private key is (or was) due for destruction
    destroy_after: datetime | None
    destroyed: datetime | None
    state: EpochState

    def to_json(self) -> dict[str, str | None]:
        """A JSON row (times in ISO 8601)."""

        def iso(at: datetime | None) -> str | None:
            return None if at is None else at.isoformat()

        return {
            "kid": self.kid,
            "alg": self.alg,
            "created": iso(self.created),
            "retired": iso(self.retired),
            "destroy_after": iso(self.destroy_after),
            "destroyed": iso(self.destroyed),
            "state": self.state,
        }


def retired_at(kid: str, records: Iterable[KeyRecord]) -> datetime | None:
    """When senders stopped encrypting to key ``kid``, by the directory's ``records`` of its
    bureau: the earliest of a newer encryption key's ``not_before``, the key's ``not_after`` and
    its revocation; ``None`` while none of these exists, or if the directory does not list it."""
    listed = [r for r in records if r.use == "encrypt"]
    own = next((r for r in listed if r.kid == kid), None)
    if own is None:
        return None
    ends = [r.not_before for r in listed if r.kid != kid and r.not_before > own.not_before]
    if own.not_after is not None:
        ends.append(own.not_after)
    if own.revocation is not None:
        ends.append(own.revocation.at)
    return min(ends, default=None)


def _held(keys: BureauKeys, epochs: Sequence[Epoch]) -> list[tuple[str, str, datetime | None]]:
    """(kid, alg, destroyed) of every encryption key the node holds or held."""
    held: list[tuple[str, str, datetime | None]] = [
        (e.kid, e.alg, e.destroyed) for e in epochs if e.kid not in keys.current_encryption_kids()
    ]
    if keys.x25519_key is not None:
        held.append((keys.encryption_key_id, X25519_ALG, None))
    if keys.hybrid_key is not None:
        held.append((keys.hybrid_key.key_id, HYBRID_ALG, None))
    return held


def epoch_status(
    keys: BureauKeys,
    epochs: Sequence[Epoch],
    records: Iterable[KeyRecord] | None,
    *,
    now: datetime,
    window: timedelta,
) -> list[EpochStatus]:
    """Every epoch (current, retired, destroyed) at ``now``, oldest first; ``records`` are the
    directory's keys of the bureau (``None``: not listed, so nothing is retired)."""
    listed = list(records or ())
    by_kid = {r.kid: r for r in listed}
    rows: list[EpochStatus] = []
    for kid, alg, destroyed in _held(keys, epochs):
        record = by_kid.get(kid)
        retired = retired_at(kid, listed)
        if retired is not None and retired > now:
            retired_now: datetime | None = None
            destroy_after: datetime | None = retired + window
        else:
            retired_now = retired
            destroy_after = None if retired is None else retired + window
        state: EpochState
        if destroyed is not None:
            state = "destroyed"
        elif retired_now is None:
            state = "current"
        elif destroy_after is not None and now >= destroy_after:
            state = "due"
        else:
            state = "retired"
        rows.append(
            EpochStatus(
                kid,
                alg,
                None if record is None else record.not_before,
                retired,
                destroy_after,
                destroyed,
                state,
            )
        )
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(rows, key=lambda r: (r.created or far, r.kid))


def rotation_due(rows: Sequence[EpochStatus], every: timedelta) -> datetime | None:
    """When the next rotation is due: ``every`` after the newest listed epoch became valid
    (``None`` if the directory lists none of the node's keys)."""
    created = [r.created for r in rows if r.created is not None and r.state == "current"]
    return None if not created else max(created) + every


# --- destruction -------------------------------------------------------------------------------


def _current_file(folder: Path, bureau: str, alg: str) -> Path:
    _, encryption, _ = files.bureau_paths(folder, bureau)
    return encryption if alg == X25519_ALG else files.hybrid_path(folder, bureau)


def shred(
    folder: Path,
    keys: BureauKeys,
    records: Iterable[KeyRecord] | None,
    *,
    now: datetime,
    window: timedelta,
) -> list[str]:
    """Destroy every private encryption key whose epoch was retired at least ``window`` before
    ``now``; return their key ids (none: nothing was due, e.g. a second call).

    Retired epochs lose their private key in the epochs file (the epoch stays, marked destroyed);
    a current key file whose key the directory retired (the X25519 key after a move to the hybrid
    suite) is removed, as long as another encryption key remains. The old signing key of a
    finished signing-key rotation is destroyed too (:func:`retire_signing`, at once: a signature
    never needs the private key again).
    """
    records = None if records is None else list(records)  # read twice
    signing = retire_signing(folder, keys, records, now=now)
    return ([] if signing is None else [signing]) + _shred_epochs(
        folder, keys, records, now=now, window=window
    )


def _shred_epochs(
    folder: Path,
    keys: BureauKeys,
    records: Iterable[KeyRecord] | None,
    *,
    now: datetime,
    window: timedelta,
) -> list[str]:
    bureau = keys.bureau
    epochs = read_epochs(folder, bureau)
    rows = {r.kid: r for r in epoch_status(keys, epochs, records, now=now, window=window)}
    due = {kid for kid, row in rows.items() if row.state == "due"}
    if not due:
        return []
    destroyed: list[str] = []
    kept: list[Epoch] = []
    for epoch in epochs:
        if epoch.kid in due and epoch.private is not None:
            kept.append(replace(epoch, private=None, destroyed=now))
            destroyed.append(epoch.kid)
        else:
            kept.append(epoch)
    current = [(kid, alg) for kid, alg, _ in _held(keys, []) if kid in due and kid not in destroyed]
    remaining = len(keys.current_encryption_kids()) - len(current)
    removals: list[tuple[str, str]] = current if remaining >= 1 else []
    for kid, alg in removals:
        kept.append(Epoch(kid, alg, now, destroyed=now))
        destroyed.append(kid)
    if destroyed:
        write_epochs(folder, bureau, kept)  # first the record, then the current file goes
        for _, alg in removals:
            replace_private(_current_file(folder, bureau, alg), None)
    return destroyed


# --- the old signing key of a finished rotation (broker.keys.signing) --------------------------


def usable_signing(records: Iterable[KeyRecord] | None, at: datetime) -> list[KeyRecord]:
    """The signing-key records usable at ``at`` (valid and not revoked)."""
    return [r for r in records or () if r.use == "sign" and r.valid_at(at) and not r.revoked_at(at)]


def retire_signing(
    folder: Path, keys: BureauKeys, records: Iterable[KeyRecord] | None, *, now: datetime
) -> str | None:
    """Destroy the old signing key of a finished rotation (:mod:`broker.keys.signing`).

    ``keys`` as loaded from the files (:func:`load_keys`: ``CC.signing.key`` signs, the next key
    is the spare). When ``CC.signing.next.key`` exists, the directory's ``records`` list it as
    usable at ``now`` and no longer list the old key as usable (revoked, or past its
    ``not_after``), the next key replaces the old one in ``CC.signing.key`` (atomically, the old
    bytes overwritten) and ``CC.signing.next.key`` is removed. Returns the destroyed key id, or
    ``None`` when nothing was due (also when the directory does not list the old key at all).
    """
    following = files.next_signing_path(folder, keys.bureau)
    if not following.exists():
        return None
    listed = list(records or ())
    usable = {r.kid for r in usable_signing(listed, now)}
    old_kid = keys.signing_key_id
    next_kid = next((kid for kid in keys.signing_keys() if kid != old_kid), None)
    old_listed = any(r.kid == old_kid and r.use == "sign" for r in listed)
    if next_kid is None or next_kid not in usable or not old_listed or old_kid in usable:
        return None
    signing, _, _ = files.bureau_paths(folder, keys.bureau)
    replace_private(signing, files.read_private(following))
    replace_private(following, None)
    return old_kid


# --- starting the next epoch -------------------------------------------------------------------


@dataclass(frozen=True)
class NextEpoch:
    """What :func:`next_epoch` did."""

    old_kid: str
    new_kid: str
    alg: str
    public: Path


def _pem(key: x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey, passphrase: bytes | None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def next_epoch(
    folder: Path, bureau: str, *, now: datetime, passphrase: bytes | None = None
) -> NextEpoch:
    """Generate the next encryption key of the bureau's newest suite (the hybrid one if it has
    one, else X25519), move the current one into the epochs file, and write the public document
    for ``nbx directory add-key`` (``<CC>.next.public.json``).

    The epochs file is written first, then the key file is replaced: a crash in between leaves
    the old key in both, which loads as the current key (:func:`load_keys`).
    """
    keys = load_keys(folder, bureau, passphrase)
    epochs = read_epochs(folder, bureau)
    path = _current_file(folder, bureau, HYBRID_ALG if keys.hybrid_key else X25519_ALG)
    entry: dict[str, str]
    if keys.hybrid_key is not None:
        old = keys.hybrid_key
        new_hybrid = HybridEncryptionKey.generate()
        archived = Epoch(
            old.key_id,
            HYBRID_ALG,
            now,
            private=_pem(old.mlkem_key, passphrase) + _pem(old.x25519_key, passphrase),
        )
        data = _pem(new_hybrid.mlkem_key, passphrase) + _pem(new_hybrid.x25519_key, passphrase)
        entry = files.hybrid_public_entry(new_hybrid)
        new_kid, alg = new_hybrid.key_id, HYBRID_ALG
    else:
        old_x = keys.encryption_key
        new_x = x25519.X25519PrivateKey.generate()
        archived = Epoch(keys.encryption_key_id, X25519_ALG, now, private=_pem(old_x, passphrase))
        data = _pem(new_x, passphrase)
        new_kid, alg = key_id(raw_public(new_x.public_key())), X25519_ALG
        entry = {
            "use": "encrypt",
            "alg": X25519_ALG,
            "kid": new_kid,
            "public": b64u(raw_public(new_x.public_key())),
        }
    write_epochs(folder, bureau, [*epochs, archived])
    replace_private(path, data.encode())
    public = next_public_path(folder, bureau)
    public.write_text(json.dumps({"bureau": bureau, "keys": [entry]}, indent=2) + "\n")
    return NextEpoch(archived.kid, new_kid, alg, public)
