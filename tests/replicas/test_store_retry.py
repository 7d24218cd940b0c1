"""The store failing transiently under a running daemon (the database unreachable, a conflict
between replicas): the batch is rolled back, nothing is committed, the daemon logs
``store.retry`` with a capped exponential backoff and delivers everything once the store answers
again; any other store failure still stops it (exit 3). In memory: no broker, no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog

from broker.errors import SinkError
from broker.sinks.base import Sink
from broker.vocab import StoreFailure
from tests.node.helpers import example, memory_net, wait_for


class FlakySink:
    """A store that fails: ``begin`` with ``begin_failures`` (in order), then the next
    ``commit_failures`` commits after rolling the batch back (as a lost connection does)."""

    def __init__(
        self, inner: Sink, begin_failures: list[StoreFailure], commit_failures: list[StoreFailure]
    ) -> None:
        self.inner = inner
        self.begin_failures = list(begin_failures)
        self.commit_failures = list(commit_failures)

    def begin(self) -> None:
        if self.begin_failures:
            raise SinkError("begin failed", reason=self.begin_failures.pop(0))
        self.inner.begin()

    def end(self, *, commit: bool) -> None:
        if commit and self.commit_failures:
            self.inner.end(commit=False)
            raise SinkError("commit failed", reason=self.commit_failures.pop(0))
        self.inner.end(commit=commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_transient_failures_are_retried_and_lose_nothing(tmp_path: Path) -> None:
    """FR's store refuses two batches (unreachable, then a conflict) and loses the commit of a
    third: FR logs ``store.retry`` three times with a growing wait, then stores each of IT's five
    notices exactly once and IT records one receipt per notice."""
    net = memory_net(tmp_path / "net", ("IT", "FR"))
    fr = net.daemon("FR")
    inner = fr.sink
    fr.sink = FlakySink(
        inner,
        [StoreFailure.UNREACHABLE, StoreFailure.CONFLICT],
        [StoreFailure.UNREACHABLE],
    )
    fr.store_backoff_s = (0.01, 0.03)
    notices = [example("red", notice_id=f"IT-2026-R{i:05d}") for i in range(5)]
    with structlog.testing.capture_logs() as logs:
        await net.start("FR", "IT")
        try:
            async with net.publisher("IT") as pub:
                for n in notices:
                    await pub.publish(n, ["FR"])
            assert await wait_for(lambda: len(inner.notices()) == 5)

            def receipted() -> bool:
                it = net.daemon("IT").sink
                return all(
                    any(m["receipts"] for r in it.status(n.notice_id) for m in r["messages"])
                    for n in notices
                )

            assert await wait_for(receipted)
            assert fr.store_failure is None
            stored = sorted(r["notice_id"] for r in inner.notices())
        finally:
            await net.stop()
    retries = [e for e in logs if e["event"] == "store.retry"]
    assert [(e["reason"], e["retry_in_s"], e["replica"]) for e in retries] == [
        ("unreachable", 0.01, "default"),
        ("conflict", 0.02, "default"),
        ("unreachable", 0.03, "default"),
    ]
    assert not [e for e in logs if e["event"] == "sink.failed"]
    assert stored == [n.notice_id for n in notices]


async def test_other_store_failures_still_stop_the_daemon(tmp_path: Path) -> None:
    """A store that is read-only is not retried: the daemon stops with the one-line error
    (exit code 3 through ``nbx consume``) before committing."""
    net = memory_net(tmp_path / "net", ("IT", "FR"))
    fr = net.daemon("FR")
    fr.sink = FlakySink(fr.sink, [StoreFailure.READ_ONLY], [])
    await net.publish("IT", example("red"), ["FR"])
    with pytest.raises(SinkError) as stopped:
        await fr.run(until_idle_s=5)
    assert stopped.value.reason == StoreFailure.READ_ONLY
    assert stopped.value.exit_code == 3
    assert str(stopped.value).startswith("the store cannot be written (read-only): stopped")
    assert fr.store_failure == StoreFailure.READ_ONLY
    fr.sink.inner.close()
