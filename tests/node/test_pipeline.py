"""The receive pipeline on its own: one record in, one outcome out, no broker and no producing;
each message kind is dispatched through the handler table."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from broker.bench import inproc
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
from broker.sinks.sqlite import SqliteSink
from broker.testing import MemoryBroker
from broker.vocab import Reason


def _pipeline(frames: inproc.Frames, sink: SqliteSink, **kw: Any) -> ReceivePipeline:
    recipient = frames.recipient
    return ReceivePipeline(
        bureau=recipient.bureau,
        directory=StaticDirectory([frames.sender.public(), recipient.public()]),
        sink=sink,
        stats=DaemonStats(),
        decryption_keys=recipient.decryption_keys(),
        validate=functools.partial(validate_view, copy=False),
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
