"""Trust anchor rotation: anchor links and the chain a node follows.

The ceremony and its promises: docs/security/anchor-rotation.md.

An **anchor link** is a small statement signed by the outgoing anchor that names its successor::

    {"from_kid", "from_public", "to_kid", "to_public", "at", "signature"}

``signature`` is Ed25519 of the outgoing anchor (``from_public``) over
``nbx/anchor-link/v1\\0 || JCS(link without signature)``. The outgoing anchor announces its
successor in a directory it signs (the body's ``successor``); the successor then signs the next
serial, carrying every link from earlier anchors to itself (the body's ``anchor_chain``, oldest
first). A node pinned to an earlier anchor follows the chain (:func:`walk`): each link must start
at the key the walk has reached and verify with it, so only a key the pinned anchor (or a successor
it announced) signed for can ever be trusted. A link from an anchor the walk never reached is
ignored; a link that does not verify stops the walk with one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, model_validator

from broker.errors import KeyDirectoryError
from broker.keys.key_ids import key_id, raw_public
from broker.wire.canonical import b64u, b64u_decode, jcs

ANCHOR_LINK_DOMAIN = b"nbx/anchor-link/v1\x00"

__all__ = [
    "ANCHOR_LINK_DOMAIN",
    "AnchorLink",
    "UnannouncedAnchorError",
    "Walked",
    "kid_of",
    "make_link",
    "parse_links",
    "walk",
]


class UnannouncedAnchorError(KeyDirectoryError):
    """A directory (or a stored chain) leads to an anchor that the pinned anchor did not announce:
    a forged link, or a signer no chain reaches (logged with reason ``unannounced-anchor``)."""


def kid_of(key: ed25519.Ed25519PublicKey) -> str:
    """The key id of an anchor public key."""
    return key_id(raw_public(key))


class AnchorLink(BaseModel):
    """The outgoing anchor ``from_kid`` names ``to_kid`` as its successor (signed by ``from``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    from_kid: str
    from_public: str
    to_kid: str
    to_public: str
    at: AwareDatetime
    signature: str

    @model_validator(mode="after")
    def _consistent(self) -> AnchorLink:
        for kid, public in ((self.from_kid, self.from_public), (self.to_kid, self.to_public)):
            try:
                raw = b64u_decode(public)
            except ValueError:
                raw = b""
            if len(raw) != 32 or key_id(raw) != kid:
                msg = f"anchor link: key id {kid} does not match its public key"
                raise ValueError(msg)
        if self.from_kid == self.to_kid:
            msg = f"anchor link: anchor {self.from_kid} names itself as its successor"
            raise ValueError(msg)
        return self

    @property
    def name(self) -> str:
        """``FROM -> TO`` (key ids), for messages."""
        return f"{self.from_kid} -> {self.to_kid}"

    def signed_content(self) -> bytes:
        """What the outgoing anchor signs: the domain and the JCS of the link without its
        signature."""
        content = self.model_dump(mode="json", exclude={"signature"})
        return ANCHOR_LINK_DOMAIN + jcs(content)

    def from_key(self) -> ed25519.Ed25519PublicKey:
        """The outgoing anchor's public key."""
        return ed25519.Ed25519PublicKey.from_public_bytes(b64u_decode(self.from_public))

    def to_key(self) -> ed25519.Ed25519PublicKey:
        """The successor's public key."""
        return ed25519.Ed25519PublicKey.from_public_bytes(b64u_decode(self.to_public))

    def verifies(self) -> bool:
        """Whether the signature verifies with ``from_public`` (the link's own outgoing key)."""
        try:
            self.from_key().verify(b64u_decode(self.signature), self.signed_content())
        except (InvalidSignature, ValueError):
            return False
        return True


def make_link(
    outgoing: ed25519.Ed25519PrivateKey, successor: ed25519.Ed25519PublicKey, at: datetime
) -> AnchorLink:
    """The link in which ``outgoing`` names ``successor``, signed now (``at``)."""
    old, new = outgoing.public_key(), successor
    if kid_of(old) == kid_of(new):
        msg = f"the successor anchor {kid_of(new)} is the current anchor: give a new key"
        raise KeyDirectoryError(msg)
    unsigned: dict[str, Any] = {
        "from_kid": kid_of(old),
        "from_public": b64u(raw_public(old)),
        "to_kid": kid_of(new),
        "to_public": b64u(raw_public(new)),
        "at": at,
        "signature": b64u(b"\x00" * 64),
    }
    draft = AnchorLink.model_validate(unsigned)
    return draft.model_copy(update={"signature": b64u(outgoing.sign(draft.signed_content()))})


def parse_links(value: object, source: str) -> tuple[AnchorLink, ...]:
    """Parse a JSON list of links (from a serial file); one line naming ``source`` if it is not
    one."""
    if not isinstance(value, list):
        msg = f"{source}: anchor_chain is not a list of anchor links"
        raise KeyDirectoryError(msg)
    try:
        return tuple(AnchorLink.model_validate(item) for item in value)
    except ValidationError as exc:
        reason = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        msg = f"{source}: invalid anchor link: {reason}"
        raise KeyDirectoryError(msg) from None


@dataclass(frozen=True)
class Walked:
    """Where a walk along anchor links from a pinned key ended, and the links it used."""

    anchor: ed25519.Ed25519PublicKey
    links: tuple[AnchorLink, ...]

    @property
    def kid(self) -> str:
        """The key id of the anchor reached."""
        return kid_of(self.anchor)


def walk(
    pinned: ed25519.Ed25519PublicKey,
    links: Iterable[AnchorLink],
    source: str,
    *,
    until: str | None = None,
) -> Walked:
    """Follow ``links`` (oldest first) from ``pinned``: each link that starts at the key reached so
    far must verify with that key, and moves the walk to its successor. Links before the pinned
    key (older history) are passed over. Stops at ``until`` (a key id) if given.

    Raises :class:`KeyDirectoryError` (one line starting with ``source``) for a link from the
    reached key whose signature does not verify (forged): a tampered chain never introduces a key.
    """
    current = pinned
    used: list[AnchorLink] = []
    sequence: Sequence[AnchorLink] = tuple(links)
    for link in sequence:
        if until is not None and kid_of(current) == until:
            break
        if link.from_kid != kid_of(current):
            continue
        if link.from_public != b64u(raw_public(current)) or not link.verifies():
            msg = (
                f"{source}: the anchor link {link.name} does not verify with anchor "
                f"{link.from_kid} (forged)"
            )
            raise UnannouncedAnchorError(msg)
        current = link.to_key()
        used.append(link)
    return Walked(current, tuple(used))
