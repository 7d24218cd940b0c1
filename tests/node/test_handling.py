"""Evaluation and handling codes acted on at the recipient (issue 19, point 6): every view shows
them with their meaning, and `nbx inbox export` lets an H2 notice leave only with the provider's
permission, whose reference the audit log records (docs/handling.md)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from broker.cli import main
from broker.envelope import Grant, VerifiedPackage, seal
from broker.node.config import NodeConfig
from broker.node.handling import (
    EXPORT_FORMAT,
    ExportError,
    code_lines,
    evaluation,
    export_notice,
)
from broker.node.provision import provision
from broker.schemas import NoticeBase, disclosure_units, non_redactable
from broker.sinks import SqliteSink
from broker.sinks.audit import Access
from broker.sinks.base import Sink
from broker.sinks.jsonl import JsonlSink
from broker.vocab import MessageKind
from tests.node.helpers import example
from tests.node.states_kit import IT, NOTICE_ID, Inbox, opened, oversight, pipeline

PERMISSION = "IT-SIRENE-2026/417"
H2_REFUSED = (
    f"nbx: error: {NOTICE_ID}: handling H2: not to be disseminated without the provider's "
    "permission; ask IT and give its reference with --provider-permission REF"
)


def package(notice: NoticeBase) -> VerifiedPackage:
    """IT's ``notice``, every unit granted to FR, as FR opens it."""
    units = {u.path: u.value for u in disclosure_units(notice)}
    return opened(
        seal(
            signer=IT,
            kind=MessageKind.PUBLISH,
            notice_id=notice.notice_id,
            notice_type=str(notice.notice_type),
            header=non_redactable(notice),
            units=units,
            grants={"FR": Grant(frozenset(units), (), "FR@test")},
            handling=str(notice.handling.code),
        )
    )


def red(handling: dict[str, Any], reliability: str = "B", accuracy: int = 2) -> NoticeBase:
    """IT's red notice with the given codes."""
    return example(
        "red",
        handling=handling,
        source_reliability=reliability,
        information_accuracy=accuracy,
    )


def stored(sink: Sink, notice: NoticeBase, *, review: bool = False) -> None:
    """Deliver ``notice`` to FR's store (actionable at once unless ``review``)."""
    Inbox(pipeline(sink, needs_review=lambda *_: review)).deliver(package(notice))


@pytest.fixture
def node(tmp_path: Path) -> tuple[Path, Path]:
    """FR's node file and its SQLite store."""
    path = provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1")["FR"]
    path.write_text(path.read_text() + '\n[audit]\noperator = "officer-12"\n')
    return path, NodeConfig.load(path).sink_path()


def _with(store: Path, notice: NoticeBase, *, review: bool = False) -> None:
    sink = SqliteSink(store)
    try:
        stored(sink, notice, review=review)
    finally:
        sink.close()


