"""A bureau's key pair set and the key lookup interface the envelope verifies against.

Each bureau has an Ed25519 signing key and at least one encryption key, each with a key id
(:mod:`broker.keys.key_ids`): an
X25519 key (envelope suite 1), an ML-KEM-768 + X25519 hybrid key (suite 2,
:mod:`broker.keys.hybrid`), or both during a migration. :class:`KeyLookup` is the interface
:func:`broker.envelope.open_package` uses to find a sender's signing key valid at a given time and
the publisher uses to find a recipient's published encryption key (whose type picks the suite);
:class:`StaticDirectory` is the in-memory implementation used by unit tests,
:class:`broker.keys.directory.Directory` the signed one nodes use.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from broker.errors import EnvelopeRejected, KeyDirectoryError
from broker.keys.hybrid import HybridEncryptionKey
from broker.keys.key_ids import key_id, raw_public
from broker.keys.rules import NetworkRules, check_roles
from broker.vocab import DirectoryState, Reason, Role
from broker.wire.suites import RecipientPrivateKey, RecipientPublicKey


@dataclass(frozen=True)
class BureauKeys:
    """A bureau's private keys (never logged, never printed).

    ``x25519_key`` (suite 1) and ``hybrid_key`` (suite 2) are the encryption keys; a bureau holds
    at least one, both while it migrates from one to the other.
    """

    bureau: str
    signing_key: ed25519.Ed25519PrivateKey = field(repr=False)
    x25519_key: x25519.X25519PrivateKey | None = field(repr=False)
    hybrid_key: HybridEncryptionKey | None = field(default=None, repr=False)
    #: private keys of retired epochs not destroyed yet, by key id (:mod:`broker.keys.epochs`):
    #: they only open packages sealed to them before the rotation
    retired: Mapping[str, RecipientPrivateKey] = field(default_factory=dict, repr=False)
    #: the other private signing keys held during a signing-key rotation (the next one, from
    #: ``nbx keys rotate``, or the old one once the next is in use): :func:`signing_with` picks
    #: the one to sign with (:mod:`broker.keys.signing`)
    spare_signing: tuple[ed25519.Ed25519PrivateKey, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        """Refuse a key set without any encryption key."""
        if self.x25519_key is None and self.hybrid_key is None:
            msg = f"bureau {self.bureau}: needs an X25519 or an ML-KEM-768+X25519 encryption key"
            raise KeyDirectoryError(msg)

    @classmethod
    def generate(cls, bureau: str, *, pq: bool = False) -> BureauKeys:
        """Create fresh keys for ``bureau``: an X25519 encryption key, or with ``pq`` a hybrid
        ML-KEM-768 + X25519 one instead."""
        if pq:
            return cls(
                bureau, ed25519.Ed25519PrivateKey.generate(), None, HybridEncryptionKey.generate()
            )
        return cls(bureau, ed25519.Ed25519PrivateKey.generate(), x25519.X25519PrivateKey.generate())

    @functools.cached_property
    def signing_key_id(self) -> str:
        """Key id of the signing key (computed once: every seal names it)."""
        return key_id(raw_public(self.signing_key.public_key()))

    def signing_keys(self) -> dict[str, ed25519.Ed25519PrivateKey]:
        """Every private signing key held, by key id (the one in use first)."""
        held = {self.signing_key_id: self.signing_key}
        for key in self.spare_signing:
            held.setdefault(key_id(raw_public(key.public_key())), key)
        return held

    def signing_with(self, kid: str) -> BureauKeys:
        """The same keys signing with the held signing key ``kid`` (the others kept as spares);
        ``self`` when it already signs with it. :class:`KeyDirectoryError` if none is held."""
        if kid == self.signing_key_id:
            return self
        held = self.signing_keys()
        chosen = held.pop(kid, None)
        if chosen is None:
            msg = f"bureau {self.bureau}: no private signing key {kid} is held"
            raise KeyDirectoryError(msg)
        return replace(self, signing_key=chosen, spare_signing=tuple(held.values()))

    @property
    def encryption_key(self) -> x25519.X25519PrivateKey:
        """The X25519 encryption key; :class:`KeyDirectoryError` for a bureau with only a hybrid
        key (use :meth:`decryption_keys` to open packages of every suite)."""
        if self.x25519_key is None:
            msg = f"bureau {self.bureau} has no X25519 encryption key (only ML-KEM-768+X25519)"
            raise KeyDirectoryError(msg)
        return self.x25519_key

    @functools.cached_property
    def encryption_key_id(self) -> str:
        """Key id of the X25519 encryption key (computed once)."""
        return key_id(raw_public(self.encryption_key.public_key()))

    def current_encryption_kids(self) -> list[str]:
        """Key ids of the current encryption keys (X25519 and/or hybrid; not the retired)."""
        kids = [self.encryption_key_id] if self.x25519_key is not None else []
        return kids + ([self.hybrid_key.key_id] if self.hybrid_key is not None else [])

    def decryption_keys(self) -> dict[str, RecipientPrivateKey]:
        """Every private encryption key held, by key id: what opens packages of either suite
        (the current keys and those of retired epochs not destroyed yet)."""
        keys: dict[str, RecipientPrivateKey] = dict(self.retired)
        if self.x25519_key is not None:
            keys[self.encryption_key_id] = self.x25519_key
        if self.hybrid_key is not None:
            keys[self.hybrid_key.key_id] = self.hybrid_key.hpke_private_key()
        return keys

    def public(self) -> BureauPublicKeys:
        """The public half, as published in the directory."""
        x = self.x25519_key
        h = self.hybrid_key
        return BureauPublicKeys(
            self.bureau,
            self.signing_key_id,
            self.signing_key.public_key(),
            self.encryption_key_id if x is not None else None,
            x.public_key() if x is not None else None,
            h.key_id if h is not None else None,
            h.hpke_public_key() if h is not None else None,
        )


@dataclass(frozen=True)
class BureauPublicKeys:
    """A bureau's current public keys (an X25519 key, a hybrid key, or both)."""

    bureau: str
    signing_key_id: str
    signing_key: ed25519.Ed25519PublicKey
    encryption_key_id: str | None
    encryption_key: x25519.X25519PublicKey | None
    hybrid_key_id: str | None = None
    hybrid_key: hpke.MLKEM768X25519PublicKey | None = None


