"""Deciding: sender restrictions first, then the recipient's rules, unit by unit.

For each disclosure unit the rules of the recipient's policy are tried in precedence order
(:attr:`CompiledRule.precedence`); the first that matches decides. Protected units need more:

* a special-category or biometric unit is disclosed only by a rule that *names* it (its category,
  or a ``path`` pattern without ``**``), otherwise ``default-deny-special`` /
  ``default-deny-biometric``;
* when the subject is (or may be) a minor, an identity, physical, biometric, location or contact
  unit is disclosed only by a rule whose ``subject`` lists ``minor``, otherwise
  ``default-deny-minor``.

A ``disclose`` rule that does not meet these conditions is skipped for that unit, so a less
specific rule may still decide it. A unit no rule decides is withheld by ``default-deny-unmatched``
(or by the built-in rule of its protection, if it has one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
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
from broker.schemas import DataCategory, DisclosureUnit, NoticeBase, disclosure_units, is_minor
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
#: The disclosure units the minor test reads (:func:`broker.schemas.is_minor`).
MINOR_INPUTS = frozenset({"person.date_of_birth", "body.estimated_age_min"})
#: Reason code the consumer quarantines a declined notice with.
DECLINED_BY_POLICY = Reason.DECLINED_BY_POLICY


def notice_facts(
    notice: NoticeBase, *, restrictions: SenderRestrictions | None = None, today: date | None = None
) -> NoticeFacts:
    """The notice-level facts rules match on (the sender's handling override applied)."""
    at = today if today is not None else datetime.now(UTC).date()
    handling = restrictions.handling if restrictions and restrictions.handling else None
    return NoticeFacts(
        notice_type=str(notice.notice_type),
        sender=notice.issuing_bureau,
        handling=str(handling or notice.handling.code),
        subject=str(notice.subject_category),
        minor=is_minor(notice, at),
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

    ``today`` decides whether the subject is a minor (default: today, UTC).
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
    facts = notice_facts(notice, restrictions=restrictions, today=today)
    if units is None:
        units = disclosure_units(notice)
    out: dict[str, Decision] = {}
    for recipient in recipients:
        refusal = restrictions.refusal(recipient) if restrictions else None
        if refusal is not None:
            out[recipient] = Decision(
                recipient, False, refusal, frozenset(), (), NO_POLICY, facts.handling
            )
        else:
            policy = policies.for_recipient(recipient)
            out[recipient] = evaluate(policy, recipient, facts, units)
    return out


def evaluate(
    policy: Policy, recipient: str, facts: NoticeFacts, units: Sequence[DisclosureUnit]
) -> Decision:
    """Apply ``policy`` to every unit (sender restrictions must have been checked already)."""
    candidates = [r for r in policy.rules if r.matches_notice(facts)]
    disclosed: list[tuple[str, str]] = []
    withheld: list[tuple[str, str]] = []
    for unit in units:
        action, rule_id = _decide_unit(candidates, unit, facts.minor)
        (disclosed if action is Action.DISCLOSE else withheld).append((unit.path, rule_id))
    withheld.sort()
    manifest = tuple(withheld)
    # A label must not tell what the minor test found when the recipient does not see what the
    # test reads: a field whose decision would differ if the test said otherwise is labelled
    # WITHHELD_BY_POLICY (for minors and adults alike, so the label carries nothing).
    if any(path in MINOR_INPUTS for path, _ in withheld):
        flipped = dataclasses.replace(facts, minor=not facts.minor)
        flipped_candidates = [r for r in policy.rules if r.matches_notice(flipped)]
        by_path = {u.path: u for u in units}
        manifest = tuple(
            (
                path,
                rule_id
                if _decide_unit(flipped_candidates, by_path[path], flipped.minor)
                == (Action.WITHHOLD, rule_id)
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


def _protections(category: str, minor: bool) -> tuple[str, ...]:
    """The built-in rules guarding a unit of ``category``, in reporting order."""
    found = []
    if category.startswith("special."):
        found.append(DEFAULT_DENY_SPECIAL)
    if category == DataCategory.BIOMETRIC:
        found.append(DEFAULT_DENY_BIOMETRIC)
    if minor and category in MINOR_PROTECTED:
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
    candidates: Sequence[CompiledRule], unit: DisclosureUnit, minor: bool
) -> tuple[Action, str]:
    protections = _protections(unit.category, minor)
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
) -> str | None:
    """The id of the receiving bureau's first decline rule matching the notice, or ``None``.

    Given a :class:`PolicySet`, ``recipient`` (the receiving bureau) picks the policy, with the
    same fallback to ``default`` as :meth:`PolicySet.for_recipient`. A declined notice goes to
    quarantine with reason :data:`DECLINED_BY_POLICY`, it is never dropped.
    """
    own = _own(policy, recipient, "inbound_check")
    return _first_match(own.declines, notice_type, sender)


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
