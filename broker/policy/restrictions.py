"""Sender restrictions: the origin bureau's limits on who receives a notice and how it is handled.

They apply before any recipient policy and no recipient policy can override them: a recipient they
exclude receives nothing at all, and the handling code they set is the one every rule is matched
against (and the one sealed into the statement).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from broker.policy.decision import EXCLUDED_BY_SENDER, NOT_LISTED_BY_SENDER
from broker.schemas import HandlingCode
from broker.schemas.common import BureauId


class SenderRestrictions(BaseModel):
    """What the origin bureau imposes on one notice.

    ``only``: if set, the only bureaus that may receive it; ``exclude``: bureaus that must not;
    ``handling``: a handling code that replaces the notice's own for every recipient.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    only: frozenset[BureauId] | None = None
    exclude: frozenset[BureauId] = Field(default_factory=frozenset)
    handling: HandlingCode | None = None

    def refusal(self, recipient: str) -> str | None:
        """Why ``recipient`` may not receive the notice (a reason code), or ``None`` if it may."""
        if recipient in self.exclude:
            return EXCLUDED_BY_SENDER
        if self.only is not None and recipient not in self.only:
            return NOT_LISTED_BY_SENDER
        return None
