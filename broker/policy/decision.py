"""The outcome of the privacy filter for one (notice, recipient) pair, and the built-in rule ids.

A :class:`Decision` lists the disclosed unit paths and, for every withheld unit, the id of the rule
that withheld it; with the policy id it becomes the :class:`~broker.envelope.Grant` sealed into the
recipient's package, so the recipient learns *what* was withheld and *why*, never the values.
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
    matched against (the sender's override, if any, else the notice's).
    """

    recipient: str
    allowed: bool
    reason: str | None
    disclosed: frozenset[str]
    withheld: tuple[tuple[str, str], ...]
    policy: str
    handling: str | None = None
    disclosed_by: tuple[tuple[str, str], ...] = ()

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
        return Grant(disclosed=self.disclosed, withheld=self.withheld, policy=self.policy)

    def to_json(self) -> dict[str, Any]:
        """The decision as JSON: the keys of the ``explain --json`` output."""
        return {
            "recipient": self.recipient,
            "policy": self.policy,
            "allowed": self.allowed,
            "reason": self.reason,
            "handling": self.handling,
            "disclosed": sorted(self.disclosed),
            "withheld": [{"path": path, "rule": rule} for path, rule in self.withheld],
        }
