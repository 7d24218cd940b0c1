"""A bureau's request to join a network: its public keys, signed with its own signing key.

``nbx node join CC`` writes ``CC.join.json``; the anchor operator checks it with ``nbx directory
add --request FILE`` and lists the bureau (docs/onboarding.md). The file::

    {"join_request": {"format": "nbx-join/1", "bureau": "PT", "name": "...", "contact": "...",
                      "keys": [{"use", "alg", "kid", "public"}, ...], "created_at": "..."},
     "signature": "<b64url Ed25519 over DOMAIN || JCS(join_request)>"}

``keys`` are the entries of ``CC.public.json``: exactly one ``sign`` key (Ed25519) and at least one
``encrypt`` key. The signature is made with the private half of that signing key, so it proves
that whoever wrote the request holds it (proof of possession): a request carrying somebody else's
public key cannot be signed. It proves nothing about *who* the requester is: the anchor operator
checks that out of band, comparing the :func:`fingerprint` the requester read out with the one
``directory add --request`` prints, and the contact. The contact is for the anchor operator only
and is never put in the directory.

Every refusal is one line naming the file (:class:`~broker.errors.KeyDirectoryError`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
)

from broker.errors import EnvelopeRejected, KeyDirectoryError
from broker.ids import BureauId
from broker.keys.bureau import BureauKeys, KeyLookup
from broker.keys.directory import KeyRecord
from broker.keys.directory_edit import PublicDocument, PublicKeyEntry
from broker.keys.files import public_document
from broker.wire.canonical import b64u, b64u_decode, jcs

JOIN_FORMAT: Final = "nbx-join/1"
JOIN_DOMAIN: Final = b"nbx/join-request/v1\x00"
#: how a join request file is named in the new node's folder
JOIN_SUFFIX: Final = ".join.json"

_Text = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=False)]


class JoinRequestBody(BaseModel):
    """The signed content of a join request."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    format: Literal["nbx-join/1"]
    bureau: BureauId
    name: _Text
    contact: _Text
    keys: tuple[PublicKeyEntry, ...]
    created_at: AwareDatetime


@dataclass(frozen=True)
class JoinRequest:
    """A join request whose proof verified (build one with :func:`read_join_request`)."""

    body: JoinRequestBody
    #: SHA-256 of the signed bytes, short form (:func:`fingerprint`)
    fingerprint: str

    @property
    def bureau(self) -> str:
        """The bureau id the request asks for."""
        return self.body.bureau

    @property
    def signing_kid(self) -> str:
        """Key id of the request's signing key."""
        return next(k.kid for k in self.body.keys if k.use == "sign")

    def public_document(self) -> PublicDocument:
        """The keys as a ``CC.public.json`` document (the input of ``directory add``)."""
        return PublicDocument(bureau=self.body.bureau, keys=self.body.keys)


def fingerprint(signed: bytes) -> str:
    """The first 128 bits of SHA-256 of ``signed`` in hex, in groups of four (read out loud)."""
    digest = hashlib.sha256(signed).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def same_fingerprint(given: str, fingerprint_: str) -> bool:
    """Whether a fingerprint typed by a person (any case, spaces or none) is ``fingerprint_``."""
    return "".join(given.split()).lower() == "".join(fingerprint_.split())


def make_join_request(keys: BureauKeys, *, name: str, contact: str, now: datetime) -> bytes:
    """The join request file of ``keys.bureau`` (JSON bytes), signed with its signing key."""
    content: dict[str, Any] = {
        "format": JOIN_FORMAT,
        "bureau": keys.bureau,
        "name": name,
        "contact": contact,
        "keys": public_document(keys)["keys"],
        "created_at": now.isoformat(),
    }
    try:
        JoinRequestBody.model_validate(content)
    except ValidationError as exc:
        raise KeyDirectoryError(f"join request: {_reason(exc)}") from None
    signature = keys.signing_key.sign(JOIN_DOMAIN + jcs(content))
    document = {"join_request": content, "signature": b64u(signature)}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    reason = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {reason}" if where else reason