def _nbx(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _entries(store: Path) -> list[Any]:
    sink = SqliteSink(store)
    try:
        return sink.audit_entries()
    finally:
        sink.close()


def test_inbox_list_and_show_show_the_codes(node: tuple[Path, Path]) -> None:
    """`inbox list` shows the handling code and the 4x4 evaluation on each line (and in JSON);
    `inbox show` says what they mean and what H1 asks of the recipient."""
    config, store = node
    _with(store, red({"code": "H1"}))
    code, out = _nbx("inbox", "list", "--config", str(config))
    assert code == 0, out
    assert out.split() == [NOTICE_ID, "red", "from", "IT", "v1", "H1", "B2", "actionable"]
    code, out = _nbx("inbox", "list", "--config", str(config), "--json")
    row = json.loads(out)[0]
    assert (row["handling"], row["source_reliability"], row["information_accuracy"]) == (
        "H1",
        "B",
        2,
    )
    code, out = _nbx("inbox", "show", "--config", str(config), NOTICE_ID, "--purpose", "case 41")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[2:4] == [
        "handling: H1: not to be used in judicial proceedings without the provider's "
        "permission (IT)",
        "evaluation: B2: source reliable in most instances; known personally to the source, "
        "not to the official passing it on",
    ]
    assert "caution" not in out


def test_h3_conditions_and_an_unassessed_source_are_shown() -> None:
    """H3 prints its conditions; a source that cannot be assessed (X) or information that
    cannot be corroborated (4) prints a caution."""
    notice = red({"code": "H3", "conditions": "Not to be shared with customs."}, "X", 4)
    view = notice.model_dump(mode="json")
    assert code_lines(view, "IT") == [
        "handling: H3: other restrictions, stated by the provider (IT)",
        "conditions: Not to be shared with customs.",
        "evaluation: X4: reliability of the source cannot be assessed; not known personally to "
        "the source, cannot be corroborated",
        "caution: corroborate before acting on this information",
    ]
    assert code_lines(None, "IT") == []
    assert evaluation(None, None) == "-"
    c1 = code_lines(red({"code": "H0"}, "C", 1).model_dump(mode="json"), "IT")
    assert c1[-1] == "caution: corroborate before acting on this information"
    a1 = code_lines(red({"code": "H0"}, "A", 1).model_dump(mode="json"), "IT")
    assert a1 == [
        "handling: H0: no restriction beyond law-enforcement use (IT)",
        "evaluation: A1: source reliable (no doubt, or reliable in all instances); accuracy not "
        "in doubt",
    ]


def test_h2_export_is_refused_without_the_providers_permission(
    node: tuple[Path, Path], tmp_path: Path
) -> None:
    """An H2 notice does not leave without --provider-permission: one error line naming the
    provider, no file, no disclosure entry."""
    config, store = node
    _with(store, red({"code": "H2"}))
    out_file = tmp_path / "export.json"
    code, out = _nbx("inbox", "export", "--config", str(config), NOTICE_ID, "--out",
                     str(out_file), "--purpose", "case 41")  # fmt: skip
    assert code == 1
    assert out.strip().splitlines()[-1] == H2_REFUSED
    assert not out_file.exists()
    assert [e.action for e in _entries(store) if e.action == "disclosure"] == []


def test_h2_export_with_permission_writes_the_notice_and_audits_the_reference(
    node: tuple[Path, Path], tmp_path: Path
) -> None:
    """With the permission's reference the notice is written (0600) with what was withheld and
    where it came from, and the `disclosure` entry records operator, purpose and reference."""
    config, store = node
    _with(store, red({"code": "H2"}))
    out_file = tmp_path / "export.json"
    code, out = _nbx("inbox", "export", "--config", str(config), NOTICE_ID, "--out",
                     str(out_file), "--purpose", "case 41", "--provider-permission",
                     PERMISSION)  # fmt: skip
    assert code == 0, out
    assert out.splitlines() == [
        "handling: H2: not to be disseminated without the provider's permission (IT)",
        "evaluation: B2: source reliable in most instances; known personally to the source, "
        "not to the official passing it on",
        f"provider's permission: {PERMISSION} (recorded in the audit log)",
        f"exported {NOTICE_ID} to {out_file}",
    ]
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    document = json.loads(out_file.read_text())
    assert document["format"] == EXPORT_FORMAT
    assert document["notice"]["person"]["family_name"] == "ROSSETTI"
    assert document["notice"]["handling"] == {"code": "H2"}
    assert (document["sender"], document["provider_permission"]) == ("IT", PERMISSION)
    assert document["withheld"] == []
    last = _entries(store)[-1]
    assert (last.action, last.kind, last.outcome, last.reason) == (
        "disclosure",
        "export",
        "exported",
        f"provider-permission:{PERMISSION}",
    )
    assert (last.notice_id, last.sender, last.operator, last.purpose) == (
        NOTICE_ID,
        "IT",
        "officer-12",
        "case 41",
    )
    assert _entries(store)[-2].action == "consultation"


def test_h1_export_says_court_use_needs_permission(node: tuple[Path, Path], tmp_path: Path) -> None:
    """H0 and H1 notices leave without a permission; H1 prints the court-use condition and the
    disclosure entry has no reason."""
    config, store = node
    _with(store, red({"code": "H1"}))
    out_file = tmp_path / "export.json"
    code, out = _nbx("inbox", "export", "--config", str(config), NOTICE_ID, "--out",
                     str(out_file), "--purpose", "case 41")  # fmt: skip
    assert code == 0, out
    assert out.splitlines()[0] == (
        "handling: H1: not to be used in judicial proceedings without the provider's "
        "permission (IT)"
    )
    last = _entries(store)[-1]
    assert (last.action, last.kind, last.reason) == ("disclosure", "export", None)


def test_export_refusals_are_one_line(node: tuple[Path, Path], tmp_path: Path) -> None:
    """Not actionable (pending review), an existing --out file, a reference that is not one,
    an unknown notice: each one line, nothing written or recorded."""
    config, store = node
    _with(store, red({"code": "H0"}), review=True)
    out_file = tmp_path / "export.json"
    base = ("inbox", "export", "--config", str(config), "--purpose", "case 41")
    code, out = _nbx(*base, NOTICE_ID, "--out", str(out_file))
    assert code == 1
    assert out.strip().splitlines()[-1] == (
        f"nbx: error: {NOTICE_ID}: pending-review, not actionable: it may not be exported"
    )
    assert not out_file.exists()
    code, out = _nbx(*base, "IT-2099-0001", "--out", str(out_file))
    assert out.strip().splitlines()[-1] == "nbx: error: IT-2099-0001: no such notice in the inbox"
    code, out = _nbx(*base, NOTICE_ID, "--out", str(out_file), "--provider-permission", "Mr X")
    assert out.strip().splitlines()[-1] == (
        "nbx: error: --provider-permission 'Mr X': expected a reference (letters, digits and "
        ". _ : / -, at most 100), never a name"
    )
    out_file.write_text("keep")
    code, out = _nbx(*base, NOTICE_ID, "--out", str(out_file))
    assert out.strip().splitlines()[-1] == (
        f"nbx: error: --out {out_file}: exists; choose a new file"
    )
    assert out_file.read_text() == "keep"
    assert [e for e in _entries(store) if e.action == "disclosure"] == []


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_export_in_both_stores(tmp_path: Path, kind: str) -> None:
    """`export_notice` refuses H2 without a permission and records the export with it, in both
    stores; a purged notice has no codes and nothing to export."""
    path = tmp_path / f"s.{kind}"
    sink: Sink = SqliteSink(path) if kind == "sqlite" else JsonlSink(path)
    access = Access("officer-12", "case 41")
    try:
        stored(sink, red({"code": "H2"}))
        with pytest.raises(ExportError, match="handling H2"):
            export_notice(sink, NOTICE_ID, access)
        exported = export_notice(sink, NOTICE_ID, access, permission=PERMISSION)
        assert exported.document["provider_permission"] == PERMISSION
        row = sink.notices()[0]
        assert (row["handling"], row["source_reliability"], row["information_accuracy"]) == (
            "H2",
            "B",
            2,
        )
        disclosures = [e for e in sink.audit_entries() if e.action == "disclosure"]
        assert [(e.kind, e.reason) for e in disclosures] == [
            ("export", f"provider-permission:{PERMISSION}")
        ]
        Inbox(pipeline(sink)).at(oversight(MessageKind.DELETE), 2)
        row = sink.notices()[0]
        assert (row["state"], row["handling"], row["information_accuracy"]) == (
            "purged",
            None,
            None,
        )
        with pytest.raises(ExportError, match=f"^{NOTICE_ID}: purged, it holds no data to export$"):
            export_notice(sink, NOTICE_ID, access, permission=PERMISSION)
    finally:
        sink.close()
