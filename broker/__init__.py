"""NBX: signed, end-to-end encrypted, per-recipient filtered notice exchange over Kafka.

The package is importable as ``broker``; the distribution and the command are ``nbx``. The public
API is re-exported here; everything else is reached through its module (``broker.envelope``, ...).
"""

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("nbx")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "ConfigError",
    "DevBrokerError",
    "EnvelopeRejected",
    "KeyDirectoryError",
    "NbxError",
    "PolicyError",
    "SchemaError",
    "SinkError",
    "TransportError",
    "__version__",
]
