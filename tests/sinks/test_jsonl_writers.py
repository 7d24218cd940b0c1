"""Several JsonlSink handles on one file (a node's publisher and its daemon, threads or
processes) lose no line and keep one audit chain: every write is made under the file's lock on
a state caught up with the other handles' appends and rewrites."""

from __future__ import annotations

import multiprocessing
import stat
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from broker.sinks import Applied, JsonlSink, Position
from broker.sinks.audit import verify
from broker.sinks.base import AuditEvent
from broker.vocab import AuditAction, MessageKind, NoticeState, SendStatus
from tests.audit_access import READ
from tests.sinks.test_sinks import CANARY, TOPIC, package, view

ROUNDS = 200  # appends per writer in the concurrent tests
EVERY = 40  # the daemon's publish + cancel (a rewrite) every EVERY rounds


def disclosure(notice_id: str, msg_id: str) -> AuditEvent:
    """The entry a publisher records for a message it sent."""
    return AuditEvent(AuditAction.DISCLOSURE, notice_id=notice_id, msg_id=msg_id, sender="FR",
                      kind="review", bureaus=("IT",), operator="reviewer")  # fmt: skip


def send(sink: JsonlSink, notice_id: str, msg_id: str) -> None:
    """What ``Publisher`` stores for one message sent: its row and its entry, in one batch."""
    with sink.batch():
        sink.record_sent(msg_id, notice_id, "IT", MessageKind.REVIEW, SendStatus.SENT, None)
        sink.record(disclosure(notice_id, msg_id))


def check_fresh(path: Path, sent: dict[str, set[str]]) -> list[str]:
    """Open ``path`` anew: every row of ``sent`` (notice id -> msg ids) is there and the audit
    chain is one intact chain (seq 1..n, no fork); the entries' actions in seq order."""
    fresh = JsonlSink(path)
    try:
        for notice_id, msg_ids in sent.items():
            rows = fresh.status(notice_id)
            assert {m["msg_id"] for r in rows for m in r["messages"]} == msg_ids, notice_id
        entries = fresh.audit_entries()
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert verify(entries, [], lambda cp: None) is None
        audit_lines = sum('"type": "audit"' in line for line in path.read_text().splitlines())
        assert audit_lines == len(entries)  # one line per entry: no two entries share a seq
        return [str(e.action) for e in entries]
    finally:
        fresh.close()


def test_a_daemon_rewrite_keeps_what_the_publisher_handle_appended(tmp_path: Path) -> None:
    """The daemon's handle purges a notice (cancel: the file is rewritten) after the publisher's
    handle appended sent rows and disclosure entries it never read: all of them stay, the
    entries after the rewrite chain from the true head, and each handle reads the other's."""
    path = tmp_path / "FR.jsonl"
    daemon, publisher = JsonlSink(path), JsonlSink(path)
    try:
        p = package()
        assert daemon.apply(p, view(p), Position(TOPIC, 0, 1)) is Applied.DELIVERED
        for i in range(3):
            send(publisher, "IT-1", f"r{i}")
        cancel = package("cancel")
        assert daemon.apply(cancel, {}, Position(TOPIC, 0, 2)) is Applied.PURGED  # rewrite
        assert CANARY.encode() not in path.read_bytes()
        for i in range(3, 6):
            send(publisher, "IT-1", f"r{i}")
        daemon.record_quarantine("frame", Position(TOPIC, 0, 3))
        assert [m["msg_id"] for m in daemon.status("IT-1")[0]["messages"]] == [
            f"r{i}" for i in range(6)
        ]  # the daemon's handle reads what the publisher's appended
        assert publisher.notices()[0]["state"] == NoticeState.CANCELLED
        assert publisher.audit_entries() == daemon.audit_entries()
    finally:
        daemon.close()
        publisher.close()
    actions = check_fresh(path, {"IT-1": {f"r{i}" for i in range(6)}})
    assert actions == ["collection", *["disclosure"] * 3, "erasure",
                       *["disclosure"] * 3, "quarantine"]  # fmt: skip


