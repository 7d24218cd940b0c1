"""On the real broker (the session's dev broker): the safeguards story (publish, approval, block,
delete) and a garbage record leave exactly the expected entries at every bureau; each log
verifies, with the checkpoint signed at the daemons' clean stop."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from broker.cli import main
from broker.sinks.base import AuditEntry
from tests.node.helpers import Net, wait_for
from tests.node.test_states_net import BUREAUS, ROLES, _story
from tests.verify.support import produce_raw

Row = tuple[str, str | None, str | None, str | None, tuple[str, ...]]


def _rows(entries: list[AuditEntry]) -> list[Row]:
    """(action, kind, outcome, reason, bureaus), the test's own reads left out."""
    return [
        (e.action, e.kind, e.outcome, e.reason, e.bureaus)
        for e in entries
        if e.action != "consultation"
    ]


async def test_the_safeguards_story_on_the_real_broker_is_audited(
    tmp_path: Path, kafka_bootstrap: str, idempotence_supported: bool
) -> None:
    net = Net(tmp_path, BUREAUS, kafka_bootstrap, idempotence=idempotence_supported, roles=ROLES)
    try:
        await _story(net)
        fr = net.daemon("FR")
        before = len(fr.sink.audit_entries())
        await produce_raw(kafka_bootstrap, [("nbx.inbox.FR", b"k", b"not a package", [])])
        assert await wait_for(lambda: len(fr.sink.audit_entries()) == before + 1)
        entries = {cc: net.daemon(cc).sink.audit_entries() for cc in BUREAUS}
        reasons = list(fr.stats.reasons)
    finally:
        await net.stop()
    for cc in ("FR", "DE"):
        received: list[Row] = [
            ("collection", "publish", "delivered", None, ()),
            ("decision", "review", "approved", None, ("XR",)),
            ("decision", "block", "block", "CCF-2026-1", ("XO",)),
            ("decision", "delete", "delete", "CCF-2026-1", ("XO",)),
            ("erasure", "delete", "purged", "delete", ("XO",)),
        ]
        if cc == "FR":
            (reason,) = reasons
            received.append(("quarantine", None, None, reason, ()))
        assert _rows(entries[cc]) == received, cc
        assert {e.sender for e in entries[cc] if e.action != "quarantine"} == {"IT"}
    assert _rows(entries["IT"]) == [
        ("disclosure", "publish", None, None, ("DE", "FR")),
        ("decision", "review", "approved", None, ("XR",)),
        ("decision", "block", "block", "CCF-2026-1", ("XO",)),
        ("decision", "delete", "delete", "CCF-2026-1", ("XO",)),
    ]
    for cc in ("XR", "XO"):  # what they sent: one decision each, to the three bureaus
        sent = [r for r in _rows(entries[cc]) if r[0] == "decision"]
        assert {r[4] for r in sent} == {("DE", "FR", "IT")}, cc
    for cc in ("FR", "DE", "IT"):
        result = CliRunner().invoke(main, ["audit", "verify", "--config", str(net.paths[cc])])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("audit log intact:"), result.output
        # the clean stop signed the whole log
        assert result.output.rstrip().endswith("; 0 entries after it)"), result.output
