"""The receive pipeline on its own: one record in, one outcome out, no broker and no producing;
each message kind is dispatched through the handler table."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from broker import devpg
from broker.bench import inproc
from broker.errors import SchemaError
from broker.examples import policies_dir
from broker.keys.bureau import StaticDirectory
from broker.node.pipeline import (
    HANDLERS,
    NOTICE_KINDS,
    Outcome,
    Received,
    ReceivePipeline,
)
from broker.node.stats import DaemonStats
from broker.policy import load_policies
from broker.schemas import validate_view
from broker.sinks import Applied
from broker.sinks.base import Seen, Sink
from broker.sinks.postgres import LOCK_MESSAGE, PostgresSink
from broker.sinks.sqlite import SqliteSink
from broker.testing import MemoryBroker
from broker.vocab import Reason
from tests.conftest import PG_PASSWORD_ENV
from tests.sinks.test_postgres import wait_until, waiting_for


def _pipeline(frames: inproc.Frames, sink: Sink, **kw: Any) -> ReceivePipeline:
    recipient = frames.recipient
    kw.setdefault("validate", functools.partial(validate_view, copy=False))
    return ReceivePipeline(
        bureau=recipient.bureau,
        directory=StaticDirectory([frames.sender.public(), recipient.public()]),
        sink=sink,
        stats=DaemonStats(),
        decryption_keys=recipient.decryption_keys(),
        policies=load_policies(policies_dir()),
        max_frame_bytes=1 << 20,
        min_suite=1,
        require_log_append_time=True,
        receipts_topic=f"nbx.receipts.{recipient.bureau}",
        **kw,
    )


def test_a_notice_is_applied_and_answered_and_its_replay_quarantined(tmp_path: Path) -> None:
    """A sealed notice: delivered, a 'delivered' receipt owed to its sender; the same frame at
    the same position again is a redelivery (answered, not stored); at another offset a replay."""
    frames = inproc.seal_frames(1)
    sink = SqliteSink(tmp_path / "s.sqlite")
    pipe = _pipeline(frames, sink)
    kafka = MemoryBroker()
    inbox = f"nbx.inbox.{frames.recipient.bureau}"
    for _ in range(2):
        kafka.append(inbox, frames.frames[0])
    first, replayed = kafka.log(inbox)
    try:
        out = pipe.receive(first)
        assert out.quarantine is None
        assert out.delivered is not None
        assert out.delivered[1] is Applied.DELIVERED
        assert out.answer is not None
        assert out.answer.sender == frames.sender.bureau
        assert out.answer.receipt["status"] == "delivered"
        again = pipe.receive(first)
        assert (again.quarantine, again.delivered) == (None, None)
        assert again.answer is not None
        assert again.answer.receipt["status"] == "delivered"
        assert pipe.receive(replayed) == Outcome(quarantine=Reason.REPLAY)
        assert (pipe.stats.delivered, pipe.stats.redelivered) == (1, 1)
    finally:
        sink.close()


def test_kinds_are_dispatched_through_the_handler_table(tmp_path: Path) -> None:
    """The pipeline asks its table for the package's kind: a replaced handler gets the opened
    package; a kind missing from the table is quarantined as wrong-topic."""
    frames = inproc.seal_frames(1)
    sink = SqliteSink(tmp_path / "s.sqlite")
    heard: list[Received] = []

    class Recording:
        topic = "inbox"

        def __call__(self, pipe: ReceivePipeline, received: Received) -> Outcome:
            heard.append(received)
            return Outcome(quarantine=Reason.DECLINED_BY_POLICY)

    kafka = MemoryBroker()
    kafka.append(f"nbx.inbox.{frames.recipient.bureau}", frames.frames[0])
    (record,) = kafka.log(f"nbx.inbox.{frames.recipient.bureau}")
    try:
        pipe = _pipeline(frames, sink, handlers={**HANDLERS, "publish": Recording()})
        assert pipe.receive(record) == Outcome(quarantine=Reason.DECLINED_BY_POLICY)
        assert [r.package.kind for r in heard] == ["publish"]
        assert heard[0].position.offset == 0
        without = {k: h for k, h in HANDLERS.items() if k != "publish"}
        assert _pipeline(frames, sink, handlers=without).receive(record) == Outcome(
            quarantine=Reason.WRONG_TOPIC
        )
        assert sink.notices() == []
    finally:
        sink.close()
    assert {
        "publish",
        "update",
        "suspend",
        "cancel",
        "erasure",
        "review",
        "block",
        "unblock",
        "delete",
        "response",
    } == NOTICE_KINDS


def test_record_time_checks_come_first(tmp_path: Path) -> None:
    """A record the broker did not stamp, or with a time out of range, is never opened."""
    frames = inproc.seal_frames(1)
    sink = SqliteSink(tmp_path / "s.sqlite")
    kafka = MemoryBroker()
    topic = f"nbx.inbox.{frames.recipient.bureau}"
    kafka.append(topic, frames.frames[0], timestamp_ms=0, timestamp_type=0)
    kafka.append(topic, frames.frames[0], timestamp_ms=1 << 62)
    producers_time, out_of_range = kafka.log(topic)
    try:
        pipe = _pipeline(frames, sink)
        assert pipe.receive(producers_time) == Outcome(quarantine=Reason.TIMESTAMP_TYPE)
        assert pipe.receive(out_of_range) == Outcome(quarantine=Reason.TIMESTAMP)
    finally:
        sink.close()


class _SharedStore(SqliteSink):
    """A store another replica shares: the pipeline's own replay guard (``seen`` before the
    checks) answers once as it would have just before that replica committed the same record;
    the sink's guard inside ``apply`` / ``reject`` then finds it held (on PostgreSQL it waits
    for that replica's transaction under ``LOCK_MESSAGE`` and sees its row)."""

    early = 1

    def seen(self, sender: str, msg_id: str) -> Seen | None:
        if self.early:
            self.early -= 1
            return None
        return super().seen(sender, msg_id)


