"""Safeguard messages: a reviewer's attestation and the oversight body's decisions.

They travel like lifecycle messages (empty grants, the body in the signed header under the key
of the message kind, no personal data): ``review`` carries a :class:`Review`, ``block`` a
:class:`Block`, ``unblock`` an :class:`Unblock` and ``delete`` a :class:`Delete`. The statement's
``notice_id`` and ``notice_type`` are those of the notice the message is about.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from broker.schemas.common import BureauId, ShortText, StrictModel
from broker.schemas.lifecycle import MsgId
from broker.vocab import Ground

#: base64url (no padding) of a SHA-256 digest: 43 characters
StatementHash = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")]
#: an oversight body's case reference (no personal data)
CaseRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]

APPROVED = "approved"
REFUSED = "refused"


class Review(StrictModel):
    """A reviewer's attestation of exactly one message: the sender's msg id and the hash of its
    signed statement (which covers every disclosed field of every recipient's view)."""

    subject_sender: BureauId
    subject_msg_id: MsgId
    statement_hash: StatementHash
    decision: Literal["approved", "refused"]
    grounds: Annotated[tuple[Ground, ...], Field(max_length=5)] = ()
    reason: ShortText

    @model_validator(mode="after")
    def _grounds_when_refused(self) -> Review:
        if self.decision == REFUSED and not self.grounds:
            raise ValueError("grounds: required when the decision is refused")
        if self.decision == APPROVED and self.grounds:
            raise ValueError("grounds: only a refusal has grounds")
        return self


class Block(StrictModel):
    """Block a notice while a challenge (``case_ref``) is pending: kept, but not actionable."""

    subject_sender: BureauId
    case_ref: CaseRef
    reason: ShortText


class Unblock(StrictModel):
    """Lift the block of case ``case_ref``."""

    subject_sender: BureauId
    case_ref: CaseRef


class Delete(StrictModel):
    """Delete a notice everywhere (purged like an erasure) after case ``case_ref``."""

    subject_sender: BureauId
    case_ref: CaseRef
    reason: ShortText
