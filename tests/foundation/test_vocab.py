"""The vocabulary (broker.vocab): every closed set of codes is one StrEnum whose members are the
strings the wire, the stores and the logs carried before, and the reason sets derive from it."""

from __future__ import annotations

import json

import broker.logging
from broker import vocab
from broker.errors import EnvelopeRejected, SinkError
from broker.node.receipts import answer
from broker.schemas import MessageKind as SchemaMessageKind
from broker.vocab import (
    QUARANTINE_REASONS,
    REASON_CODES,
    MessageKind,
    PurgeReason,
    Reason,
    ReceiptStatus,
    StoreFailure,
    Unsendable,
)


def test_reason_sets_are_the_enums_values() -> None:
    """QUARANTINE_REASONS is every Reason; REASON_CODES adds the store's and the receipt
    writer's, and the purge reasons (a ``retention-expired`` receipt is logged as such);
    broker.logging exports the same sets; all of them hold plain strings."""
    assert {r.value for r in Reason} == QUARANTINE_REASONS
    assert len(Reason) == 33  # not-a-recipient, not-shared: answers to a notice
    store_and_writer = {"read-only", "disk-full", "locked", "storage-error", "key"}
    store_and_writer |= {"unreachable", "conflict", "access-denied", "missing", "schema-version"}
    store_and_writer |= {p.value for p in PurgeReason}
    assert store_and_writer == REASON_CODES - QUARANTINE_REASONS
    assert {s.value for s in StoreFailure} | {u.value for u in Unsendable} <= REASON_CODES
    assert broker.logging.QUARANTINE_REASONS is QUARANTINE_REASONS
    assert broker.logging.REASON_CODES is REASON_CODES
    assert all(type(code) is str for code in REASON_CODES)


def test_members_are_the_strings_they_replace() -> None:
    """A member compares, hashes, formats, encodes and serialises as its text."""
    revoked: str = Reason.KEY_REVOKED
    assert revoked == "key-revoked"
    assert {"replay": 1}[Reason.REPLAY] == 1
    assert f"{Reason.CLOCK_SKEW}" == "clock-skew"
    assert f"{ReceiptStatus.DELIVERED:9}|" == "delivered|"
    assert Reason.DECLINED_BY_POLICY.encode() == b"declined-by-policy"
    assert json.dumps({"status": ReceiptStatus.PURGED}) == '{"status": "purged"}'
    assert str(EnvelopeRejected(Reason.FRAME)) == "package rejected: frame"
    assert SinkError("x").reason == "storage-error"


def test_message_kind_is_one_enum() -> None:
    """broker.schemas.MessageKind is the vocabulary's enum, not a second copy."""
    assert SchemaMessageKind is MessageKind
    assert [k.value for k in MessageKind] == [
        "publish", "update", "suspend", "cancel", "erasure", "receipt",
        "review", "block", "unblock", "delete", "response",
    ]  # fmt: skip


def test_a_receipt_carries_plain_strings() -> None:
    """The receipt body the writer signs holds exact ``str`` values, not enum members (canonical
    JSON's fast path accepts only exact types, and the bytes must not depend on the type)."""

    class Package:
        sender = "IT"
        msg_id = "0190b1c4-0000-7000-8000-000000000000"
        notice_id = "IT-2025-0001"

    owed = answer(Package(), "FR", ReceiptStatus.REJECTED, Reason.SCHEMA)  # type: ignore[arg-type]
    assert owed.receipt["status"] == "rejected"
    assert owed.receipt["reason"] == "schema"
    assert type(owed.receipt["status"]) is str
    assert type(owed.receipt["reason"]) is str


def test_vocab_imports_only_the_standard_library() -> None:
    """broker.vocab sits below every other module: it imports nothing but the standard library."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(vocab.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= {"__future__", "enum", "typing"}, imported


def test_a_kind_member_seals_the_same_bytes_as_its_text() -> None:
    """Sealing with ``MessageKind.PUBLISH`` or with ``"publish"`` signs the same statement."""
    from datetime import UTC, datetime

    from broker.envelope import Grant, seal
    from broker.keys import BureauKeys

    signer = BureauKeys.generate("IT")

    def statement(kind: str) -> bytes:
        return seal(
            signer=signer,
            kind=kind,
            notice_id="IT-2025-0001",
            notice_type="red",
            header={"notice_id": "IT-2025-0001"},
            units={"person.family_name": "X"},
            grants={"FR": Grant(frozenset({"person.family_name"}), (), "fr-policy")},
            handling="H1",
            now=datetime(2026, 1, 1, tzinfo=UTC),
            msg_id="0190b1c4-0000-7000-8000-000000000000",
            salt=lambda n: b"\0" * n,
        ).statement

    assert statement(MessageKind.PUBLISH) == statement("publish")
    assert b'"kind":"publish"' in statement(MessageKind.PUBLISH)
