"""Changing the directory: add a bureau, rotate its keys, revoke a key, set a bureau's roles or
the network rules, re-issue it unchanged, announce the anchor's successor and take over as it.

Each change makes the next serial with a fresh ``issued_at``.

These are pure functions from one :class:`DirectoryBody` to the next; the anchor signs the result
with :func:`broker.keys.directory.sign_directory`. ``nbx directory add|rotate|revoke`` wrap them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, ConfigDict, ValidationError

from broker.errors import KeyDirectoryError
from broker.ids import BureauId
from broker.keys.anchor import AnchorLink
from broker.keys.directory import (
    BureauRecord,
    DirectoryBody,
    KeyRecord,
    Revocation,
    anchor_key_id,
)
from broker.keys.rules import NetworkRules, SupervisionLevel, check_roles

DEFAULT_OVERLAP = timedelta(days=7)


class PublicKeyEntry(BaseModel):
    """One key of a ``<CC>.public.json`` document."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    use: str
    alg: str
    kid: str
    public: str


class PublicDocument(BaseModel):
    """A ``<CC>.public.json`` document written by ``nbx keys new-bureau``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    bureau: BureauId
    keys: tuple[PublicKeyEntry, ...]


def read_public_document(path: Path) -> PublicDocument:
    """Read a ``<CC>.public.json`` file."""
    try:
        return PublicDocument.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        msg = f"{path}: public key file not found"
        raise KeyDirectoryError(msg) from None
    except ValidationError:
        msg = f"{path}: not a bureau public key document"
        raise KeyDirectoryError(msg) from None


def empty_directory(anchor: ed25519.Ed25519PublicKey, now: datetime) -> DirectoryBody:
    """A directory with no bureau, serial 1 (what ``add`` starts from when there is no file)."""
    return DirectoryBody(serial=1, issued_at=now, anchor_kid=anchor_key_id(anchor))


def _records(
    public: PublicDocument, not_before: datetime, not_after: datetime | None
) -> tuple[KeyRecord, ...]:
    try:
        return tuple(
            KeyRecord.model_validate(
                {**k.model_dump(), "not_before": not_before, "not_after": not_after}
            )
            for k in public.keys
        )
    except ValidationError as exc:
        msg = f"bureau {public.bureau}: invalid public key: {exc.errors()[0]['msg']}"
        raise KeyDirectoryError(msg) from None


def _reason(exc: ValidationError) -> str:
    """The first error of ``exc`` as one line (without pydantic's ``Value error,`` prefix)."""
    return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")


def _next(
    body: DirectoryBody,
    bureaus: list[BureauRecord],
    now: datetime,
    rules: NetworkRules | None = None,
) -> DirectoryBody:
    content: dict[str, Any] = body.to_json()
    content["serial"] = body.serial + 1
    content["issued_at"] = now
    content["bureaus"] = [b.model_dump() for b in sorted(bureaus, key=lambda b: b.id)]
    content["rules"] = (rules if rules is not None else body.rules).model_dump()
    try:
        return DirectoryBody.model_validate(content)
    except ValidationError as exc:
        msg = f"the change would make an invalid directory: {_reason(exc)}"
        raise KeyDirectoryError(msg) from None


def _find(body: DirectoryBody, bureau: str) -> BureauRecord:
    for record in body.bureaus:
        if record.id == bureau:
            return record
    msg = f"unknown bureau {bureau!r}: not in directory serial {body.serial}"
    raise KeyDirectoryError(msg)


def add_bureau(
    body: DirectoryBody,
    public: PublicDocument,
    *,
    name: str,
    now: datetime,
    roles: tuple[str, ...] = ("member",),
    not_after: datetime | None = None,
) -> DirectoryBody:
    """Add a bureau with its keys valid from ``now`` (until ``not_after``, if given)."""
    if any(b.id == public.bureau for b in body.bureaus):
        msg = f"bureau {public.bureau} is already in the directory; use rotate"
        raise KeyDirectoryError(msg)
    uses = sorted(k.use for k in public.keys)
    if uses.count("sign") != 1 or "encrypt" not in uses:
        msg = f"bureau {public.bureau}: needs one signing key and at least one encryption key"
        raise KeyDirectoryError(msg)
    try:
        check_roles(public.bureau, roles)
        record = BureauRecord(
            id=public.bureau, name=name, roles=roles, keys=_records(public, now, not_after)
        )
    except ValidationError as exc:
        msg = f"bureau {public.bureau}: {_reason(exc)}"
        raise KeyDirectoryError(msg) from None
    except ValueError as exc:
        raise KeyDirectoryError(str(exc)) from None
    return _next(body, [*body.bureaus, record], now)


def set_roles(
    body: DirectoryBody, bureau: str, roles: tuple[str, ...], *, now: datetime
) -> DirectoryBody:
    """Give the listed ``bureau`` exactly ``roles`` (its keys and everything else kept)."""
    record = _find(body, bureau)
    if tuple(record.roles) == tuple(roles):
        msg = f"nothing to change: {bureau} already has the roles {','.join(roles)}"
        raise KeyDirectoryError(msg)
    try:
        check_roles(bureau, roles)
    except ValueError as exc:
        raise KeyDirectoryError(str(exc)) from None
    others = [b for b in body.bureaus if b.id != bureau]
    return _next(body, [*others, record.model_copy(update={"roles": roles})], now)


def set_rules(
    body: DirectoryBody,
    *,
    now: datetime,
    review_kinds: Iterable[str] | None = None,
    review_types: Iterable[str] | None = None,
    supervise: Mapping[str, SupervisionLevel] | None = None,
    unsupervise: Iterable[str] = (),
) -> DirectoryBody:
    """Change the network rules (:mod:`broker.keys.rules`), keeping every bureau and key.

    ``review_kinds`` / ``review_types`` replace the lists when given; ``supervise`` sets the
    level of each bureau named (which must be listed), ``unsupervise`` returns a supervised
    bureau to the default (``post``). Everything not named stays as it was.
    """
    rules = body.rules
    levels = dict(rules.supervision)
    listed = {b.id for b in body.bureaus}
    changes = dict(supervise or {})
    for bureau in changes:
        if bureau not in listed:
            msg = f"cannot supervise {bureau}: not in directory serial {body.serial}"
            raise KeyDirectoryError(msg)
    for bureau in unsupervise:
        if bureau in changes:
            msg = f"{bureau} is both supervised and unsupervised: give one"
            raise KeyDirectoryError(msg)
        if bureau not in levels:
            msg = f"cannot unsupervise {bureau}: the rules do not supervise it"
            raise KeyDirectoryError(msg)
        del levels[bureau]
    levels.update(changes)
    content: dict[str, Any] = rules.model_dump()
    if review_kinds is not None:
        content["review_kinds"] = list(review_kinds)
    if review_types is not None:
        content["review_types"] = list(review_types)
    content["supervision"] = dict(sorted(levels.items()))
    try:
        new = NetworkRules.model_validate(content)
    except ValidationError as exc:
        msg = f"invalid rules: {_reason(exc)}"
        raise KeyDirectoryError(msg) from None
    return _next(body, list(body.bureaus), now, new)


def rotate_keys(
    body: DirectoryBody,
    public: PublicDocument,
    *,
    now: datetime,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> DirectoryBody:
    """Add the bureau's new keys (valid from ``now``); its current keys stay valid for ``overlap``.

    Every key of the bureau that is still open-ended or valid past ``now + overlap`` gets
    ``not_after = now + overlap``: messages signed with the old signing key keep verifying, and
    packages already encrypted to the old encryption key can still be opened, until then.
    """
    if overlap < timedelta(0):
        msg = "the rotation overlap cannot be negative"
        raise KeyDirectoryError(msg)
    record = _find(body, public.bureau)
    end = now + overlap
    kept = []
    for key in record.keys:
        if key.not_after is None or key.not_after > end:
            key = key.model_copy(
                update={"not_after": max(end, key.not_before + timedelta(seconds=1))}
            )
        kept.append(key)
    new = _records(public, now, None)
    if {k.kid for k in new} & {k.kid for k in kept}:
        msg = f"bureau {public.bureau}: the new keys are already in the directory"
        raise KeyDirectoryError(msg)
    rotated = record.model_copy(update={"keys": (*kept, *new)})
    others = [b for b in body.bureaus if b.id != record.id]
    return _next(body, [*others, rotated], now)


def revoke_key(
    body: DirectoryBody,
    bureau: str,
    kid: str,
    *,
    at: datetime,
    reason: str,
    now: datetime,
) -> DirectoryBody:
    """Revoke key ``kid`` of ``bureau`` from time ``at`` (which may be in the past or future)."""
    record = _find(body, bureau)
    key = record.key(kid)
    if key is None:
        msg = f"bureau {bureau} has no key {kid}"
        raise KeyDirectoryError(msg)
    if key.revocation is not None:
        msg = f"key {kid} of {bureau} is already revoked"
        raise KeyDirectoryError(msg)
    revoked = key.model_copy(
        update={"status": "revoked", "revocation": Revocation(at=at, reason=reason)}
    )
    keys = tuple(revoked if k.kid == kid else k for k in record.keys)
    others = [b for b in body.bureaus if b.id != bureau]
    return _next(body, [*others, record.model_copy(update={"keys": keys})], now)


def reissue(body: DirectoryBody, *, now: datetime) -> DirectoryBody:
    """The same bureaus and keys under the next serial, issued ``now``.

    Nodes refuse a directory issued longer than ``trust.max_directory_age_days`` ago (a frozen
    directory is noticed); the anchor re-issues well within that age even when nothing changed.
    """
    return _next(body, list(body.bureaus), now)


def public_document_json(public: PublicDocument) -> str:
    """Serialise a public document (for tests and tools)."""
    return json.dumps(public.model_dump(), indent=2) + "\n"


def add_encryption_keys(
    body: DirectoryBody, public: PublicDocument, *, now: datetime
) -> DirectoryBody:
    """Add encryption keys to a listed bureau, valid from ``now``, leaving its other keys as they
    are (how a bureau adds a post-quantum hybrid key next to its X25519 key: being the newest, it is
    the one senders encrypt to; retire the X25519 key later with :func:`revoke_key`)."""
    record = _find(body, public.bureau)
    if not public.keys or any(k.use != "encrypt" for k in public.keys):
        msg = f"bureau {public.bureau}: add-key takes encryption keys only (use rotate for signing)"
        raise KeyDirectoryError(msg)
    new = _records(public, now, None)
    if {k.kid for k in new} & {k.kid for k in record.keys}:
        msg = f"bureau {public.bureau}: the new keys are already in the directory"
        raise KeyDirectoryError(msg)
    added = record.model_copy(update={"keys": (*record.keys, *new)})
    others = [b for b in body.bureaus if b.id != record.id]
    return _next(body, [*others, added], now)


# --- anchor rotation (broker.keys.anchor, docs/security/anchor-rotation.md) ---------------------


def announce_successor(body: DirectoryBody, link: AnchorLink, *, now: datetime) -> DirectoryBody:
    """The next serial, naming ``link``'s successor (``link`` signed by the body's anchor).

    Announcing again replaces an earlier announcement (the newest directory names the successor
    the anchor means); the link already given out stays valid, so guard every announced key.
    """
    if link.from_kid != body.anchor_kid:
        msg = (
            f"the anchor link is from {link.from_kid}, not from the directory's anchor "
            f"{body.anchor_kid}"
        )
        raise KeyDirectoryError(msg)
    if link.to_kid == body.anchor_kid:  # pragma: no cover - AnchorLink refuses a self-link
        msg = f"the successor {link.to_kid} is the current anchor"
        raise KeyDirectoryError(msg)
    return _next(body, list(body.bureaus), now).model_copy(update={"successor": link})


def take_over(
    body: DirectoryBody, successor: ed25519.Ed25519PublicKey, *, now: datetime
) -> DirectoryBody:
    """The next serial as the announced ``successor`` signs it: ``anchor_kid`` is the successor,
    the announcement is gone and ``anchor_chain`` holds every earlier link plus the announcing one
    (so a node pinned to any earlier anchor can follow)."""
    link = body.successor
    kid = anchor_key_id(successor)
    if link is None:
        msg = f"directory serial {body.serial} names no successor anchor: nothing to take over"
        raise KeyDirectoryError(msg)
    if link.to_kid != kid:
        msg = (
            f"the key {kid} is neither the anchor {body.anchor_kid} of directory serial "
            f"{body.serial} nor its announced successor {link.to_kid}"
        )
        raise KeyDirectoryError(msg)
    content: dict[str, Any] = _next(body, list(body.bureaus), now).to_json()
    content["anchor_kid"] = kid
    content.pop("successor", None)
    content["anchor_chain"] = [*(x.model_dump() for x in body.anchor_chain), link.model_dump()]
    try:
        return DirectoryBody.model_validate(content)
    except ValidationError as exc:  # pragma: no cover - the links were valid in the body
        msg = f"the take-over would make an invalid directory: {_reason(exc)}"
        raise KeyDirectoryError(msg) from None
