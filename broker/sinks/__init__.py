"""Where delivered notices go: SQLite (default)."""

from broker.sinks.sqlite import Delivery, SqliteSink

__all__ = ["Delivery", "SqliteSink"]
