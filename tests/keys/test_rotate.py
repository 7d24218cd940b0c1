"""Signing-key rotation on a node (broker.keys.signing): the rule that picks the signing key, its
live pickup by key care, the destruction of the old key, and ``nbx keys rotate``'s files."""

from __future__ import annotations

import asyncio
import io
import json
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.cli import audit_cmds, main
from broker.envelope.seal import SIGNATURE_DOMAIN, tree_head
from broker.errors import KeyDirectoryError
from broker.keys import BureauKeys, Directory, files, sign_directory
from broker.keys.directory import DirectoryBody, KeyRecord
from broker.keys.directory_edit import read_public_document, revoke_key, rotate_keys
from broker.keys.epochs import epochs_path, load_keys, retire_signing
from broker.keys.signing import (
    SigningChoice,
    history_path,
    read_history,
    rotate,
    select_signing,
)
from broker.logging import configure
from broker.node.config import NodeConfig
from broker.node.keycare import KeyCare, own_records
from broker.node.provision import provision
from broker.node.signer import BatchSigner
from broker.sinks.audit import GENESIS, sign_checkpoint
from broker.sinks.audit import verify as audit_verify
from broker.wire import merkle

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def run(*args: object, ok: bool = True, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    assert (result.exit_code == 0) == ok, result.output
    return result


def _node(tmp_path: Path) -> Path:
    """FR provisioned (keys in tmp_path/FR/keys, directory tmp_path/directory.json); its config."""
    return provision(tmp_path, ["FR", "DE"], bootstrap="127.0.0.1:1")["FR"]


def _keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "FR" / "keys"


def _anchor(tmp_path: Path) -> Any:
    return files.load_signing_key(tmp_path / "anchor" / "trust-anchor.key")


def _body(tmp_path: Path) -> DirectoryBody:
    return Directory.load(tmp_path / "directory.json", _anchor(tmp_path).public_key()).body


def _save(tmp_path: Path, body: DirectoryBody) -> None:
    (tmp_path / "directory.json").write_bytes(sign_directory(body, _anchor(tmp_path)))


def _anchor_rotates(tmp_path: Path, now: datetime) -> DirectoryBody:
    """``nbx directory rotate FR --keys FR.next.public.json`` at ``now`` (overlap 7 days)."""
    doc = read_public_document(_keys_dir(tmp_path) / "FR.next.public.json")
    body = rotate_keys(_body(tmp_path), doc, now=now)
    _save(tmp_path, body)
    return body


def _records(body: DirectoryBody) -> tuple[KeyRecord, ...]:
    records = own_records(Directory(body), "FR")
    assert records is not None
    return records


# --- the rule ----------------------------------------------------------------------------------


def test_the_node_signs_with_the_old_key_until_the_directory_lists_the_new_one(
    tmp_path: Path,
) -> None:
    """After ``rotate`` the node holds both keys; it signs with the old one while the directory
    lists only that, with the new one once the anchor rotated (switch_after 0)."""
    _node(tmp_path)
    folder = _keys_dir(tmp_path)
    old = load_keys(folder, "FR")
    step = rotate(folder, "FR", now=T0)
    keys = load_keys(folder, "FR")
    assert sorted(keys.signing_keys()) == sorted([old.signing_key_id, step.new_signing_kid])
    assert keys.signing_key_id == old.signing_key_id  # CC.signing.key is the old one
    before = _records(_body(tmp_path))
    now = datetime.now(UTC)
    assert select_signing(keys, before, now).signing_key_id == old.signing_key_id
    after = _records(_anchor_rotates(tmp_path, now))
    chosen = select_signing(keys, after, now + timedelta(seconds=1))
    assert chosen.signing_key_id == step.new_signing_kid
    assert chosen.signing_keys().keys() == keys.signing_keys().keys()  # the old one kept


def test_a_new_key_is_used_only_after_switch_after_unless_nothing_else_is_usable(
    tmp_path: Path,
) -> None:
    """The new key is first seen at t; with switch_after 60 s the node signs with the old key
    until t+60 s, then with the new one; a revoked old key leaves the new one at once."""
    _node(tmp_path)
    folder = _keys_dir(tmp_path)
    old_kid = load_keys(folder, "FR").signing_key_id
    new_kid = rotate(folder, "FR", now=T0).new_signing_kid
    keys = load_keys(folder, "FR")
    t = datetime.now(UTC) + timedelta(seconds=5)
    body = _anchor_rotates(tmp_path, t - timedelta(seconds=1))
    choice = SigningChoice(timedelta(seconds=60))
    assert choice.select(keys, _records(body), t).signing_key_id == old_kid
    assert choice.select(keys, _records(body), t + timedelta(seconds=59)).signing_key_id == old_kid
    assert choice.select(keys, _records(body), t + timedelta(seconds=60)).signing_key_id == new_kid
    revoked = revoke_key(body, "FR", old_kid, at=t, reason="superseded", now=t)
    fresh = SigningChoice(timedelta(seconds=60))  # a node that sees both keys for the first time
    assert fresh.select(keys, _records(revoked), t).signing_key_id == new_kid


def test_keys_the_directory_does_not_make_usable_are_not_chosen(tmp_path: Path) -> None:
    """A new key valid only from later, a newer key the node does not hold, a bureau the
    directory does not list: the node keeps the key it signs with."""
    _node(tmp_path)
    folder = _keys_dir(tmp_path)
    old_kid = load_keys(folder, "FR").signing_key_id
    rotate(folder, "FR", now=T0)
    keys = load_keys(folder, "FR")
    now = datetime.now(UTC)
    later = _anchor_rotates(tmp_path, now + timedelta(hours=1))  # valid from in an hour
    assert select_signing(keys, _records(later), now).signing_key_id == old_kid
    # holds two signing keys, neither of them listed
    stranger = replace(BureauKeys.generate("FR"), spare_signing=(Ed25519PrivateKey.generate(),))
    assert select_signing(stranger, _records(later), now) is stranger
    assert select_signing(keys, None, now).signing_key_id == old_kid
    assert select_signing(keys, (), now).signing_key_id == old_kid
    with pytest.raises(KeyDirectoryError, match="no private signing key nope is held"):
        keys.signing_with("nope")


# --- live pickup by key care -------------------------------------------------------------------


def test_key_care_takes_up_the_rotation_and_the_directory_without_a_restart(
    tmp_path: Path,
) -> None:
    """A node's key care (as the publisher and the daemon ask it): the next key files are read
    when they appear, the signing key switches when the directory lists the new key, and
    ``keys.signing-switched`` is logged with key ids only."""
    config = NodeConfig.load(_node(tmp_path))
    config = config.model_copy(
        update={"keys": config.keys.model_copy(update={"switch_after_s": 0.0})}
    )
    care = KeyCare.from_config(config)
    folder = _keys_dir(tmp_path)
    old_kid = load_keys(folder, "FR").signing_key_id
    now = datetime.now(UTC)
    first = care.current(Directory(_body(tmp_path)), now)
    assert first is not None
    assert first.signing_key_id == old_kid
    loads = care.loads
    assert care.current(Directory(_body(tmp_path)), now) is not None
    assert care.loads == loads  # nothing changed: nothing read again
    step = rotate(folder, "FR", now=now)
    held = care.current(Directory(_body(tmp_path)), now)
    assert held is not None
    assert care.loads == loads + 1
    assert held.signing_key_id == old_kid  # not listed yet
    assert step.encryption.new_kid in held.decryption_keys()  # opens packages to the new key
    assert step.encryption.old_kid in held.decryption_keys()  # and to the old one
    body = _anchor_rotates(tmp_path, now)
    buf = io.StringIO()
    configure("DEBUG", stream=buf)
    try:
        switched = care.current(Directory(body), now + timedelta(seconds=1))
        care.current(Directory(body), now + timedelta(seconds=2))  # no second event
    finally:
        configure()
    assert switched is not None
    assert switched.signing_key_id == step.new_signing_kid
    logged = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [{k: e[k] for k in e if k != "timestamp"} for e in logged] == [
        {
            "event": "keys.signing-switched",
            "level": "info",
            "bureau": "FR",
            "key_id": step.new_signing_kid,
            "old_key_id": old_kid,
        }
    ]


def test_unreadable_key_files_keep_the_keys_in_use(tmp_path: Path) -> None:
    """A key file made group-readable: key care says ``None`` (the caller keeps its keys) and
    logs ``keys.care-failed`` once, not at every call."""
    care = KeyCare.from_config(NodeConfig.load(_node(tmp_path)))
    signing = _keys_dir(tmp_path) / "FR.signing.key"
    signing.chmod(0o640)
    buf = io.StringIO()
    configure("DEBUG", stream=buf)
    try:
        assert care.current(None, datetime.now(UTC)) is None
        assert care.current(None, datetime.now(UTC)) is None
    finally:
        configure()
    logged = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [(e["event"], e["error_type"]) for e in logged] == [
        ("keys.care-failed", "KeyDirectoryError")
    ]
    signing.chmod(0o600)
    assert care.current(None, datetime.now(UTC)) is not None


# --- the old key's destruction -----------------------------------------------------------------


def test_the_old_signing_key_is_destroyed_once_revoked(tmp_path: Path) -> None:
    """``retire_signing`` does nothing while the old key is usable; once the directory revoked it,
    the next key becomes CC.signing.key (0600) and CC.signing.next.key is gone."""
    _node(tmp_path)
    folder = _keys_dir(tmp_path)
    old_kid = load_keys(folder, "FR").signing_key_id
    new_kid = rotate(folder, "FR", now=T0).new_signing_kid
    now = datetime.now(UTC)
    body = _anchor_rotates(tmp_path, now)
    keys = load_keys(folder, "FR")
    assert retire_signing(folder, keys, _records(body), now=now) is None
    assert retire_signing(folder, keys, None, now=now) is None  # not listed: nothing known
    revoked = revoke_key(body, "FR", old_kid, at=now, reason="superseded", now=now)
    assert retire_signing(folder, keys, _records(revoked), now=now) == old_kid
    assert not (folder / "FR.signing.next.key").exists()
    assert stat.S_IMODE((folder / "FR.signing.key").stat().st_mode) == 0o600
    after = load_keys(folder, "FR")
    assert list(after.signing_keys()) == [new_kid]
    assert retire_signing(folder, after, _records(revoked), now=now) is None  # done


def test_nbx_keys_shred_destroys_the_revoked_signing_key(tmp_path: Path) -> None:
    """``nbx keys shred`` (as the daemon's key care) prints the destroyed old signing key."""
    config = _node(tmp_path)
    folder = _keys_dir(tmp_path)
    old_kid = load_keys(folder, "FR").signing_key_id
    run("keys", "rotate", "FR", "--dir", folder)
    now = datetime.now(UTC)
    body = _anchor_rotates(tmp_path, now)
    waiting = run("keys", "shred", "--config", config).output  # the old encryption key: later
    assert waiting.startswith("nothing to destroy yet: ")
    _save(tmp_path, revoke_key(body, "FR", old_kid, at=now, reason="superseded", now=now))
    assert run("keys", "shred", "--config", config).output.startswith(f"destroyed {old_kid}\n")
    assert not (folder / "FR.signing.next.key").exists()


# --- nbx keys rotate ---------------------------------------------------------------------------


def test_nbx_keys_rotate_writes_the_next_keys_and_the_document_for_the_anchor(
    tmp_path: Path,
) -> None:
    """The next signing key (0600), the next encryption epoch (the old key kept in the epochs
    file) and FR.next.public.json with both public keys, as `nbx directory rotate` reads it."""
    _node(tmp_path)
    folder = _keys_dir(tmp_path)
    old = load_keys(folder, "FR")
    out = run("keys", "rotate", "FR", "--dir", folder).output.splitlines()
    following = folder / "FR.signing.next.key"
    assert stat.S_IMODE(following.stat().st_mode) == 0o600
    new = files.load_signing_key(following)
    doc = read_public_document(folder / "FR.next.public.json")
    sign, enc = doc.keys
    keys = load_keys(folder, "FR")
    assert sign.use == "sign"
    assert sign.kid == BureauKeys("FR", new, old.x25519_key).signing_key_id
    assert enc.use == "encrypt"
    assert enc.kid == keys.encryption_key_id != old.encryption_key_id
    assert old.encryption_key_id in keys.retired
    assert epochs_path(folder, "FR").exists()
    assert out == [
        f"new signing key {sign.kid} in {following} (mode 0600)",
        f"archived encryption key {old.encryption_key_id}",
        f"new encryption key {enc.kid} (X25519)",
        f"wrote {folder / 'FR.next.public.json'}",
        f"next: the anchor runs: nbx directory rotate FR --keys FR.next.public.json --file ... "
        "--anchor-key ... and publishes the directory; the node signs with the new key once its "
        "directory lists it ([keys] switch_after_s later); then the anchor revokes the old "
        f"signing key: nbx directory revoke FR --kid {old.signing_key_id} --reason superseded ... "
        "(the node then destroys it: key care, or nbx keys shred)",
    ]
    # the anchor's command takes the document as it is
    run(
        "directory",
        "rotate",
        "FR",
        "--keys",
        folder / "FR.next.public.json",
        "--file",
        tmp_path / "directory.json",
        "--anchor-key",
        tmp_path / "anchor" / "trust-anchor.key",
    )
    listed = {k.kid for k in _records(_body(tmp_path))}
    assert {sign.kid, enc.kid, old.signing_key_id, old.encryption_key_id} <= listed


def test_nbx_keys_rotate_refuses_while_a_rotation_is_under_way(tmp_path: Path) -> None:
    """A second rotate before the old key was destroyed: one line naming the file; nothing is
    written (the key and epochs files are unchanged)."""
    _node(tmp_path)
    folder = _keys_dir(tmp_path)
    run("keys", "rotate", "FR", "--dir", folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = run("keys", "rotate", "FR", "--dir", folder, ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"nbx: error: {folder / 'FR.signing.next.key'}: already exists: a signing-key rotation "
        "is under way (the anchor publishes the new key, then revokes the old one; nbx keys "
        "shred removes it)"
    ]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_nbx_keys_rotate_keeps_the_passphrase(tmp_path: Path) -> None:
    """Keys encrypted with NBX_KEY_PASSPHRASE: the next signing key and encryption key are
    encrypted with it too; without the passphrase the command refuses and writes nothing."""
    folder = tmp_path / "keys"
    files.write_bureau_keys(folder, BureauKeys.generate("FR"), b"s3cret")
    before = sorted(p.name for p in folder.iterdir())
    refused = run("keys", "rotate", "FR", "--dir", folder, ok=False, env={})
    assert refused.output.splitlines() == [
        f"nbx: error: {folder / 'FR.signing.key'}: private key is encrypted; set NBX_KEY_PASSPHRASE"
    ]
    assert sorted(p.name for p in folder.iterdir()) == before
    run("keys", "rotate", "FR", "--dir", folder, env={"NBX_KEY_PASSPHRASE": "s3cret"})
    following = folder / "FR.signing.next.key"
    assert b"ENCRYPTED PRIVATE KEY" in following.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in (folder / "FR.encryption.key").read_bytes()
    keys = load_keys(folder, "FR", b"s3cret")
    assert len(keys.signing_keys()) == 2
    assert json.loads((folder / "FR.next.public.json").read_text())["bureau"] == "FR"


def test_nbx_keys_rotate_refuses_a_bad_bureau_id(tmp_path: Path) -> None:
    """A bureau id that is not one: one usage line."""
    result = run("keys", "rotate", "fr", "--dir", tmp_path, ok=False)
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "nbx: error: BUREAU: 'fr' is not a bureau id (two upper-case letters, e.g. FR or XI) "
        "(see 'nbx keys rotate --help')"
    ]


# --- the history of signing keys (what nbx audit verify checks old checkpoints with) ----------


def test_audit_verify_knows_every_signing_key_the_node_held(tmp_path: Path) -> None:
    """After two rotations a node following the topic (no directory file to look keys up in)
    still verifies checkpoints signed with each of its three keys: FR.signing-history.json."""
    config = NodeConfig.load(_node(tmp_path))
    topic = config.model_copy(
        update={"trust": config.trust.model_copy(update={"directory": "topic"})}
    )
    folder = _keys_dir(tmp_path)
    first = load_keys(folder, "FR").signing_keys()
    second = rotate(folder, "FR", now=T0)
    now = datetime.now(UTC)
    body = _anchor_rotates(tmp_path, now)
    _save(tmp_path, revoke_key(body, "FR", next(iter(first)), at=now, reason="x", now=now))
    assert retire_signing(folder, load_keys(folder, "FR"), _records(_body(tmp_path)), now=now)
    third = rotate(folder, "FR", now=T0)
    held = load_keys(folder, "FR").signing_keys()
    assert list(held) == [second.new_signing_kid, third.new_signing_kid]
    everything = {**first, **held}
    lookup = audit_cmds.PublicKeys(topic)
    assert set(lookup.keys) == set(everything)
    signed = [sign_checkpoint("FR", 0, GENESIS, key, kid, now) for kid, key in everything.items()]
    assert audit_verify([], signed, lookup) is None
    stranger = BureauKeys.generate("FR")
    forged = sign_checkpoint("FR", 0, GENESIS, stranger.signing_key, stranger.signing_key_id)
    assert audit_verify([], [forged], lookup) == (
        f"checkpoint at seq 0: signing key {stranger.signing_key_id} of FR unknown"
    )


def test_a_damaged_history_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A history entry whose key id does not match its key (one key vouched for under another's
    id) is refused in one line; ``nbx keys rotate`` then writes nothing."""
    _node(tmp_path)
    folder = _keys_dir(tmp_path)
    rotate(folder, "FR", now=T0)
    path = history_path(folder, "FR")
    data = json.loads(path.read_text())
    data["keys"][0]["kid"] = data["keys"][1]["kid"]
    path.write_text(json.dumps(data))
    with pytest.raises(KeyDirectoryError) as caught:
        read_history(folder, "FR")
    assert str(caught.value) == f"{path}: not an NBX signing-key history of FR"
    path.write_text("{")
    with pytest.raises(KeyDirectoryError, match=r"not an NBX signing-key history$"):
        read_history(folder, "FR")
    (folder / "FR.signing.next.key").unlink()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    refused = run("keys", "rotate", "FR", "--dir", folder, ok=False)
    assert refused.output == f"nbx: error: {path}: not an NBX signing-key history\n"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# --- the batch signer across a switch ----------------------------------------------------------


async def test_a_batch_is_signed_with_one_key_when_the_node_switches_mid_turn() -> None:
    """Statements of one loop turn prepared with two signing keys (the switch happened between
    them): the batch in hand is closed at the switch, so each signature is made with the key
    its statements name: two signatures, each verifying with its own key only."""
    old = BureauKeys.generate("FR")
    new = replace(old, signing_key=Ed25519PrivateKey.generate())
    signer = BatchSigner(old)
    statements = [b"one", b"two", b"three"]
    results = await asyncio.gather(
        signer.sign(statements[0]), signer.sign(statements[1], old), signer.sign(statements[2], new)
    )
    assert (signer.signatures, signer.statements) == (2, 3)
    (sig_a, _), (sig_b, _), (sig_c, proof_c) = results
    assert sig_a == sig_b != sig_c
    assert proof_c is None  # alone in its batch
    for statement, (signature, proof) in zip(statements[:2], results[:2], strict=True):
        assert proof is not None
        root = merkle.root_from_proof(
            merkle.leaf_hash(statement), proof.index, proof.size, proof.path
        )
        old.signing_key.public_key().verify(signature, tree_head(proof.size, root))
    new.signing_key.public_key().verify(sig_c, SIGNATURE_DOMAIN + b"three")
    with pytest.raises(InvalidSignature):
        old.signing_key.public_key().verify(sig_c, SIGNATURE_DOMAIN + b"three")
