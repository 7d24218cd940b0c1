"""`async with ConsumerDaemon`: the daemon runs in the background inside the block, and leaving
it stops the daemon after the batch in hand and closes the store it opened (in-memory broker)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from broker import Applied, ConsumerDaemon, SinkError, VerifiedPackage
from tests.node.helpers import example, memory_net


async def test_async_with_runs_the_daemon_and_closes_its_store(tmp_path: Path) -> None:
    """Inside the block the daemon delivers (on_delivered hears of it after the store commit);
    after it the daemon has ended and the store it opened is closed."""
    net = memory_net(tmp_path, ["IT", "FR"])
    await net.publish("IT", example("red"), ["FR"])
    arrived: asyncio.Queue[tuple[VerifiedPackage, Applied]] = asyncio.Queue()
    assert net.kafka is not None
    daemon = ConsumerDaemon.from_config(
        net.configs["FR"],
        transport=net.kafka.transport(),
        on_delivered=lambda p, a: arrived.put_nowait((p, a)),
    )
    async with daemon as running:
        assert running is daemon
        package, applied = await asyncio.wait_for(arrived.get(), 30)
        assert (package.notice_id, package.sender, applied) == ("IT-2025-0001", "IT", "delivered")
        assert [r["notice_id"] for r in daemon.sink.notices()] == ["IT-2025-0001"]
    assert daemon.stats.delivered == 1
    with pytest.raises(sqlite3.ProgrammingError):  # closed by leaving the block
        daemon.sink.notices()


async def test_wait_and_reentry_are_refused_outside_and_inside(tmp_path: Path) -> None:
    """wait() outside the block and entering a running daemon again are errors saying why."""
    net = memory_net(tmp_path, ["IT", "FR"])
    assert net.kafka is not None
    daemon = ConsumerDaemon.from_config(net.configs["FR"], transport=net.kafka.transport())
    with pytest.raises(RuntimeError, match=r"not running: use it as `async with daemon:`"):
        await daemon.wait()
    async with daemon:
        with pytest.raises(RuntimeError, match="already running"):
            await daemon.__aenter__()


async def test_an_error_that_ends_the_daemon_is_raised_by_wait_and_on_leaving(
    tmp_path: Path,
) -> None:
    """A store that cannot be written ends the daemon with SinkError: wait() raises it, and so
    does leaving the block; nothing was committed to the inbox group."""
    net = memory_net(tmp_path, ["IT", "FR"])
    await net.publish("IT", example("red"), ["FR"])
    assert net.kafka is not None
    daemon = ConsumerDaemon.from_config(net.configs["FR"], transport=net.kafka.transport())
    daemon.sink.close()  # every write now fails

    async def run_and_wait() -> None:
        async with daemon:
            with pytest.raises(SinkError):
                await daemon.wait()

    with pytest.raises(SinkError):  # raised again on leaving the block
        await run_and_wait()
    assert net.kafka.committed == {}
