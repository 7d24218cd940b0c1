"""The privacy filter: per-country policy files decide which units of a notice each recipient gets.

Reading order: :mod:`.patterns` (field path patterns), :mod:`.rules` (the file format, see
``FORMAT.md`` next to this file), :mod:`.policy` (compiled policies, precedence), :mod:`.loader`
(files, errors with file/line/rule), :mod:`.restrictions` (the sender's limits), :mod:`.decision`
(the outcome and the built-in rule ids), :mod:`.engine` (deciding, inbound checks).

Typical use by a publisher::

    policies = load_policies(Path("deploy/policies"))
    decision = decide(notice, "FR", policies, restrictions=SenderRestrictions(exclude={"XY"}))
    if decision.allowed:
        grants["FR"] = decision.grant()

and by a consumer: ``inbound_check(my_policy, notice_type=..., sender=...)`` returns the declining
rule id (quarantine with :data:`DECLINED_BY_POLICY`) or ``None``; ``review_demand(...)`` the id of
its ``[[inbound.require_review]]`` rule that holds the notice as not actionable until a reviewer of
the network approved it (beyond the network's own rules), or ``None``.
"""

from __future__ import annotations

from broker.policy.decision import (
    BUILTIN_RULES,
    DEFAULT_DENY_BIOMETRIC,
    DEFAULT_DENY_MINOR,
    DEFAULT_DENY_SPECIAL,
    DEFAULT_DENY_UNMATCHED,
    EXCLUDED_BY_SENDER,
    NOT_LISTED_BY_SENDER,
    Decision,
)
from broker.policy.engine import (
    DECLINED_BY_POLICY,
    MINOR_PROTECTED,
    decide,
    decide_all,
    inbound_check,
    review_demand,
)
from broker.policy.loader import (
    PolicyInvalid,
    Problem,
    check_policies,
    load_policies,
    parse_policy,
)
from broker.policy.policy import Policy, PolicySet
from broker.policy.restrictions import SenderRestrictions
from broker.policy.rules import SCHEMA, Action

__all__ = [
    "BUILTIN_RULES",
    "DECLINED_BY_POLICY",
    "DEFAULT_DENY_BIOMETRIC",
    "DEFAULT_DENY_MINOR",
    "DEFAULT_DENY_SPECIAL",
    "DEFAULT_DENY_UNMATCHED",
    "EXCLUDED_BY_SENDER",
    "MINOR_PROTECTED",
    "NOT_LISTED_BY_SENDER",
    "SCHEMA",
    "Action",
    "Decision",
    "Policy",
    "PolicyInvalid",
    "PolicySet",
    "Problem",
    "SenderRestrictions",
    "check_policies",
    "decide",
    "decide_all",
    "inbound_check",
    "load_policies",
    "parse_policy",
    "review_demand",
]
