"""The NBX error tree: one root, so callers can catch everything NBX raises.

::

    NbxError
     +-- ConfigError            bad configuration or node file
     +-- SchemaError            a notice or message that does not meet the schema
     +-- PolicyError            a policy file that cannot be loaded or is inconsistent
     +-- KeyDirectoryError      missing/unreadable keys, bad or rolled-back directory
     +-- EnvelopeRejected       a package that failed a check on opening (carries a reason code)
     +-- TransportError         the Kafka broker cannot be reached or refused a request (retriable)
     +-- SinkError              the local store cannot be written (read-only, disk full)
     +-- DevBrokerError         the embedded development broker failed to start

Each class says whether retrying the same operation may succeed (``retriable``), for callers
such as a bureau's own service publishing through :class:`~broker.node.Publisher`: only a
:class:`TransportError` may succeed when tried again unchanged. The consumer daemon does not read
the flag: it retries transport failures itself (logged as ``transport.retry``), quarantines a
rejected package and stops on a :class:`SinkError` without committing.
"""

from __future__ import annotations

from broker.vocab import Reason, StoreFailure


class NbxError(Exception):
    """Root of every error NBX raises on purpose."""

    #: whether the same operation may succeed when tried again unchanged
    retriable: bool = False
    #: the ``nbx`` command's exit code for this error
    exit_code: int = 1


class ConfigError(NbxError):
    """A configuration file or setting is missing or invalid."""


class SchemaError(NbxError):
    """A notice or lifecycle message does not meet the schema or the publication criteria."""


class PolicyError(NbxError):
    """A policy file cannot be parsed or is inconsistent."""


class KeyDirectoryError(NbxError):
    """A key file or the bureau directory is missing, unreadable, forged or rolled back."""


class EnvelopeRejected(NbxError):  # noqa: N818 - a rejection is the outcome, not a malfunction
    """A package failed a check on opening.

    Only ``reason`` (a short, fixed code such as ``decrypt`` or ``signature``) is carried; detail
    that could help an attacker goes to the debug log, never into the exception message.
    """

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"package rejected: {reason}")
        self.reason = reason


class TransportError(NbxError):
    """The Kafka broker could not be reached or refused a request."""

    retriable = True


class SinkError(NbxError):
    """The local store cannot be written; the daemon stops without committing the offset.

    ``reason`` is one of ``read-only``, ``disk-full``, ``locked``, ``storage-error``
    (:class:`~broker.vocab.StoreFailure`).
    """

    exit_code = 3

    def __init__(self, message: str, *, reason: StoreFailure = StoreFailure.STORAGE_ERROR) -> None:
        super().__init__(message)
        self.reason = reason


class DevBrokerError(NbxError):
    """The embedded Kafka-protocol broker failed to start or stop."""
