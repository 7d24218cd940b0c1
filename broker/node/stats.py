"""The counters of one daemon run, kept apart so that the receive pipeline
(:mod:`broker.node.pipeline`) and the receipt writer (:mod:`broker.node.receipts`) both count
into them without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DaemonStats:
    """Counters of one daemon run."""

    delivered: int = 0
    purged: int = 0
    stale: int = 0
    #: polls skipped because the directory could not be confirmed (see runtime.refusal)
    paused: int = 0
    redelivered: int = 0
    quarantined: int = 0
    receipts_sent: int = 0
    receipts_received: int = 0
    #: packages kept on a reviewer's holding topic (heightened supervision)
    held: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
