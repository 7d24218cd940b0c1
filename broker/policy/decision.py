"""The outcome of the privacy filter for one (notice, recipient) pair, and the built-in rule ids.

A :class:`Decision` lists the disclosed unit paths and, for every withheld unit, the id of the rule
that withheld it; with the policy id it becomes the :class:`~broker.envelope.Grant` sealed into the
recipient's package, so the recipient learns *what* was withheld and *why*, never the values.

*Why* is said with care: a rule chosen because the subject is a minor would tell the recipient the
subject is a minor even when the date of birth was withheld. The manifest that travels
(:attr:`Decision.manifest`) names the deciding rule only when the decision for that field does not
depend on the minor test, or when the recipient sees the data the test reads; otherwise it says
:data:`WITHHELD_BY_POLICY`. The decision itself (``nbx policy explain``) keeps the full reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.envelope import Grant
from broker.errors import PolicyError

#: A special-category unit no rule naming its category or path discloses.
DEFAULT_DENY_SPECIAL = "default-deny-special"
#: A biometric unit no rule naming its category or path discloses.
DEFAULT_DENY_BIOMETRIC = "default-deny-biometric"
#: A minor's identity/physical/biometric/location/contact unit no ``subject = "minor"`` rule
#: discloses.
DEFAULT_DENY_MINOR = "default-deny-minor"
#: A unit no rule of the recipient's policy matches at all.
DEFAULT_DENY_UNMATCHED = "default-deny-unmatched"
#: The manifest label of a field withheld for a reason the recipient may not learn (a reason that
#: depends on whether the subject is a minor, when the recipient does not see the date of birth).
WITHHELD_BY_POLICY = "withheld-by-policy"
#: Every built-in rule id (policy files may not use the ``default-`` prefix).
BUILTIN_RULES = (
    DEFAULT_DENY_SPECIAL,
    DEFAULT_DENY_BIOMETRIC,
    DEFAULT_DENY_MINOR,
    DEFAULT_DENY_UNMATCHED,
)

#: ``Decision.reason`` when the sender's ``only`` list leaves the recipient out.
NOT_LISTED_BY_SENDER = "not-listed-by-sender"
#: ``Decision.reason`` when the sender's ``exclude`` list names the recipient.
EXCLUDED_BY_SENDER = "excluded-by-sender"
#: ``Decision.policy`` of a recipient the sender excluded (no recipient policy was consulted).
NO_POLICY = "none"


@dataclass(frozen=True)
class Decision:
    """What one recipient may receive of one notice.

    ``allowed`` is false when the sender's restrictions exclude the recipient: it then receives
    nothing (``reason`` says why, ``disclosed`` and ``withheld`` are empty). ``withheld`` holds
    ``(path, rule id)`` pairs sorted by path; ``disclosed_by`` the same for disclosed units (for
    explanations; it does not travel). ``handling`` is the effective handling code the rules were
    matched against (the sender's override, if any, else the notice's). ``manifest`` is what
    travels for the withheld units: ``(path, label)`` with the rule id or
    :data:`WITHHELD_BY_POLICY` (``None``: the same as ``withheld``).
    """

    recipient: str
    allowed: bool
    reason: str | None
    disclosed: frozenset[str]
    withheld: tuple[tuple[str, str], ...]
    policy: str
    handling: str | None = None
    disclosed_by: tuple[tuple[str, str], ...] = ()
    manifest: tuple[tuple[str, str], ...] | None = None

    @property
    def withheld_manifest(self) -> tuple[tuple[str, str], ...]:
        """The withheld units with the labels the recipient sees (sealed into its grant)."""
        return self.withheld if self.manifest is None else self.manifest

    def rule_for(self, path: str) -> str | None:
        """The id of the rule that decided ``path``, or ``None`` if it is not a unit here."""
        for unit, rule in (*self.withheld, *self.disclosed_by):
            if unit == path:
                return rule
        return None

    def grant(self) -> Grant:
        """The envelope grant for this recipient; raises :class:`PolicyError` if not allowed."""
        if not self.allowed:
            msg = f"{self.recipient} receives nothing: {self.reason}"
            raise PolicyError(msg)
        return Grant(disclosed=self.disclosed, withheld=self.withheld_manifest, policy=self.policy)

    def to_json(self) -> dict[str, Any]:
        """The decision as JSON: the keys of the ``explain --json`` output."""
        return {
            "recipient": self.recipient,
            "policy": self.policy,
            "allowed": self.allowed,
            "reason": self.reason,
            "handling": self.handling,
            "disclosed": sorted(self.disclosed),
            "withheld": [
                {"path": path, "rule": rule, "manifest": label}
                for (path, rule), (_, label) in zip(
                    self.withheld, self.withheld_manifest, strict=True
                )
            ],
        }
