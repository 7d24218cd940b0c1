"""``nbx audit verify`` detects an edited byte, a reordered, deleted or inserted entry, a rewritten
chain, a forged checkpoint and a tail cut before the last checkpoint, each with one line naming
the first bad seq and exit code 1; ``nbx audit export`` lists the entries."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import main
from broker.sinks import SqliteSink
from broker.sinks.audit import chain, entry_hash
from broker.sinks.base import AuditEntry, AuditEvent
from broker.vocab import AuditAction
from tests.node.helpers import Net, example, memory_net, wait_for

#: the hashed columns of an entry (``seq`` is tested apart: it is the row's key)
COLUMNS = (
    "at",
    "action",
    "notice_id",
    "msg_id",
    "sender",
    "notice_type",
    "kind",
    "bureaus",
    "operator",
    "purpose",
    "outcome",
    "reason",
    "prev",
    "hash",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """FR's store after 4 notices from IT, a checkpoint, then 2 consultations after it: the
    store file (a pristine copy each test copies) and FR's node.toml."""
    import asyncio

    folder = tmp_path_factory.mktemp("audit")
    net = memory_net(folder, ("IT", "FR"))

    async def traffic() -> None:
        await net.start("FR")
        try:
            for i in range(4):
                await net.publish("IT", example("red", notice_id=f"IT-2025-000{i}"), ["FR"])
            fr = net.daemon("FR").sink
            assert await wait_for(lambda: len(fr.audit_entries()) == 4)
        finally:
            await net.stop()  # a clean stop signs a checkpoint of the 4 entries

    asyncio.run(traffic())
    store = _store(net)
    sink = SqliteSink(store)
    try:
        assert [c.count for c in sink.checkpoints()] == [4]
        for _ in range(2):
            sink.record(
                AuditEvent(
                    AuditAction.CONSULTATION,
                    notice_id="IT-2025-0000",
                    operator="o",
                    purpose="check",
                )
            )
    finally:
        sink.close()
    pristine = folder / "pristine.sqlite"
    _copy(store, pristine)
    return pristine, net.paths["FR"]


def _store(net: Net) -> Path:
    url = net.configs["FR"].sink.url
    return Path(url.partition(":///")[2])


def _copy(src: Path, dst: Path) -> None:
    dst.touch(mode=0o600)
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()


@pytest.fixture
def store(built: tuple[Path, Path]) -> tuple[Path, Path]:
    """A fresh copy of the built store, at the path FR's node.toml names."""
    pristine, config = built
    from broker.node.config import NodeConfig

    path = Path(NodeConfig.load(config).sink.url.partition(":///")[2])
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    _copy(pristine, path)
    return path, config


