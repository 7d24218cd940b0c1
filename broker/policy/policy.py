"""Compiled policies: a checked policy file turned into rules ready to evaluate, and sets of them.

Compiling sorts each file's rules once into precedence order (most specific first, ``withhold``
before ``disclose`` at equal specificity, then file order) and compiles every path pattern, so that
deciding for one recipient is a walk down a short list with set look-ups and one regex per rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from broker.errors import PolicyError
from broker.policy.patterns import PathPattern, compile_pattern
from broker.policy.rules import (
    DEFAULT_COUNTRY,
    MATCHERS,
    MINOR,
    SPECIAL_WILDCARD,
    Action,
    DeclineRule,
    PolicyFile,
    ReviewRule,
    Rule,
)
from broker.schemas import DataCategory

SPECIAL_CATEGORIES = frozenset(c.value for c in DataCategory if c.value.startswith("special."))


@dataclass(frozen=True)
class NoticeFacts:
    """What the notice-level matchers look at, computed once per notice."""

    notice_type: str
    sender: str
    handling: str
    subject: str
    minor: bool
    reliability: str
    accuracy: int


@dataclass(frozen=True)
class CompiledRule:
    """An outbound rule ready to evaluate. ``None`` for a matcher means "any"."""

    id: str
    action: Action
    reason: str
    index: int
    specificity: int
    notice_types: frozenset[str] | None
    categories: frozenset[str] | None
    paths: tuple[PathPattern, ...] | None
    subjects: frozenset[str] | None
    names_minor: bool
    handling: frozenset[str] | None
    senders: frozenset[str] | None
    reliability: frozenset[str] | None = None
    accuracy: frozenset[int] | None = None
    #: ``"minor"`` is among the ``subject`` values (a minor of any role matches)
    subject_minor: bool = False
    #: the ``minor`` matcher (``None``: any)
    minor: bool | None = None

    @classmethod
    def from_rule(cls, rule: Rule, index: int) -> CompiledRule:
        """Compile ``rule`` (the ``index``-th of its file)."""
        categories = None
        if rule.category is not None:
            expanded = set(rule.category) - {SPECIAL_WILDCARD}
            if SPECIAL_WILDCARD in rule.category:
                expanded |= SPECIAL_CATEGORIES
            categories = frozenset(expanded)
        paths = tuple(compile_pattern(p) for p in rule.path) if rule.path is not None else None
        specificity = sum(getattr(rule, name) is not None for name in MATCHERS)
        if paths is not None and all(p.is_exact for p in paths):
            specificity += 1
        return cls(
            id=rule.id,
            action=rule.action,
            reason=rule.reason,
            index=index,
            specificity=specificity,
            notice_types=_set(rule.notice_type),
            categories=categories,
            paths=paths,
            subjects=_set(rule.subject),
            names_minor=(rule.subject is not None and MINOR in rule.subject) or rule.minor is True,
            handling=_set(rule.handling),
            senders=_set(rule.sender),
            reliability=_set(rule.reliability),
            accuracy=None if rule.accuracy is None else frozenset(rule.accuracy),
            subject_minor=rule.subject is not None and MINOR in rule.subject,
            minor=rule.minor,
        )

    @property
    def precedence(self) -> tuple[int, int, int]:
        """Sort key: higher specificity first, then ``withhold`` first, then file order."""
        return (-self.specificity, 0 if self.action is Action.WITHHOLD else 1, self.index)

    def matches_notice(self, facts: NoticeFacts) -> bool:
        """Whether the notice-level matchers (type, subject, handling, sender, reliability,
        accuracy, minor) all match."""
        return (
            (self.notice_types is None or facts.notice_type in self.notice_types)
            and (self.handling is None or facts.handling in self.handling)
            and (self.senders is None or facts.sender in self.senders)
            and (self.reliability is None or facts.reliability in self.reliability)
            and (self.accuracy is None or facts.accuracy in self.accuracy)
            and (
                self.subjects is None
                or facts.subject in self.subjects
                or (self.subject_minor and facts.minor)
            )
            and (self.minor is None or facts.minor is self.minor)
        )

    def matches_unit(self, path: str, category: str) -> bool:
        """Whether the unit-level matchers (category, path) match."""
        return (self.categories is None or category in self.categories) and (
            self.paths is None or any(p.matches(path) for p in self.paths)
        )

    def names(self, path: str, category: str) -> bool:
        """Whether this rule names the unit explicitly: by its category, or by a path pattern
        without ``**`` (needed to disclose special categories and biometrics)."""
        if self.categories is not None and category in self.categories:
            return True
        return self.paths is not None and any(
            not p.has_deep_wildcard and p.matches(path) for p in self.paths
        )


def _set(values: Sequence[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(str(v) for v in values)


@dataclass(frozen=True)
class Decline:
    """A compiled inbound rule (decline, or require review)."""

    id: str
    reason: str
    notice_types: frozenset[str] | None
    senders: frozenset[str] | None
    reliability: frozenset[str] | None = None
    accuracy: frozenset[int] | None = None

    def matches(
        self,
        notice_type: str,
        sender: str,
        reliability: str | None = None,
        accuracy: int | None = None,
    ) -> bool:
        """Whether a notice of ``notice_type`` from ``sender`` (with the header's evaluation
        codes ``reliability`` and ``accuracy``; ``None``: not known, and then a rule that
        matches on them does not match) is matched by this rule."""
        return (
            (self.notice_types is None or notice_type in self.notice_types)
            and (self.senders is None or sender in self.senders)
            and (self.reliability is None or reliability in self.reliability)
            and (self.accuracy is None or accuracy in self.accuracy)
        )

    @classmethod
    def from_rule(cls, rule: DeclineRule | ReviewRule) -> Decline:
        """Compile ``rule``."""
        compiled = cls(rule.id, rule.reason, _set(rule.notice_type), _set(rule.sender))
        if isinstance(rule, DeclineRule):
            accuracy = None if rule.accuracy is None else frozenset(rule.accuracy)
            return replace(compiled, reliability=_set(rule.reliability), accuracy=accuracy)
        return compiled


def policy_id(country: str, content: bytes) -> str:
    """``CC@`` + the first 12 hex digits of SHA-256 of the file's bytes."""
    return f"{country}@{hashlib.sha256(content).hexdigest()[:12]}"


