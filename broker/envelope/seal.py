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
3. Per recipient, the package (statement, signature, granted disclosures, withheld manifest,
   policy) is encrypted with HPKE to the recipient's key with ``info`` binding the format version,
   the suite, the topic, the recipient id and its key id (P3, P4).

Wire format constants (:data:`SIGNATURE_DOMAIN`, :data:`INFO_DOMAIN`, the statement fields) are
pinned by the known-answer vectors in ``tests/vectors/``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from broker.envelope import frame
from broker.envelope.canonical import b64u, digest, jcs
from broker.envelope.canonical import digests as digest_all
from broker.envelope.suites import HPKE_SUITES, RecipientPublicKey, suite_for_public
from broker.ids import uuid7
from broker.keys.bureau import BureauKeys

STATEMENT_VERSION = 2  # 2: grants grouped as {grant hash: [recipients]}
SIGNATURE_DOMAIN = b"nbx/statement/v1\x00"
INFO_DOMAIN = b"nbx/package/v1\x00"
DEFAULT_VALIDITY = timedelta(days=30)
SALT_BYTES = 16


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
class Sealed:
    """A signed message ready to be encrypted for each recipient in its audience."""

    msg_id: str
    notice_id: str
    statement: bytes
    signature: bytes
    disclosures: Mapping[str, list[Any]]
    grants: Mapping[str, Grant]

    @property
    def audience(self) -> list[str]:
        """Recipients this message was sealed for."""
        return sorted(self.grants)

    def plaintext_for(self, recipient: str) -> bytes:
        """The package JSON for ``recipient`` (before encryption)."""
        grant = self.grants[recipient]
        package = {
            "statement": b64u(self.statement),
            "signature": b64u(self.signature),
            "disclosures": [self.disclosures[p] for p in sorted(grant.disclosed)],
            "withheld": sorted([list(w) for w in grant.withheld]),
            "policy": grant.policy,
        }
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
    ) -> bytes:
        """Encrypt the package for ``recipient`` and return the frame to produce to ``topic``.

        The suite follows from the key type: an X25519 key gives suite 1, an ML-KEM-768+X25519
        hybrid key suite 2 (:mod:`broker.envelope.suites`).
        """
        suite = suite_for_public(recipient_key)
        info = hpke_info(topic, recipient, recipient_kid, suite)
        plaintext = self.plaintext_for(recipient)
        ciphertext = HPKE_SUITES[suite].encrypt(plaintext, recipient_key, info=info)
        return frame.encode(suite, recipient_kid, ciphertext)


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
    mid = msg_id if msg_id is not None else uuid7()
    statement = {
        "v": STATEMENT_VERSION,
        "msg_id": mid,
        "kind": kind,
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
    statement_bytes = jcs(statement)
    signature = signer.signing_key.sign(SIGNATURE_DOMAIN + statement_bytes)
    return Sealed(mid, notice_id, statement_bytes, signature, disclosures, dict(grants))
