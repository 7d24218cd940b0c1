"""/readyz and nbx_ready follow the daemon's state: not started, group not joined, directory
refused, store failed (in-memory broker; the real-broker scrape is test_scrape_e2e)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import generate_latest

from broker import ConsumerDaemon, SinkError
from broker.errors import ConfigError
from broker.node.config import MetricsConfig
from broker.testing import MemoryTransport
from broker.transport.factory import Consumer
from broker.vocab import DirectoryState, Metric
from tests.metrics.helpers import Answer, free_port, get, samples, scrape
from tests.node.helpers import Net, example, memory_net, wait_for


class JoiningConsumer:
    """A memory consumer whose group join completes only when the test says so: until then
    it has no partitions assigned (as a real consumer between start and the join)."""

    def __init__(self, inner: Consumer) -> None:
        self.inner = inner
        self.joined = asyncio.Event()

    def assignment(self) -> set[TopicPartition]:
        return set(self.inner.assignment()) if self.joined.is_set() else set()

    async def getmany(self, **kw: Any) -> Any:
        if not self.joined.is_set():
            await asyncio.sleep(0.01)
            return {}
        return await self.inner.getmany(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class JoiningTransport(MemoryTransport):
    """The in-memory transport, handing out :class:`JoiningConsumer`."""

    consumers: list[JoiningConsumer]

    def consumer(self, *topics: str, group_id: str) -> Consumer:
        made = JoiningConsumer(super().consumer(*topics, group_id=group_id))
        self.consumers.append(made)
        return made


def _daemon(net: Net, cc: str, transport: MemoryTransport) -> tuple[ConsumerDaemon, str]:
    port = free_port()
    config = net.configs[cc].model_copy(update={"metrics": MetricsConfig(port=port)})
    return ConsumerDaemon.from_config(config, transport=transport), f"http://127.0.0.1:{port}"


async def _ready(base: str) -> Answer:
    return await get(f"{base}/readyz")


async def _until(base: str, status: int) -> Answer:
    """Ask /readyz until it answers ``status`` (the state changes on the daemon's loop)."""
    answer = await _ready(base)
    for _ in range(600):
        if answer.status == status:
            break
        await asyncio.sleep(0.05)
        answer = await _ready(base)
    return answer


async def test_readyz_waits_for_the_group_join_and_follows_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started but not joined: 503 "consumer group not joined", nbx_ready 0; joined: 200 and
    nbx_ready 1 while /healthz answers throughout; the directory refused (stale): 503 naming it;
    confirmed again: 200."""
    net = memory_net(tmp_path, ["IT", "FR"])
    assert net.kafka is not None
    transport = JoiningTransport(net.kafka)
    transport.consumers = []
    daemon, base = _daemon(net, "FR", transport)
    async with daemon:
        assert await wait_for(
            lambda: bool(transport.consumers) and daemon.metrics_server is not None
        )
        assert await wait_for(lambda: daemon.unready() == ["consumer group not joined"])
        answer = await _ready(base)
        assert (answer.status, answer.body) == (503, "not ready: consumer group not joined\n")
        assert (await get(f"{base}/healthz")) == Answer(200, "ok\n")
        assert (await scrape(base))[(Metric.READY, ())] == 0

        transport.consumers[-1].joined.set()
        assert (await _until(base, 200)) == Answer(200, "ready\n")
        assert (await scrape(base))[(Metric.READY, ())] == 1

        monkeypatch.setattr(daemon.directory, "refusal", lambda: DirectoryState.STALE)
        answer = await _ready(base)
        assert (answer.status, answer.body) == (503, "not ready: directory not verified (stale)\n")
        assert (await scrape(base))[(Metric.READY, ())] == 0
        monkeypatch.undo()
        assert (await _ready(base)) == Answer(200, "ready\n")


async def test_a_store_that_fails_makes_the_daemon_unready(tmp_path: Path) -> None:
    """The store cannot be written: the daemon stops with SinkError and reports
    "store failed (storage-error)" and nbx_ready 0; its endpoint closes with it."""
    net = memory_net(tmp_path, ["IT", "FR"])
    assert net.kafka is not None
    await net.publish("IT", example("red"), ["FR"])
    daemon, base = _daemon(net, "FR", net.kafka.transport())
    assert daemon.metrics is not None
    daemon.sink.close()  # every write now fails
    with pytest.raises(SinkError):
        await daemon.run()
    assert daemon.store_failure == "storage-error"
    assert daemon.unready() == ["consumer not started", "store failed (storage-error)"]
    server = daemon.metrics.serve("127.0.0.1", 0)  # what a scrape would have shown
    try:
        answer = await _ready(server.url)
        assert answer == Answer(
            503, "not ready: consumer not started\nnot ready: store failed (storage-error)\n"
        )
        assert (await scrape(server.url))[(Metric.READY, ())] == 0
    finally:
        server.close()
    assert daemon.metrics_server is None
    with pytest.raises(OSError, match="Connection refused"):
        await get(f"{base}/healthz")


async def test_unknown_paths_are_404_and_no_endpoint_without_a_port(tmp_path: Path) -> None:
    """Only /metrics, /healthz, /readyz are served; `[metrics] port = 0` (the default) serves
    nothing and the daemon keeps no metrics."""
    net = memory_net(tmp_path, ["IT", "FR"])
    assert net.kafka is not None
    plain = ConsumerDaemon.from_config(net.configs["FR"], transport=net.kafka.transport())
    assert (plain.metrics, plain.metrics_address) == (None, None)
    plain.sink.close()
    daemon, base = _daemon(net, "FR", net.kafka.transport())
    async with daemon:
        assert await wait_for(lambda: daemon.metrics_server is not None)
        assert (await get(f"{base}/other")) == Answer(404, "not found\n")


async def test_a_port_in_use_is_one_config_error_line(tmp_path: Path) -> None:
    """A second endpoint on a port already taken: ConfigError naming [metrics] host:port, and
    the daemon does not start (nothing consumed)."""
    net = memory_net(tmp_path, ["IT", "FR"])
    assert net.kafka is not None
    daemon, _base = _daemon(net, "FR", net.kafka.transport())
    assert daemon.metrics is not None
    assert daemon.metrics_address is not None
    taken = daemon.metrics.serve(*daemon.metrics_address)
    try:
        port = daemon.metrics_address[1]
        with pytest.raises(
            ConfigError,
            match=rf"^\[metrics\] 127\.0\.0\.1:{port}: cannot listen: Address already in use$",
        ):
            await daemon.run()
        assert daemon.stats.delivered == 0
    finally:
        taken.close()
        daemon.sink.close()


class WatermarkConsumer:
    """A consumer whose watermarks and positions the test sets (aiokafka's highwater and
    position: the watermark is unknown until a fetch, a partition can be taken by a rebalance)."""

    def __init__(self) -> None:
        self.marks: dict[TopicPartition, int | None] = {}
        self.positions: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.marks)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.marks[tp]

    async def position(self, tp: TopicPartition) -> int:
        if tp not in self.positions:
            raise IllegalStateError(f"Partition {tp} is not assigned")
        return self.positions[tp]


async def test_lag_is_the_watermark_minus_the_position_per_partition(tmp_path: Path) -> None:
    """Lag per (topic, partition): watermark 10, position 4 -> 6; a partition without a known
    watermark or taken away meanwhile is skipped; a consumer without watermarks (the in-memory
    one) reports none."""
    net = memory_net(tmp_path, ["IT", "FR"])
    assert net.kafka is not None
    daemon, _ = _daemon(net, "FR", net.kafka.transport())
    assert daemon.metrics is not None
    inbox, receipts, gone = (TopicPartition(t, 0) for t in ("nbx.inbox.FR", "nbx.receipts.FR", "x"))

    def lag() -> dict[tuple[tuple[str, str], ...], float]:
        assert daemon.metrics is not None
        exported = samples(generate_latest(daemon.metrics.registry).decode())
        return {labels: v for (name, labels), v in exported.items() if name == Metric.CONSUMER_LAG}

    await daemon._measure_lag(net.kafka.transport().consumer("nbx.inbox.FR", group_id="g"))
    assert lag() == {}
    consumer = WatermarkConsumer()
    consumer.marks = {inbox: 10, receipts: None, gone: 3}
    consumer.positions = {inbox: 4, receipts: 0}
    await daemon._measure_lag(consumer)  # type: ignore[arg-type]
    assert lag() == {(("partition", "0"), ("topic", "nbx.inbox.FR")): 6.0}
    daemon.sink.close()
