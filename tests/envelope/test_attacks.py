"""Attack tests, one section per security property of docs/architecture.md section 3 (P1..P6).

Every test plays an attacker (a relay, the broker operator, another recipient, a holder of a stolen
or revoked key) and asserts the exact reason code the recipient's opening function gives.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.envelope import Grant
from broker.errors import EnvelopeRejected, KeyDirectoryError
from broker.keys import BureauKeys, Directory, sign_directory
from broker.keys.directory_edit import revoke_key, rotate_keys
from broker.wire import frame
from broker.wire.canonical import digest, jcs

from .world import (
    DE_GRANT,
    FR_GRANT,
    OPEN_AT,
    T0,
    UNITS,
    World,
    decrypt,
    encrypt,
    inbox,
    make_world,
    open_as,
    package,
    public_doc,
    seal_notice,
    statement_of,
    with_statement,
)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def reason(world: World, data: bytes, recipient: str = "FR", **kwargs: Any) -> str:
    with pytest.raises(EnvelopeRejected) as info:
        open_as(world, data, recipient, **kwargs)
    return info.value.reason


def test_baseline_opens(world: World) -> None:
    """The untouched package opens and shows exactly FR's view, with the withheld manifest."""
    got = open_as(world, package(world, seal_notice(world)))
    assert dict(got.disclosed) == {k: UNITS[k] for k in FR_GRANT.disclosed}
    assert got.withheld == tuple(sorted(FR_GRANT.withheld))
    assert (got.sender, got.recipient, got.policy) == ("IT", "FR", "FR@3")


# --- P1 origin authenticity ---------------------------------------------------------------------


def test_p1_value_changed_in_disclosure(world: World) -> None:
    """A disclosed value changed after sealing no longer matches any signed digest."""
    pkg = decrypt(world, package(world, seal_notice(world)))
    pkg["disclosures"][0][2] = "SOMEONE ELSE"
    assert reason(world, encrypt(world, pkg)) == "digest"


def test_p1_header_changed(world: World) -> None:
    """A change to the non-redactable header breaks the origin's signature."""
    pkg = decrypt(world, package(world, seal_notice(world)))
    st = statement_of(pkg)
    st["header"]["category"] = "yellow"
    pkg["statement"] = with_statement(pkg, st, ed25519.Ed25519PrivateKey.generate())["statement"]
    assert reason(world, encrypt(world, pkg)) == "signature"


def test_p1_statement_resigned_with_another_bureaus_key(world: World) -> None:
    """ES re-signs IT's statement with its own key but keeps IT as sender: signature fails."""
    pkg = decrypt(world, package(world, seal_notice(world)))
    forged = with_statement(pkg, statement_of(pkg), world.keys["ES"].signing_key)
    assert reason(world, encrypt(world, forged)) == "signature"


def test_p1_resigned_claiming_own_kid_under_other_sender(world: World) -> None:
    """ES signs as IT but names its own key id: that key is not IT's, so it is unknown."""
    pkg = decrypt(world, package(world, seal_notice(world)))
    st = statement_of(pkg)
    st["kid"] = world.keys["ES"].signing_key_id
    forged = with_statement(pkg, st, world.keys["ES"].signing_key)
    assert reason(world, encrypt(world, forged)) == "key-unknown"


def test_p1_key_not_in_directory(world: World) -> None:
    """A bureau key that the anchor never listed is unknown, however well-formed the package."""
    rogue = BureauKeys.generate("IT")
    sealed = seal_notice(
        World(world.anchor, {**world.keys, "IT": rogue}, world.body, world.directory)
    )
    assert reason(world, package(world, sealed)) == "key-unknown"


def test_p1_encryption_key_cannot_sign(world: World) -> None:
    """A statement naming the sender's encryption key id as signing key is rejected as unknown."""
    pkg = decrypt(world, package(world, seal_notice(world)))
    st = statement_of(pkg)
    st["kid"] = world.keys["IT"].encryption_key_id
    forged = with_statement(pkg, st, world.keys["IT"].signing_key)
    assert reason(world, encrypt(world, forged)) == "key-unknown"


def test_p1_bit_flip_anywhere_in_frame(world: World) -> None:
    """Flipping any single bit of the frame is detected: header bits as frame/decrypt, the rest
    by the AEAD tag (decrypt)."""
    data = package(world, seal_notice(world))
    kid_end = 7 + data[6]
    for pos in range(len(data)):
        for bit in (0, 7) if pos >= kid_end else range(8):
            mutated = bytearray(data)
            mutated[pos] ^= 1 << bit
            got = reason(world, bytes(mutated))
            if pos < 6:
                assert got == "frame", (pos, bit)
            elif pos < kid_end:
                assert got in {"frame", "decrypt"}, (pos, bit)
            else:
                assert got == "decrypt", (pos, bit)


