"""A long-running publisher's metrics: its own endpoint while ``async with`` is open, or the
daemon's registry in the same process (in-memory broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import ConsumerDaemon
from broker.node import Publisher
from broker.vocab import Metric, SendStatus
from tests.metrics.helpers import Answer, get, scrape
from tests.node.helpers import example, memory_net, wait_for

SENT = (Metric.PUBLISHED, (("status", SendStatus.SENT.value),))


async def test_a_long_running_publisher_serves_what_it_sent(tmp_path: Path) -> None:
    """An embedding service's publisher with a metrics address: ready once its producer runs,
    nbx_messages_published_total{status="sent"} counts one per recipient acknowledged (2 + 1),
    the port closes on leaving; one without an address has no endpoint and counts nothing."""
    net = memory_net(tmp_path, ["IT", "FR", "DE"])
    assert net.kafka is not None
    pub = Publisher.from_config(
        net.configs["IT"], transport=net.kafka.transport(), metrics_address=("127.0.0.1", 0)
    )
    assert pub.unready() == ["producer not started"]
    async with pub:
        assert pub.metrics_server is not None
        base = pub.metrics_server.url
        assert (await get(f"{base}/readyz")) == Answer(200, "ready\n")
        await pub.publish(example("red"), ["FR", "DE"])
        await pub.publish(example("red", notice_id="IT-2025-0002"), ["FR"])
        got = await scrape(base)
        assert got[SENT] == 3
        assert got[(Metric.DIRECTORY_SERIAL, ())] == pub.directory.serial  # type: ignore[attr-defined]
    assert pub.metrics_server is None
    with pytest.raises(OSError, match="Connection refused"):
        await get(f"{base}/healthz")
    one_shot = Publisher.from_config(net.configs["IT"], transport=net.kafka.transport())
    assert (one_shot.metrics, one_shot.metrics_address) == (None, None)
    assert one_shot.store is not None
    one_shot.store.close()


async def test_a_publisher_beside_a_daemon_counts_into_the_daemons_registry(
    tmp_path: Path,
) -> None:
    """One registry per process: a publisher given the daemon's metrics adds its count there,
    and readiness stays the daemon's (its group, its store)."""
    net = memory_net(tmp_path, ["IT", "FR"])
    assert net.kafka is not None
    from broker.node.config import MetricsConfig
    from tests.metrics.helpers import free_port

    port = free_port()
    config = net.configs["IT"].model_copy(update={"metrics": MetricsConfig(port=port)})
    daemon = ConsumerDaemon.from_config(config, transport=net.kafka.transport())
    assert daemon.metrics is not None
    pub = Publisher.from_config(config, transport=net.kafka.transport(), metrics=daemon.metrics)
    assert daemon.metrics.readiness == daemon.unready
    base = f"http://127.0.0.1:{port}"
    async with daemon, pub:
        assert await wait_for(lambda: not daemon.unready())
        await pub.publish(example("red"), ["FR"])
        assert pub.metrics_server is None  # the daemon's endpoint serves both
        got = await scrape(base)
        assert got[SENT] == 1
        assert got[(Metric.READY, ())] == 1
