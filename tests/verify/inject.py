"""Run the ``nbx`` command with a fault injected into the SQLite sink (used as a subprocess).

``python -m tests.verify.inject consume --config node.toml`` with:

- ``NBX_INJECT_SINK_FAIL_AT=N``: from the N-th ``apply`` on, raise ``sqlite3.OperationalError``
  with ``NBX_INJECT_SINK_FAIL_MSG`` (a read-only file, a full disk);
- ``NBX_INJECT_SINK_DELAY_S=S``: every ``apply`` first sleeps S seconds (a slow disk).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from typing import Any

from broker.sinks.base import storage_errors
from broker.sinks.sqlite import SqliteSink

FAIL_AT = int(os.environ.get("NBX_INJECT_SINK_FAIL_AT", "0"))
FAIL_MSG = os.environ.get("NBX_INJECT_SINK_FAIL_MSG", "attempt to write a readonly database")
DELAY_S = float(os.environ.get("NBX_INJECT_SINK_DELAY_S", "0"))
_apply = SqliteSink.apply
_calls = 0


def _faulty_apply(self: SqliteSink, *args: Any, **kwargs: Any) -> Any:
    global _calls
    _calls += 1
    if DELAY_S:
        time.sleep(DELAY_S)
    if FAIL_AT and _calls >= FAIL_AT:
        raise sqlite3.OperationalError(FAIL_MSG)
    return _apply(self, *args, **kwargs)


SqliteSink.apply = storage_errors(_faulty_apply)  # type: ignore[method-assign,arg-type]  # as the sink's own

if __name__ == "__main__":
    from broker.cli import main

    main(sys.argv[1:], prog_name="nbx")
