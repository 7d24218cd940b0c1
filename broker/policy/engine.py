"""Deciding: sender restrictions first, then the recipient's rules, unit by unit.

For each disclosure unit the rules of the recipient's policy are tried in precedence order
(:attr:`CompiledRule.precedence`); the first that matches decides. Protected units need more:

* a special-category or biometric unit is disclosed only by a rule that *names* it (its category,
  or a ``path`` pattern without ``**``), otherwise ``default-deny-special`` /
  ``default-deny-biometric``;
* when the subject is (or may be) a minor, an identity, physical, biometric, location or contact
  unit is disclosed only by a rule whose ``subject`` lists ``minor``, otherwise
  ``default-deny-minor``; for a minor in a protected role (:data:`PROTECTED_ROLES`, or no stated
  role) the free-text units too (:func:`~broker.schemas.units.free_text_paths`); a minor among
  the ``related_persons`` protects that unit, and, in a protected role, the free text outside
  the subject's own block. Who is a minor, and on which day, is :mod:`broker.schemas.age`'s.

A ``disclose`` rule that does not meet these conditions is skipped for that unit, so a less
specific rule may still decide it. A unit no rule decides is withheld by ``default-deny-unmatched``
(or by the built-in rule of its protection, if it has one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from broker.errors import PolicyError
from broker.policy.decision import (
    DEFAULT_DENY_BIOMETRIC,
    DEFAULT_DENY_MINOR,
    DEFAULT_DENY_SPECIAL,
    DEFAULT_DENY_UNMATCHED,
    NO_POLICY,
    WITHHELD_BY_POLICY,
    Decision,
)
from broker.policy.policy import CompiledRule, Decline, NoticeFacts, Policy, PolicySet
from broker.policy.restrictions import SenderRestrictions
from broker.policy.rules import Action
from broker.schemas import DataCategory, DisclosureUnit, NoticeBase, disclosure_units
from broker.schemas.age import MINOR_INPUTS as AGE_INPUTS
from broker.schemas.age import RELATED_INPUT, MinorTest, minor_test, related_tests
from broker.schemas.common import PROTECTED_ROLES
from broker.schemas.units import free_text_paths
from broker.vocab import Reason

#: Categories withheld from a minor's record unless a ``subject = "minor"`` rule discloses them.
MINOR_PROTECTED = frozenset(
    {
        DataCategory.IDENTITY,
        DataCategory.PHYSICAL,
        DataCategory.BIOMETRIC,
        DataCategory.LOCATION,
        DataCategory.CONTACT,
    }
)
#: The disclosure units the minor test reads (:func:`broker.schemas.age.minor_test`).
MINOR_INPUTS = AGE_INPUTS
#: The prefix of the units describing the notice's subject (``person.family_name``...).
SUBJECT_BLOCK = "person."
#: Reason code the consumer quarantines a declined notice with.
DECLINED_BY_POLICY = Reason.DECLINED_BY_POLICY


@dataclass(frozen=True)
class MinorState:
    """What the minor tests found for one notice (:mod:`broker.schemas.age`).

    ``subject``: the notice's subject may be a minor; ``subject_protected``: a minor in a
    protected role (or none stated); ``related`` / ``related_protected``: the same for any of its
    ``related_persons``.
    """

    subject: bool = False
    subject_protected: bool = False
    related: bool = False
    related_protected: bool = False


@dataclass(frozen=True)
class MinorJudgement:
    """The minor tests of one notice: the subject's, each related person's, and the state."""

    subject: MinorTest
    related: tuple[MinorTest, ...]

    @property
    def state(self) -> MinorState:
        """The outcome the engine decides with."""
        return MinorState(
            subject=self.subject.minor,
            subject_protected=self.subject.protected,
            related=any(t.minor for t in self.related),
            related_protected=any(t.protected for t in self.related),
        )

    def alternatives(self, withheld: frozenset[str]) -> list[MinorState]:
        """Every outcome a recipient that does not see the ``withheld`` units cannot rule out
        (the actual one included): a test whose inputs are withheld may have gone either way."""
        state = self.state
        subjects = [(state.subject, state.subject_protected)]
        if self.subject.inputs & withheld:
            role = self.subject.role
            subjects = [(False, False), (True, role is None or role in PROTECTED_ROLES)]
        related = [(state.related, state.related_protected)]
        if any(t.inputs & withheld for t in self.related):
            related = [(False, False), (True, False), (True, True)]
        return [MinorState(s, sp, r, rp) for s, sp in subjects for r, rp in related]


def judge_minors(notice: NoticeBase, today: date | None = None) -> MinorJudgement:
    """The minor tests of ``notice``'s subject and related persons (``today``: default today,
    UTC)."""
    at = today if today is not None else datetime.now(UTC).date()
    return MinorJudgement(minor_test(notice, at), related_tests(notice, at))


def notice_facts(
    notice: NoticeBase,
    *,
    restrictions: SenderRestrictions | None = None,
    today: date | None = None,
    minors: MinorJudgement | None = None,
) -> NoticeFacts:
    """The notice-level facts rules match on (the sender's handling override applied)."""
    handling = restrictions.handling if restrictions and restrictions.handling else None
    judged = minors if minors is not None else judge_minors(notice, today)
    return NoticeFacts(
        notice_type=str(notice.notice_type),
        sender=notice.issuing_bureau,
        handling=str(handling or notice.handling.code),
        subject=str(notice.subject_category) if notice.subject_category is not None else "",
        minor=judged.subject.minor,
        reliability=str(notice.source_reliability),
        accuracy=int(notice.information_accuracy),
    )


def decide(
    notice: NoticeBase,
    recipient: str,
    policies: PolicySet,
    *,
    restrictions: SenderRestrictions | None = None,
    today: date | None = None,
) -> Decision:
    """What ``recipient`` may receive of ``notice`` under its policy and the sender's restrictions.

    ``today`` is the day of the decision the minor tests judge ages on (default: today, UTC).
    """
    return decide_all(notice, [recipient], policies, restrictions=restrictions, today=today)[
        recipient
    ]


def decide_all(
    notice: NoticeBase,
    recipients: Iterable[str],
    policies: PolicySet,
    *,
    restrictions: SenderRestrictions | None = None,
    today: date | None = None,
    units: Sequence[DisclosureUnit] | None = None,
) -> dict[str, Decision]:
    """:func:`decide` for many recipients, splitting the notice into units only once.

    ``units`` is ``disclosure_units(notice)`` when the caller already has it (the publisher).
    """
    minors = judge_minors(notice, today)
    facts = notice_facts(notice, restrictions=restrictions, minors=minors)
    if units is None:
        units = disclosure_units(notice)
    free_text = free_text_paths(notice.notice_type)
    out: dict[str, Decision] = {}
    # recipients under one policy file (the many that fall back to default.toml) get the same
    # decision but for its recipient: evaluate each policy once
    by_policy: dict[str, Decision] = {}
    for recipient in recipients:
        refusal = restrictions.refusal(recipient) if restrictions else None
        if refusal is not None:
            out[recipient] = Decision(
                recipient, False, refusal, frozenset(), (), NO_POLICY, facts.handling
            )
            continue
        policy = policies.for_recipient(recipient)
        done = by_policy.get(policy.id)
        if done is None:
            done = evaluate(policy, recipient, facts, units, minors, free_text)
            by_policy[policy.id] = done
        elif done.recipient != recipient:
            done = dataclasses.replace(done, recipient=recipient)
        out[recipient] = done
    return out


class _Units:
    """Deciding units under one policy for a given minor state (candidate rules cached)."""

    def __init__(self, policy: Policy, facts: NoticeFacts, free_text: frozenset[str]) -> None:
        self._policy = policy
        self._facts = facts
        self._free_text = free_text
        self._candidates: dict[bool, list[CompiledRule]] = {}

    def candidates(self, minor: bool) -> list[CompiledRule]:
        """The rules whose notice-level matchers match, the unit concerning a minor or not."""
        found = self._candidates.get(minor)
        if found is None:
            facts = dataclasses.replace(self._facts, minor=minor)
            found = [r for r in self._policy.rules if r.matches_notice(facts)]
            self._candidates[minor] = found
        return found

    def decide(self, unit: DisclosureUnit, state: MinorState) -> tuple[Action, str]:
        """The action on ``unit`` and the id of the rule deciding it."""
        free_text = unit.path in self._free_text
        # free text outside the subject's own block may name any person of the notice
        names_others = free_text and not unit.path.startswith(SUBJECT_BLOCK)
        if unit.path == RELATED_INPUT:  # the related persons' own identities
            minor = state.subject or state.related
        else:  # the subject's data, and free text that may name a protected related minor
            minor = state.subject or (names_others and state.related_protected)
        protected_text = (free_text and state.subject_protected) or (
            names_others and state.related_protected
        )
        protections = _protections(unit.category, minor, protected_text)
        return _decide_unit(self.candidates(minor), unit, protections)


def evaluate(
    policy: Policy,
    recipient: str,
    facts: NoticeFacts,
    units: Sequence[DisclosureUnit],
    minors: MinorJudgement | None = None,
    free_text: frozenset[str] = frozenset(),
) -> Decision:
    """Apply ``policy`` to every unit (sender restrictions must have been checked already).

    ``minors`` are the notice's minor tests (``None``: only ``facts.minor`` is known, of a subject
    in no protected role); ``free_text`` the paths of its free-text units.
    """
    if minors is None:
        state = MinorState(subject=facts.minor)
        judged = None
    else:
        state, judged = minors.state, minors
    deciding = _Units(policy, facts, free_text)
    disclosed: list[tuple[str, str]] = []
    withheld: list[tuple[str, str]] = []
    for unit in units:
        action, rule_id = deciding.decide(unit, state)
        (disclosed if action is Action.DISCLOSE else withheld).append((unit.path, rule_id))
    withheld.sort()
    manifest = tuple(withheld)
    # A label must not tell what a minor test found when the recipient does not see what the
    # test reads: a field whose decision would differ if a hidden test said otherwise is
    # labelled WITHHELD_BY_POLICY (for minors and adults alike, so the label carries nothing).
    hidden = frozenset(path for path, _ in withheld)
    others = (
        [s for s in judged.alternatives(hidden) if s != state]
        if judged is not None
        else ([MinorState(subject=not state.subject)] if hidden & MINOR_INPUTS else [])
    )
    if others:
        by_path = {u.path: u for u in units}
        manifest = tuple(
            (
                path,
                rule_id
                if all(
                    deciding.decide(by_path[path], other) == (Action.WITHHOLD, rule_id)
                    for other in others
                )
                else WITHHELD_BY_POLICY,
            )
            for path, rule_id in withheld
        )
    return Decision(
        recipient=recipient,
        allowed=True,
        reason=None,
        disclosed=frozenset(path for path, _ in disclosed),
        withheld=tuple(withheld),
        policy=policy.id,
        handling=facts.handling,
        disclosed_by=tuple(sorted(disclosed)),
        manifest=manifest,
    )


def _protections(category: str, minor: bool, free_text_protected: bool) -> tuple[str, ...]:
    """The built-in rules guarding a unit of ``category``, in reporting order: ``minor`` the unit
    concerns a minor, ``free_text_protected`` it is free text that may name a protected minor."""
    found = []
    if category.startswith("special."):
        found.append(DEFAULT_DENY_SPECIAL)
    if category == DataCategory.BIOMETRIC:
        found.append(DEFAULT_DENY_BIOMETRIC)
    if (minor and category in MINOR_PROTECTED) or free_text_protected:
        found.append(DEFAULT_DENY_MINOR)
    return tuple(found)


def _missing_opt_in(
    rule: CompiledRule, unit: DisclosureUnit, protections: tuple[str, ...]
) -> str | None:
    """The first protection ``rule`` does not lift for ``unit``, or ``None`` if it lifts all."""
    for protection in protections:
        if protection == DEFAULT_DENY_MINOR:
            if not rule.names_minor:
                return protection
        elif not rule.names(unit.path, unit.category):
            return protection
    return None


def _decide_unit(
    candidates: Sequence[CompiledRule], unit: DisclosureUnit, protections: tuple[str, ...]
) -> tuple[Action, str]:
    skipped: str | None = None
    for rule in candidates:
        if not rule.matches_unit(unit.path, unit.category):
            continue
        if rule.action is Action.DISCLOSE and protections:
            missing = _missing_opt_in(rule, unit, protections)
            if missing is not None:
                skipped = skipped or missing
                continue
        return rule.action, rule.id
    if skipped is not None:
        return Action.WITHHOLD, skipped
    return Action.WITHHOLD, protections[0] if protections else DEFAULT_DENY_UNMATCHED


def review_demand(
    policy: Policy | PolicySet,
    *,
    notice_type: str,
    sender: str,
    recipient: str | None = None,
) -> str | None:
    """The id of the receiving bureau's first ``[[inbound.require_review]]`` rule matching the
    notice, or ``None``: such a notice is not actionable until a reviewer approved it, even where
    the network's rules do not require review (``recipient`` as for :func:`inbound_check`)."""
    own = _own(policy, recipient, "review_demand")
    return _first_match(own.review_demands, notice_type, sender)


def inbound_check(
    policy: Policy | PolicySet,
    *,
    notice_type: str,
    sender: str,
    recipient: str | None = None,
    reliability: str | None = None,
    accuracy: int | None = None,
) -> str | None:
    """The id of the receiving bureau's first decline rule matching the notice, or ``None``.

    Given a :class:`PolicySet`, ``recipient`` (the receiving bureau) picks the policy, with the
    same fallback to ``default`` as :meth:`PolicySet.for_recipient`. ``reliability`` and
    ``accuracy`` are the header's evaluation codes (``None``: unknown; a rule matching on them
    then does not match). A declined notice goes to quarantine with reason
    :data:`DECLINED_BY_POLICY`, it is never dropped.
    """
    own = _own(policy, recipient, "inbound_check")
    for rule in own.declines:
        if rule.matches(str(notice_type), sender, reliability, accuracy):
            return rule.id
    return None


def _own(policy: Policy | PolicySet, recipient: str | None, caller: str) -> Policy:
    """The receiving bureau's policy: ``policy`` itself, or its file in a set."""
    if isinstance(policy, PolicySet):
        if recipient is None:
            msg = f"{caller} on a PolicySet needs recipient= (the receiving bureau)"
            raise PolicyError(msg)
        return policy.for_recipient(recipient)
    return policy


def _first_match(rules: tuple[Decline, ...], notice_type: str, sender: str) -> str | None:
    """The id of the first of ``rules`` matching the notice type and sender, or ``None``."""
    for rule in rules:
        if rule.matches(str(notice_type), sender):
            return rule.id
    return None