def _raced(tmp_path: Path, **kw: Any) -> tuple[Outcome, Outcome, ReceivePipeline, SqliteSink]:
    """The same record handled by two replicas sharing one store: the other one commits it
    between this one's guard and its ``apply``."""
    frames = inproc.seal_frames(1)
    kafka = MemoryBroker()
    inbox = f"nbx.inbox.{frames.recipient.bureau}"
    kafka.append(inbox, frames.frames[0])
    (record,) = kafka.log(inbox)
    other = SqliteSink(tmp_path / "s.sqlite")
    try:
        first = _pipeline(frames, other, **kw).receive(record)
    finally:
        other.close()
    sink = _SharedStore(tmp_path / "s.sqlite")
    pipe = _pipeline(frames, sink, **kw)
    return first, pipe.receive(record), pipe, sink


def test_a_record_another_replica_stored_meanwhile_is_answered_as_a_redelivery(
    tmp_path: Path,
) -> None:
    """The sink's guard answers ``redelivery`` (another replica stored this very record after
    the pipeline's own guard looked): answered again as delivered, nothing stored, nothing
    quarantined (it was a KeyError, quarantined as ``internal``)."""
    first, second, pipe, sink = _raced(tmp_path)
    try:
        assert first.delivered is not None
        assert first.delivered[1] is Applied.DELIVERED
        assert (second.quarantine, second.delivered, second.extra) == (None, None, ())
        assert second.answer is not None
        assert second.answer.receipt["status"] == "delivered"
        assert (pipe.stats.delivered, pipe.stats.redelivered) == (0, 1)
        assert [r["outcome"] for r in sink.delivery_log()] == ["delivered"]
    finally:
        sink.close()


def test_a_record_another_replica_rejected_meanwhile_is_not_quarantined_twice(
    tmp_path: Path,
) -> None:
    """The sink's guard in ``reject`` finds the rejection another replica recorded meanwhile:
    answered again (``rejected``, the same reason), but not quarantined a second time (the
    other replica sent the quarantine record and wrote its audit entry)."""

    def invalid(view: dict[str, Any]) -> None:
        raise SchemaError("not this view")

    first, second, pipe, sink = _raced(tmp_path, validate=invalid)
    try:
        assert first.quarantine is Reason.SCHEMA
        assert (second.quarantine, second.delivered) == (None, None)
        assert second.answer is not None
        assert (second.answer.receipt["status"], second.answer.receipt["reason"]) == (
            "rejected",
            "schema",
        )
        assert pipe.stats.redelivered == 1
        assert [r["outcome"] for r in sink.delivery_log()] == ["rejected"]
    finally:
        sink.close()


def test_two_replicas_receiving_one_record_on_postgresql(
    pg_url: str, postgres_server: devpg.DevPostgres
) -> None:
    """Two replicas sharing a PostgreSQL store receive the same record (a partition moved while
    one was in its batch): the second one's guard finds nothing committed yet, its ``apply``
    waits for the first one's transaction (``LOCK_MESSAGE``) and finds the record stored at the
    same position: the second answers it again as delivered, quarantines nothing (it was
    quarantined ``internal``: a KeyError), and the store holds it once."""
    frames = inproc.seal_frames(1)
    kafka = MemoryBroker()
    inbox = f"nbx.inbox.{frames.recipient.bureau}"
    kafka.append(inbox, frames.frames[0])
    (record,) = kafka.log(inbox)
    first = PostgresSink(pg_url, password_env=PG_PASSWORD_ENV)
    second = PostgresSink(pg_url, password_env=PG_PASSWORD_ENV)
    try:
        first.begin()
        stored = _pipeline(frames, first).receive(record)
        assert stored.delivered is not None
        assert stored.delivered[1] is Applied.DELIVERED
        pipe = _pipeline(frames, second)
        with ThreadPoolExecutor(1) as pool:
            receiving = pool.submit(pipe.receive, record)
            wait_until(
                lambda: waiting_for(postgres_server, LOCK_MESSAGE) == 1,
                "the second replica to wait for the first one's transaction",
            )
            first.end(commit=True)
            again = receiving.result(30)
        assert (again.quarantine, again.delivered) == (None, None)
        assert again.answer is not None
        assert again.answer.receipt["status"] == "delivered"
        assert (pipe.stats.delivered, pipe.stats.redelivered) == (0, 1)
        assert [d["outcome"] for d in second.delivery_log()] == ["delivered"]
    finally:
        first.close()
        second.close()
