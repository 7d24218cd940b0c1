"""Sealing: salted disclosures, one signed statement per message, one HPKE package per recipient.

Construction (after RFC 9901 SD-JWT and RFC 9180 HPKE):

1. Every disclosure unit ``(path, value)`` becomes a disclosure ``[salt, path, value]`` with a
   fresh 16-byte salt; its digest is ``b64u(SHA-256(JCS(disclosure)))``. Salting hides withheld
   values (P5).
2. The origin signs one *statement* (Ed25519 over ``DOMAIN || JCS(statement)``) holding the
   message and notice ids, kind, sender and key id, creation and expiry time, the audience, the
   handling code, the non-redactable header, every digest (sorted) and, per recipient, a *grant
   hash* over the digests granted to it, the withheld manifest and the policy id (P1, P2). One
   signature per message, whatever the number of recipients.
2b. Or, for a batch of messages sealed at the same moment (:func:`sign_batch`), one signature
   over the RFC 9162 Merkle tree head of their statements, ``BATCH_DOMAIN || size || root``; each
   package then carries a *proof* (its statement's index, the batch size and the audit path) from
   which the recipient recomputes the root. What is proved per message is the same; the signature
   is shared.
3. Per recipient, the package (statement, signature, proof if batched, granted disclosures,
   withheld manifest, policy) is encrypted with HPKE to the recipient's key with ``info`` binding
   the format version, the suite, the topic, the recipient id and its key id (P3, P4).
4. Before encryption the package JSON is followed by spaces (JSON whitespace, which every
   receiver's strict parse accepts) so that the whole frame is exactly a bucket size
   (:func:`padded_size`): the broker sees one of a few sizes, not the notice type or the
   redaction of each recipient's view.

Wire format constants (:data:`SIGNATURE_DOMAIN`, :data:`BATCH_DOMAIN`, :data:`INFO_DOMAIN`, the
statement fields, the proof) are pinned by the known-answer vectors in ``tests/vectors/``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from broker.ids import uuid7
from broker.keys.bureau import BureauKeys
from broker.wire import frame, merkle
from broker.wire.canonical import b64u, digest, jcs
from broker.wire.canonical import digests as digest_all
from broker.wire.suites import HPKE_SUITES, RecipientPublicKey, suite_for_public

STATEMENT_VERSION = 2  # 2: grants grouped as {grant hash: [recipients]}
SIGNATURE_DOMAIN = b"nbx/statement/v1\x00"
BATCH_DOMAIN = b"nbx/batch/v1\x00"
#: most statements under one batch signature (audit paths of at most 8 hashes)
MAX_BATCH = 256
INFO_DOMAIN = b"nbx/package/v1\x00"
DEFAULT_VALIDITY = timedelta(days=30)
SALT_BYTES = 16
#: the smallest frame size bucket; buckets double from here up to :data:`PAD_STEP`
PAD_MIN = 1024
#: past this, buckets are multiples of it
PAD_STEP = 64 * 1024
#: the cap when none is given: receivers' default ``max_frame_bytes`` (1 MiB)
DEFAULT_PAD_CAP = 1 << 20
#: encapsulated key and AES-GCM tag added by each suite's single-shot HPKE encryption
_HPKE_OVERHEAD = {1: 32 + 16, 2: 1088 + 32 + 16}


def padded_size(size: int, cap: int = DEFAULT_PAD_CAP) -> int:
    """The frame size bucket for a frame of ``size`` bytes: the smallest of 1, 2, 4 ... 64 KiB,
    then multiples of 64 KiB, that holds it, but never more than ``cap`` (the largest frame
    receivers accept); a frame already larger than ``cap`` keeps its size."""
    if size >= cap:
        return size
    if size <= PAD_STEP:
        bucket = max(PAD_MIN, 1 << (size - 1).bit_length())
    else:
        bucket = -(-size // PAD_STEP) * PAD_STEP
    return min(bucket, cap)


def bucket_sizes(cap: int = DEFAULT_PAD_CAP) -> list[int]:
    """Every size a padded frame can have under ``cap`` (for tests and wire scans)."""
    sizes: list[int] = []
    size = PAD_MIN
    while size < cap:
        sizes.append(size)
        size = size * 2 if size < PAD_STEP else size + PAD_STEP
    return [*sizes, cap]


@dataclass(frozen=True)
class Grant:
    """What one recipient may see: disclosed unit paths, withheld paths with the deciding rule."""

    disclosed: frozenset[str]
    withheld: tuple[tuple[str, str], ...] = ()
    policy: str = "none"


@functools.lru_cache(maxsize=4096)
def hpke_info(topic: str, recipient: str, recipient_kid: str, suite: int) -> bytes:
    """The HPKE ``info`` string binding a package to its topic and recipient (P4).

    Cached: a daemon and a publisher build the same few strings for every message.
    """
    context = {
        "v": frame.FORMAT_VERSION,
        "suite": suite,
        "topic": topic,
        "recipient": recipient,
        "kid": recipient_kid,
    }
    return INFO_DOMAIN + jcs(context)


def grant_hash(granted_digests: list[str], withheld: list[list[str]], policy: str) -> str:
    """Hash binding a recipient's exact view: granted digests, withheld manifest, policy id."""
    return digest(
        {"digests": sorted(granted_digests), "withheld": sorted(withheld), "policy": policy}
    )


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Proof:
    """Where a statement sits in a signed batch: its index, the batch size, its audit path."""

    index: int
    size: int
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """The package's ``proof`` member."""
        return {"index": self.index, "size": self.size, "path": [b64u(p) for p in self.path]}


