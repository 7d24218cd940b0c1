"""Known-answer tests: a change to the wire format (statement, digests, signature, package, HPKE
info, frame header, directory encoding or signature) breaks one of these."""

from __future__ import annotations

import json
from datetime import timedelta

from broker.envelope import VerifiedPackage, open_package
from broker.keys import Directory, StaticDirectory
from broker.wire.canonical import digest

from .vectors import (
    DIRECTORY,
    ENVELOPE,
    SAFEGUARDS,
    T0,
    build,
    fixed_anchor,
    fixed_keys,
    safeguards,
)

STORED = json.loads(ENVELOPE.read_text())
SAFEGUARDS_STORED = json.loads(SAFEGUARDS.read_text())
FRESH, FRESH_DIRECTORY = build()


def test_statement_and_signature_are_pinned() -> None:
    """The signed statement bytes and the (deterministic) Ed25519 signature are unchanged."""
    assert FRESH["statement"] == STORED["statement"]
    assert FRESH["signature"] == STORED["signature"]


def test_disclosures_and_digests_are_pinned() -> None:
    """Disclosures ``[salt, path, value]`` and their digests in the statement are unchanged."""
    assert FRESH["disclosures"] == STORED["disclosures"]
    statement = json.loads(STORED["statement"])
    assert sorted(digest(d) for d in STORED["disclosures"].values()) == statement["digests"]


def test_package_plaintext_info_and_frame_header_are_pinned() -> None:
    """The package JSON, the HPKE info string and the clear frame header are unchanged."""
    assert FRESH["plaintext_FR"] == STORED["plaintext_FR"]
    assert FRESH["info_FR"] == STORED["info_FR"]
    assert FRESH["frame_header_FR"] == STORED["frame_header_FR"]
    assert STORED["frame_FR"].startswith(STORED["frame_header_FR"])


def test_stored_frame_still_opens() -> None:
    """The stored frame (random HPKE ephemeral) opens with the fixed recipient key."""
    keys = fixed_keys()
    fr = keys["FR"]
    got = open_package(
        bytes.fromhex(STORED["frame_FR"]),
        topic=STORED["topic"],
        recipient="FR",
        decryption_keys={fr.encryption_key_id: fr.encryption_key},
        directory=StaticDirectory([k.public() for k in keys.values()]),
        now=T0 + timedelta(minutes=1),
    )
    assert dict(got.disclosed) == {"person.family_name": "BIANCHI", "charges": ["fraud"]}
    assert got.withheld == (("person.date_of_birth", "fr-minimise-dob"),)
    assert got.msg_id == "0194694c-5dc0-7000-8000-000000000001"
    # what a reviewer attests is what the recipient computed from the frame it opened
    assert got.statement_hash == SAFEGUARDS_STORED["subject_statement_hash"]
    assert got.audience == ("FR",)


def test_batch_signature_and_proof_are_pinned() -> None:
    """Three statements under one signature: statements, signature, and the package with its
    proof (index, size, audit path) are unchanged, and the stored frame still opens."""
    assert FRESH["batch"]["statements"] == STORED["batch"]["statements"]
    assert FRESH["batch"]["signature"] == STORED["batch"]["signature"]
    assert FRESH["batch"]["plaintext_FR_1"] == STORED["batch"]["plaintext_FR_1"]
    proof = json.loads(STORED["batch"]["plaintext_FR_1"])["proof"]
    assert (proof["index"], proof["size"], len(proof["path"])) == (1, 3, 2)
    keys = fixed_keys()
    fr = keys["FR"]
    got = open_package(
        bytes.fromhex(STORED["batch"]["frame_FR_1"]),
        topic=STORED["topic"],
        recipient="FR",
        decryption_keys={fr.encryption_key_id: fr.encryption_key},
        directory=StaticDirectory([k.public() for k in keys.values()]),
        now=T0 + timedelta(minutes=1),
    )
    assert (got.notice_id, dict(got.disclosed)) == (
        "2025/RED/0003",
        {"person.family_name": "BIANCHI-1"},
    )


def test_directory_encoding_and_signature_are_pinned() -> None:
    """The signed directory is byte-identical and verifies against the fixed anchor."""
    assert DIRECTORY.read_bytes() == FRESH_DIRECTORY
    directory = Directory.from_signed(DIRECTORY.read_bytes(), fixed_anchor().public_key())
    assert directory.serial == 3
    assert directory.bureau_ids() == ["FR", "IT"]


def _open_stored(data_hex: str) -> VerifiedPackage:
    keys = fixed_keys()
    fr = keys["FR"]
    return open_package(
        bytes.fromhex(data_hex),
        topic=STORED["topic"],
        recipient="FR",
        decryption_keys={fr.encryption_key_id: fr.encryption_key},
        directory=StaticDirectory([k.public() for k in keys.values()]),
        now=T0 + timedelta(minutes=1),
    )


def test_padded_and_unpadded_frames_both_open_to_the_same_package() -> None:
    """WIRE FORMAT: frames are padded to a size bucket with spaces after the package
    JSON. The padded frames have a bucket size and decrypt to the pinned package plus spaces; the
    previous release's unpadded frames still open, to the same message."""
    from broker.envelope.seal import bucket_sizes, hpke_info
    from broker.wire import frame
    from broker.wire.suites import HPKE_SUITES

    fr = fixed_keys()["FR"]
    padded = bytes.fromhex(STORED["frame_FR"])
    assert len(padded) in bucket_sizes()
    parsed = frame.decode(padded)
    info = hpke_info(STORED["topic"], "FR", parsed.recipient_kid, parsed.suite)
    plaintext = HPKE_SUITES[parsed.suite].decrypt(parsed.ciphertext, fr.encryption_key, info=info)
    assert plaintext.rstrip(b" ") == STORED["plaintext_FR"].encode()
    assert len(plaintext) > len(STORED["plaintext_FR"])
    for new, old in (
        (STORED["frame_FR"], STORED["frame_FR_unpadded"]),
        (STORED["batch"]["frame_FR_1"], STORED["batch"]["frame_FR_1_unpadded"]),
    ):
        assert len(bytes.fromhex(new)) in bucket_sizes()
        assert len(bytes.fromhex(old)) not in bucket_sizes()
        a, b = _open_stored(new), _open_stored(old)
        assert (a.msg_id, dict(a.disclosed), a.withheld) == (
            b.msg_id,
            dict(b.disclosed),
            b.withheld,
        )


def test_safeguard_vector_is_pinned() -> None:
    """The statement hash a review attests, XR's review statement (header-only, one empty
    grant) with its deterministic signature and hash, and a held package's headers are
    unchanged; the statement hash is base64url SHA-256 of the signed statement bytes."""
    import base64
    import hashlib

    fresh = safeguards()
    assert fresh == SAFEGUARDS_STORED
    statement = SAFEGUARDS_STORED["review_statement"].encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(statement).digest()).rstrip(b"=")
    assert SAFEGUARDS_STORED["review_statement_hash"] == expected.decode()
    review = json.loads(statement)
    assert review["kind"] == "review"
    assert review["digests"] == []
    assert (
        review["header"]["review"]["statement_hash"]
        == (SAFEGUARDS_STORED["subject_statement_hash"])
    )
