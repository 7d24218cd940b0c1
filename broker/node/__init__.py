"""The programs a bureau runs: the publisher (fan-out) and the consumer daemon."""

from broker.node.consumer import ConsumerDaemon, DaemonStats
from broker.node.publisher import Publisher, PublishResult, RecipientOutcome
from broker.vocab import ALL

__all__ = ["ALL", "ConsumerDaemon", "DaemonStats", "PublishResult", "Publisher", "RecipientOutcome"]
