"""PostgreSQL sink: the store of a bureau that runs several daemon replicas, or whose national
systems read PostgreSQL (issue 23; built in parallel, this is its seam)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.errors import ConfigError

if TYPE_CHECKING:
    from broker.sinks.base import Sink
    from broker.sinks.retention import RetentionLimit


def open_postgres(
    url: str,
    *,
    password_env: str | None = None,
    durable: bool = True,
    retention: RetentionLimit | None = None,
) -> Sink:
    """Open the PostgreSQL store at ``url`` (placeholder until it lands: refuses)."""
    del password_env, durable, retention
    msg = f"sink url {url!r}: the PostgreSQL store is not available in this build yet"
    raise ConfigError(msg)
