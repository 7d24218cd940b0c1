"""The broker restarts in the middle of a stream (noida-db keeps its data directory): nothing is
lost and nothing is stored twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broker import devbroker
from tests.conftest import broker_impl
from tests.node.helpers import Net, example, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        broker_impl() == "tansu", reason="tansu keeps its data in memory: a restart loses it"
    ),
]

COUNT = 150


async def test_broker_restart_mid_stream_loses_nothing(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """While IT publishes 150 notices to FR and FR's daemon consumes them, the broker is stopped
    and started again on the same port and data directory; every notice the publisher reports
    as sent is stored at FR exactly once."""
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    notices = [example("red", notice_id=f"IT-2026-{i:05d}") for i in range(COUNT)]
    await net.start("FR")
    sent: list[str] = []
    try:
        async with net.publisher("IT") as pub:
            for i, notice in enumerate(notices):
                if i == COUNT // 2:
                    await asyncio.to_thread(fresh_broker.restart)
                result = await pub.publish(notice, ["FR"])
                sent += [result.notice_id] if result.sent == ["FR"] else []
        assert len(sent) == COUNT
        fr = net.daemon("FR")
        assert await wait_for(lambda: len(fr.sink.notices()) == COUNT, timeout_s=120)
        delivered = [d for d in fr.sink.delivery_log() if d["outcome"] == "delivered"]  # type: ignore[attr-defined]
        assert sorted(d["notice_id"] for d in delivered) == sorted(sent)
    finally:
        await net.stop()