def verify_join_request(data: bytes, source: str) -> JoinRequest:
    """Parse ``data`` strictly and verify its proof of possession.

    Refused (one line starting with ``source``): not a signed join request, an invalid body, a
    key whose id does not match its public key, not exactly one Ed25519 signing key or no
    encryption key, and a signature that does not verify with the request's own signing key.
    """
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or set(document) != {"join_request", "signature"}:
            raise TypeError
        content = document["join_request"]
        if not isinstance(content, dict) or not isinstance(document["signature"], str):
            raise TypeError
        signature = b64u_decode(document["signature"])
        if len(signature) != 64:  # an Ed25519 signature
            raise TypeError
        signed = jcs(content)
    except Exception:  # any parse failure of untrusted input means "not a join request"
        msg = f"{source}: not a signed NBX join request"
        raise KeyDirectoryError(msg) from None
    try:
        body = JoinRequestBody.model_validate(content)
    except ValidationError as exc:
        msg = f"{source}: invalid join request: {_reason(exc)}"
        raise KeyDirectoryError(msg) from None
    records = []
    for n, entry in enumerate(body.keys):
        try:
            records.append(
                KeyRecord.model_validate({**entry.model_dump(), "not_before": body.created_at})
            )
        except ValidationError as exc:
            msg = f"{source}: invalid join request: keys.{n}: {_reason(exc)}"
            raise KeyDirectoryError(msg) from None
    signing = [r for r in records if r.use == "sign"]
    if len(signing) != 1:
        msg = f"{source}: a join request holds exactly one signing key, this one {len(signing)}"
        raise KeyDirectoryError(msg)
    if not any(r.use == "encrypt" for r in records):
        msg = f"{source}: the join request holds no encryption key"
        raise KeyDirectoryError(msg)
    if len({r.kid for r in records}) != len(records):
        msg = f"{source}: the join request lists a key twice"
        raise KeyDirectoryError(msg)
    key = ed25519.Ed25519PublicKey.from_public_bytes(signing[0].raw_public)
    try:
        key.verify(signature, JOIN_DOMAIN + signed)
    except InvalidSignature:
        msg = f"{source}: join request proof does not verify with its signing key"
        raise KeyDirectoryError(msg) from None
    return JoinRequest(body, fingerprint(signed))


def read_join_request(path: Path) -> JoinRequest:
    """Read and verify the join request file ``path`` (:func:`verify_join_request`)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: join request file not found"
        raise KeyDirectoryError(msg) from None
    except IsADirectoryError:
        msg = f"{path}: is a folder, not a join request file"
        raise KeyDirectoryError(msg) from None
    return verify_join_request(data, str(path))


def join_request_path(folder: Path, bureau: str) -> Path:
    """Where ``nbx node join`` writes the request of ``bureau`` in ``folder``."""
    return folder / f"{bureau}{JOIN_SUFFIX}"


def listed(directory: KeyLookup, bureau: str, kid: str, at: datetime) -> bool:
    """Whether ``directory`` lists ``bureau`` with the signing key ``kid``, usable at ``at``
    (what a joining node waits for before it consumes or publishes)."""
    try:
        directory.signing_key(bureau, kid, at)
    except (EnvelopeRejected, KeyDirectoryError):
        return False
    return True


def check_listed(directory: KeyLookup, bureau: str) -> None:
    """Raise :class:`KeyDirectoryError` (one line naming the directory's source) unless
    ``directory`` lists ``bureau`` (what a publisher checks before it signs anything: a bureau
    the anchor has not added yet cannot be answered; whether its key is still valid is the
    recipients' check, with their reason codes)."""
    if bureau in directory.bureau_ids():
        return
    source = getattr(directory, "source", "directory")
    serial = getattr(directory, "serial", None)
    which = f"directory serial {serial}" if serial else "the directory"
    msg = (
        f"{source}: {which} does not list {bureau}: the anchor has not added it yet "
        "(nbx directory add --request, then publish)"
    )
    raise KeyDirectoryError(msg)