def test_a_handle_that_knew_the_older_file_reloads_after_a_rewrite(tmp_path: Path) -> None:
    """A handle opened before another handle's purge rewrote the file does not append to the
    replaced file, nor write its stale state back with its next rewrite (the purged view would
    come back, the other handle's lines would be lost): it reloads first."""
    path = tmp_path / "FR.jsonl"
    first = JsonlSink(path)
    p = package()
    first.apply(p, view(p), Position(TOPIC, 0, 1))
    stale = JsonlSink(path)  # knows IT-1 with its view
    first.apply(package("cancel"), {}, Position(TOPIC, 0, 2))  # rewrites: a new file
    first.close()
    send(stale, "IT-1", "m1")  # appended to the new file, after a reload
    other = package(notice_id="IT-2")
    stale.apply(other, view(other), Position(TOPIC, 0, 3))
    assert stale.apply(package("cancel", notice_id="IT-2"), {}, Position(TOPIC, 0, 4)) is (
        Applied.PURGED
    )  # its own rewrite, from the reloaded state
    stored = stale.notice("IT-1", READ)
    assert stored is not None
    assert (stored["status"], stored["view"]) == ("cancelled", None)
    stale.close()
    assert CANARY.encode() not in path.read_bytes()
    actions = check_fresh(path, {"IT-1": {"m1"}})
    assert Counter(actions) == {"collection": 2, "erasure": 2,
                                "disclosure": 1, "consultation": 1}  # fmt: skip


def test_a_file_cut_shorter_in_place_is_read_again(tmp_path: Path) -> None:
    """The file smaller than what a handle loaded (the same inode, written in place): the handle
    reads it again from its start rather than past its end."""
    path = tmp_path / "FR.jsonl"
    sink = JsonlSink(path)
    try:
        for i in range(3):
            sink.record(disclosure(f"IT-{i}", f"m{i}"))
        first = path.read_text().splitlines()[0]
        path.write_text(first + "\n")
        assert [e.notice_id for e in sink.audit_entries()] == ["IT-0"]
        sink.record(disclosure("IT-9", "m9"))
        assert [e.seq for e in sink.audit_entries()] == [1, 2]
    finally:
        sink.close()
    assert check_fresh(path, {}) == ["disclosure", "disclosure"]


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    """``<file>.lock`` is created 0600, beside the store, and stays after a rewrite."""
    path = tmp_path / "FR.jsonl"
    sink = JsonlSink(path)
    try:
        p = package()
        sink.apply(p, view(p), Position(TOPIC, 0, 1))
        sink.apply(package("cancel"), {}, Position(TOPIC, 0, 2))
        lock = tmp_path / "FR.jsonl.lock"
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert lock.read_bytes() == b""
    finally:
        sink.close()


def writer(path: str, role: str, rounds: int, start: Any) -> None:
    """One handle writing ``rounds`` times once ``start`` (a barrier) lets it: the publisher
    sends (a sent row and a disclosure entry), the daemon records a consultation entry and
    every EVERY rounds receives a notice and its cancel (a rewrite)."""
    sink = JsonlSink(Path(path), durable=False)
    try:
        start.wait(timeout=120)
        for i in range(rounds):
            if role == "publisher":
                send(sink, f"N-{i % 4}", f"p{i}")
                continue
            if i % EVERY == 0:
                notice_id = f"IT-{i}"
                p = package(notice_id=notice_id)
                sink.apply(p, view(p), Position(TOPIC, 0, 2 * i))
                cancel = package("cancel", notice_id=notice_id)
                assert sink.apply(cancel, {}, Position(TOPIC, 0, 2 * i + 1)) is Applied.PURGED
            sink.record(AuditEvent(AuditAction.CONSULTATION, notice_id=f"D-{i}",
                                   operator="daemon", purpose="test"))  # fmt: skip
    finally:
        sink.close()


def check_concurrent(path: Path) -> None:
    """Every row and entry of both writers is in the file, in one intact chain."""
    sent = {f"N-{k}": {f"p{i}" for i in range(ROUNDS) if i % 4 == k} for k in range(4)}
    actions = check_fresh(path, sent)
    cycles = len(range(0, ROUNDS, EVERY))
    assert Counter(actions) == {"disclosure": ROUNDS, "consultation": ROUNDS,
                                "collection": cycles, "erasure": cycles}  # fmt: skip
    assert CANARY.encode() not in path.read_bytes()


@pytest.mark.process
def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """A publisher process and a daemon process each write ROUNDS times at once, the daemon
    rewriting the file now and then: every sent row and every entry is there, one chain."""
    path = tmp_path / "FR.jsonl"
    JsonlSink(path).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [
        ctx.Process(target=writer, args=(str(path), role, ROUNDS, start))
        for role in ("publisher", "daemon")
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
    assert [proc.exitcode for proc in procs] == [0, 0]
    check_concurrent(path)


def test_two_threads_with_their_own_handles_lose_nothing(tmp_path: Path) -> None:
    """The same with two handles in one process (a daemon's and a publisher's threads)."""
    path = tmp_path / "FR.jsonl"
    JsonlSink(path).close()
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(role: str) -> None:
        try:
            writer(str(path), role, ROUNDS, start)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(role,)) for role in ("publisher", "daemon")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    check_concurrent(path)
