"""Known-answer vectors for the wire format: build them from fixed keys, salts, ids and times.

``python -m tests.vectors.vectors`` rewrites ``envelope-v2.json``, ``directory-v1.json``,
``safeguards-v1.json`` and ``response-v1.json``. Only do that on purpose, for a wire-format
change that is recorded in the changelog: the vector test exists so that an accidental change
breaks it.

HPKE in ``cryptography`` draws a fresh ephemeral key on every encryption, so the frame is not
reproducible; the vectors pin every deterministic part (digests, statement, signature, grant hashes,
plaintext package, HPKE ``info``, frame header) and store one frame that must keep opening.

With frame padding, a frame is the package JSON followed by spaces up to a size bucket
(``broker.envelope.seal.padded_size``); ``frame_FR`` and ``frame_FR_1`` are padded frames. The
unpadded frames the previous release wrote (the package JSON encrypted as it is) are kept as
``*_unpadded`` and must keep opening.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from broker.envelope import Grant, seal, sign_batch
from broker.envelope.seal import Sealed, hpke_info, prepare
from broker.keys import BureauKeys, DirectoryBody, sign_directory
from broker.keys.directory_edit import PublicDocument, add_bureau, empty_directory
from broker.keys.files import public_document
from broker.transport.topics import HOLD_HEADER, HOLD_TO_HEADER
from broker.vocab import MessageKind
from broker.wire import frame as frame_codec
from broker.wire.suites import HPKE_SUITES, SUITE_X25519

HERE = Path(__file__).parent
ENVELOPE = HERE / "envelope-v2.json"
DIRECTORY = HERE / "directory-v1.json"
SAFEGUARDS = HERE / "safeguards-v1.json"
RESPONSE = HERE / "response-v1.json"
RESPONSE_MSG_ID = "0194694c-5dc0-7000-8000-000000000003"
RESPONSE_NOTICE = "IT-2025-0001"
REVIEW_MSG_ID = "0194694c-5dc0-7000-8000-000000000002"
T0 = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)
MSG_ID = "0194694c-5dc0-7000-8000-000000000001"
TOPIC = "nbx.inbox.FR"


def _seed(label: int) -> bytes:
    return bytes([label]) * 32


def fixed_keys() -> dict[str, BureauKeys]:
    """Deterministic keys for IT (sender) and FR (recipient)."""
    return {
        cc: BureauKeys(
            cc,
            ed25519.Ed25519PrivateKey.from_private_bytes(_seed(n)),
            x25519.X25519PrivateKey.from_private_bytes(_seed(n + 1)),
        )
        for cc, n in (("IT", 1), ("FR", 3))
    }


def fixed_anchor() -> ed25519.Ed25519PrivateKey:
    """Deterministic trust anchor key."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(_seed(9))


def fixed_salts() -> Any:
    """A salt source giving 0x10.., 0x11.., ... (16 bytes each)."""
    counter = iter(range(0x10, 0x100))
    return lambda n: bytes([next(counter)]) * n


def sealed_vector() -> Sealed:
    """The vector message: IT to FR, two disclosed units, one withheld."""
    keys = fixed_keys()
    return seal(
        signer=keys["IT"],
        kind="notice",
        notice_id="2025/RED/0001",
        notice_type="red",
        header={"category": "red"},
        units={
            "person.family_name": "BIANCHI",
            "person.date_of_birth": "1980-02-29",
            "charges": ["fraud"],
        },
        grants={
            "FR": Grant(
                frozenset({"person.family_name", "charges"}),
                (("person.date_of_birth", "fr-minimise-dob"),),
                "FR@1",
            )
        },
        handling="restricted",
        now=T0,
        validity=timedelta(days=30),
        msg_id=MSG_ID,
        salt=fixed_salts(),
    )


