"""NBX: signed, end-to-end encrypted, per-recipient filtered notice exchange over Kafka.

The package is importable as ``broker``; the distribution and the command are ``nbx``. This module
is the front door for a bureau's own service (README, "Python API")::

    from broker import ConsumerDaemon, NodeConfig, Publisher, parse_notice

    config = NodeConfig.load(Path("node.toml"))
    async with Publisher.from_config(config) as publisher:
        result = await publisher.publish(parse_notice(data), to=["FR"])

Everything else is reached through its module (``broker.envelope``, ``broker.policy``, ...). The
names are loaded on first use, so ``import broker`` (and every ``nbx`` command) stays light.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from broker.errors import (
    ConfigError,
    DevBrokerError,
    EnvelopeRejected,
    KeyDirectoryError,
    NbxError,
    PolicyError,
    SchemaError,
    SinkError,
    TransportError,
)

if TYPE_CHECKING:
    from broker.envelope import VerifiedPackage
    from broker.node import (
        ConsumerDaemon,
        DaemonStats,
        Publisher,
        PublishResult,
        RecipientOutcome,
    )
    from broker.node.config import NodeConfig
    from broker.schemas import NoticeInvalid, parse_notice
    from broker.sinks import Applied
    from broker.transport import KafkaSettings
    from broker.vocab import ALL

try:
    __version__ = version("nbx")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

#: the embedding API, loaded on first use: name -> module that defines it
_LAZY = {
    "ALL": "broker.vocab",
    "Applied": "broker.sinks",
    "ConsumerDaemon": "broker.node",
    "DaemonStats": "broker.node",
    "KafkaSettings": "broker.transport",
    "NodeConfig": "broker.node.config",
    "NoticeInvalid": "broker.schemas",
    "PublishResult": "broker.node",
    "Publisher": "broker.node",
    "RecipientOutcome": "broker.node",
    "VerifiedPackage": "broker.envelope",
    "parse_notice": "broker.schemas",
}


def __getattr__(name: str) -> Any:
    """Load a name of the embedding API from its module on first use."""
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'broker' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, with the embedding API that is loaded on first use."""
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ALL",
    "Applied",
    "ConfigError",
    "ConsumerDaemon",
    "DaemonStats",
    "DevBrokerError",
    "EnvelopeRejected",
    "KafkaSettings",
    "KeyDirectoryError",
    "NbxError",
    "NodeConfig",
    "NoticeInvalid",
    "PolicyError",
    "PublishResult",
    "Publisher",
    "RecipientOutcome",
    "SchemaError",
    "SinkError",
    "TransportError",
    "VerifiedPackage",
    "__version__",
    "parse_notice",
]
