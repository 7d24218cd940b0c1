"""Structured logging that keeps personal data out of the logs.

Every log line is one JSON object on stdout with an ISO-8601 UTC timestamp, the level and the event
name. The :func:`allow_list` processor runs before rendering and drops every key that is not on
:data:`ALLOWED_KEYS`, so a field value of a notice passed to a log call by mistake never reaches the
output. The event name itself must be a fixed string such as ``package.delivered``: an event that is
not a dotted lower-case name is replaced by ``log.invalid-event`` for the same reason.

Usage::

    from broker.logging import configure, get_logger
    configure()
    log = get_logger()
    log.info("package.delivered", msg_id=..., sender="FR", recipient="DE")
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import FilteringBoundLogger

# re-exported: the reason codes (defined with their enums in broker.vocab)
from broker.vocab import QUARANTINE_REASONS as QUARANTINE_REASONS
from broker.vocab import REASON_CODES as REASON_CODES

#: Operational keys that may appear in a log line. Anything else is dropped.
ALLOWED_KEYS: frozenset[str] = frozenset(
    {
        # structlog's own
        "event",
        "level",
        "timestamp",
        "logger",
        # identifiers (never personal data: random ids, ISO country codes, key ids)
        "msg_id",
        "notice_id",
        "notice_type",
        "kind",
        "sender",
        "recipient",
        "recipients",
        "bureau",
        "key_id",
        "serial",
        "current_serial",
        "policy",
        "policy_version",
        "rule",
        "group",
        # transport
        "topic",
        "partition",
        "offset",
        "bootstrap",
        "impl",
        "port",
        "pid",
        "attempt",
        "retry_in_s",
        # outcomes and measurements
        "reason",
        "outcome",
        "status",
        "count",
        "failed",
        "disclosed",
        "withheld",
        "size",
        "latency_ms",
        "elapsed_ms",
        "error_type",
        "exit_code",
        # key epochs (broker.node.keycare): a time, never personal data
        "due",
        # retention (a time, never personal data)
        "retain_until",
        # anchor rotation (key ids of trust anchors, never personal data)
        "anchor_kid",
        "previous_anchor_kid",
        # signing-key rotation (broker.node.keycare): the key id signed with before
        "old_key_id",
        # daemon replicas (broker.node.replicas): a configured short code, never personal data
        "replica",
    }
)

_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$")

#: Keys whose value is a code (a lower-case word or hyphenated words), never text. Some of them
#: can hold a value a peer chose (a receipt's reason, a statement's kind or notice type, a
#: withheld rule id): a value that is not code-shaped is logged as :data:`OTHER`.
CODE_KEYS: frozenset[str] = frozenset(
    {"reason", "rule", "kind", "notice_type", "outcome", "status", "policy"}
)
_CODE = re.compile(r"^[a-z0-9][a-z0-9._:@-]{0,63}$", re.IGNORECASE)
#: Keys whose value is an identifier; a signed statement's ids are the signer's choice, so a value
#: that is not identifier-shaped (letters, digits, ``-._:@/`` and ``_``, at most 128; key ids are
#: base64url, so they may start with ``-`` or ``_``) is logged as OTHER.
ID_KEYS: frozenset[str] = frozenset(
    {"msg_id", "notice_id", "sender", "recipient", "key_id", "old_key_id"}
)
_ID = re.compile(r"^[a-z0-9_-][a-z0-9._:@/_-]{0,127}$", re.IGNORECASE)
#: What an unknown reason or a value that is not code-shaped is logged as.
OTHER = "other"


def reason_code(reason: str | None) -> str | None:
    """``reason`` if it is a known reason code (:data:`REASON_CODES`), else :data:`OTHER`.

    For reasons another party wrote (a peer's receipt): free text there could name a person.
    """
    if reason is None:
        return None
    return reason if reason in REASON_CODES else OTHER


def allow_list(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop every key not on :data:`ALLOWED_KEYS` and every event that is not a fixed name;
    a value of a :data:`CODE_KEYS` key that is not a code, or of an :data:`ID_KEYS` key that is
    not an identifier, becomes :data:`OTHER`."""
    for key in [k for k in event_dict if k not in ALLOWED_KEYS]:
        del event_dict[key]
    for key in (CODE_KEYS | ID_KEYS) & event_dict.keys():
        value = event_dict[key]
        shape = _CODE if key in CODE_KEYS else _ID
        if value is not None and not (isinstance(value, str) and shape.match(value)):
            event_dict[key] = OTHER
    event = event_dict.get("event")
    if not isinstance(event, str) or not _EVENT_NAME.match(event):
        event_dict["event"] = "log.invalid-event"
    return event_dict


class _SysStream:
    """``sys.stdout`` or ``sys.stderr`` looked up at each write, not when logging is configured.

    Test runners and click's CliRunner swap (and close) those objects; binding the object at
    configuration time would make later log calls write to a closed file.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        stream: TextIO = getattr(sys, self.name)
        return stream.write(text)

    def flush(self) -> None:
        stream: TextIO = getattr(sys, self.name)
        stream.flush()


class Discard:
    """A stream that drops what is written (log lines are still rendered: for benchmarks)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


def configure(level: str = "INFO", stream: TextIO | _SysStream | Discard | str = "stdout") -> None:
    """Set up structlog to write allow-listed JSON lines to ``stream``.

    ``stream`` is a file object, or ``"stdout"`` / ``"stderr"`` (looked up at each write).
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        msg = f"unknown log level {level!r}"
        raise ValueError(msg)
    if isinstance(stream, str):
        if stream not in ("stdout", "stderr"):
            msg = f"unknown log stream {stream!r} (stdout or stderr)"
            raise ValueError(msg)
        out: Any = _SysStream(stream)
    else:
        out = stream
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            allow_list,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def quiet_client_libraries() -> None:
    """Keep aiokafka's own free-text log lines off the terminal.

    They are not allow-listed JSON and repeat what NBX reports itself (one clear error line, and
    ``transport.*`` events), so they would only add unstructured noise to operators' logs.
    """
    lib = logging.getLogger("aiokafka")
    lib.addHandler(logging.NullHandler())
    lib.propagate = False


def get_logger() -> FilteringBoundLogger:
    """Return a structlog logger (configured by :func:`configure`: a filtering bound logger,
    which is also structlog's default before :func:`configure` runs)."""
    logger: FilteringBoundLogger = structlog.get_logger()
    return logger
