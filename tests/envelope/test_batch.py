"""Batch signatures: one Ed25519 signature over the RFC 9162 tree head of several statements.

Each message of a batch must still prove, on its own, that it is what the origin signed (P1, P2)
and must still pass every key check (P6); the tests below try to break that with the proof
(moved, resized, swapped, dropped, added, malformed) and assert the exact rejection.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from broker.envelope import open as envelope_open
from broker.envelope import sign_batch
from broker.envelope.seal import MAX_BATCH, SIGNATURE_DOMAIN, prepare, tree_head
from broker.errors import EnvelopeRejected
from broker.keys.directory_edit import revoke_key
from broker.wire import merkle
from broker.wire.canonical import b64u, b64u_decode, jcs

from .world import (
    FR_GRANT,
    T0,
    UNITS,
    World,
    decrypt,
    encrypt,
    make_world,
    open_as,
    package,
    seal_notice,
    sealed_batch,
    statement_of,
)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def reason(world: World, data: bytes, recipient: str = "FR", **kwargs: Any) -> str:
    with pytest.raises(EnvelopeRejected) as info:
        open_as(world, data, recipient, **kwargs)
    return info.value.reason


def batch_package(world: World, n: int = 5, index: int = 2) -> dict[str, Any]:
    """FR's decrypted package of message ``index`` of a fresh batch of ``n``."""
    return decrypt(world, package(world, sealed_batch(world, n)[index]))


def test_every_message_of_a_batch_opens_for_every_recipient(world: World) -> None:
    """Seven messages under one signature: each opens for FR and DE with its own view."""
    batch = sealed_batch(world, 7)
    assert len({s.signature for s in batch}) == 1
    assert [(s.proof.index, s.proof.size) for s in batch if s.proof] == [(i, 7) for i in range(7)]
    for sealed in batch:
        fr = open_as(world, package(world, sealed, "FR"), "FR")
        de = open_as(world, package(world, sealed, "DE"), "DE")
        assert (fr.notice_id, fr.policy, set(fr.disclosed)) == (
            sealed.notice_id,
            "FR@3",
            set(FR_GRANT.disclosed),
        )
        assert dict(de.disclosed) == UNITS


def test_a_batch_of_one_is_the_single_signature(world: World) -> None:
    """One statement is signed alone, over ``DOMAIN || statement``, and carries no proof."""
    unsigned = prepare(
        signer=world.keys["IT"],
        kind="notice",
        notice_id="2025/RED/0001",
        notice_type="red",
        header={},
        units=UNITS,
        grants={"FR": FR_GRANT},
        handling="restricted",
        now=T0,
    )
    ((signature, proof),) = sign_batch(world.keys["IT"], [unsigned.statement])
    assert proof is None
    world.keys["IT"].signing_key.public_key().verify(
        signature, SIGNATURE_DOMAIN + unsigned.statement
    )
    assert "proof" not in decrypt(world, package(world, unsigned.signed(signature)))


def test_batch_size_limits(world: World) -> None:
    """No empty batch, none above MAX_BATCH."""
    with pytest.raises(ValueError, match="1 to 256"):
        sign_batch(world.keys["IT"], [])
    with pytest.raises(ValueError, match="1 to 256"):
        sign_batch(world.keys["IT"], [b"x"] * (MAX_BATCH + 1))


def test_the_package_carries_index_size_and_audit_path(world: World) -> None:
    """The wire form of the proof: index, size, base64url hashes (3 for a batch of 5)."""
    proof = batch_package(world)["proof"]
    assert (proof["index"], proof["size"]) == (2, 5)
    assert [len(b64u_decode(h)) for h in proof["path"]] == [32, 32, 32]


# --- P1 / P2: the proof cannot carry another statement -----------------------------------------


def test_statement_changed_under_a_batch_signature(world: World) -> None:
    """A statement edited after signing leads to another root: signature fails."""
    pkg = batch_package(world)
    st = statement_of(pkg)
    st["header"]["category"] = "yellow"
    pkg["statement"] = b64u(jcs(st))
    assert reason(world, encrypt(world, pkg)) == "signature"


def test_grant_widened_under_a_batch_signature(world: World) -> None:
    """FR's grant hash replaced by DE's (the full view): the statement no longer fits the root."""
    pkg = batch_package(world)
    st = statement_of(pkg)
    (fr_hash,) = [h for h, rs in st["grants"].items() if rs == ["FR"]]
    (de_hash,) = [h for h, rs in st["grants"].items() if rs == ["DE"]]
    assert fr_hash != de_hash
    st["grants"] = {de_hash: ["DE", "FR"]}
    pkg["statement"] = b64u(jcs(st))
    assert reason(world, encrypt(world, pkg)) == "signature"