def _tamper(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for sql, args in statements:
        db.execute(sql, args)
    db.commit()
    db.close()


def _verify(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify", "--config", str(config)])
    return result.exit_code, result.output.strip()


def _row(path: Path, seq: int) -> dict[str, object]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    row = dict(db.execute("SELECT * FROM audit WHERE seq = ?", (seq,)).fetchone())
    db.close()
    return row


def test_an_intact_log_verifies(store: tuple[Path, Path]) -> None:
    code, out = _verify(store[1])
    assert (code, out) == (
        0,
        "audit log intact: 6 entries, 1 signed checkpoints "
        f"(last checkpoint {_checkpoint_at(store[0])}; 2 entries after it)",
    )


def _checkpoint_at(path: Path) -> str:
    db = sqlite3.connect(path)
    at = str(db.execute("SELECT at FROM audit_checkpoints").fetchone()[0])
    db.close()
    return at


def test_the_log_is_append_only_in_sqlite(store: tuple[Path, Path]) -> None:
    db = sqlite3.connect(store[0])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET purpose = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 6")
    db.close()


@pytest.mark.parametrize("column", COLUMNS)
def test_one_changed_byte_in_any_field_is_detected(store: tuple[Path, Path], column: str) -> None:
    path, config = store
    value = _row(path, 2)[column]
    if value is None:
        changed: object = "x"
    else:
        text = str(value)
        flipped = "1" if text[-1] != "1" else "2"
        changed = text[:-1] + flipped
    if column == "bureaus":
        changed = '["X"]'
    _tamper(path, (f"UPDATE audit SET {column} = ? WHERE seq = 2", (changed,)))  # noqa: S608
    code, out = _verify(config)
    assert code == 1
    if column == "prev":
        assert out == (
            "nbx: error: audit log broken at seq 2: prev does not match the hash of seq 1 "
            "(entry inserted, deleted or reordered)"
        )
    else:
        assert (
            out == "nbx: error: audit log broken at seq 2: hash does not match the entry (edited)"
        )


def test_a_changed_seq_is_detected(store: tuple[Path, Path]) -> None:
    path, config = store
    _tamper(path, ("UPDATE audit SET seq = 99 WHERE seq = 3", ()))
    assert _verify(config) == (
        1,
        "nbx: error: audit log broken at seq 3: entry missing (next is seq 4)",
    )


def test_swapped_rows_are_detected(store: tuple[Path, Path]) -> None:
    path, config = store
    two, three = _row(path, 2), _row(path, 3)
    columns = ", ".join(f"{c} = ?" for c in COLUMNS)
    _tamper(
        path,
        (f"UPDATE audit SET {columns} WHERE seq = 2", tuple(three[c] for c in COLUMNS)),  # noqa: S608
        (f"UPDATE audit SET {columns} WHERE seq = 3", tuple(two[c] for c in COLUMNS)),  # noqa: S608
    )
    assert _verify(config) == (
        1,
        "nbx: error: audit log broken at seq 2: prev does not match the hash of seq 1 "
        "(entry inserted, deleted or reordered)",
    )


def test_a_deleted_entry_is_detected(store: tuple[Path, Path]) -> None:
    path, config = store
    _tamper(path, ("DELETE FROM audit WHERE seq = 2", ()))
    assert _verify(config) == (
        1,
        "nbx: error: audit log broken at seq 2: entry missing (next is seq 3)",
    )


def test_an_inserted_entry_is_detected(store: tuple[Path, Path]) -> None:
    """A well-formed entry slipped in after seq 1 (the later ones renumbered)."""
    path, config = store
    first = _row(path, 1)
    forged = chain(
        AuditEvent(AuditAction.CONSULTATION, notice_id="X"), 2, str(first["at"]), str(first["hash"])
    )
    _tamper(
        path,
        ("UPDATE audit SET seq = seq + 100 WHERE seq >= 2", ()),
        ("UPDATE audit SET seq = seq - 99 WHERE seq >= 100", ()),
        (
            "INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)",
            (
                2,
                forged.at,
                forged.action,
                forged.notice_id,
                None,
                None,
                None,
                None,
                "[]",
                None,
                None,
                None,
                None,
                forged.prev,
                forged.hash,
            ),
        ),
    )
    assert _verify(config) == (
        1,
        "nbx: error: audit log broken at seq 3: prev does not match the hash of seq 2 "
        "(entry inserted, deleted or reordered)",
    )


def test_a_tail_cut_before_the_last_checkpoint_is_detected(store: tuple[Path, Path]) -> None:
    path, config = store
    at = _checkpoint_at(path)
    _tamper(path, ("DELETE FROM audit WHERE seq >= 4", ()))
    assert _verify(config) == (
        1,
        f"nbx: error: audit log broken at seq 4: truncated (a checkpoint signed at {at} covers "
        "4 entries, the log has 3)",
    )


def test_a_tail_cut_after_the_last_checkpoint_is_not_detectable(
    store: tuple[Path, Path],
) -> None:
    """The documented limit: what no checkpoint covers yet can be cut without a trace."""
    path, config = store
    _tamper(path, ("DELETE FROM audit WHERE seq >= 5", ()))
    code, out = _verify(config)
    assert code == 0
    assert out.startswith("audit log intact: 4 entries, 1 signed checkpoints")


def test_a_rewritten_chain_disagrees_with_the_checkpoint(store: tuple[Path, Path]) -> None:
    """Entry 2 edited and every later hash recomputed: the chain is consistent, the signed
    checkpoint is not."""
    path, config = store
    sink = SqliteSink(path)
    entries = sink.audit_entries()
    sink.close()
    statements: list[tuple[str, tuple[object, ...]]] = []
    prev = entries[0].hash
    for e in entries[1:]:
        fields = e.__dict__ | {"prev": prev}
        if e.seq == 2:
            fields["reason"] = "forged"
        fixed = AuditEntry(**fields)
        fixed = AuditEntry(**(fixed.__dict__ | {"hash": entry_hash(fixed)}))
        prev = fixed.hash
        statements.append(
            (
                "UPDATE audit SET reason = ?, prev = ?, hash = ? WHERE seq = ?",
                (fixed.reason, fixed.prev, fixed.hash, fixed.seq),
            )
        )
    _tamper(path, *statements)
    assert _verify(config) == (
        1,
        f"nbx: error: audit log broken at seq 4: the chain head differs from the checkpoint "
        f"signed at {_checkpoint_at(path)}",
    )


def test_a_forged_checkpoint_is_detected(store: tuple[Path, Path]) -> None:
    path, config = store
    db = sqlite3.connect(path)
    db.execute("UPDATE audit_checkpoints SET count = 3")
    db.commit()
    db.close()
    assert _verify(config) == (1, "nbx: error: checkpoint at seq 3: bad signature")


def test_export_lists_the_entries_between_two_times(store: tuple[Path, Path]) -> None:
    _, config = store
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "export", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]
    assert [e["action"] for e in entries] == ["collection"] * 4 + ["consultation"] * 2
    since = entries[4]["at"]
    later = runner.invoke(
        main, ["audit", "export", "--config", str(config), "--since", since, "--json"]
    )
    assert [e["seq"] for e in json.loads(later.output)] == [
        e["seq"] for e in entries if e["at"] >= since
    ]
    none = runner.invoke(
        main, ["audit", "export", "--config", str(config), "--until", "2000-01-01"]
    )
    assert (none.exit_code, none.output) == (0, "")
    text = runner.invoke(main, ["audit", "export", "--config", str(config)])
    lines = text.output.splitlines()
    assert len(lines) == 6
    assert "collection" in lines[0]
    assert "purpose='check'" in lines[5]
    bad = runner.invoke(main, ["audit", "export", "--config", str(config), "--since", "soon"])
    assert bad.exit_code == 1
    assert "--since: expected a date or an ISO 8601 time, got 'soon'" in bad.output


def test_the_jsonl_log_detects_an_edited_byte_and_a_deleted_line(tmp_path: Path) -> None:
    """The same chain in the JSON-lines store: one byte of a record changed, or a record's line
    removed, breaks it at that seq."""
    from broker.sinks import JsonlSink
    from broker.sinks.audit import verify

    path = tmp_path / "FR.jsonl"
    sink = JsonlSink(path)
    for i in range(3):
        sink.record(AuditEvent(AuditAction.CONSULTATION, notice_id=f"IT-{i}", operator="o",
                               purpose="check"))  # fmt: skip
    sink.close()
    lines = path.read_text().splitlines()
    edited = [line.replace('"IT-1"', '"IT-7"') if '"IT-1"' in line else line for line in lines]
    path.write_text("\n".join(edited) + "\n")
    again = JsonlSink(path)
    try:
        problem = verify(again.audit_entries(), [], lambda cp: None)
    finally:
        again.close()
    assert problem == "audit log broken at seq 2: hash does not match the entry (edited)"
    path.write_text("\n".join(line for line in lines if '"IT-1"' not in line) + "\n")
    again = JsonlSink(path)
    try:
        problem = verify(again.audit_entries(), [], lambda cp: None)
    finally:
        again.close()
    assert problem == "audit log broken at seq 2: entry missing (next is seq 3)"