def test_p1_truncated_and_extended_frames(world: World) -> None:
    """A frame cut short or with bytes appended never opens."""
    data = package(world, seal_notice(world))
    for cut in (0, 3, 6, 7, 20, len(data) - 1):
        assert reason(world, data[:cut]) in {"frame", "decrypt"}
    assert reason(world, data + b"\x00") == "decrypt"


# --- P2 redaction integrity ---------------------------------------------------------------------


def test_p2_disclosure_added_from_another_view(world: World) -> None:
    """A genuine disclosure lifted from DE's fuller view and added to FR's package: grant fails."""
    sealed = seal_notice(world)
    fr = decrypt(world, package(world, sealed, "FR"))
    de = decrypt(world, package(world, sealed, "DE"), "DE")
    dob = next(d for d in de["disclosures"] if d[1] == "person.date_of_birth")
    fr["disclosures"].append(dob)
    fr["withheld"] = [w for w in fr["withheld"] if w[0] != "person.date_of_birth"]
    assert reason(world, encrypt(world, fr)) == "grant"


def test_p2_disclosure_removed(world: World) -> None:
    """Dropping a disclosure the origin granted (narrowing the view) is detected."""
    fr = decrypt(world, package(world, seal_notice(world)))
    fr["disclosures"].pop()
    assert reason(world, encrypt(world, fr)) == "grant"


def test_p2_disclosure_swapped(world: World) -> None:
    """Swapping one granted disclosure for another genuine one (same count) is detected."""
    sealed = seal_notice(world)
    fr = decrypt(world, package(world, sealed, "FR"))
    de = decrypt(world, package(world, sealed, "DE"), "DE")
    fp = next(d for d in de["disclosures"] if d[1] == "person.fingerprints")
    fr["disclosures"][0] = fp
    assert reason(world, encrypt(world, fr)) == "grant"


def test_p2_values_swapped_between_paths(world: World) -> None:
    """Moving a value to another path changes its digest."""
    fr = decrypt(world, package(world, seal_notice(world)))
    a, b = fr["disclosures"]
    a[2], b[2] = b[2], a[2]
    assert reason(world, encrypt(world, fr)) == "digest"


def test_p2_fabricated_disclosure(world: World) -> None:
    """A disclosure the origin never sealed has no digest in the statement."""
    fr = decrypt(world, package(world, seal_notice(world)))
    fr["disclosures"].append(["AAAAAAAAAAAAAAAAAAAAAA", "person.alias", "X"])
    assert reason(world, encrypt(world, fr)) == "digest"


def test_p2_duplicate_disclosure(world: World) -> None:
    """The same disclosure twice is refused rather than silently merged."""
    fr = decrypt(world, package(world, seal_notice(world)))
    fr["disclosures"].append(fr["disclosures"][0])
    assert reason(world, encrypt(world, fr)) == "digest"


def test_p2_withheld_manifest_edited(world: World) -> None:
    """Hiding that a field was withheld, or changing the rule that withheld it, is detected."""
    fr = decrypt(world, package(world, seal_notice(world)))
    dropped = {**fr, "withheld": fr["withheld"][1:]}
    assert reason(world, encrypt(world, dropped)) == "grant"
    renamed = {**fr, "withheld": [[fr["withheld"][0][0], "some-other-rule"], fr["withheld"][1]]}
    assert reason(world, encrypt(world, renamed)) == "grant"


def test_p2_policy_id_changed(world: World) -> None:
    """The policy id that produced the view is part of the grant."""
    fr = decrypt(world, package(world, seal_notice(world)))
    assert reason(world, encrypt(world, {**fr, "policy": "FR@4"})) == "grant"


def test_p2_grant_widened_in_statement(world: World) -> None:
    """A relay replacing FR's grant hash with DE's (wider) one breaks the signature."""
    sealed = seal_notice(world)
    fr = decrypt(world, package(world, sealed, "FR"))
    de = decrypt(world, package(world, sealed, "DE"), "DE")
    st = statement_of(fr)
    # move FR from its own grant group into DE's (wider) one
    groups = {h: [r for r in rs if r != "FR"] for h, rs in st["grants"].items()}
    de_hash = next(h for h, rs in st["grants"].items() if "DE" in rs)
    groups[de_hash] = sorted([*groups[de_hash], "FR"])
    st["grants"] = {h: rs for h, rs in groups.items() if rs}
    widened = with_statement(fr, st, ed25519.Ed25519PrivateKey.generate())
    widened["disclosures"] = de["disclosures"]
    widened["withheld"], widened["policy"] = [], de["policy"]
    assert reason(world, encrypt(world, widened)) == "signature"


