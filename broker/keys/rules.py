"""The network rule set, signed by the trust anchor as part of the directory body.

``DirectoryBody.rules`` (:class:`NetworkRules`) says which messages need a reviewer's approving
attestation before a recipient may act on them, and how closely each sender is supervised:

* ``review_kinds`` and ``review_types``: a message needs review when its kind is one of
  ``review_kinds`` (default ``publish`` and ``update``) and its notice type one of
  ``review_types`` (default: every type that targets a living person, ``red``, ``blue``,
  ``green`` and every ``diffusion``);
* ``supervision``: per sender, ``post`` (delivered at once, not actionable before approval; the
  level of every sender not listed) or ``pre`` (heightened: the sender's messages reach no national
  bureau before approval).

Review can only be required where the directory lists at least one bureau with the role
``reviewer``: :meth:`NetworkRules.in_force` turns the signed rules into the rules a node applies
(no reviewer: nothing needs review, every sender ``post``). The roles ``reviewer`` and
``oversight`` belong to network bodies, organisation ids ``XA``..``XZ`` (:func:`check_roles`).

A directory whose rules are the defaults does not carry them (the body is encoded as before the
rules existed), so a node without rule support still accepts it. See docs/safeguards.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from broker.ids import BureauId
from broker.vocab import MessageKind, Role

#: A sender's supervision level.
SupervisionLevel = Literal["post", "pre"]
#: The level of a sender the rules do not list.
DEFAULT_SUPERVISION: Final[SupervisionLevel] = "post"
SUPERVISION_LEVELS: Final[tuple[SupervisionLevel, ...]] = ("post", "pre")

#: The notice types (the values of :class:`broker.schemas.common.NoticeType`, which the keys
#: layer cannot import: tests/keys/test_rules.py checks that both lists agree).
NOTICE_TYPES: Final = (
    "red",
    "yellow",
    "blue",
    "black",
    "green",
    "orange",
    "purple",
    "silver",
    "un",
    "diffusion",
)
#: The types that target a living person: what needs review unless the anchor says otherwise.
PERSON_TARGETING: Final = ("red", "blue", "green", "diffusion")
#: The message kinds a rule can demand review for (the ones that carry a notice).
REVIEWABLE_KINDS: Final = (MessageKind.PUBLISH, MessageKind.UPDATE)
#: The roles only a network body (an organisation id) may hold.
BODY_ROLES: Final = frozenset({Role.REVIEWER, Role.OVERSIGHT})


def check_roles(bureau: str, roles: Iterable[str]) -> None:
    """Raise :class:`ValueError` (one line) if ``bureau`` holds a network body's role but is not
    an organisation id ``XA``..``XZ``."""
    if bureau.startswith("X"):
        return
    for role in roles:
        if role in BODY_ROLES:
            msg = f"{bureau} cannot have the role {role}: only network bodies (XA..XZ) can"
            raise ValueError(msg)


class NetworkRules(BaseModel):
    """Which messages need review, and each sender's supervision level (signed with the
    directory)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    review_kinds: tuple[MessageKind, ...] = REVIEWABLE_KINDS
    review_types: tuple[str, ...] = PERSON_TARGETING
    supervision: dict[BureauId, SupervisionLevel] = {}

    @field_validator("review_kinds")
    @classmethod
    def _reviewable(cls, kinds: tuple[MessageKind, ...]) -> tuple[MessageKind, ...]:
        for kind in kinds:
            if kind not in REVIEWABLE_KINDS:
                msg = f"message kind {kind} cannot need review (only {', '.join(REVIEWABLE_KINDS)})"
                raise ValueError(msg)
        if len(set(kinds)) != len(kinds):
            msg = "a message kind is listed twice"
            raise ValueError(msg)
        return kinds

    @field_validator("review_types")
    @classmethod
    def _known_types(cls, types: tuple[str, ...]) -> tuple[str, ...]:
        for notice_type in types:
            if notice_type not in NOTICE_TYPES:
                msg = f"unknown notice type {notice_type!r}"
                raise ValueError(msg)
        if len(set(types)) != len(types):
            msg = "a notice type is listed twice"
            raise ValueError(msg)
        return types

    def needs_review(self, kind: str, notice_type: str) -> bool:
        """Whether a message of ``kind`` about a notice of ``notice_type`` needs an approving
        attestation before it is actionable (ask the rules :meth:`in_force`)."""
        return kind in self.review_kinds and notice_type in self.review_types

    def supervision_of(self, sender: str) -> SupervisionLevel:
        """The supervision level of ``sender`` (``post`` unless the rules list it)."""
        return self.supervision.get(sender, DEFAULT_SUPERVISION)

    def supervised(self) -> list[str]:
        """The senders under heightened supervision (``pre``), sorted."""
        return sorted(b for b, level in self.supervision.items() if level == "pre")

    def in_force(self, reviewers: Iterable[str]) -> NetworkRules:
        """The rules a node applies when ``reviewers`` are the directory's reviewers: these
        rules, or, with no reviewer, rules under which nothing needs review (a network without
        a reviewer cannot require review, and every sender is ``post``)."""
        if any(True for _ in reviewers):
            return self
        return self.model_copy(update={"review_kinds": (), "supervision": {}})

    def is_default(self) -> bool:
        """Whether these are the default rules (which a directory body does not carry)."""
        return self == NetworkRules()