def batch_vector() -> list[Sealed]:
    """The batch vector: three messages from IT to FR signed together (RFC 9162 tree head)."""
    keys = fixed_keys()
    salts = fixed_salts()
    unsigned = [
        prepare(
            signer=keys["IT"],
            kind="notice",
            notice_id=f"2025/RED/000{i + 2}",
            notice_type="red",
            header={"category": "red"},
            units={"person.family_name": f"BIANCHI-{i}", "charges": ["fraud"]},
            grants={"FR": Grant(frozenset({"person.family_name"}), (("charges", "r1"),), "FR@1")},
            handling="restricted",
            now=T0,
            validity=timedelta(days=30),
            msg_id=f"0194694c-5dc0-7000-8000-00000000001{i}",
            salt=salts,
        )
        for i in range(3)
    ]
    signed = sign_batch(keys["IT"], [u.statement for u in unsigned])
    return [u.signed(sig, proof) for u, (sig, proof) in zip(unsigned, signed, strict=True)]


def directory_vector() -> DirectoryBody:
    """The vector directory: IT and FR with the fixed keys."""
    anchor = fixed_anchor()
    body = empty_directory(anchor.public_key(), T0)
    for keys in fixed_keys().values():
        doc = PublicDocument.model_validate(public_document(keys))
        body = add_bureau(body, doc, name=f"NCB {keys.bureau}", now=T0)
    return body


def build() -> tuple[dict[str, Any], bytes]:
    """The envelope vector document and the signed directory bytes."""
    keys = fixed_keys()
    sealed = sealed_vector()
    fr = keys["FR"]
    frame = sealed.package_for(
        "FR",
        topic=TOPIC,
        recipient_kid=fr.encryption_key_id,
        recipient_key=fr.encryption_key.public_key(),
    )
    envelope: dict[str, Any] = {
        "comment": "NBX envelope (statement v2) known-answer vector; see tests/vectors/vectors.py",
        "keys": {
            cc: {"signing_seed": _seed(n).hex(), "encryption_seed": _seed(n + 1).hex()}
            for cc, n in (("IT", 1), ("FR", 3))
        },
        "topic": TOPIC,
        "statement": sealed.statement.decode(),
        "signature": sealed.signature.hex(),
        "disclosures": dict(sealed.disclosures.items()),
        "plaintext_FR": sealed.plaintext_for("FR").decode(),
        "info_FR": hpke_info(TOPIC, "FR", fr.encryption_key_id, SUITE_X25519).hex(),
        "frame_header_FR": frame[: 7 + frame[6]].hex(),
        "frame_FR": frame.hex(),
    }
    batch = batch_vector()
    member = batch[1]
    batch_frame = member.package_for(
        "FR",
        topic=TOPIC,
        recipient_kid=fr.encryption_key_id,
        recipient_key=fr.encryption_key.public_key(),
    )
    envelope["batch"] = {
        "comment": "three statements under one signature; the package of the second for FR",
        "statements": [b.statement.decode() for b in batch],
        "signature": member.signature.hex(),
        "plaintext_FR_1": member.plaintext_for("FR").decode(),
        "frame_FR_1": batch_frame.hex(),
    }
    # what the previous release wrote: the package JSON encrypted without padding
    envelope["frame_FR_unpadded"] = _unpadded(sealed, fr).hex()
    envelope["batch"]["frame_FR_1_unpadded"] = _unpadded(member, fr).hex()
    return envelope, sign_directory(directory_vector(), fixed_anchor())


def _unpadded(sealed: Sealed, fr: BureauKeys) -> bytes:
    """The frame of the release before padding: the package JSON encrypted as it is."""
    info = hpke_info(TOPIC, "FR", fr.encryption_key_id, SUITE_X25519)
    ciphertext = HPKE_SUITES[SUITE_X25519].encrypt(
        sealed.plaintext_for("FR"), fr.encryption_key.public_key(), info=info
    )
    return frame_codec.encode(SUITE_X25519, fr.encryption_key_id, ciphertext)


