"""The policy file format as pydantic models (schema ``nbx-policy/1``, see ``FORMAT.md``).

These models check one file on its own: known keys only, known values for every matcher, well-formed
path patterns, unique rule ids, no two rules with the same matchers. :mod:`broker.policy.policy`
compiles a checked file into the form :func:`broker.policy.decide` evaluates.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from broker.policy.patterns import PatternError, compile_pattern
from broker.schemas import (
    DataCategory,
    HandlingCode,
    NoticeType,
    SourceReliability,
    SubjectCategory,
)
from broker.schemas.common import BureauId, InformationAccuracy

#: The only schema this version reads.
SCHEMA = "nbx-policy/1"
#: The ``country`` of the fallback policy file ``default.toml``.
DEFAULT_COUNTRY = "default"
#: Rule ids reserved for the built-in rules (see :mod:`broker.policy.decision`).
RESERVED_PREFIX = "default-"
#: Matches every special category in a ``category`` matcher.
SPECIAL_WILDCARD = "special.*"
#: The ``subject`` value that matches a subject who is (or may be) under 18.
MINOR = "minor"

_RULE_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Action(StrEnum):
    """What a rule does with the units it matches."""

    DISCLOSE = "disclose"
    WITHHOLD = "withhold"


def _as_list(value: object) -> object:
    """Let every matcher be written as one value or a list of values."""
    return [value] if isinstance(value, str | int) else value


def _check_category(value: str) -> str:
    allowed = [c.value for c in DataCategory]
    if value != SPECIAL_WILDCARD and value not in allowed:
        msg = (
            f"unknown category {value!r} (use one of {', '.join(allowed)} or {SPECIAL_WILDCARD!r})"
        )
        raise ValueError(msg)
    return value


def _check_subject(value: str) -> str:
    allowed = [s.value for s in SubjectCategory] + [MINOR]
    if value not in allowed:
        msg = f"unknown subject {value!r} (use one of {', '.join(allowed)})"
        raise ValueError(msg)
    return value


def _check_accuracy(value: object) -> object:
    if type(value) is not int or not 1 <= value <= 4:
        msg = f"unknown accuracy {value!r} (use one of 1, 2, 3, 4)"
        raise ValueError(msg)
    return value


def _not_reserved(value: str) -> str:
    if value.startswith(RESERVED_PREFIX):
        msg = f"rule ids starting with {RESERVED_PREFIX!r} are reserved for built-in rules"
        raise ValueError(msg)
    return value


def _check_pattern(value: str) -> str:
    try:
        compile_pattern(value)
    except PatternError as exc:
        raise ValueError(str(exc)) from None
    return value


NoticeTypes = Annotated[list[NoticeType], BeforeValidator(_as_list), Field(min_length=1)]
Categories = Annotated[
    list[Annotated[str, BeforeValidator(_check_category)]],
    BeforeValidator(_as_list),
    Field(min_length=1),
]
Paths = Annotated[
    list[Annotated[str, BeforeValidator(_check_pattern)]],
    BeforeValidator(_as_list),
    Field(min_length=1),
]
Subjects = Annotated[
    list[Annotated[str, BeforeValidator(_check_subject)]],
    BeforeValidator(_as_list),
    Field(min_length=1),
]
HandlingCodes = Annotated[list[HandlingCode], BeforeValidator(_as_list), Field(min_length=1)]
Senders = Annotated[list[BureauId], BeforeValidator(_as_list), Field(min_length=1)]
Reliabilities = Annotated[list[SourceReliability], BeforeValidator(_as_list), Field(min_length=1)]
Accuracies = Annotated[
    list[Annotated[InformationAccuracy, BeforeValidator(_check_accuracy)]],
    BeforeValidator(_as_list),
    Field(min_length=1),
]
RuleId = Annotated[str, Field(pattern=_RULE_ID), AfterValidator(_not_reserved)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]

_FILE = ConfigDict(frozen=True, extra="forbid")

#: The matcher keys of an outbound rule, in the order they are documented.
MATCHERS = (
    "notice_type",
    "category",
    "path",
    "subject",
    "handling",
    "sender",
    "reliability",
    "accuracy",
    "minor",
)


class Rule(BaseModel):
    """An outbound rule: which units of which notices the file's country may receive."""

    model_config = _FILE
    id: RuleId
    action: Action
    reason: Reason
    notice_type: NoticeTypes | None = None
    category: Categories | None = None
    path: Paths | None = None
    subject: Subjects | None = None
    handling: HandlingCodes | None = None
    sender: Senders | None = None
    #: the source's reliability (A B C X), as the notice's header states it
    reliability: Reliabilities | None = None
    #: the information's accuracy (1 2 3 4), as the notice's header states it
    accuracy: Accuracies | None = None
    #: true: only when the notice's person is (or may be) a minor; false: only when not. Unlike
    #: ``subject = "minor"`` (one value among the roles listed, any of which matches), it narrows
    #: the ``subject`` roles: ``subject = "missing"`` with ``minor = true`` is a missing minor.
    minor: StrictBool | None = None

    def matcher_key(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The rule's matchers, normalised, to find two rules that match exactly the same units."""
        out: list[tuple[str, tuple[str, ...]]] = []
        for name in MATCHERS:
            values = getattr(self, name)
            if isinstance(values, bool):
                out.append((name, (str(values).lower(),)))
            elif values is not None:
                out.append((name, tuple(sorted({str(v) for v in values}))))
        return tuple(out)


#: The matcher keys of a decline rule (at least one is needed).
DECLINE_MATCHERS = ("notice_type", "sender", "reliability", "accuracy")


class ReviewRule(BaseModel):
    """An inbound rule: notices the file's bureau holds as not actionable until a reviewer of the
    network approved them, beyond what the network's rules require."""

    model_config = _FILE
    id: RuleId
    reason: Reason
    notice_type: NoticeTypes | None = None
    sender: Senders | None = None


class DeclineRule(ReviewRule):
    """An inbound rule: notices the file's bureau declines to receive (they go to quarantine).

    Besides the notice type and the sender it may match the evaluation codes of the header."""

    #: the source's reliability (A B C X) the header states
    reliability: Reliabilities | None = None
    #: the information's accuracy (1 2 3 4) the header states
    accuracy: Accuracies | None = None


class Inbound(BaseModel):
    """The ``[inbound]`` section: what this bureau declines, and what it wants reviewed, when
    receiving."""

    model_config = _FILE
    decline: list[DeclineRule] = Field(default_factory=list)
    require_review: list[ReviewRule] = Field(default_factory=list)


#: a retention limit in days: at least one, at most a century
RetentionDays = Annotated[int, Field(strict=True, ge=1, le=36_500)]


class Retention(BaseModel):
    """The ``[retention]`` section: the longest the file's bureau keeps a notice it received
    (and its own bookkeeping of one it sent), in days from the notice's ``created_at``."""

    model_config = _FILE
    #: every notice type without a line of its own (absent: five years)
    max_days: RetentionDays | None = None
    #: per notice type, e.g. ``yellow = 365``
    by_type: dict[NoticeType, RetentionDays] = Field(default_factory=dict)


class PolicyFile(BaseModel):
    """One policy file, as written (``rule`` holds the ``[[rule]]`` tables in file order)."""

    model_config = _FILE
    schema_: Literal["nbx-policy/1"] = Field(alias="schema")
    country: str
    description: str | None = None
    rule: list[Rule] = Field(default_factory=list)
    inbound: Inbound = Field(default_factory=Inbound)
    retention: Retention = Field(default_factory=Retention)
