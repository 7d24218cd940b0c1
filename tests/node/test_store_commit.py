"""The daemon commits each batch (the fsync) on a worker thread, never on its event loop.

A slow disk must not stall heartbeats and fetches (and, in a broadcast host, the other bureaus'
work): while the commit runs, the loop keeps running; deliveries are reported only once the commit
returned; a daemon cancelled during the commit waits for it before giving up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from broker.keys import BureauKeys
from broker.keys.bureau import StaticDirectory
from broker.node import ConsumerDaemon
from broker.sinks import Applied
from broker.sinks.jsonl import JsonlSink
from broker.sinks.sqlite import SqliteSink
from broker.transport.kafka import KafkaSettings
from broker.vocab import MessageKind, SendStatus
from tests.node.helpers import example, memory_net, wait_for

SLOW_S = 0.4


class SlowCommit:
    """Wraps a sink's ``end``: sleeps first (a slow fsync) and records where and when it ran."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.inner = sink.end
        self.threads: list[threading.Thread] = []
        self.finished_at: list[float] = []
        sink.end = self

    def __call__(self, *, commit: bool) -> None:
        self.threads.append(threading.current_thread())
        time.sleep(SLOW_S)
        self.inner(commit=commit)
        self.finished_at.append(time.monotonic())


async def _ticks_during(coro: Any) -> int:
    """Run ``coro``; count how often another task got the loop meanwhile (every 10 ms)."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await coro
    finally:
        task.cancel()
    return ticks


def _daemon(tmp_path: Path, sink: Any) -> ConsumerDaemon:
    keys = BureauKeys.generate("FR")
    return ConsumerDaemon(
        keys, StaticDirectory([keys.public()]), KafkaSettings(bootstrap="127.0.0.1:1"), sink
    )


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
async def test_commit_runs_on_a_worker_thread_while_the_loop_runs(
    tmp_path: Path, kind: str
) -> None:
    """An empty batch's slow commit: the loop ticked all along, the commit ran off its thread."""
    sink = (
        SqliteSink(tmp_path / "s.sqlite") if kind == "sqlite" else JsonlSink(tmp_path / "s.jsonl")
    )
    slow = SlowCommit(sink)
    daemon = _daemon(tmp_path, sink)
    daemon.store_poll({})
    ticks = await _ticks_during(daemon.commit_poll())
    assert len(slow.threads) == 1
    assert slow.threads[0] is not threading.main_thread()
    # a loop blocked by the commit ticks at most once; a free one about SLOW_S / 10 ms = 40 times
    # (at least 5 even on a loaded machine)
    assert ticks >= 5
    sink.begin()  # the batch was closed: a new one opens
    sink.end(commit=True)
    sink.close()


async def test_cancelled_during_the_commit_waits_for_it(tmp_path: Path) -> None:
    """Cancelling the daemon mid-commit raises CancelledError only after the commit finished,
    so whoever closes the sink next never closes it under a running commit."""
    sink = SqliteSink(tmp_path / "s.sqlite")
    slow = SlowCommit(sink)
    daemon = _daemon(tmp_path, sink)
    daemon.store_poll({})
    task = asyncio.create_task(daemon.commit_poll())
    await asyncio.sleep(SLOW_S / 4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(slow.finished_at) == 1  # the commit had completed when the cancellation surfaced
    sink.close()


def test_sink_batches_open_once_and_roll_back(tmp_path: Path) -> None:
    """begin() twice is refused; end(commit=False) discards; batch() nests inside a batch."""
    sink = SqliteSink(tmp_path / "s.sqlite")
    sink.begin()
    with pytest.raises(RuntimeError, match="already open"):
        sink.begin()
    sink.record_sent("m1", "n1", "DE", MessageKind.PUBLISH, SendStatus.SENT, None)
    sink.end(commit=False)
    assert sink.status("n1") == []
    sink.begin()
    with sink.batch():  # inside an open batch: part of it
        sink.record_sent("m2", "n2", "DE", MessageKind.PUBLISH, SendStatus.SENT, None)
    sink.end(commit=True)
    assert [r["recipient"] for r in sink.status("n2")] == ["DE"]
    sink.close()


async def test_deliveries_are_reported_after_their_slow_commit(tmp_path: Path) -> None:
    """Publisher to daemon (in memory): with a slow commit every notice is still delivered and
    stored, the commits ran on worker threads, and each delivery was reported after its batch's
    commit."""
    net = memory_net(tmp_path, ("IT", "FR"))
    notices = [example("red", notice_id=f"IT-2025-{i:04d}") for i in range(1, 4)]
    async with net.publisher("IT") as pub:
        for n in notices:
            await pub.publish(n, ["FR"])
    fr = net.daemon("FR")
    slow = SlowCommit(fr.sink)
    reported: list[tuple[str, float]] = []

    def on_delivered(package: Any, outcome: Applied) -> None:
        reported.append((package.notice_id, time.monotonic()))

    fr.on_delivered = on_delivered
    await net.start("FR")
    try:
        assert await wait_for(lambda: len(reported) == 3)
    finally:
        await net.stop()
    assert {n for n, _ in reported} == {n.notice_id for n in notices}
    assert all(t is not threading.main_thread() for t in slow.threads)
    assert all(at >= min(slow.finished_at) for _, at in reported)