@dataclass(frozen=True)
class Policy:
    """One country's compiled policy (or the default one).

    ``id`` changes with every byte of the file, so a decision names the exact version it used.
    ``rules`` are in precedence order; ``declines`` in file order.
    """

    country: str
    id: str
    source: str
    description: str | None
    rules: tuple[CompiledRule, ...]
    declines: tuple[Decline, ...]
    #: notices this bureau wants reviewed before they are actionable (same matchers as a decline)
    review_demands: tuple[Decline, ...] = ()
    #: ``[retention] max_days`` (None: five years) and ``[retention.by_type]``
    max_retention_days: int | None = None
    retention_by_type: tuple[tuple[str, int], ...] = ()

    def max_retention(self, notice_type: str) -> timedelta | None:
        """The longest this bureau keeps a notice of ``notice_type`` by its ``[retention]``
        section; ``None`` when the file sets nothing for it (the node then keeps it at most
        :data:`~broker.sinks.retention.DEFAULT_MAX_RETENTION`, five years)."""
        days = dict(self.retention_by_type).get(notice_type, self.max_retention_days)
        return None if days is None else timedelta(days=days)

    @classmethod
    def compile(cls, parsed: PolicyFile, content: bytes, source: str) -> Policy:
        """Compile a checked file; ``content`` is its exact bytes (for the id)."""
        rules = sorted(
            (CompiledRule.from_rule(r, i) for i, r in enumerate(parsed.rule)),
            key=lambda r: r.precedence,
        )
        return cls(
            country=parsed.country,
            id=policy_id(parsed.country, content),
            source=source,
            description=parsed.description,
            rules=tuple(rules),
            declines=tuple(Decline.from_rule(d) for d in parsed.inbound.decline),
            review_demands=tuple(Decline.from_rule(d) for d in parsed.inbound.require_review),
            max_retention_days=parsed.retention.max_days,
            retention_by_type=tuple(
                sorted((str(t), d) for t, d in parsed.retention.by_type.items())
            ),
        )

    def rule(self, rule_id: str) -> CompiledRule | None:
        """The outbound rule with id ``rule_id``, if any."""
        return next((r for r in self.rules if r.id == rule_id), None)


class PolicySet:
    """Every loaded policy by country, with ``default`` as the fallback."""

    def __init__(self, policies: Mapping[str, Policy] | list[Policy]) -> None:
        """Index ``policies`` by country (``default`` is the fallback)."""
        items = policies.values() if isinstance(policies, Mapping) else policies
        self._by_country = {p.country: p for p in items}

    @property
    def default(self) -> Policy | None:
        """The fallback policy, if a ``default.toml`` was loaded."""
        return self._by_country.get(DEFAULT_COUNTRY)

    @property
    def countries(self) -> list[str]:
        """Countries with their own policy file, sorted (``default`` not included)."""
        return sorted(c for c in self._by_country if c != DEFAULT_COUNTRY)

    def __iter__(self) -> Iterator[Policy]:
        return iter(self._by_country[c] for c in sorted(self._by_country))

    def __len__(self) -> int:
        return len(self._by_country)

    def for_recipient(self, country: str) -> Policy:
        """The policy of ``country``, else the default one; :class:`PolicyError` if neither."""
        policy = self._by_country.get(country) or self.default
        if policy is None:
            msg = f"no policy for {country} and no default policy (default.toml)"
            raise PolicyError(msg)
        return policy
