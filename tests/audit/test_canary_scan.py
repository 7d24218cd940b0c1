"""The verification suite's canary scan covers the audit log: a canary in any entry is found
(so a clean scan in tests/verify/test_leaks.py means something)."""

from __future__ import annotations

from pathlib import Path

from broker.sinks import SqliteSink
from broker.sinks.base import AuditEvent
from broker.vocab import AuditAction
from tests.verify.support import audit_canary_hits, canary


def test_a_canary_in_an_audit_entry_is_found(tmp_path: Path) -> None:
    store = tmp_path / "FR.sqlite"
    sink = SqliteSink(store)
    try:
        sink.record(AuditEvent(AuditAction.CONSULTATION, notice_id="IT-1", operator="o",
                               purpose="check"))  # fmt: skip
        assert audit_canary_hits(store) == []
        planted = canary("AUD")
        sink.record(AuditEvent(AuditAction.CONSULTATION, notice_id="IT-1", operator="o",
                               purpose=f"looking for {planted.lower()}"))  # fmt: skip
    finally:
        sink.close()
    assert audit_canary_hits(store) == [planted]
