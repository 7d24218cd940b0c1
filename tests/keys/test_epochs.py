"""Key epochs: the node rotates its encryption key and destroys an old one only once every record
sealed to it has left the broker's log (fake times, real files)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys
from broker.keys.directory import DirectoryBody, KeyRecord
from broker.keys.directory_edit import (
    PublicDocument,
    add_bureau,
    add_encryption_keys,
    empty_directory,
    read_public_document,
)
from broker.keys.epochs import (
    epoch_status,
    epochs_path,
    load_keys,
    next_epoch,
    read_epochs,
    rotation_due,
    shred,
    shred_window,
)
from broker.keys.files import (
    hybrid_path,
    public_document,
    write_bureau_keys,
    write_hybrid_key,
)
from broker.keys.hybrid import HybridEncryptionKey

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WEEK_MS = 7 * 86_400_000
WINDOW = shred_window(WEEK_MS, timedelta(days=2))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _listed(tmp_path: Path, *, pq: bool = False) -> tuple[Path, DirectoryBody]:
    """FR's keys in tmp_path/keys, listed in a directory from T0."""
    folder = tmp_path / "keys"
    keys = BureauKeys.generate("FR", pq=pq)
    write_bureau_keys(folder, keys)
    anchor = BureauKeys.generate("XA").signing_key
    body = empty_directory(anchor.public_key(), T0)
    doc = PublicDocument.model_validate(public_document(keys))
    return folder, add_bureau(body, doc, name="FR", now=T0)


def _records(body: DirectoryBody) -> tuple[KeyRecord, ...]:
    return next(b for b in body.bureaus if b.id == "FR").keys


def _rotated(tmp_path: Path) -> tuple[Path, DirectoryBody, str, str, datetime]:
    """FR rotated on day 80; the anchor published the new key on day 85 (the old retires)."""
    folder, body = _listed(tmp_path)
    step = next_epoch(folder, "FR", now=T0 + timedelta(days=80))
    retired = T0 + timedelta(days=85)
    body = add_encryption_keys(body, read_public_document(step.public), now=retired)
    return folder, body, step.old_kid, step.new_kid, retired


def test_the_window_covers_three_bounded_topics_in_turn_plus_the_grace() -> None:
    """7-day retention, daily segments: 3 x 8 days + 2 days of grace."""
    assert timedelta(days=26) == WINDOW
    assert shred_window(3_600_000, timedelta(0)) == timedelta(hours=6)


def test_next_epoch_keeps_the_old_key_until_the_anchor_publishes_the_new_one(
    tmp_path: Path,
) -> None:
    """The node's own rotation: a new key of the same suite in the key file, the old one in the
    0600 epochs file, both open packages; the old is not retired before the directory lists the
    new one, however long ago it was generated."""
    folder, body = _listed(tmp_path)
    before = load_keys(folder, "FR")
    step = next_epoch(folder, "FR", now=T0 + timedelta(days=80))
    assert step.old_kid == before.encryption_key_id
    assert step.alg == "X25519"
    after = load_keys(folder, "FR")
    assert after.encryption_key_id == step.new_kid
    assert set(after.decryption_keys()) == {step.old_kid, step.new_kid}
    assert _mode(epochs_path(folder, "FR")) == 0o600
    assert _mode(folder / "FR.encryption.key") == 0o600
    doc = read_public_document(step.public)
    assert [(k.use, k.alg, k.kid) for k in doc.keys] == [("encrypt", "X25519", step.new_kid)]
    years_later = T0 + timedelta(days=3000)
    rows = epoch_status(
        after, read_epochs(folder, "FR"), _records(body), now=years_later, window=WINDOW
    )
    assert [(r.kid, r.state) for r in rows] == [
        (step.old_kid, "current"),
        (step.new_kid, "current"),
    ]
    assert shred(folder, after, _records(body), now=years_later, window=WINDOW) == []
    assert step.old_kid in load_keys(folder, "FR").decryption_keys()


def test_a_retired_key_is_destroyed_only_after_its_window_and_only_once(tmp_path: Path) -> None:
    """Inside the window nothing is destroyed; at retired + window the old private key goes (the
    epochs file rewritten 0600, the epoch kept as destroyed); a second run destroys nothing; the
    file still loads and the current key still opens."""
    folder, body, old, new, retired = _rotated(tmp_path)
    keys = load_keys(folder, "FR")
    records = _records(body)
    inside = retired + WINDOW - timedelta(seconds=1)
    rows = epoch_status(keys, read_epochs(folder, "FR"), records, now=inside, window=WINDOW)
    assert [(r.kid, r.state, r.retired, r.destroy_after) for r in rows] == [
        (old, "retired", retired, retired + WINDOW),
        (new, "current", None, None),
    ]
    assert rows[0].created == T0
    assert rows[1].created == retired
    assert shred(folder, keys, records, now=inside, window=WINDOW) == []
    assert old in load_keys(folder, "FR").decryption_keys()

    at = retired + WINDOW
    assert shred(folder, keys, records, now=at, window=WINDOW) == [old]
    assert _mode(epochs_path(folder, "FR")) == 0o600
    assert old.encode() in epochs_path(folder, "FR").read_bytes()  # the epoch is still listed
    assert b"PRIVATE KEY" not in epochs_path(folder, "FR").read_bytes()
    reloaded = load_keys(folder, "FR")
    assert set(reloaded.decryption_keys()) == {new}
    assert shred(folder, reloaded, records, now=at + timedelta(days=1), window=WINDOW) == []
    rows = epoch_status(reloaded, read_epochs(folder, "FR"), records, now=at, window=WINDOW)
    assert [(r.kid, r.state, r.destroyed) for r in rows] == [
        (old, "destroyed", at),
        (new, "current", None),
    ]
    assert rotation_due(rows, timedelta(days=90)) == retired + timedelta(days=90)