def test_p2_package_reencrypted_by_one_recipient_for_another(world: World) -> None:
    """DE re-encrypts its (fuller) package to FR: FR's signed grant does not match that view."""
    sealed = seal_notice(world)
    de = decrypt(world, package(world, sealed, "DE"), "DE")
    assert reason(world, encrypt(world, de, "FR")) == "grant"


def test_p2_withheld_and_disclosed_at_once(world: World) -> None:
    """A view that claims a path both disclosed and withheld cannot be built by a valid grant."""
    with pytest.raises(ValueError, match="both discloses and withholds"):
        seal_notice(
            world,
            grants={"FR": Grant(frozenset({"charges"}), (("charges", "r"),))},
        )


# --- P3 confidentiality -------------------------------------------------------------------------


def test_p3_other_recipient_cannot_decrypt(world: World) -> None:
    """DE holds no key for FR's key id, and its own key does not open FR's ciphertext."""
    data = package(world, seal_notice(world), "FR")
    assert reason(world, data, "DE", topic=inbox("FR")) == "decrypt"
    de = world.keys["DE"]
    from broker.envelope import open_package

    with pytest.raises(EnvelopeRejected) as info:
        open_package(
            data,
            topic=inbox("FR"),
            recipient="FR",
            decryption_keys={world.keys["FR"].encryption_key_id: de.encryption_key},
            directory=world.directory,
            now=OPEN_AT,
        )
    assert info.value.reason == "decrypt"


def test_p3_broker_sees_only_minimal_header(world: World) -> None:
    """The clear part of a frame is magic, version, suite and the key id; no name, type or value."""
    data = package(world, seal_notice(world), "FR")
    parsed = frame.decode(data)
    kid = world.keys["FR"].encryption_key_id.encode()
    assert data[: 7 + len(kid)] == frame.MAGIC + bytes([1, 1, len(kid)]) + kid
    for secret in ("ROSSI", "1975-04-12", "fraud", "2025/RED/0042", "FR@3"):
        assert secret.encode() not in data
    # Short strings such as the type "red" or the sender "IT" occur by chance in kilobytes of
    # random ciphertext (about 8% for "IT"); the equality above already proves the clear part
    # is exactly magic, version, suite and key id.
    assert len(parsed.ciphertext) > 32


# --- P4 context binding -------------------------------------------------------------------------


def test_p4_moved_to_another_topic(world: World) -> None:
    """A package copied to another topic (here DE's inbox) does not decrypt: topic is in info."""
    data = package(world, seal_notice(world), "FR")
    assert reason(world, data, topic="nbx.inbox.DE") == "decrypt"


def test_p4_claimed_for_another_recipient_id(world: World) -> None:
    """Opening under another recipient id fails HPKE: the recipient id is in info."""
    data = package(world, seal_notice(world), "FR")
    from broker.envelope import open_package

    fr = world.keys["FR"]
    with pytest.raises(EnvelopeRejected) as info:
        open_package(
            data,
            topic=inbox("FR"),
            recipient="DE",
            decryption_keys={fr.encryption_key_id: fr.encryption_key},
            directory=world.directory,
            now=OPEN_AT,
        )
    assert info.value.reason == "decrypt"


def test_p4_key_id_rewritten_in_frame(world: World) -> None:
    """Rewriting the frame's key id to another key the recipient holds fails: kid is in info."""
    data = package(world, seal_notice(world), "FR")
    fr = world.keys["FR"]
    parsed = frame.decode(data)
    other = BureauKeys.generate("FR")
    rewritten = frame.encode(parsed.suite, other.encryption_key_id, parsed.ciphertext)
    from broker.envelope import open_package

    with pytest.raises(EnvelopeRejected) as info:
        open_package(
            rewritten,
            topic=inbox("FR"),
            recipient="FR",
            decryption_keys={
                fr.encryption_key_id: fr.encryption_key,
                other.encryption_key_id: fr.encryption_key,
            },
            directory=world.directory,
            now=OPEN_AT,
        )
    assert info.value.reason == "decrypt"


def test_p4_not_in_audience(world: World) -> None:
    """A package sealed for DE alone, re-encrypted by DE to FR: FR is not addressed."""
    sealed = seal_notice(world, grants={"DE": DE_GRANT})
    de = decrypt(world, package(world, sealed, "DE"), "DE")
    assert reason(world, encrypt(world, de, "FR")) == "not-addressed"


