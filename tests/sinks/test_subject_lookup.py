"""`nbx subject lookup`: the notices a node holds about a person, ids and states only, each lookup
a consultation in the audit log with its operator and purpose (issue 18, point 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import main
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.sinks.audit import Access
from broker.sinks.sqlite import SqliteSink
from broker.sinks.subject import SUBJECT_LOOKUP
from broker.vocab import AuditAction, MessageKind
from tests.node.states_kit import NOTICE_ID, Inbox, notice, oversight, pipeline
from tests.sinks.conftest import POSTGRESQL, open_store


def _lookup(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["subject", "lookup", *args, "--config", str(config)], env={"NBX_OPERATOR": "dpo-7"}
    )
    return result.exit_code, result.output


@pytest.fixture
def node(tmp_path: Path) -> tuple[Path, SqliteSink]:
    config = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    return config, SqliteSink(NodeConfig.load(config).sink_path())


def test_lookup_finds_the_notice_by_alias_and_partial_date_and_audits_it(
    node: tuple[Path, SqliteSink],
) -> None:
    config, sink = node
    try:
        Inbox(pipeline(sink)).deliver(notice())  # ROSSETTI, alias ROSSI, born 1979-11-03
        before = len(sink.audit_entries())
        code, out = _lookup(
            config, "--family-name", "rossi", "--date-of-birth", "1979-11",
            "--purpose", "SAR-2026-41", "--json",
        )  # fmt: skip
        assert code == 0, out
        hits = json.loads(out)
        assert [(h["notice_id"], h["sender"], h["state"]) for h in hits] == [
            (NOTICE_ID, "IT", "pending-review")
        ]
        assert set(hits[0]) == {
            "notice_id", "sender", "notice_type", "version", "state", "state_reason", "updated_at",
            "handling",
        }  # fmt: skip
        assert hits[0]["handling"] == "H1"  # an answer to the person needs IT's permission
        entries = sink.audit_entries()[before:]
        assert [(e.action, e.notice_id, e.operator, e.purpose, e.reason) for e in entries] == [
            (AuditAction.CONSULTATION, NOTICE_ID, "dpo-7", "SAR-2026-41", SUBJECT_LOOKUP)
        ]
        assert "ROSS" not in json.dumps([e.__dict__ for e in entries]).upper()  # ids only
    finally:
        sink.close()


def test_no_match_is_said_and_the_lookup_still_audited(node: tuple[Path, SqliteSink]) -> None:
    config, sink = node
    try:
        Inbox(pipeline(sink)).deliver(notice())
        before = len(sink.audit_entries())
        code, out = _lookup(
            config, "--family-name", "Rossetti", "--date-of-birth", "1980", "--purpose", "SAR-9"
        )
        assert code == 0, out
        assert out.strip() == "no stored notice matches (the lookup was recorded in the audit log)"
        [entry] = sink.audit_entries()[before:]
        assert (entry.action, entry.notice_id, entry.purpose) == (
            AuditAction.CONSULTATION,
            None,
            "SAR-9",
        )
    finally:
        sink.close()


def test_a_purged_notice_holds_no_name_and_is_not_found(node: tuple[Path, SqliteSink]) -> None:
    config, sink = node
    try:
        inbox = Inbox(pipeline(sink))
        inbox.deliver(notice())
        inbox.deliver(oversight(MessageKind.DELETE))
        code, out = _lookup(config, "--family-name", "ROSSETTI", "--purpose", "SAR-3", "--json")
        assert (code, json.loads(out)) == (0, [])
    finally:
        sink.close()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--family-name", "X", "--date-of-birth", "3.11.1979", "--purpose", "p"],
            "nbx: error: --date-of-birth '3.11.1979': expected YYYY, YYYY-MM or YYYY-MM-DD",
        ),
        (["--family-name", " ", "--purpose", "p"], "nbx: error: --family-name: must not be empty"),
        (
            ["--family-name", "X", "--purpose", " "],
            "nbx: error: reading a notice needs a purpose (--purpose)",
        ),
    ],
)
def test_bad_input_is_one_error_line(
    node: tuple[Path, SqliteSink], args: list[str], line: str
) -> None:
    config, sink = node
    sink.close()
    code, out = _lookup(config, *args)
    assert code != 0
    assert out.strip().splitlines()[-1] == line


@pytest.mark.parametrize("kind", ["jsonl", POSTGRESQL])
def test_the_other_stores_answer_the_same(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    sink = open_store(kind, tmp_path / "fr.jsonl", request)
    try:
        Inbox(pipeline(sink)).deliver(notice())
        access = Access("dpo-7", "SAR-5")
        hits = sink.subject_lookup("Rossetti", "1979-11-03", access)
        assert [h["notice_id"] for h in hits] == [NOTICE_ID]
        assert sink.subject_lookup("Rossetti", "1979-12", access) == []
        lookups = [e for e in sink.audit_entries() if e.reason == SUBJECT_LOOKUP]
        assert [e.notice_id for e in lookups] == [NOTICE_ID, None]
    finally:
        sink.close()
    reopened = open_store(kind, tmp_path / "fr.jsonl", request)  # kept, not only in memory
    try:
        assert [e.reason for e in reopened.audit_entries()].count(SUBJECT_LOOKUP) == 2
    finally:
        reopened.close()
