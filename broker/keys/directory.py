"""The bureau directory, signed by the trust anchor, and the key lookup nodes verify against (P6).

A signed directory file (and the value of the compacted topic ``nbx.directory``) is::

    {"directory": {...body...}, "signature": "<b64url Ed25519 over DOMAIN || JCS(body)>"}

The body lists every bureau (id, name, roles) with its public keys; each key has a key id
(``b64url(SHA-256(raw public key)[:16])``), a use (``sign`` / ``encrypt``), a validity window
(``not_before`` .. ``not_after``, open-ended when ``not_after`` is null) and a status (``active`` or
``revoked`` with the revocation time and reason). The body carries a ``serial`` that the anchor
increments on every change. Nodes pin the anchor's public key and refuse a directory whose signature
does not verify or whose serial is lower than the one they already hold (rollback).

The body also carries the network rule set (``rules``, :mod:`broker.keys.rules`: which messages need
review, each sender's supervision level), left out when it is the default. The roles ``reviewer``
and ``oversight`` are refused on a bureau that is not an organisation (``XA``..``XZ``), and the
rules may supervise only listed bureaus (``pre`` only when a reviewer is listed).

Key validity rules (:meth:`Directory.signing_key`):

* a key is usable at time ``t`` when ``not_before <= t < not_after`` (rotation: the old key's
  ``not_after`` is the rotation time plus the overlap), otherwise ``key-expired``;
* a revoked key is unusable at every ``t >= revocation time``: ``key-revoked``.

:func:`broker.envelope.open_package` asks for the sender's key at the statement's ``created_at``
*and* at the time the package was received; see there for why.

Anchor rotation (:mod:`broker.keys.anchor`, docs/security/anchor-rotation.md): the body may name
the anchor's ``successor`` (an anchor link signed by the current anchor) and, in a directory signed
by a successor, carry the ``anchor_chain`` from earlier anchors to the signer. Both are left out of
the JSON when empty, so every directory without them is encoded and signed as before.
:meth:`Directory.from_signed` accepts a directory signed by the pinned anchor, or by an anchor the
chain leads to from the pinned one (each link verified by the key before it); the returned
:class:`Directory` records the anchor that signed it (``anchor``) and the links followed
(``links``).
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from broker.errors import EnvelopeRejected, KeyDirectoryError
from broker.ids import BureauId
from broker.keys.anchor import AnchorLink, UnannouncedAnchorError, parse_links, walk
from broker.keys.bureau import BureauPublicKeys, FixedKeys
from broker.keys.hybrid import hybrid_public_key
from broker.keys.key_ids import key_id, raw_public
from broker.keys.rules import NetworkRules, check_roles
from broker.vocab import Reason, Role
from broker.wire.canonical import b64u, b64u_decode, jcs
from broker.wire.suites import RecipientPublicKey

DIRECTORY_FORMAT: Final = "nbx-directory/1"
DIRECTORY_DOMAIN = b"nbx/directory/v1\x00"
#: Key algorithms a directory may list; the envelope suite follows from the encryption key's alg.
ALGORITHMS = {"sign": ("Ed25519",), "encrypt": ("X25519", "MLKEM768-X25519")}
_PUBLIC_LENGTHS = {"Ed25519": 32, "X25519": 32, "MLKEM768-X25519": 1184 + 32}
_MODEL = ConfigDict(frozen=True, extra="forbid")

Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Revocation(BaseModel):
    """When a key stopped being trusted, and why (free text such as ``key-compromise``)."""

    model_config = _MODEL
    at: AwareDatetime
    reason: Text


class KeyRecord(BaseModel):
    """One public key of a bureau, with its validity window and status."""

    model_config = _MODEL
    kid: str = Field(min_length=1, max_length=64)
    use: Literal["sign", "encrypt"]
    alg: Literal["Ed25519", "X25519", "MLKEM768-X25519"]
    public: str
    not_before: AwareDatetime
    not_after: AwareDatetime | None = None
    status: Literal["active", "revoked"] = "active"
    revocation: Revocation | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KeyRecord:
        if self.alg not in ALGORITHMS[self.use]:
            msg = f"key {self.kid}: algorithm {self.alg} cannot be used to {self.use}"
            raise ValueError(msg)
        raw = b64u_decode(self.public)
        if len(raw) != _PUBLIC_LENGTHS[self.alg]:
            msg = f"key {self.kid}: public key has the wrong length for {self.alg}"
            raise ValueError(msg)
        if key_id(raw) != self.kid:
            msg = f"key {self.kid}: key id does not match the public key"
            raise ValueError(msg)
        if (self.status == "revoked") != (self.revocation is not None):
            msg = f"key {self.kid}: status and revocation disagree"
            raise ValueError(msg)
        if self.not_after is not None and self.not_after <= self.not_before:
            msg = f"key {self.kid}: not_after is not after not_before"
            raise ValueError(msg)
        return self

    @property
    def raw_public(self) -> bytes:
        """The raw public key bytes."""
        return b64u_decode(self.public)

    def revoked_at(self, at: datetime) -> bool:
        """Whether the key is revoked at time ``at``."""
        return self.revocation is not None and at >= self.revocation.at

    def valid_at(self, at: datetime) -> bool:
        """Whether ``at`` is inside the validity window (ignoring revocation)."""
        return self.not_before <= at and (self.not_after is None or at < self.not_after)


class BureauRecord(BaseModel):
    """A bureau: its id (ISO 3166-1 alpha-2 or ``X?``), display name, roles and keys."""

    model_config = _MODEL
    id: BureauId
    name: Text
    roles: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")], ...] = (
        "member",
    )
    keys: tuple[KeyRecord, ...]

    @model_validator(mode="after")
    def _body_roles(self) -> BureauRecord:
        check_roles(self.id, self.roles)
        return self

    def key(self, kid: str) -> KeyRecord | None:
        """The key with id ``kid``, if this bureau has it."""
        return next((k for k in self.keys if k.kid == kid), None)


class DirectoryBody(BaseModel):
    """The signed content of a directory."""

    model_config = _MODEL
    format: Literal["nbx-directory/1"] = "nbx-directory/1"
    serial: int = Field(ge=1, le=2**53 - 1)
    issued_at: AwareDatetime
    anchor_kid: str
    bureaus: tuple[BureauRecord, ...] = ()
    #: the network rule set (broker.keys.rules); absent from a body with the default rules
    rules: NetworkRules = NetworkRules()
    #: the anchor's announced successor (a link signed by this directory's anchor); absent if none
    successor: AnchorLink | None = None
    #: in a directory signed by a successor: every link from earlier anchors to the signer, oldest
    #: first (absent when empty)
    anchor_chain: tuple[AnchorLink, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> DirectoryBody:
        ids = [b.id for b in self.bureaus]
        if len(ids) != len(set(ids)):
            msg = "a bureau is listed twice"
            raise ValueError(msg)
        kids = [k.kid for b in self.bureaus for k in b.keys]
        if len(kids) != len(set(kids)):
            msg = "a key id is listed twice"
            raise ValueError(msg)
        listed = set(ids)
        for bureau, level in sorted(self.rules.supervision.items()):
            if bureau not in listed:
                msg = f"the rules supervise {bureau}, which is not in the directory"
                raise ValueError(msg)
            if level == "pre" and not self.reviewers():
                msg = f"the rules put {bureau} under pre supervision but no reviewer is listed"
                raise ValueError(msg)
        if self.successor is not None and self.successor.from_kid != self.anchor_kid:
            msg = (
                f"the successor link {self.successor.name} is not from the directory's anchor "
                f"{self.anchor_kid}"
            )
            raise ValueError(msg)
        chain = self.anchor_chain
        for before, after in itertools.pairwise(chain):
            if before.to_kid != after.from_kid:
                msg = f"the anchor chain breaks between {before.name} and {after.name}"
                raise ValueError(msg)
        if chain and chain[-1].to_kid != self.anchor_kid:
            msg = (
                f"the anchor chain ends at {chain[-1].to_kid}, not at the anchor {self.anchor_kid}"
            )
            raise ValueError(msg)
        return self

    def reviewers(self) -> list[str]:
        """Ids of the bureaus with the role ``reviewer``, sorted."""
        return sorted(b.id for b in self.bureaus if Role.REVIEWER in b.roles)

    def to_json(self) -> dict[str, Any]:
        """The body as a JSON object (what the anchor signs, after JCS).

        Default rules are left out, so a body without rules is encoded (and signed) exactly as
        before the rules existed and nodes that predate them still accept it.
        """
        content = self.model_dump(mode="json")
        if self.rules.is_default():
            del content["rules"]
        if self.successor is None:  # the anchor fields too (anchor rotation): absent when empty
            del content["successor"]
        if not self.anchor_chain:
            del content["anchor_chain"]
        return content


def anchor_key_id(anchor: ed25519.Ed25519PublicKey) -> str:
    """Key id of the trust anchor's public key."""
    return key_id(raw_public(anchor))