def test_p4_expired(world: World) -> None:
    """A package delayed beyond its validity is rejected at its expiry instant and after."""
    data = package(world, seal_notice(world, validity=timedelta(hours=2)))
    assert open_as(world, data, now=T0 + timedelta(hours=2) - timedelta(milliseconds=1))
    assert reason(world, data, now=T0 + timedelta(hours=2)) == "expired"
    assert reason(world, data, now=T0 + timedelta(days=365)) == "expired"


def test_p4_created_in_the_future(world: World) -> None:
    """A statement dated beyond the allowed clock skew is not yet valid."""
    data = package(world, seal_notice(world, now=OPEN_AT + timedelta(hours=1)))
    assert reason(world, data) == "not-yet-valid"


def test_p4_too_large(world: World) -> None:
    """An oversized frame is refused before any parsing or decryption."""
    data = package(world, seal_notice(world))
    assert reason(world, data, max_size=len(data) - 1) == "too-large"


def test_p4_statement_not_canonical(world: World) -> None:
    """A statement that is not exact JCS (here: reordered keys) is malformed, even if signed."""
    pkg = decrypt(world, package(world, seal_notice(world)))
    st = statement_of(pkg)
    body = json.dumps(st, sort_keys=False, indent=1).encode()
    assert body != jcs(st)
    from broker.envelope.seal import SIGNATURE_DOMAIN
    from broker.wire.canonical import b64u

    signed = {
        **pkg,
        "statement": b64u(body),
        "signature": b64u(world.keys["IT"].signing_key.sign(SIGNATURE_DOMAIN + body)),
    }
    assert reason(world, encrypt(world, signed)) == "malformed"


# --- P5 hidden withheld values ------------------------------------------------------------------


def test_p5_withheld_value_not_in_package(world: World) -> None:
    """Neither the frame nor the decrypted package of FR contains a value withheld from FR."""
    data = package(world, seal_notice(world), "FR")
    plaintext = json.dumps(decrypt(world, data), ensure_ascii=False)
    for path, _rule in FR_GRANT.withheld:
        value = UNITS[path]
        assert value.encode() not in data
        assert value not in plaintext
    assert "person.date_of_birth" in plaintext  # the path is visible (P2), the value is not


def test_p5_withheld_digest_is_salted(world: World) -> None:
    """The digest of a withheld value cannot be recomputed from a guess: it is salted, and the
    same value sealed twice gets different digests."""
    pkg = decrypt(world, package(world, seal_notice(world), "FR"))
    digests = set(statement_of(pkg)["digests"])
    path, value = "person.date_of_birth", UNITS["person.date_of_birth"]
    for guess in ([path, value], ["", path, value], ["AAAAAAAAAAAAAAAAAAAAAA", path, value]):
        assert digest(guess) not in digests
        assert hashlib.sha256(json.dumps(guess).encode()).hexdigest() not in digests
    again = decrypt(world, package(world, seal_notice(world), "FR"))
    assert set(statement_of(again)["digests"]).isdisjoint(digests)


def test_p5_salts_are_16_random_bytes(world: World) -> None:
    """Every disclosure carries its own 128-bit salt."""
    pkg = decrypt(world, package(world, seal_notice(world), "DE"), "DE")
    salts = [d[0] for d in pkg["disclosures"]]
    assert len(set(salts)) == len(salts) == len(UNITS)
    from broker.wire.canonical import b64u_decode

    assert all(len(b64u_decode(s)) == 16 for s in salts)


# --- P6 key lifecycle ---------------------------------------------------------------------------


def _revoke(world: World, bureau: str, kid: str, at: datetime) -> World:
    w = World(world.anchor, world.keys, world.body, world.directory)
    w.resign_directory(revoke_key(w.body, bureau, kid, at=at, reason="key-compromise", now=at))
    return w


def test_p6_revoked_key_used_after_revocation() -> None:
    """A message signed (created_at) after the signing key's revocation is rejected."""
    world = make_world()
    w = _revoke(world, "IT", world.keys["IT"].signing_key_id, T0 - timedelta(hours=1))
    assert reason(w, package(w, seal_notice(w))) == "key-revoked"


def test_p6_backdated_signature_received_after_revocation() -> None:
    """The holder of a revoked key back-dates created_at; the receive time still rejects it."""
    world = make_world()
    w = _revoke(world, "IT", world.keys["IT"].signing_key_id, T0 + timedelta(minutes=30))
    data = package(w, seal_notice(w, now=T0))  # created before the revocation
    assert reason(w, data, received_at=T0 + timedelta(minutes=31)) == "key-revoked"
    assert reason(w, data) == "key-revoked"  # received_at defaults to now


