"""The responses a store keeps (schema 6): a store written by the previous release gains the
table, and both sinks keep a response sent and give it back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from broker.sinks.base import SENT_RESPONSE, ResponseRecord, Sink
from broker.sinks.sqlite import SCHEMA_VERSION, SqliteSink
from tests.sinks.conftest import ALL_STORES, open_store

LOCATED = ResponseRecord(
    direction=SENT_RESPONSE,
    msg_id="0190a0a0-0000-7000-8000-000000000001",
    notice_id="IT-1",
    notice_type="red",
    issuer="IT",
    by="FR",
    kind="located",
    at="2026-01-02T03:04:05+00:00",
    note="seen in Lyon",
    attachments=({"uri": "urn:fr:1", "sha256": "ab" * 32, "media_type": "image/jpeg"},),
    to=("DE", "IT"),
)
ARRESTED = ResponseRecord(
    direction=SENT_RESPONSE,
    msg_id="0190a0a0-0000-7000-8000-000000000002",
    notice_id="IT-1",
    notice_type="red",
    issuer="IT",
    by="FR",
    kind="arrested",
    at="2026-01-03T03:04:05+00:00",
    to=("IT",),
)


def test_a_schema_5_store_gains_the_responses_table(tmp_path: Path) -> None:
    """A store of the previous release (no ``responses``, user_version 5) is migrated in place
    to schema 6 and keeps responses from then on."""
    path = tmp_path / "store.db"
    SqliteSink(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE responses")
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()
    sink = SqliteSink(path)
    try:
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 6
        assert SCHEMA_VERSION == 6
        sink.record_response(LOCATED)
        assert sink.responses("IT-1") == [LOCATED]
    finally:
        sink.close()


@pytest.mark.parametrize("kind", ALL_STORES)
def test_responses_are_kept_once_oldest_first_and_survive_a_reopen(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """Recorded twice (a retry), a response is kept once; the list is ordered by the
    responder's time, whatever the order of recording; another handle reads the same."""

    def open_sink() -> Sink:
        return open_store(kind, tmp_path / f"store.{kind}", request)  # the same database again

    sink = open_sink()
    try:
        sink.record_response(ARRESTED)
        sink.record_response(LOCATED)
        sink.record_response(LOCATED)
        assert sink.responses("IT-1") == [LOCATED, ARRESTED]
        assert sink.responses("IT-2") == []
        assert sink.held_notice("IT-1") is None
    finally:
        sink.close()
    again = open_sink()
    try:
        assert again.responses("IT-1") == [LOCATED, ARRESTED]
        assert LOCATED.to_json()["attachments"] == [dict(LOCATED.attachments[0])]
    finally:
        again.close()