def test_destruction_overwrites_the_old_file_before_releasing_it(tmp_path: Path) -> None:
    """A second name of the epochs file (a hard link: the same bytes on disk) holds only zeros
    after the destruction, not the private key."""
    folder, body, old, _, retired = _rotated(tmp_path)
    link = tmp_path / "linked-copy"
    os.link(epochs_path(folder, "FR"), link)
    assert b"PRIVATE KEY" in link.read_bytes()
    keys = load_keys(folder, "FR")
    assert shred(folder, keys, _records(body), now=retired + WINDOW, window=WINDOW) == [old]
    data = link.read_bytes()
    assert data
    assert set(data) == {0}


def test_a_passphrase_protects_the_archived_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a passphrase the archived key is an encrypted PKCS#8 block: it loads with the
    passphrase and is refused in one line without it."""
    folder = tmp_path / "keys"
    write_bureau_keys(folder, BureauKeys.generate("FR"), b"secret")
    step = next_epoch(folder, "FR", now=T0, passphrase=b"secret")
    assert b"ENCRYPTED PRIVATE KEY" in epochs_path(folder, "FR").read_bytes()
    assert step.old_kid in load_keys(folder, "FR", b"secret").decryption_keys()
    with pytest.raises(KeyDirectoryError, match="private key is encrypted; set NBX_KEY_PASSPHRASE"):
        load_keys(folder, "FR")


def test_an_epochs_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    """The epochs file holds private keys: mode 0600 is enforced like every key file."""
    folder, _ = _listed(tmp_path)
    next_epoch(folder, "FR", now=T0)
    epochs_path(folder, "FR").chmod(0o644)
    with pytest.raises(KeyDirectoryError, match=r"accessible by group or others.*chmod 600"):
        load_keys(folder, "FR")


def test_the_x25519_key_retired_by_a_move_to_the_hybrid_suite_is_destroyed_too(
    tmp_path: Path,
) -> None:
    """A bureau that added a hybrid key keeps its X25519 key file until the window after the
    hybrid key became valid; then the file is removed and the epoch recorded as destroyed."""
    folder, body = _listed(tmp_path)
    hybrid = HybridEncryptionKey.generate()
    write_hybrid_key(hybrid_path(folder, "FR"), hybrid)
    doc = PublicDocument.model_validate(
        {"bureau": "FR", "keys": [public_document(load_keys(folder, "FR"))["keys"][2]]}
    )
    moved = T0 + timedelta(days=10)
    body = add_encryption_keys(body, doc, now=moved)
    keys = load_keys(folder, "FR")
    x_kid = keys.encryption_key_id
    assert shred(folder, keys, _records(body), now=moved + WINDOW, window=WINDOW) == [x_kid]
    assert not (folder / "FR.encryption.key").exists()
    after = load_keys(folder, "FR")
    assert set(after.decryption_keys()) == {hybrid.key_id}
    rows = epoch_status(
        after, read_epochs(folder, "FR"), _records(body), now=moved + WINDOW, window=WINDOW
    )
    assert [(r.kid, r.state) for r in rows] == [(x_kid, "destroyed"), (hybrid.key_id, "current")]


def test_the_last_encryption_key_is_never_destroyed(tmp_path: Path) -> None:
    """A key that expires in the directory with no successor stays: the node must keep loading
    (the anchor gives it a new key; until then nothing is sealed to it anyway)."""
    folder, body = _listed(tmp_path)
    [record] = [r for r in _records(body) if r.use == "encrypt"]
    expired = record.model_copy(update={"not_after": T0 + timedelta(days=1)})
    keys = load_keys(folder, "FR")
    assert shred(folder, keys, [expired], now=T0 + timedelta(days=400), window=WINDOW) == []
    assert load_keys(folder, "FR").encryption_key_id == record.kid


def test_a_hybrid_bureau_rotates_to_a_new_hybrid_key(tmp_path: Path) -> None:
    """next-epoch keeps the suite: a post-quantum bureau gets a new ML-KEM-768+X25519 key."""
    folder, _ = _listed(tmp_path, pq=True)
    step = next_epoch(folder, "FR", now=T0)
    assert step.alg == "MLKEM768-X25519"
    keys = load_keys(folder, "FR")
    assert keys.hybrid_key is not None
    assert keys.hybrid_key.key_id == step.new_kid
    assert set(keys.decryption_keys()) == {step.old_kid, step.new_kid}