class KeyLookup(Protocol):
    """Where the envelope finds public keys (the directory, or a fake in tests)."""

    def signing_key(self, bureau: str, kid: str, at: datetime) -> ed25519.Ed25519PublicKey:
        """The signing key ``kid`` of ``bureau`` valid at ``at``.

        Raises :class:`EnvelopeRejected` with ``key-unknown`` or ``key-revoked``.
        """
        ...

    def encryption_key(self, bureau: str) -> tuple[str, x25519.X25519PublicKey]:
        """The current X25519 key id and key of ``bureau``; raises KeyDirectoryError if none."""
        ...

    def recipient_key(self, bureau: str) -> tuple[str, RecipientPublicKey]:
        """The encryption key id and key ``bureau`` published, of any suite: what to encrypt to.

        The newest usable encryption key (a hybrid ML-KEM-768+X25519 key gives suite 2, an X25519
        key suite 1); raises KeyDirectoryError if the bureau has none.
        """
        ...

    def bureau_ids(self) -> list[str]:
        """Ids of every listed bureau, sorted (what ``to="all"`` expands to)."""
        ...

    def roles(self, bureau: str) -> frozenset[str]:
        """The roles of ``bureau`` in the directory (``member``, ``reviewer``, ``oversight``);
        an empty set for a bureau the directory does not list."""
        ...

    def rules(self) -> NetworkRules:
        """The network rules in force (:meth:`NetworkRules.in_force`: a directory without a
        reviewer requires no review)."""
        ...

    # --- the refresh hook: how a node keeps the keys current while it runs -------------------

    async def start(self, owner: object) -> None:
        """Load the keys if needed and keep them current while ``owner`` (a daemon, a publisher)
        runs; calling it again for the same owner does nothing."""
        ...

    async def stop(self, owner: object) -> None:
        """``owner`` no longer needs the keys kept current (the last one stops any follower)."""
        ...

    def refusal(self) -> DirectoryState | None:
        """Why the node must not accept or publish now (``stale``, ``too-old``), or ``None``."""
        ...

    def refusal_message(self, reason: DirectoryState) -> str:
        """One line saying why (for :meth:`refusal`'s ``reason``), for the publisher's error."""
        ...