def sign_directory(body: DirectoryBody, anchor_key: ed25519.Ed25519PrivateKey) -> bytes:
    """Sign ``body`` with the anchor's key and return the directory file bytes (JSON)."""
    signer = anchor_key_id(anchor_key.public_key())
    if body.anchor_kid != signer:
        msg = (
            f"the directory serial {body.serial} names the trust anchor {body.anchor_kid}, not "
            f"the signing key {signer}"
        )
        raise KeyDirectoryError(msg)
    content = body.to_json()
    signature = anchor_key.sign(DIRECTORY_DOMAIN + jcs(content))
    document = {"directory": content, "signature": b64u(signature)}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _verifies(key: ed25519.Ed25519PublicKey, signature: bytes, signed_bytes: bytes) -> bool:
    try:
        key.verify(signature, DIRECTORY_DOMAIN + signed_bytes)
    except InvalidSignature:
        return False
    return True


def _signer(
    content: dict[str, Any],
    signature: bytes,
    signed_bytes: bytes,
    pinned: ed25519.Ed25519PublicKey,
    source: str,
) -> tuple[ed25519.Ed25519PublicKey, tuple[AnchorLink, ...]]:
    """The anchor whose signature verifies the directory, and the links from ``pinned`` to it:
    ``pinned`` itself, or an anchor that ``anchor_chain`` leads to from it (each link verified
    by the key before it). One line starting with ``source`` otherwise."""
    if _verifies(pinned, signature, signed_bytes):
        return pinned, ()
    pinned_kid = anchor_key_id(pinned)
    claimed = content.get("anchor_kid")
    if not isinstance(claimed, str) or claimed == pinned_kid:
        msg = f"{source}: directory signature does not verify with the pinned trust anchor"
        raise KeyDirectoryError(msg)
    unannounced = (
        f"{source}: directory signature does not verify with the pinned trust anchor "
        f"{pinned_kid}; it is signed by anchor {claimed}, which {pinned_kid} did not announce as "
        "its successor"
    )
    chain = content.get("anchor_chain")
    if chain is None:
        raise UnannouncedAnchorError(unannounced)
    walked = walk(pinned, parse_links(chain, source), source, until=claimed)
    if walked.kid != claimed:
        raise UnannouncedAnchorError(unannounced)
    if not _verifies(walked.anchor, signature, signed_bytes):
        msg = (
            f"{source}: directory signature does not verify with anchor {claimed}, the "
            f"successor of the pinned trust anchor {pinned_kid}"
        )
        raise KeyDirectoryError(msg)
    return walked.anchor, walked.links


