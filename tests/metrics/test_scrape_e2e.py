"""The daemon's metrics, health and readiness endpoint, scraped while it consumes from the real
broker: every value agrees with the daemon's own counts (DaemonStats) and with what was sent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.error import URLError

import pytest
from aiokafka import AIOKafkaProducer

from broker import __version__
from broker.node.config import MetricsConfig
from broker.vocab import Metric
from tests.metrics.helpers import free_port, get, samples, scrape
from tests.node.helpers import Net, example, wait_until_idle

pytestmark = pytest.mark.e2e

INBOX = "nbx.inbox.FR"


async def test_a_scrape_during_a_run_matches_the_daemons_counts(
    tmp_path: Path, kafka_bootstrap: str, idempotence_supported: bool
) -> None:
    """IT sends three notices to FR and a garbage record lands on FR's inbox. While FR's daemon
    runs with ``[metrics] port``: /healthz answers, /readyz turns ready once the group is joined
    and the directory verified, and /metrics shows delivered 3, quarantined {frame: 1}, four
    records consumed on the inbox (four processing observations), the receipts sent, the
    directory serial, lag 0 once everything is read: each equal to the daemon's DaemonStats.
    No label or value names a notice. After the daemon stops the port is closed."""
    net = Net(tmp_path, ("IT", "FR"), kafka_bootstrap, idempotence=idempotence_supported)
    port = free_port()
    net.configs["FR"] = net.configs["FR"].model_copy(update={"metrics": MetricsConfig(port=port)})
    base = f"http://127.0.0.1:{port}"
    await net.ensure_topics("IT", "FR")
    notices = [example("red", notice_id=f"IT-2026-{i:04d}") for i in range(1, 4)]
    async with net.publisher("IT") as pub:
        for n in notices:
            await pub.publish(n, ["FR"])
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await raw.start()
    try:
        await raw.send_and_wait(INBOX, b"\x00garbage, not a frame\xff", key=b"x")
    finally:
        await raw.stop()

    fr = net.daemon("FR")
    assert fr.metrics is not None
    # not running yet: the same endpoint says why it is not ready
    before = fr.metrics.serve("127.0.0.1", 0)
    try:
        answer = await get(f"{before.url}/readyz")
        assert answer.status == 503
        assert answer.body == "not ready: consumer not started\n"
        assert samples((await get(f"{before.url}/metrics")).body)[(Metric.READY, ())] == 0
    finally:
        before.close()

    await net.start("FR")
    try:
        # every record handled and committed (receipts acknowledged): the counts are final
        topics = (INBOX, "nbx.receipts.FR")
        assert await wait_until_idle(fr, net.tasks["FR"], kafka_bootstrap, "nbx.FR", topics)
        assert (await get(f"{base}/healthz")).status == 200
        assert await _eventually(base, lambda s: s.get(_lag(INBOX)) == 0)
        answer = await get(f"{base}/readyz")
        assert (answer.status, answer.body) == (200, "ready\n")
        text = (await get(f"{base}/metrics")).body
        got = samples(text)
        stats = fr.stats
        assert got[(Metric.DELIVERED, ())] == stats.delivered == 3
        assert stats.reasons == {"frame": 1}
        assert got[(Metric.QUARANTINED, (("reason", "frame"),))] == 1
        assert got[(Metric.RECORDS_CONSUMED, (("topic", INBOX),))] == 4
        assert got[(f"{Metric.PROCESSING_SECONDS}_count", ())] == 4
        assert got[(f"{Metric.STORE_COMMIT_SECONDS}_count", ())] >= 1
        assert got[(Metric.RECEIPTS_SENT, ())] == stats.receipts_sent >= 1
        assert got[(Metric.RECEIPTS_RECEIVED, ())] == stats.receipts_received == 0
        assert got[(Metric.DIRECTORY_SERIAL, ())] == fr.directory.serial >= 1  # type: ignore[attr-defined]
        assert got[(Metric.READY, ())] == 1
        build = (("python", _python()), ("version", __version__))
        assert got[(Metric.BUILD_INFO, build)] == 1
        for n in notices:  # labels carry codes only
            assert n.notice_id not in text
    finally:
        await net.stop()
    with pytest.raises(URLError, match="Connection refused"):  # gone with the daemon
        await get(f"{base}/healthz")


def _lag(topic: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (Metric.CONSUMER_LAG, (("partition", "0"), ("topic", topic)))


def _python() -> str:
    import platform

    return platform.python_version()


async def _eventually(base: str, check: object) -> bool:
    """Scrape until ``check(samples)`` holds (the lag is read once a second)."""
    assert callable(check)
    for _ in range(600):
        if check(await scrape(base)):
            return True
        await asyncio.sleep(0.05)
    return False