class FixedKeys:
    """The refresh hook of :class:`KeyLookup` for keys that do not change while a node runs (a
    directory read once, the in-memory one of tests): nothing to follow, never refused."""

    async def start(self, owner: object) -> None:
        """Nothing to follow."""

    async def stop(self, owner: object) -> None:
        """Nothing to stop."""

    def refusal(self) -> DirectoryState | None:
        """Never refused: these keys are as current as when they were loaded."""
        return None

    def refusal_message(self, reason: DirectoryState) -> str:
        """Not reached (:meth:`refusal` is always ``None``); says so if it is."""
        return f"the keys refuse: {reason}"


class StaticDirectory(FixedKeys):
    """An in-memory directory of current keys (no rotation, no revocation)."""

    def __init__(
        self,
        bureaus: list[BureauPublicKeys],
        *,
        roles: Mapping[str, Iterable[str]] | None = None,
        rules: NetworkRules | None = None,
    ) -> None:
        """Index ``bureaus`` by id; ``roles`` gives a bureau's roles (default ``member`` only),
        ``rules`` the network rules (default :class:`NetworkRules`).

        Raises :class:`KeyDirectoryError` for roles of a bureau not given, a reviewer or
        oversight role on a country, or rules that supervise a bureau not given.
        """
        self._by_id = {b.bureau: b for b in bureaus}
        given = {bureau: frozenset(r) for bureau, r in (roles or {}).items()}
        try:
            for bureau, held in given.items():
                if bureau not in self._by_id:
                    msg = f"roles given for {bureau}, which is not in the directory"
                    raise ValueError(msg)
                check_roles(bureau, held)
            signed = rules if rules is not None else NetworkRules()
            for bureau in signed.supervision:
                if bureau not in self._by_id:
                    msg = f"the rules supervise {bureau}, which is not in the directory"
                    raise ValueError(msg)
        except ValueError as exc:
            raise KeyDirectoryError(str(exc)) from None
        member = frozenset({Role.MEMBER.value})
        self._roles = {bureau: given.get(bureau, member) for bureau in self._by_id}
        reviewers = [b for b, held in self._roles.items() if Role.REVIEWER in held]
        self._rules = signed.in_force(reviewers)

    def signing_key(self, bureau: str, kid: str, at: datetime) -> ed25519.Ed25519PublicKey:
        """Return the bureau's signing key if ``kid`` matches, else reject as ``key-unknown``."""
        entry = self._by_id.get(bureau)
        if entry is None or entry.signing_key_id != kid:
            raise EnvelopeRejected(Reason.KEY_UNKNOWN)
        return entry.signing_key

    def bureau_ids(self) -> list[str]:
        """Ids of every bureau given, sorted."""
        return sorted(self._by_id)

    def roles(self, bureau: str) -> frozenset[str]:
        """The roles given for ``bureau`` (``member`` by default; empty if not given)."""
        return self._roles.get(bureau, frozenset())

    def rules(self) -> NetworkRules:
        """The rules given, in force (nothing needs review without a reviewer)."""
        return self._rules

    def _entry(self, bureau: str) -> BureauPublicKeys:
        entry = self._by_id.get(bureau)
        if entry is None:
            msg = f"unknown bureau {bureau!r}: not in the directory"
            raise KeyDirectoryError(msg)
        return entry

    def encryption_key(self, bureau: str) -> tuple[str, x25519.X25519PublicKey]:
        """Return the bureau's X25519 encryption key id and key."""
        entry = self._entry(bureau)
        if entry.encryption_key_id is None or entry.encryption_key is None:
            msg = f"bureau {bureau!r} has no X25519 encryption key"
            raise KeyDirectoryError(msg)
        return entry.encryption_key_id, entry.encryption_key

    def recipient_key(self, bureau: str) -> tuple[str, RecipientPublicKey]:
        """The bureau's hybrid key if it has one (holding both means migrating), else X25519."""
        entry = self._entry(bureau)
        if entry.hybrid_key_id is not None and entry.hybrid_key is not None:
            return entry.hybrid_key_id, entry.hybrid_key
        return self.encryption_key(bureau)
