"""SQLite sink: one file per bureau; delivery and replay guard in one transaction keyed by msg id.

A message id seen before at the *same* topic, partition and offset is a redelivery after a crash
(the offset commit did not happen) and is acknowledged without a second copy; seen at another
position it is a replay and the caller quarantines it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from broker.envelope import VerifiedPackage

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    msg_id       TEXT PRIMARY KEY,
    notice_id    TEXT NOT NULL,
    sender       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    notice_type  TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    "offset"     INTEGER NOT NULL,
    view         TEXT NOT NULL,
    withheld     TEXT NOT NULL,
    policy       TEXT NOT NULL,
    delivered_at TEXT NOT NULL
);
"""


class Delivery(StrEnum):
    """Outcome of :meth:`SqliteSink.deliver`."""

    DELIVERED = "delivered"
    REDELIVERY = "redelivery"
    REPLAY = "replay"


@dataclass(frozen=True)
class Position:
    """Where a record was read from."""

    topic: str
    partition: int
    offset: int


class SqliteSink:
    """A bureau's local store in one SQLite file."""

    def __init__(self, path: Path) -> None:
        """Open (and create if needed) the store at ``path``."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def deliver(self, package: VerifiedPackage, view: dict[str, Any], at: Position) -> Delivery:
        """Store ``package``'s view unless its msg id was seen; one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                'SELECT topic, partition, "offset" FROM deliveries WHERE msg_id = ?',
                (package.msg_id,),
            ).fetchone()
            if row is not None:
                db.execute("ROLLBACK")
                same = tuple(row) == (at.topic, at.partition, at.offset)
                return Delivery.REDELIVERY if same else Delivery.REPLAY
            db.execute(
                "INSERT INTO deliveries VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    package.msg_id,
                    package.notice_id,
                    package.sender,
                    package.kind,
                    package.notice_type,
                    at.topic,
                    at.partition,
                    at.offset,
                    json.dumps(view, sort_keys=True, ensure_ascii=False),
                    json.dumps([list(w) for w in package.withheld]),
                    package.policy,
                    datetime.now(UTC).isoformat(),
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return Delivery.DELIVERED

    def deliveries(self) -> list[dict[str, Any]]:
        """Every stored delivery, oldest first."""
        cur = self._db.execute(
            "SELECT msg_id, notice_id, sender, kind, notice_type, view, withheld, policy "
            "FROM deliveries ORDER BY rowid"
        )
        return [
            {
                "msg_id": r[0],
                "notice_id": r[1],
                "sender": r[2],
                "kind": r[3],
                "notice_type": r[4],
                "view": json.loads(r[5]),
                "withheld": json.loads(r[6]),
                "policy": r[7],
            }
            for r in cur.fetchall()
        ]