class Directory(FixedKeys):
    """A verified directory: the :class:`~broker.keys.KeyLookup` nodes use.

    Build one with :meth:`from_signed` or :meth:`load`, which verify the anchor's signature and the
    serial; the constructor trusts its argument and is for code that just verified or built it.
    """

    def __init__(
        self,
        body: DirectoryBody,
        signed: bytes = b"",
        anchor: ed25519.Ed25519PublicKey | None = None,
        links: tuple[AnchorLink, ...] = (),
    ) -> None:
        """Wrap an already verified ``body`` (and the signed bytes it came from, if any; the
        anchor key that signed it and the anchor links followed from the pinned anchor to it)."""
        self.body = body
        self.signed = signed
        #: the anchor key whose signature verified (None for a body built, not verified)
        self.anchor = anchor
        #: the links followed from the pinned anchor to ``anchor`` (empty: signed by the pinned)
        self.links = links
        self._by_id = {b.id: b for b in body.bureaus}
        self._rules = body.rules.in_force(body.reviewers())
        # parsed public keys by key id (a verified directory never changes; a new serial is a
        # new Directory object)
        self._signing: dict[str, ed25519.Ed25519PublicKey] = {}
        self._encryption: dict[str, x25519.X25519PublicKey] = {}

    @property
    def serial(self) -> int:
        """The directory's serial (monotonically increasing)."""
        return self.body.serial

    @classmethod
    def from_signed(
        cls,
        data: bytes,
        anchor: ed25519.Ed25519PublicKey,
        *,
        min_serial: int = 0,
        source: str = "directory",
    ) -> Directory:
        """Verify signed directory bytes against the pinned ``anchor``.

        Raises :class:`KeyDirectoryError` (one line starting with ``source``) when the document is
        malformed, the signature does not verify (forged) or ``serial < min_serial`` (rollback).
        """
        try:
            document = json.loads(data)
            if not isinstance(document, dict) or set(document) != {"directory", "signature"}:
                raise TypeError
            content = document["directory"]
            signature = b64u_decode(document["signature"])
            if not isinstance(content, dict):
                raise TypeError
            signed_bytes = jcs(content)
        except Exception:  # any parse failure of untrusted input means "not a directory"
            msg = f"{source}: not a signed NBX directory"
            raise KeyDirectoryError(msg) from None
        signer, links = _signer(content, signature, signed_bytes, anchor, source)
        try:
            body = DirectoryBody.model_validate(content)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            reason = str(first["msg"]).removeprefix("Value error, ")
            at = f"{where}: " if where else ""  # a check of the whole body has no location
            msg = f"{source}: invalid directory: {at}{reason}"
            raise KeyDirectoryError(msg) from None
        if body.anchor_kid != anchor_key_id(signer):
            msg = f"{source}: directory names a different trust anchor"
            raise KeyDirectoryError(msg)
        if body.successor is not None and not body.successor.verifies():
            msg = (
                f"{source}: the successor link {body.successor.name} does not verify with "
                f"anchor {body.successor.from_kid} (forged)"
            )
            raise KeyDirectoryError(msg)
        if body.serial < min_serial:
            msg = (
                f"{source}: directory serial {body.serial} is older than serial {min_serial} "
                "(rollback refused)"
            )
            raise KeyDirectoryError(msg)
        return cls(body, bytes(data), signer, links)

    @classmethod
    def load(
        cls, path: Path, anchor: ed25519.Ed25519PublicKey, *, min_serial: int = 0
    ) -> Directory:
        """Read and verify a signed directory file."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            msg = f"{path}: directory file not found"
            raise KeyDirectoryError(msg) from None
        return cls.from_signed(data, anchor, min_serial=min_serial, source=str(path))

    def accept(self, data: bytes, anchor: ed25519.Ed25519PublicKey) -> Directory:
        """Verify a newer directory, refusing one whose serial is lower than this one's."""
        return Directory.from_signed(data, anchor, min_serial=self.serial)

    def bureau(self, bureau: str) -> BureauRecord:
        """The record of ``bureau``; :class:`KeyDirectoryError` if it is not listed."""
        record = self._by_id.get(bureau)
        if record is None:
            msg = f"unknown bureau {bureau!r}: not in directory serial {self.serial}"
            raise KeyDirectoryError(msg)
        return record

    def bureau_ids(self) -> list[str]:
        """Ids of every listed bureau, sorted."""
        return sorted(self._by_id)

    def roles(self, bureau: str) -> frozenset[str]:
        """The roles of ``bureau`` (an empty set for a bureau the directory does not list)."""
        record = self._by_id.get(bureau)
        return frozenset() if record is None else frozenset(record.roles)

    def rules(self) -> NetworkRules:
        """The network rules in force (:meth:`NetworkRules.in_force`: with no reviewer listed,
        nothing needs review)."""
        return self._rules

    def signing_key(self, bureau: str, kid: str, at: datetime) -> ed25519.Ed25519PublicKey:
        """The signing key ``kid`` of ``bureau`` if it is usable at ``at``.

        Raises :class:`EnvelopeRejected` with ``key-unknown`` (no such bureau or signing key),
        ``key-revoked`` (revoked at or before ``at``) or ``key-expired`` (outside its window).
        """
        record = self._by_id.get(bureau)
        key = record.key(kid) if record is not None else None
        if key is None or key.use != "sign":
            raise EnvelopeRejected(Reason.KEY_UNKNOWN)
        if key.revoked_at(at):
            raise EnvelopeRejected(Reason.KEY_REVOKED)
        if not key.valid_at(at):
            raise EnvelopeRejected(Reason.KEY_EXPIRED)
        cached = self._signing.get(kid)
        if cached is None:
            cached = ed25519.Ed25519PublicKey.from_public_bytes(key.raw_public)
            self._signing[kid] = cached
        return cached

    def encryption_record(self, bureau: str, at: datetime | None = None) -> KeyRecord:
        """The newest encryption key of ``bureau`` usable at ``at`` (now), any algorithm."""
        when = at if at is not None else datetime.now(UTC)
        usable = [
            k
            for k in self.bureau(bureau).keys
            if k.use == "encrypt" and k.valid_at(when) and not k.revoked_at(when)
        ]
        if not usable:
            msg = f"bureau {bureau!r} has no valid encryption key in directory serial {self.serial}"
            raise KeyDirectoryError(msg)
        return max(usable, key=lambda k: (k.not_before, k.kid))

    def recipient_key(
        self, bureau: str, at: datetime | None = None
    ) -> tuple[str, RecipientPublicKey]:
        """The newest usable encryption key of ``bureau`` of any suite, ready for ``package_for``.

        A bureau that published an ``MLKEM768-X25519`` key newer than its X25519 key gets the
        post-quantum hybrid suite; otherwise X25519.
        """
        record = self.encryption_record(bureau, at)
        if record.alg == "MLKEM768-X25519":
            return record.kid, hybrid_public_key(record.raw_public)
        return record.kid, x25519.X25519PublicKey.from_public_bytes(record.raw_public)

    def encryption_key(
        self, bureau: str, at: datetime | None = None
    ) -> tuple[str, x25519.X25519PublicKey]:
        """The newest X25519 encryption key id and key of ``bureau`` usable at ``at`` (now)."""
        when = at if at is not None else datetime.now(UTC)
        usable = [
            k
            for k in self.bureau(bureau).keys
            if k.alg == "X25519" and k.valid_at(when) and not k.revoked_at(when)
        ]
        if not usable:
            msg = f"bureau {bureau!r} has no valid X25519 key in directory serial {self.serial}"
            raise KeyDirectoryError(msg)
        newest = max(usable, key=lambda k: (k.not_before, k.kid))
        cached = self._encryption.get(newest.kid)
        if cached is None:
            cached = x25519.X25519PublicKey.from_public_bytes(newest.raw_public)
            self._encryption[newest.kid] = cached
        return newest.kid, cached

    def public_keys(self, bureau: str, at: datetime | None = None) -> BureauPublicKeys:
        """The bureau's newest usable signing and X25519 keys, as :class:`BureauPublicKeys`."""
        when = at if at is not None else datetime.now(UTC)
        signing = [
            k
            for k in self.bureau(bureau).keys
            if k.use == "sign" and k.valid_at(when) and not k.revoked_at(when)
        ]
        if not signing:
            msg = f"bureau {bureau!r} has no valid signing key in directory serial {self.serial}"
            raise KeyDirectoryError(msg)
        sign = max(signing, key=lambda k: (k.not_before, k.kid))
        enc_kid, enc = self.encryption_key(bureau, when)
        return BureauPublicKeys(
            bureau,
            sign.kid,
            ed25519.Ed25519PublicKey.from_public_bytes(sign.raw_public),
            enc_kid,
            enc,
        )