def tree_head(size: int, root: bytes) -> bytes:
    """What the origin signs for a batch: ``BATCH_DOMAIN || size (4 bytes, big-endian) || root``."""
    return BATCH_DOMAIN + size.to_bytes(4, "big") + root


def sign_batch(signer: BureauKeys, statements: Sequence[bytes]) -> list[tuple[bytes, Proof | None]]:
    """Sign ``statements`` with one Ed25519 signature; a signature and proof for each, in order.

    A single statement is signed on its own (``DOMAIN || statement``, no proof), exactly as
    :func:`seal` does; two to :data:`MAX_BATCH` share one signature over their Merkle tree head.
    """
    size = len(statements)
    if not 0 < size <= MAX_BATCH:
        msg = f"a batch holds 1 to {MAX_BATCH} statements, not {size}"
        raise ValueError(msg)
    if size == 1:
        return [(signer.signing_key.sign(SIGNATURE_DOMAIN + statements[0]), None)]
    leaves = [merkle.leaf_hash(s) for s in statements]
    signature = signer.signing_key.sign(tree_head(size, merkle.root(leaves)))
    return [
        (signature, Proof(i, size, tuple(path))) for i, path in enumerate(merkle.proofs(leaves))
    ]


def statement_hash(statement: bytes) -> str:
    """What a review attests: base64url SHA-256 of the exact statement bytes that are signed
    (alone, or as a batch leaf). The statement holds the digest of every disclosure unit, so the
    hash covers every field of every recipient's view, withheld ones included."""
    return b64u(hashlib.sha256(statement).digest())


@dataclass(frozen=True)
class Sealed:
    """A signed message ready to be encrypted for each recipient in its audience."""

    msg_id: str
    notice_id: str
    statement: bytes
    signature: bytes
    disclosures: Mapping[str, list[Any]]
    grants: Mapping[str, Grant]
    #: set when the signature covers a batch of statements (:func:`sign_batch`)
    proof: Proof | None = None

    @property
    def statement_hash(self) -> str:
        """The hash a reviewer attests (:func:`statement_hash`), as every recipient sees it."""
        return statement_hash(self.statement)

    @property
    def audience(self) -> list[str]:
        """Recipients this message was sealed for."""
        return sorted(self.grants)

    def plaintext_for(self, recipient: str) -> bytes:
        """The package JSON for ``recipient`` (before encryption)."""
        grant = self.grants[recipient]
        package: dict[str, Any] = {
            "statement": b64u(self.statement),
            "signature": b64u(self.signature),
        }
        if self.proof is not None:
            package["proof"] = self.proof.to_json()
        package["disclosures"] = [self.disclosures[p] for p in sorted(grant.disclosed)]
        package["withheld"] = sorted([list(w) for w in grant.withheld])
        package["policy"] = grant.policy
        # compact UTF-8 JSON, keys in this order; every value passed the canonical encoding of
        # seal(), so orjson can write it
        return orjson.dumps(package)

    def package_for(
        self,
        recipient: str,
        *,
        topic: str,
        recipient_kid: str,
        recipient_key: RecipientPublicKey,
        max_frame_bytes: int = DEFAULT_PAD_CAP,
    ) -> bytes:
        """Encrypt the package for ``recipient`` and return the frame to produce to ``topic``.

        The suite follows from the key type: an X25519 key gives suite 1, an ML-KEM-768+X25519
        hybrid key suite 2 (:mod:`broker.wire.suites`). The package is padded with spaces so
        that the frame is exactly :func:`padded_size` bytes, at most ``max_frame_bytes``.
        """
        suite = suite_for_public(recipient_key)
        info = hpke_info(topic, recipient, recipient_kid, suite)
        plaintext = self.plaintext_for(recipient)
        overhead = frame.HEAD_BYTES + len(recipient_kid) + _HPKE_OVERHEAD[suite]
        padding = padded_size(overhead + len(plaintext), max_frame_bytes) - overhead
        plaintext += b" " * (padding - len(plaintext))
        ciphertext = HPKE_SUITES[suite].encrypt(plaintext, recipient_key, info=info)
        return frame.encode(suite, recipient_kid, ciphertext)


