"""Lifecycle messages: what happens to a published notice after publication.

A ``publish`` message carries a notice (version 1); an ``update`` carries the new version of the
notice with :class:`UpdateInfo`; ``suspend``, ``cancel`` and ``erasure`` name the notice by id;
recipients answer every delivered, rejected or purged message with a :class:`Receipt`; the
receipts one recipient owes one sender for a consumer batch travel together, signed once, as a
:class:`ReceiptBatch`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from broker.schemas.common import BureauId, LongText, NoticeId, Sha256Hex, ShortText, StrictModel
from broker.vocab import MessageKind as MessageKind  # re-exported (defined in broker.vocab)
from broker.vocab import ReceiptStatus, ResponseKind

#: A message id (UUIDv7 text form, as minted by the envelope layer).
MsgId = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")]


class UpdateInfo(StrictModel):
    """Sent with an updated notice: the version it supersedes (the notice's version is one more)."""

    supersedes_version: Annotated[int, Field(ge=1)]
    reason: LongText | None = None


class Suspend(StrictModel):
    """Suspend a notice: recipients keep it but must not act on it until further notice."""

    notice_id: NoticeId
    reason: LongText
    until: AwareDatetime | None = None


class Cancel(StrictModel):
    """Cancel a notice; ``withdraw=True`` when the issuing bureau withdraws it (e.g. arrested)."""

    notice_id: NoticeId
    reason: LongText
    withdraw: bool = False


class ErasureOrder(StrictModel):
    """Order every recipient to erase the notice and all copies by ``erase_by``."""

    notice_id: NoticeId
    reason: LongText
    legal_basis: LongText | None = None
    erase_by: AwareDatetime | None = None


class AttachmentRef(StrictModel):
    """A file the responding bureau holds (a photo taken on arrest, a fingerprint comparison),
    by reference and content hash, never inline."""

    uri: Annotated[str, Field(pattern=r"^(https://|urn:)\S+$", max_length=2000)]
    sha256: Sha256Hex
    media_type: Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    title: ShortText | None = None


#: Most attachments one response may reference.
MAX_ATTACHMENTS = 20


class Response(StrictModel):
    """A recipient's answer to a notice (the header of a ``response`` message): what it did or
    found, sent to the issuing bureau and, where the notice's ``responses_shared_with`` allows,
    to those bureaus too. Unlike a receipt it is about the case, not the delivery."""

    notice_id: NoticeId
    kind: ResponseKind
    note: LongText | None = None
    attachments: Annotated[list[AttachmentRef], Field(max_length=MAX_ATTACHMENTS)] = Field(
        default_factory=list
    )
    in_reply_to: MsgId | None = None
    at: AwareDatetime

    @model_validator(mode="after")
    def _note_when_needed(self) -> Response:
        needs_note = (ResponseKind.NO_ACTION, ResponseKind.MORE_INFORMATION_NEEDED)
        if self.kind in needs_note and self.note is None:
            raise ValueError(f"note: required for a {self.kind.value} response (say why / what)")
        return self


class Receipt(StrictModel):
    """A recipient's answer to one message: delivered, rejected (with the reason) or purged."""

    msg_id: MsgId
    notice_id: NoticeId
    recipient: BureauId
    status: Literal[ReceiptStatus.DELIVERED, ReceiptStatus.REJECTED, ReceiptStatus.PURGED]
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    at: AwareDatetime

    @model_validator(mode="after")
    def _reason_when_rejected(self) -> Receipt:
        if self.status == ReceiptStatus.REJECTED and self.reason is None:
            raise ValueError("reason: required when the status is rejected")
        return self


#: Most receipts one signed receipt message may carry (a daemon batch holds up to a few hundred).
MAX_RECEIPTS_PER_MESSAGE = 1000


class ReceiptBatch(StrictModel):
    """The header of a ``receipt`` message: every answer one recipient sends one sender for one
    consumer batch, under one signature (one Ed25519 signature and one HPKE package per sender
    per batch instead of one per message received)."""

    receipts: Annotated[list[Receipt], Field(min_length=1, max_length=MAX_RECEIPTS_PER_MESSAGE)]
