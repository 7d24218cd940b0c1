"""Idle consumers do not spin on a broker that answers empty fetches at once (noida-db does)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker.transport import KafkaSettings, kafka
from broker.transport.admin import TopicManager


class _Clock:
    """A fake monotonic clock and sleep: records what the pacing asks to wait."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr("broker.transport.kafka.time.monotonic", fake.monotonic)
    monkeypatch.setattr("broker.transport.kafka.asyncio.sleep", fake.sleep)
    return fake


def _fetch(clock: _Clock, result: bool, takes_s: float) -> Any:
    async def fetch(*args: Any, **kwargs: Any) -> bool:
        clock.now += takes_s
        return result

    return fetch


async def test_an_empty_answer_sooner_than_the_interval_waits_out_the_rest(clock: _Clock) -> None:
    """Empty after 5 ms with a 20 ms interval: the fetch returns after 20 ms in all."""
    paced = kafka.paced_fetch(_fetch(clock, False, 0.005), 0.02)
    assert await paced() is False
    assert clock.slept == [pytest.approx(0.015)]


async def test_records_and_slow_empty_answers_are_not_delayed(clock: _Clock) -> None:
    """Records are handed on at once; an empty answer held by the broker (fetch.max.wait.ms, as
    Kafka does) is not delayed further."""
    assert await kafka.paced_fetch(_fetch(clock, True, 0.001), 0.02)() is True
    assert await kafka.paced_fetch(_fetch(clock, False, 0.5), 0.02)() is False
    assert clock.slept == []


@pytest.mark.e2e
async def test_an_idle_consumer_fetches_at_most_once_per_interval(kafka_bootstrap: str) -> None:
    """On the real broker: an idle consumer from make_consumer with ``pace_empty_fetches`` sends
    at most one fetch per EMPTY_FETCH_INTERVAL_S (noida-db answered an unpaced one about 2 000
    times a second)."""
    settings = KafkaSettings(
        bootstrap=kafka_bootstrap, client_id="test-pacing", pace_empty_fetches=True
    )
    topics = TopicManager(settings)
    try:
        await topics.ensure(["test.pacing"])
    finally:
        await topics.close()
    consumer = kafka.make_consumer(settings, "test.pacing", group_id="test-pacing")
    await consumer.start()
    calls = 0
    try:
        fetcher = consumer._fetcher
        inner = fetcher._proc_fetch_request  # the paced fetch make_consumer installed

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await inner(*args, **kwargs)

        fetcher._proc_fetch_request = counted
        assert await consumer.getmany(timeout_ms=2000) == {}  # idle for two seconds
    finally:
        await consumer.stop()
    assert 0 < calls <= 2.0 / kafka.EMPTY_FETCH_INTERVAL_S + 5


async def test_a_fetch_cancelled_while_pacing_returns_like_aiokafkas_own() -> None:
    """aiokafka cancels pending fetches on close and awaits them: a fetch cancelled during the
    pacing wait returns its (empty) result instead of raising, as aiokafka's fetch does."""

    async def empty(*args: Any, **kwargs: Any) -> bool:
        return False

    # ensure_future: paced_fetch is declared to return an awaitable (here, a coroutine)
    task = asyncio.ensure_future(kafka.paced_fetch(empty, 60.0)())
    await asyncio.sleep(0)
    task.cancel()
    assert await task is False