@dataclass(frozen=True)
class Unsigned:
    """A message whose statement is built but not yet signed (:func:`prepare`)."""

    msg_id: str
    notice_id: str
    statement: bytes
    disclosures: Mapping[str, list[Any]]
    grants: Mapping[str, Grant]

    def signed(self, signature: bytes, proof: Proof | None = None) -> Sealed:
        """The sealed message, given the statement's signature (and proof, if batched)."""
        return Sealed(
            self.msg_id,
            self.notice_id,
            self.statement,
            signature,
            self.disclosures,
            self.grants,
            proof,
        )


def seal(
    *,
    signer: BureauKeys,
    kind: str,
    notice_id: str,
    notice_type: str,
    header: Mapping[str, Any],
    units: Mapping[str, Any],
    grants: Mapping[str, Grant],
    handling: str,
    now: datetime | None = None,
    validity: timedelta = DEFAULT_VALIDITY,
    msg_id: str | None = None,
    salt: Callable[[int], bytes] = os.urandom,
) -> Sealed:
    """Sign one statement over every unit and prepare a grant for every recipient.

    ``units`` maps a dotted path to its JSON value; each grant's ``disclosed`` paths must be units.
    """
    unsigned = prepare(
        signer=signer,
        kind=kind,
        notice_id=notice_id,
        notice_type=notice_type,
        header=header,
        units=units,
        grants=grants,
        handling=handling,
        now=now,
        validity=validity,
        msg_id=msg_id,
        salt=salt,
    )
    ((signature, _),) = sign_batch(signer, [unsigned.statement])  # alone: no proof
    return unsigned.signed(signature)


def prepare(
    *,
    signer: BureauKeys,
    kind: str,
    notice_id: str,
    notice_type: str,
    header: Mapping[str, Any],
    units: Mapping[str, Any],
    grants: Mapping[str, Grant],
    handling: str,
    now: datetime | None = None,
    validity: timedelta = DEFAULT_VALIDITY,
    msg_id: str | None = None,
    salt: Callable[[int], bytes] = os.urandom,
) -> Unsigned:
    """Build the statement over every unit and a grant for every recipient, unsigned: sign it
    alone (:func:`seal` does) or with others (:func:`sign_batch`).

    ``units`` maps a dotted path to its JSON value; each grant's ``disclosed`` paths must be units.
    """
    if not grants:
        msg = "a message needs at least one recipient"
        raise ValueError(msg)
    if validity <= timedelta(0):
        msg = "validity must be positive"
        raise ValueError(msg)
    for recipient, grant in grants.items():
        overlap = grant.disclosed & {w[0] for w in grant.withheld}
        if overlap:
            msg = f"grant for {recipient} both discloses and withholds {sorted(overlap)}"
            raise ValueError(msg)
    created = now if now is not None else datetime.now(UTC)
    disclosures: dict[str, list[Any]] = {}
    paths = sorted(units)
    for path in paths:
        disclosures[path] = [b64u(salt(SALT_BYTES)), path, units[path]]
    digests = dict(zip(paths, digest_all([disclosures[p] for p in paths]), strict=True))
    # Recipients that get the same view share one grant hash: the statement lists each distinct
    # hash once with its recipients, which keeps a 195-recipient statement small.
    by_grant: dict[Grant, str] = {}
    grant_groups: dict[str, list[str]] = {}
    for recipient in sorted(grants):
        grant = grants[recipient]
        view_hash = by_grant.get(grant)
        if view_hash is None:
            unknown = grant.disclosed - digests.keys()
            if unknown:
                msg = f"grant for {recipient} discloses unknown units: {sorted(unknown)}"
                raise ValueError(msg)
            view_hash = grant_hash(
                [digests[p] for p in grant.disclosed],
                [list(w) for w in grant.withheld],
                grant.policy,
            )
            by_grant[grant] = view_hash
        grant_groups.setdefault(view_hash, []).append(recipient)
    # the msg id carries the creation time (receivers check that they agree)
    mid = msg_id if msg_id is not None else uuid7(int(created.timestamp() * 1000))
    statement = {
        "v": STATEMENT_VERSION,
        "msg_id": mid,
        "kind": str(kind),  # a plain str (not a MessageKind): canonical JSON's fast path
        "notice_id": notice_id,
        "notice_type": notice_type,
        "sender": signer.bureau,
        "kid": signer.signing_key_id,
        "created_at": _timestamp(created),
        "expires_at": _timestamp(created + validity),
        "audience": sorted(grants),
        "handling": handling,
        "header": dict(header),
        "digests": sorted(digests.values()),
        "grants": grant_groups,
    }
    return Unsigned(mid, notice_id, jcs(statement), disclosures, dict(grants))
