"""A small world for envelope tests: a trust anchor, four bureaus, a signed directory, one notice.

IT is the sender; FR gets a redacted view, DE the full view, ES is a bystander bureau.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.envelope import Grant, Sealed, VerifiedPackage, open_package, seal, sign_batch
from broker.envelope.seal import SIGNATURE_DOMAIN, hpke_info, prepare
from broker.keys import BureauKeys, Directory, DirectoryBody, sign_directory
from broker.keys.directory_edit import PublicDocument, add_bureau, empty_directory
from broker.keys.files import public_document
from broker.wire import frame
from broker.wire.canonical import b64u, b64u_decode, jcs
from broker.wire.suites import HPKE_SUITES, SUITE_X25519

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OPEN_AT = T0 + timedelta(hours=1)
UNITS: dict[str, Any] = {
    "person.family_name": "ROSSI",
    "person.date_of_birth": "1975-04-12",
    "person.fingerprints": "fp-ref-7731",
    "charges": ["fraud", "money laundering"],
}
FR_GRANT = Grant(
    frozenset({"person.family_name", "charges"}),
    (("person.date_of_birth", "fr-minimise-dob"), ("person.fingerprints", "fr-no-biometrics")),
    "FR@3",
)
DE_GRANT = Grant(frozenset(UNITS), (), "DE@1")


@dataclass
class World:
    """Keys and the directory every test starts from."""

    anchor: ed25519.Ed25519PrivateKey
    keys: dict[str, BureauKeys]
    body: DirectoryBody
    directory: Directory

    def resign_directory(self, body: DirectoryBody) -> None:
        """Make ``body`` the current directory (signed by the anchor)."""
        self.body = body
        self.directory = Directory.from_signed(
            sign_directory(body, self.anchor), self.anchor.public_key()
        )


def public_doc(keys: BureauKeys) -> PublicDocument:
    """The public document of ``keys``."""
    return PublicDocument.model_validate(public_document(keys))


def make_world(bureaus: tuple[str, ...] = ("IT", "FR", "DE", "ES")) -> World:
    """A fresh world whose keys are valid from a day before :data:`T0`."""
    anchor = ed25519.Ed25519PrivateKey.generate()
    since = T0 - timedelta(days=1)
    body = empty_directory(anchor.public_key(), since)
    keys = {}
    for bureau in bureaus:
        keys[bureau] = BureauKeys.generate(bureau)
        body = add_bureau(body, public_doc(keys[bureau]), name=f"NCB {bureau}", now=since)
    directory = Directory.from_signed(sign_directory(body, anchor), anchor.public_key())
    return World(anchor, keys, body, directory)


def seal_notice(
    world: World,
    *,
    sender: str = "IT",
    grants: dict[str, Grant] | None = None,
    now: datetime = T0,
    **kwargs: Any,
) -> Sealed:
    """Seal the test notice from ``sender``."""
    return seal(
        signer=world.keys[sender],
        kind="notice",
        notice_id="2025/RED/0042",
        notice_type="red",
        header={"category": "red", "lang": "en"},
        units=UNITS,
        grants=grants if grants is not None else {"FR": FR_GRANT, "DE": DE_GRANT},
        handling="restricted",
        now=now,
        **kwargs,
    )


def sealed_batch(world: World, n: int, sender: str = "IT") -> list[Sealed]:
    """``n`` messages from ``sender`` (to FR and DE) signed as one batch."""
    unsigned = [
        prepare(
            signer=world.keys[sender],
            kind="notice",
            notice_id=f"2025/RED/{i:04d}",
            notice_type="red",
            header={"category": "red", "lang": "en"},
            units=UNITS,
            grants={"FR": FR_GRANT, "DE": DE_GRANT},
            handling="restricted",
            now=T0,
        )
        for i in range(n)
    ]
    signed = sign_batch(world.keys[sender], [u.statement for u in unsigned])
    return [u.signed(sig, proof) for u, (sig, proof) in zip(unsigned, signed, strict=True)]


def inbox(recipient: str) -> str:
    """The inbox topic of ``recipient``."""
    return f"nbx.inbox.{recipient}"


def package(world: World, sealed: Sealed, recipient: str = "FR", topic: str | None = None) -> bytes:
    """The frame ``sealed`` produces for ``recipient``."""
    keys = world.keys[recipient]
    return sealed.package_for(
        recipient,
        topic=topic or inbox(recipient),
        recipient_kid=keys.encryption_key_id,
        recipient_key=keys.encryption_key.public_key(),
    )


def open_as(
    world: World,
    data: bytes,
    recipient: str = "FR",
    *,
    topic: str | None = None,
    now: datetime = OPEN_AT,
    **kwargs: Any,
) -> VerifiedPackage:
    """Open ``data`` as ``recipient`` reading its own inbox."""
    keys = world.keys[recipient]
    return open_package(
        data,
        topic=topic or inbox(recipient),
        recipient=recipient,
        decryption_keys={keys.encryption_key_id: keys.encryption_key},
        directory=world.directory,
        now=now,
        **kwargs,
    )


def decrypt(world: World, data: bytes, recipient: str = "FR") -> dict[str, Any]:
    """The package JSON ``recipient`` decrypts from its frame (what an attacker starts from)."""
    keys = world.keys[recipient]
    parsed = frame.decode(data)
    info = hpke_info(inbox(recipient), recipient, parsed.recipient_kid, parsed.suite)
    plaintext = HPKE_SUITES[parsed.suite].decrypt(parsed.ciphertext, keys.encryption_key, info=info)
    out: dict[str, Any] = json.loads(plaintext)
    return out


def encrypt(world: World, package_json: dict[str, Any] | bytes, recipient: str = "FR") -> bytes:
    """Encrypt an arbitrary package to ``recipient`` (anyone can: the key is public)."""
    keys = world.keys[recipient]
    plaintext = (
        package_json if isinstance(package_json, bytes) else json.dumps(package_json).encode()
    )
    info = hpke_info(inbox(recipient), recipient, keys.encryption_key_id, SUITE_X25519)
    ct = HPKE_SUITES[SUITE_X25519].encrypt(plaintext, keys.encryption_key.public_key(), info=info)
    return frame.encode(SUITE_X25519, keys.encryption_key_id, ct)


def statement_of(package_json: dict[str, Any]) -> dict[str, Any]:
    """The statement inside a package, as JSON."""
    out: dict[str, Any] = json.loads(b64u_decode(package_json["statement"]))
    return out


def with_statement(
    package_json: dict[str, Any], statement: dict[str, Any], signer: ed25519.Ed25519PrivateKey
) -> dict[str, Any]:
    """``package_json`` with ``statement`` re-signed by ``signer``."""
    body = jcs(statement)
    return {
        **package_json,
        "statement": b64u(body),
        "signature": b64u(signer.sign(SIGNATURE_DOMAIN + body)),
    }
