"""Opening: the only way to turn bytes from an inbox into a :class:`VerifiedPackage`.

Checks run in this order; the first failure raises :class:`EnvelopeRejected` with its reason code
(the detail goes to the debug log only, never into the exception):

==================  ==============================================================================
``too-large``       the frame is longer than ``max_size``
``frame``           bad magic, version, suite or key id in the binary frame
``suite-too-weak``  the frame's suite is below the recipient's ``min_suite`` (``[security]
                    min_suite = 2``: a lagging sender used the X25519 suite 1, not the
                    post-quantum hybrid suite 2; see docs/security/post-quantum.md)
``decrypt``         no private key for the frame's key id, wrong suite for it, or HPKE open failed
                    (wrong recipient, topic, key id, or any modified byte)
``malformed``       the decrypted package, statement or batch proof is not exactly what
                    :func:`seal` / :func:`sign_batch` write (a proof whose path does not fit its
                    index and size is malformed; a msg id that is not a UUIDv7 of the statement's
                    creation time; a header or disclosed value nested deeper than
                    :data:`MAX_NESTING`; more entries than :data:`MAX_ENTRIES`)
``validity``        the statement claims a validity (``expires_at - created_at``) longer than
                    :data:`MAX_VALIDITY`
``key-unknown``     the sender or its signing key id is not in the directory
``key-revoked``     the signing key was revoked at the statement time, at the receive time or
                    now (the time of opening)
``key-expired``     the signing key was outside its validity window at the statement time or at
                    the receive time
``signature``       the Ed25519 signature over the statement (or over the tree head its batch
                    proof leads to) does not verify
``not-addressed``   this recipient is not in the statement's audience
``digest``          a disclosure's digest is not in the statement, or a path is disclosed twice
``grant``           the disclosed digests, withheld manifest or policy differ from the signed grant
``clock-skew``      the receive time (the broker's) is later than now plus :data:`MAX_CLOCK_SKEW`
``not-yet-valid``   the statement was created later than the receive time plus clock skew
``expired``         the receive time is at or after the statement's ``expires_at``
==================  ==============================================================================
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, ConfigDict, Field

from broker.envelope.seal import (
    MAX_BATCH,
    SIGNATURE_DOMAIN,
    STATEMENT_VERSION,
    grant_hash,
    hpke_info,
    statement_hash,
    tree_head,
)
from broker.errors import EnvelopeRejected
from broker.ids import uuid7_time_ms
from broker.keys.bureau import KeyLookup
from broker.logging import get_logger
from broker.vocab import Reason
from broker.wire import frame, merkle
from broker.wire.canonical import b64u, b64u_decode, digests, loads_checked
from broker.wire.suites import (
    HPKE_SUITES,
    SUITE_X25519,
    RecipientPrivateKey,
    suite_for_private,
)

MAX_FRAME_BYTES = 1 << 20
#: How far a statement's ``created_at`` may lie ahead of the receive time (sender clock skew).
MAX_CLOCK_SKEW = timedelta(minutes=5)
#: The longest validity a statement may claim: a message not delivered within it is ``expired``
#: (a stolen key cannot mint messages that stay acceptable for years).
MAX_VALIDITY = timedelta(days=90)
#: How deep a header or disclosed value may nest (the notice models need fewer than 8 levels;
#: deeper nesting would exhaust the recursion of the code that assembles and checks views).
MAX_NESTING = 32
#: Most entries in any list or object of a statement or disclosure, and most disclosures.
MAX_ENTRIES = 4096
_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)
_ED25519_SIGNATURE_BYTES = 64


class UnverifiedProof(BaseModel):
    """A batch proof, parsed but not yet checked."""

    model_config = _STRICT
    index: int
    size: int
    path: list[str] = Field(max_length=8)  # log2(MAX_BATCH)


class UnverifiedPackage(BaseModel):
    """The decrypted package, parsed but not yet verified."""

    model_config = _STRICT
    statement: str
    signature: str
    proof: UnverifiedProof | None = None
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
    grants: dict[str, list[str]]


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
    #: base64url SHA-256 of the signed statement bytes (for a batch: its leaf statement); the
    #: same at every recipient and at the sender (:func:`statement_hash`)
    statement_hash: str
    #: every bureau the sender addressed this message to (the signed statement's audience), so a
    #: reviewer or the oversight body can answer all of them
    audience: tuple[str, ...]
    _token: object = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _OPENED:
            msg = "VerifiedPackage can only be created by broker.envelope.open_package"
            raise TypeError(msg)


def _reject(reason: Reason, detail: str) -> EnvelopeRejected:
    get_logger().debug("envelope.rejected", reason=reason, error_type=detail)
    return EnvelopeRejected(reason)


def _parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        msg = "naive time"
        raise ValueError(msg)
    return at


@dataclass(frozen=True)
class _Parsed:
    """The decrypted package after the strict parse (still unverified)."""

    package: UnverifiedPackage
    statement: UnverifiedStatement
    statement_bytes: bytes
    signature: bytes
    #: the bytes the signature covers: ``DOMAIN || statement``, or the batch's tree head
    signed: bytes
    batched: bool
    created: datetime
    expires: datetime
    disclosure_digests: tuple[str, ...]


def _parse(plaintext: bytes) -> _Parsed:
    """Strictly parse the plaintext; any deviation from what :func:`seal` writes -> ``malformed``.

    Everything here handles attacker-chosen bytes (anyone can encrypt to a recipient's public key),
    so every exception, including recursion and number-range errors from the JSON and JCS code,
    is folded into one rejection.
    """
    try:
        package = UnverifiedPackage.model_validate_json(plaintext)
        statement_bytes = b64u_decode(package.statement)
        signature = b64u_decode(package.signature)
        parsed, canonical = loads_checked(statement_bytes)  # one parse: model and JCS check
        statement = UnverifiedStatement.model_validate(parsed)
        created = _parse_time(statement.created_at)
        expires = _parse_time(statement.expires_at)
        disclosure_digests = tuple(digests([list(d) for d in package.disclosures]))
        signed = _signed_bytes(package, statement_bytes)
    except Exception:  # fold every parse failure of untrusted input into one reason
        raise _reject(Reason.MALFORMED, "parse") from None
    if (
        not canonical
        or statement.v != STATEMENT_VERSION
        or len(signature) != _ED25519_SIGNATURE_BYTES
        or expires <= created
        or not _grants_cover_audience(statement)
        or statement.digests != sorted(set(statement.digests))
        or not _bounded(statement.header)
        or not all(_bounded(d[2]) for d in package.disclosures)
        or len(package.disclosures) > MAX_ENTRIES
        or len(statement.digests) > MAX_ENTRIES
        or len(statement.audience) > MAX_ENTRIES
        or not _msg_id_fits(statement.msg_id, created)
    ):
        raise _reject(Reason.MALFORMED, "statement")
    if expires - created > MAX_VALIDITY:
        raise _reject(Reason.VALIDITY, "expires_at")
    return _Parsed(
        package,
        statement,
        statement_bytes,
        signature,
        signed,
        package.proof is not None,
        created,
        expires,
        disclosure_digests,
    )


def _bounded(value: Any) -> bool:
    """Whether ``value`` nests at most :data:`MAX_NESTING` deep with at most
    :data:`MAX_ENTRIES` entries per list or object (an explicit stack: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= MAX_NESTING or len(children) > MAX_ENTRIES:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _msg_id_fits(msg_id: str, created: datetime) -> bool:
    """A msg id is a UUIDv7 whose time is within :data:`MAX_CLOCK_SKEW` of ``created_at``:
    :func:`seal` draws both at once, so an id copied from another message does not fit."""
    ms = uuid7_time_ms(msg_id)
    if ms is None:
        return False
    return abs(ms - created.timestamp() * 1000) <= MAX_CLOCK_SKEW.total_seconds() * 1000


def _signed_bytes(package: UnverifiedPackage, statement_bytes: bytes) -> bytes:
    """What the signature must cover; ``ValueError`` for a proof that :func:`sign_batch` would
    not write (size outside 2..MAX_BATCH, a path that does not fit, non-canonical base64url)."""
    proof = package.proof
    if proof is None:
        if "proof" in package.model_fields_set:  # an explicit null: not what seal writes
            msg = "null proof"
            raise ValueError(msg)
        return SIGNATURE_DOMAIN + statement_bytes
    if not 2 <= proof.size <= MAX_BATCH:
        msg = "batch size out of range"
        raise ValueError(msg)
    path = [b64u_decode(h) for h in proof.path]
    if any(len(h) != merkle.HASH_BYTES for h in path) or [b64u(h) for h in path] != proof.path:
        msg = "bad audit path hash"
        raise ValueError(msg)
    leaf = merkle.leaf_hash(statement_bytes)
    return tree_head(proof.size, merkle.root_from_proof(leaf, proof.index, proof.size, path))


@functools.lru_cache(maxsize=1024)
def _tree_head_verified(public_key: bytes, signature: bytes, head: bytes) -> bool:
    """Verify a batch signature once: every package of a batch carries the same tree head and
    signature, so the Ed25519 verification is shared by the batch's messages this recipient
    gets. Only successes are cached (a failure raises); the key is every input of the check."""
    ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(signature, head)
    return True


def _verify(
    public_key: ed25519.Ed25519PublicKey, signature: bytes, signed: bytes, *, batched: bool
) -> None:
    """Ed25519 verification of ``signed``; ``InvalidSignature`` if it fails."""
    if batched:
        _tree_head_verified(public_key.public_bytes_raw(), signature, signed)
    else:
        public_key.verify(signature, signed)


def _grants_cover_audience(statement: UnverifiedStatement) -> bool:
    """Each audience member in exactly one grant group; groups sorted, non-empty."""
    members: list[str] = []
    for group in statement.grants.values():
        if not group or group != sorted(set(group)):
            return False
        members += group
    return len(members) == len(set(members)) and statement.audience == sorted(members)


def _not_revoked_now(directory: KeyLookup, sender: str, kid: str, now: datetime) -> None:
    """Refuse a key revoked by now, whatever the statement and broker times say: neither is
    under this node's control (a key thief back-dates ``created_at``; a topic whose records keep
    the producer's time lets him back-date the record too). A key merely past its rotation
    window now is still fine for a message received inside it."""
    try:
        directory.signing_key(sender, kid, now)
    except EnvelopeRejected as exc:
        if exc.reason == Reason.KEY_REVOKED:
            raise


def open_package(
    data: bytes,
    *,
    topic: str,
    recipient: str,
    decryption_keys: Mapping[str, RecipientPrivateKey],
    directory: KeyLookup,
    now: datetime | None = None,
    max_size: int = MAX_FRAME_BYTES,
    received_at: datetime | None = None,
    min_suite: int = SUITE_X25519,
) -> VerifiedPackage:
    """Decrypt and verify a frame received on ``topic`` by ``recipient``.

    ``decryption_keys`` maps the recipient's encryption key ids to private keys (several during a
    rotation overlap). ``directory`` resolves the sender's signing key. ``now`` is the current time
    (expiry is checked against it); ``received_at`` is when the broker received the record (its
    Kafka timestamp) and defaults to ``now``. A frame whose suite is below ``min_suite`` is
    refused before decryption (the suite byte is bound into the HPKE info, so relabelling it
    cannot make a weaker frame pass).

    The sender's signing key must be usable both at the statement's ``created_at`` and at
    ``received_at``: ``created_at`` is chosen by the sender, so whoever holds a revoked key could
    back-date it to before the revocation; checking the broker's receive time as well closes that
    hole, as long as the receive time is not under the sender's control (the inbox topics use
    ``message.timestamp.type=LogAppendTime`` and the daemon refuses records stamped otherwise).
    A revocation is also checked at ``now``, which no sender or broker chooses; the receive time
    may lie at most :data:`MAX_CLOCK_SKEW` ahead of ``now``, and a statement may claim at most
    :data:`MAX_VALIDITY`, which bounds how far back a receive time can usefully lie.
    """
    if len(data) > max_size:
        raise _reject(Reason.TOO_LARGE, "size")
    parsed_frame = frame.decode(data)
    if parsed_frame.suite < min_suite:
        raise _reject(Reason.SUITE_TOO_WEAK, f"suite-{parsed_frame.suite}")
    private_key = decryption_keys.get(parsed_frame.recipient_kid)
    if private_key is None:
        raise _reject(Reason.DECRYPT, "unknown-recipient-kid")
    if suite_for_private(private_key) != parsed_frame.suite:
        raise _reject(Reason.DECRYPT, "suite-mismatch")
    info = hpke_info(topic, recipient, parsed_frame.recipient_kid, parsed_frame.suite)
    try:
        plaintext = HPKE_SUITES[parsed_frame.suite].decrypt(
            parsed_frame.ciphertext, private_key, info=info
        )
    except Exception:  # InvalidTag, ValueError: cryptography folds HPKE failures; so do we
        raise _reject(Reason.DECRYPT, "hpke") from None
    p = _parse(plaintext)
    statement = p.statement
    current = now if now is not None else datetime.now(UTC)
    received = received_at if received_at is not None else current
    directory.signing_key(statement.sender, statement.kid, p.created)
    public_key = directory.signing_key(statement.sender, statement.kid, received)
    _not_revoked_now(directory, statement.sender, statement.kid, current)
    try:
        _verify(public_key, p.signature, p.signed, batched=p.batched)
    except InvalidSignature:
        raise _reject(Reason.SIGNATURE, "ed25519") from None
    granted_hash = next((h for h, rs in statement.grants.items() if recipient in rs), None)
    if granted_hash is None:
        raise _reject(Reason.NOT_ADDRESSED, "audience")
    disclosed: dict[str, Any] = {}
    known = set(statement.digests)
    for disclosure, d in zip(p.package.disclosures, p.disclosure_digests, strict=True):
        if d not in known:
            raise _reject(Reason.DIGEST, "unknown-digest")
        path = disclosure[1]
        if path in disclosed:
            raise _reject(Reason.DIGEST, "duplicate-path")
        disclosed[path] = disclosure[2]
    withheld = [list(w) for w in p.package.withheld]
    view = grant_hash(list(p.disclosure_digests), withheld, p.package.policy)
    if view != granted_hash or {w[0] for w in withheld} & disclosed.keys():
        raise _reject(Reason.GRANT, "grant-hash")
    if received > current + MAX_CLOCK_SKEW:
        raise _reject(Reason.CLOCK_SKEW, "received_at")
    if p.created > received + MAX_CLOCK_SKEW:
        raise _reject(Reason.NOT_YET_VALID, "created_at")
    if current >= p.expires:
        raise _reject(Reason.EXPIRED, "expires_at")
    return VerifiedPackage(
        msg_id=statement.msg_id,
        kind=statement.kind,
        notice_id=statement.notice_id,
        notice_type=statement.notice_type,
        sender=statement.sender,
        sender_kid=statement.kid,
        recipient=recipient,
        created_at=p.created,
        expires_at=p.expires,
        handling=statement.handling,
        header=statement.header,
        disclosed=disclosed,
        withheld=tuple((w[0], w[1]) for w in p.package.withheld),
        policy=p.package.policy,
        statement_hash=statement_hash(p.statement_bytes),
        audience=tuple(statement.audience),
        _token=_OPENED,
    )