def test_p6_signed_received_and_opened_before_revocation_is_valid() -> None:
    """A message created, received and opened before the revocation time is valid."""
    world = make_world()
    w = _revoke(world, "IT", world.keys["IT"].signing_key_id, T0 + timedelta(minutes=30))
    data = package(w, seal_notice(w, now=T0))
    got = open_as(w, data, now=T0 + timedelta(minutes=20), received_at=T0 + timedelta(minutes=1))
    assert got.sender == "IT"


def test_p6_revocation_is_checked_at_opening_time_too() -> None:
    """Created and (by the broker's clock) received before the revocation, but opened after it:
    key-revoked. Neither time is the node's own, so a key thief who back-dates both (a topic that
    keeps the producer's timestamps) gains nothing."""
    world = make_world()
    w = _revoke(world, "IT", world.keys["IT"].signing_key_id, T0 + timedelta(minutes=30))
    data = package(w, seal_notice(w, now=T0))
    assert (
        reason(w, data, now=T0 + timedelta(minutes=45), received_at=T0 + timedelta(minutes=1))
        == "key-revoked"
    )


def test_p6_rotation_overlap() -> None:
    """After rotation the old signing key verifies until the overlap ends, then key-expired;
    the new key verifies from the rotation on."""
    world = make_world()
    old_sealed = seal_notice(world, now=T0)
    new_it = BureauKeys.generate("IT")
    rotated = rotate_keys(world.body, public_doc(new_it), now=T0, overlap=timedelta(days=2))
    world.resign_directory(rotated)
    data = package(world, old_sealed)
    assert (
        open_as(world, data, now=T0 + timedelta(days=1)).sender_kid
        == world.keys["IT"].signing_key_id
    )
    assert reason(world, data, now=T0 + timedelta(days=2)) == "key-expired"
    world.keys["IT"] = new_it
    fresh = package(world, seal_notice(world, now=T0 + timedelta(days=3)))
    assert (
        open_as(world, fresh, now=T0 + timedelta(days=3, minutes=1)).sender_kid
        == new_it.signing_key_id
    )


def test_p6_rotation_moves_senders_to_the_new_encryption_key() -> None:
    """After rotation, the directory hands senders the recipient's new encryption key."""
    world = make_world()
    new_fr = BureauKeys.generate("FR")
    world.resign_directory(rotate_keys(world.body, public_doc(new_fr), now=T0))
    assert (
        world.directory.encryption_key("FR", T0 + timedelta(seconds=1))[0]
        == new_fr.encryption_key_id
    )
    before = T0 - timedelta(seconds=1)
    assert world.directory.encryption_key("FR", before)[0] == world.keys["FR"].encryption_key_id


def test_p6_directory_rollback_rejected() -> None:
    """A node holding serial N refuses a validly signed directory with a lower serial."""
    world = make_world()
    old = sign_directory(world.body, world.anchor)
    world.resign_directory(
        revoke_key(world.body, "IT", world.keys["IT"].signing_key_id, at=T0, reason="x", now=T0)
    )
    with pytest.raises(KeyDirectoryError, match="rollback"):
        world.directory.accept(old, world.anchor.public_key())


def test_p6_forged_directory_rejected() -> None:
    """A directory signed by any key but the pinned anchor is refused."""
    world = make_world()
    forger = ed25519.Ed25519PrivateKey.generate()
    body = world.body.model_copy(update={"anchor_kid": world.body.anchor_kid})
    content = body.to_json()
    from broker.keys.directory import DIRECTORY_DOMAIN
    from broker.wire.canonical import b64u

    forged = json.dumps(
        {"directory": content, "signature": b64u(forger.sign(DIRECTORY_DOMAIN + jcs(content)))}
    ).encode()
    with pytest.raises(KeyDirectoryError, match="signature does not verify"):
        Directory.from_signed(forged, world.anchor.public_key())


def test_p6_tampered_directory_rejected() -> None:
    """Adding a key to a signed directory without re-signing breaks the anchor signature."""
    world = make_world()
    document = json.loads(sign_directory(world.body, world.anchor))
    document["directory"]["bureaus"][0]["keys"][0]["not_after"] = None
    document["directory"]["bureaus"][0]["name"] = "NCB EVIL"
    with pytest.raises(KeyDirectoryError, match="signature does not verify"):
        Directory.from_signed(json.dumps(document).encode(), world.anchor.public_key())
