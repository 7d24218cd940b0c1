"""Opening: the only way to turn bytes from an inbox into a :class:`VerifiedPackage`.

Checks run in this order and the first failure raises :class:`EnvelopeRejected` with its reason
code: ``too-large`` -> ``frame`` -> ``decrypt`` -> ``malformed`` -> ``key-unknown`` / ``key-revoked``
-> ``signature`` -> ``not-addressed`` -> ``grant`` -> ``digest`` -> ``expired``. The detail of a
failure goes to the debug log only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broker.envelope import frame
from broker.envelope.canonical import b64u_decode, digest, jcs
from broker.envelope.seal import SIGNATURE_DOMAIN, STATEMENT_VERSION, grant_hash, hpke_info
from broker.errors import EnvelopeRejected
from broker.keys.bureau import KeyLookup
from broker.logging import get_logger

MAX_FRAME_BYTES = 1 << 20
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


class UnverifiedPackage(BaseModel):
    """The decrypted package, parsed but not yet verified."""

    model_config = _STRICT
    statement: str
    signature: str
    disclosures: list[tuple[str, str, Any]]
    withheld: list[tuple[str, str]]
    policy: str


class UnverifiedStatement(BaseModel):
    """The signed statement, parsed but not yet verified."""

    model_config = _STRICT
    v: int
    msg_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    notice_id: str = Field(max_length=128)
    notice_type: str = Field(max_length=32)
    sender: str = Field(max_length=8)
    kid: str = Field(max_length=64)
    created_at: str
    expires_at: str
    audience: list[str]
    handling: str
    header: dict[str, Any]
    digests: list[str]
    grants: dict[str, str]


_OPENED = object()


@dataclass(frozen=True)
class VerifiedPackage:
    """A package whose origin, addressing and disclosures have all been verified."""

    msg_id: str
    kind: str
    notice_id: str
    notice_type: str
    sender: str
    sender_kid: str
    recipient: str
    created_at: datetime
    expires_at: datetime
    handling: str
    header: Mapping[str, Any]
    disclosed: Mapping[str, Any]
    withheld: tuple[tuple[str, str], ...]
    policy: str
    _token: object = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _OPENED:
            msg = "VerifiedPackage can only be created by broker.envelope.open_package"
            raise TypeError(msg)


def _reject(reason: str, detail: str) -> EnvelopeRejected:
    get_logger().debug("envelope.rejected", reason=reason, error_type=detail)
    return EnvelopeRejected(reason)


def _parse_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise _reject("malformed", "time") from None
    if at.tzinfo is None:
        raise _reject("malformed", "naive-time")
    return at


def open_package(
    data: bytes,
    *,
    topic: str,
    recipient: str,
    decryption_keys: Mapping[str, x25519.X25519PrivateKey],
    directory: KeyLookup,
    now: datetime | None = None,
    max_size: int = MAX_FRAME_BYTES,
) -> VerifiedPackage:
    """Decrypt and verify a frame received on ``topic`` by ``recipient``.

    ``decryption_keys`` maps the recipient's encryption key ids to private keys (several during a
    rotation overlap). ``directory`` resolves the sender's signing key at the statement's time.
    """
    if len(data) > max_size:
        raise _reject("too-large", "size")
    parsed = frame.decode(data)
    private_key = decryption_keys.get(parsed.recipient_kid)
    if private_key is None:
        raise _reject("decrypt", "unknown-recipient-kid")
    info = hpke_info(topic, recipient, parsed.recipient_kid, parsed.suite)
    try:
        plaintext = _SUITE.decrypt(parsed.ciphertext, private_key, info=info)
    except (InvalidTag, ValueError):
        raise _reject("decrypt", "hpke") from None
    try:
        package = UnverifiedPackage.model_validate_json(plaintext)
        statement_bytes = b64u_decode(package.statement)
        signature = b64u_decode(package.signature)
        statement = UnverifiedStatement.model_validate_json(statement_bytes)
    except (ValueError, TypeError, ValidationError, UnicodeDecodeError):
        raise _reject("malformed", "parse") from None
    if statement.v != STATEMENT_VERSION or jcs(json.loads(statement_bytes)) != statement_bytes:
        raise _reject("malformed", "not-canonical")
    created = _parse_time(statement.created_at)
    expires = _parse_time(statement.expires_at)
    public_key = directory.signing_key(statement.sender, statement.kid, created)
    try:
        public_key.verify(signature, SIGNATURE_DOMAIN + statement_bytes)
    except InvalidSignature:
        raise _reject("signature", "ed25519") from None
    if recipient not in statement.audience or recipient not in statement.grants:
        raise _reject("not-addressed", "audience")
    disclosed: dict[str, Any] = {}
    granted: list[str] = []
    known = set(statement.digests)
    for disclosure in package.disclosures:
        d = digest(list(disclosure))
        if d not in known:
            raise _reject("digest", "unknown-digest")
        path = disclosure[1]
        if path in disclosed:
            raise _reject("digest", "duplicate-path")
        disclosed[path] = disclosure[2]
        granted.append(d)
    withheld = [list(w) for w in package.withheld]
    if grant_hash(granted, withheld, package.policy) != statement.grants[recipient]:
        raise _reject("grant", "grant-hash")
    current = now if now is not None else datetime.now(UTC)
    if current >= expires:
        raise _reject("expired", "expires_at")
    return VerifiedPackage(
        msg_id=statement.msg_id,
        kind=statement.kind,
        notice_id=statement.notice_id,
        notice_type=statement.notice_type,
        sender=statement.sender,
        sender_kid=statement.kid,
        recipient=recipient,
        created_at=created,
        expires_at=expires,
        handling=statement.handling,
        header=statement.header,
        disclosed=disclosed,
        withheld=tuple((w[0], w[1]) for w in package.withheld),
        policy=package.policy,
        _token=_OPENED,
    )


def frame_fingerprint(data: bytes) -> str:
    """SHA-256 hex of raw bytes, for logs about a frame that could not be opened."""
    return hashlib.sha256(data).hexdigest()[:16]