def safeguards() -> dict[str, Any]:
    """The safeguard vector: the statement hash a review attests (of the envelope vector's
    statement), XR's review approving it (a header-only statement, empty grant, signature), and
    the headers of a package held for FR on XR's holding topic."""
    reviewer = BureauKeys(
        "XR",
        ed25519.Ed25519PrivateKey.from_private_bytes(_seed(5)),
        x25519.X25519PrivateKey.from_private_bytes(_seed(6)),
    )
    subject = sealed_vector()
    body = {
        "subject_sender": "IT",
        "subject_msg_id": MSG_ID,
        "statement_hash": subject.statement_hash,
        "decision": "approved",
        "grounds": [],
        "reason": "meets the criteria",
    }
    review = seal(
        signer=reviewer,
        kind=MessageKind.REVIEW.value,
        notice_id="2025/RED/0001",
        notice_type="red",
        header={"notice_id": "2025/RED/0001", "notice_type": "red", "review": body},
        units={},
        grants={"FR": Grant(frozenset(), (), "safeguard:review")},
        handling="H0",
        now=T0 + timedelta(hours=1),
        validity=timedelta(days=30),
        msg_id=REVIEW_MSG_ID,
        salt=fixed_salts(),
    )
    return {
        "comment": "NBX safeguard messages known-answer vector; see tests/vectors/vectors.py",
        "subject_statement_hash": subject.statement_hash,
        "review_statement": review.statement.decode(),
        "review_signature": review.signature.hex(),
        "review_statement_hash": review.statement_hash,
        "held_headers_FR": [[HOLD_TO_HEADER, "FR"], [HOLD_HEADER, subject.statement_hash]],
    }


def response_body() -> dict[str, Any]:
    """The vector response's body: FR answers IT's notice ``arrested``, a photo by reference."""
    from broker.schemas.lifecycle import Response

    return Response.model_validate(
        {
            "notice_id": RESPONSE_NOTICE,
            "kind": "arrested",
            "note": "provisionally arrested",
            "attachments": [
                {"uri": "urn:nbx:fr:evidence:1", "sha256": "ab" * 32, "media_type": "image/jpeg"}
            ],
            "in_reply_to": MSG_ID,
            "at": T0.isoformat(),
        }
    ).model_dump(mode="json")


def response_sealed() -> Sealed:
    """FR's response to IT's notice ``IT-2025-0001``: a header-only statement (the body
    under ``response``, the issuer in ``issuing_bureau``), one empty grant for IT."""
    keys = fixed_keys()
    return seal(
        signer=keys["FR"],
        kind=MessageKind.RESPONSE.value,
        notice_id=RESPONSE_NOTICE,
        notice_type="red",
        header={
            "notice_id": RESPONSE_NOTICE,
            "notice_type": "red",
            "issuing_bureau": "IT",
            MessageKind.RESPONSE.value: response_body(),
        },
        units={},
        grants={"IT": Grant(frozenset(), (), "response:arrested")},
        handling="H0",
        now=T0,  # the msg id's time (a UUIDv7 is drawn with created_at)
        validity=timedelta(days=30),
        msg_id=RESPONSE_MSG_ID,
        salt=fixed_salts(),
    )


def response(frame: bytes | None = None) -> dict[str, Any]:
    """The response vector: statement, signature, statement hash, IT's package, and one frame
    for IT on ``nbx.inbox.IT`` (random HPKE ephemeral: ``frame`` keeps a stored one)."""
    sealed = response_sealed()
    it = fixed_keys()["IT"]
    if frame is None:
        frame = sealed.package_for(
            "IT",
            topic="nbx.inbox.IT",
            recipient_kid=it.encryption_key_id,
            recipient_key=it.encryption_key.public_key(),
        )
    return {
        "comment": "NBX response message known-answer vector; see tests/vectors/vectors.py",
        "statement": sealed.statement.decode(),
        "signature": sealed.signature.hex(),
        "statement_hash": sealed.statement_hash,
        "plaintext_IT": sealed.plaintext_for("IT").decode(),
        "frame_IT": frame.hex(),
    }


def main() -> None:
    """Rewrite the vector files."""
    envelope, directory = build()
    ENVELOPE.write_text(json.dumps(envelope, indent=2, ensure_ascii=False) + "\n")
    DIRECTORY.write_bytes(directory)
    SAFEGUARDS.write_text(json.dumps(safeguards(), indent=2, ensure_ascii=False) + "\n")
    RESPONSE.write_text(json.dumps(response(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