def test_proof_of_another_message_of_the_batch(world: World) -> None:
    """Message 2 with message 3's proof: the path leads elsewhere."""
    batch = sealed_batch(world, 5)
    pkg = decrypt(world, package(world, batch[2]))
    pkg["proof"] = decrypt(world, package(world, batch[3]))["proof"]
    assert reason(world, encrypt(world, pkg)) == "signature"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"index": 3}, "signature"),  # another place in the same tree
        ({"size": 6}, "signature"),  # a bigger tree the path still fits
        ({"size": 8}, "signature"),
        ({"size": 4}, "malformed"),  # index 2 of 4 needs two hashes, not three
        ({"index": 5}, "malformed"),  # outside the tree
        ({"index": -1}, "malformed"),
        ({"size": 1}, "malformed"),  # a batch of one has no proof
        ({"size": 0}, "malformed"),
        ({"size": MAX_BATCH + 1}, "malformed"),
        ({"size": 2}, "malformed"),  # index 2 outside a tree of 2
        ({"index": True}, "malformed"),  # strict types
        ({"index": "2"}, "malformed"),
        ({"size": 5.0}, "malformed"),
    ],
)
def test_proof_index_and_size_changed(
    world: World, change: dict[str, object], expected: str
) -> None:
    """Index or size moved: another tree head (signature), or a proof that cannot fit its tree
    (malformed)."""
    pkg = batch_package(world)
    pkg["proof"] = {**pkg["proof"], **change}
    assert reason(world, encrypt(world, pkg)) == expected


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: p[:-1], "malformed"),  # too short for the tree
        (lambda p: [*p, p[0]], "malformed"),  # too long for the tree
        (lambda p: [b64u(bytes(32)), *p[1:]], "signature"),  # a sibling replaced
        (lambda p: [p[1], p[0], p[2]], "signature"),  # siblings reordered
        (lambda p: [b64u(bytes(31)), *p[1:]], "malformed"),  # not a SHA-256 hash
        (lambda p: [p[0] + "=", *p[1:]], "malformed"),  # padded base64url
        (lambda p: [p[0].replace(p[0][0], "+", 1), *p[1:]], "malformed"),  # not base64url
        (lambda p: [*p, *p, *p], "malformed"),  # more than 8 hashes
        (lambda p: [1, *p[1:]], "malformed"),
    ],
)
def test_audit_path_changed(
    world: World, edit: Callable[[list[Any]], list[Any]], expected: str
) -> None:
    """Every change to the audit path is rejected: wrong hashes by the signature, the rest as
    malformed."""
    pkg = batch_package(world)
    pkg["proof"] = {**pkg["proof"], "path": edit(pkg["proof"]["path"])}
    assert reason(world, encrypt(world, pkg)) == expected


@pytest.mark.parametrize(
    "proof",
    [None, {}, {"index": 2, "size": 5}, {"index": 2, "size": 5, "path": [], "root": "x"}, []],
)
def test_proof_member_malformed(world: World, proof: object) -> None:
    """A null, partial, extended or wrongly typed proof is malformed."""
    pkg = batch_package(world)
    pkg["proof"] = proof
    assert reason(world, encrypt(world, pkg)) == "malformed"


def test_proof_dropped_from_a_batched_package(world: World) -> None:
    """Without its proof the batch signature is checked over the statement alone: fails."""
    pkg = batch_package(world)
    del pkg["proof"]
    assert reason(world, encrypt(world, pkg)) == "signature"


def test_proof_added_to_a_single_signature(world: World) -> None:
    """A single signature presented as a batch of two (with a made-up sibling): fails."""
    pkg = decrypt(world, package(world, seal_notice(world)))
    pkg["proof"] = {"index": 0, "size": 2, "path": [b64u(bytes(32))]}
    assert reason(world, encrypt(world, pkg)) == "signature"


def test_tree_head_signed_by_another_bureau(world: World) -> None:
    """ES signs IT's tree head (sender still IT): the signature is not IT's."""
    batch = sealed_batch(world, 4)
    pkg = decrypt(world, package(world, batch[1]))
    leaves = [merkle.leaf_hash(s.statement) for s in batch]
    head = tree_head(4, merkle.root(leaves))
    pkg["signature"] = b64u(world.keys["ES"].signing_key.sign(head))
    assert reason(world, encrypt(world, pkg)) == "signature"


def test_a_single_signature_cannot_pass_as_a_tree_head(world: World) -> None:
    """Domains differ: the signature over ``DOMAIN || statement`` never verifies a tree head, even
    for a one-leaf tree of that statement (which sign_batch never writes: size 1 is refused)."""
    sealed = seal_notice(world)
    pkg = decrypt(world, package(world, sealed))
    pkg["proof"] = {"index": 0, "size": 1, "path": []}
    assert reason(world, encrypt(world, pkg)) == "malformed"


# --- one verification per batch, and the key checks still run per message -----------------------


def test_a_recipient_verifies_a_batch_signature_once(world: World) -> None:
    """Opening six messages of one batch runs Ed25519 once; the others reuse the success."""
    batch = sealed_batch(world, 6)
    frames = [package(world, s) for s in batch]
    before = envelope_open._tree_head_verified.cache_info()
    for data in frames:
        open_as(world, data)
    after = envelope_open._tree_head_verified.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 5)


def test_a_verified_batch_does_not_excuse_a_forged_signature(world: World) -> None:
    """After message 0 verified, message 1 with a different signature is checked anew: fails."""
    batch = sealed_batch(world, 3)
    open_as(world, package(world, batch[0]))
    pkg = decrypt(world, package(world, batch[1]))
    sig = bytearray(b64u_decode(pkg["signature"]))
    sig[0] ^= 1
    pkg["signature"] = b64u(bytes(sig))
    assert reason(world, encrypt(world, pkg)) == "signature"


def test_revocation_applies_to_messages_of_an_already_verified_batch() -> None:
    """The signature check is shared, the key check is not: after the key is revoked, the next
    message of a batch whose signature was already verified is rejected as key-revoked."""
    w = make_world()
    batch = sealed_batch(w, 3)
    assert open_as(w, package(w, batch[0])).sender == "IT"
    revoked_at = T0 + timedelta(minutes=30)
    kid = w.keys["IT"].signing_key_id
    w.resign_directory(
        revoke_key(w.body, "IT", kid, at=revoked_at, reason="key-compromise", now=revoked_at)
    )
    data = package(w, batch[1])
    assert reason(w, data, received_at=revoked_at + timedelta(minutes=1)) == "key-revoked"
    # received and opened before the revocation, it opens (same rule as a single signature)
    got = open_as(w, data, now=T0 + timedelta(minutes=20), received_at=T0 + timedelta(minutes=1))
    assert got.notice_id == batch[1].notice_id
