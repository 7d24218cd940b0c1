"""The measurement loop shared by the raw and secure modes.

``concurrency`` producer tasks take message numbers from one counter and each awaits its own send
(``send_and_wait`` for raw, ``Publisher.publish`` for secure), so both modes offer the broker the
same number of messages in flight. A window runs from the first send to the moment the consumer
side has stored (secure) or committed (raw) the last message of the window; CPU is read around the
window from this process (the producer side), the consumer process and the broker process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broker.bench.common import delta, maybe_sum, median, proc_cpu_s, self_cpu_s, wait_until
from broker.bench.report import ThroughputResult


@dataclass
class Windows:
    """Raw figures of every measured window."""

    rates: list[float] = field(default_factory=list)
    producer_cpu_s: list[float] = field(default_factory=list)
    consumer_cpu_s: list[float | None] = field(default_factory=list)
    broker_cpu_s: list[float | None] = field(default_factory=list)
    db_cpu_s: list[float | None] = field(default_factory=list)


def at_least(count: Callable[[], int], n: int) -> Callable[[], bool]:
    """A check that ``count()`` reached ``n``."""
    return lambda: count() >= n


async def produce(send: Callable[[int], Awaitable[None]], indices: range, concurrency: int) -> None:
    """Call ``send(i)`` for every ``i`` in ``indices`` with ``concurrency`` calls in flight."""
    numbers = iter(indices)

    async def worker() -> None:
        for i in numbers:
            await send(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(
    *,
    send: Callable[[int], Awaitable[None]],
    delivered: Callable[[], int],
    warmup: int,
    messages: int,
    repeats: int,
    concurrency: int,
    consumer: asyncio.subprocess.Process,
    consumer_log: Path,
    broker_pid: int | None,
    timeout_s: float = 300.0,
    more_consumers: Sequence[asyncio.subprocess.Process] = (),
    db_cpu: Callable[[], float | None] | None = None,
) -> Windows:
    """Warm up with ``warmup`` messages, then measure ``repeats`` windows of ``messages`` each.

    The consumer CPU of a window is the sum over ``consumer`` and ``more_consumers`` (the other
    replicas); ``db_cpu`` reads the database server's CPU seconds (PostgreSQL), if any.
    """
    consumers = [consumer, *more_consumers]

    def consumers_cpu() -> float | None:
        return maybe_sum(*(proc_cpu_s(p.pid) for p in consumers))

    def read_db() -> float | None:
        return None if db_cpu is None else db_cpu()

    await produce(send, range(warmup), concurrency)
    await wait_until(
        at_least(delivered, warmup),
        timeout_s=timeout_s,
        what="the warm-up messages",
        alive=consumer,
        log=consumer_log,
    )
    out = Windows()
    start = warmup
    loop = asyncio.get_running_loop()
    for _ in range(repeats):
        base = delivered()
        cpu0 = (self_cpu_s(), consumers_cpu(), proc_cpu_s(broker_pid), read_db())
        t0 = loop.time()
        await produce(send, range(start, start + messages), concurrency)
        t1 = await wait_until(
            at_least(delivered, base + messages),
            timeout_s=timeout_s,
            what="the window's messages",
            interval_s=0.005,
            alive=consumer,
            log=consumer_log,
        )
        start += messages
        out.rates.append(messages / (t1 - t0))
        out.producer_cpu_s.append(self_cpu_s() - cpu0[0])
        out.consumer_cpu_s.append(delta(consumers_cpu(), cpu0[1]))
        out.broker_cpu_s.append(delta(proc_cpu_s(broker_pid), cpu0[2]))
        out.db_cpu_s.append(delta(read_db(), cpu0[3]))
    return out


def _per_delivery_ms(values: list[float | None], messages: int) -> float | None:
    known = [v for v in values if v is not None]
    if len(known) != len(values):
        return None
    return median(known) * 1000 / messages


def result(
    mode: str,
    w: Windows,
    *,
    messages: int,
    repeats: int,
    concurrency: int,
    payload_bytes: int,
    consumer_peak_rss_mb: float | None,
    frame_bytes: int | None = None,
    messages_per_signature: float | None = None,
    sink: str | None = None,
    replicas: int = 1,
    partitions: int = 1,
    replica_deliveries: list[int] | None = None,
    sent: int | None = None,
    stored: int | None = None,
) -> ThroughputResult:
    """Medians of the windows as a :class:`ThroughputResult`."""
    producer = median(w.producer_cpu_s) * 1000 / messages
    consumer = _per_delivery_ms(w.consumer_cpu_s, messages)
    return ThroughputResult(
        mode=mode,
        messages=messages,
        repeats=repeats,
        concurrency=concurrency,
        payload_bytes=payload_bytes,
        deliveries_per_s=round(median(w.rates), 1),
        deliveries_per_s_runs=[round(r, 1) for r in w.rates],
        cpu_ms_per_delivery=None if consumer is None else producer + consumer,
        producer_cpu_ms_per_delivery=producer,
        consumer_cpu_ms_per_delivery=consumer,
        broker_cpu_ms_per_delivery=_per_delivery_ms(w.broker_cpu_s, messages),
        consumer_peak_rss_mb=consumer_peak_rss_mb,
        frame_bytes=frame_bytes,
        messages_per_signature=messages_per_signature,
        sink=sink,
        replicas=replicas,
        partitions=partitions,
        replica_deliveries=replica_deliveries or [],
        sent=sent,
        stored=stored,
        db_cpu_ms_per_delivery=_per_delivery_ms(w.db_cpu_s, messages) if w.db_cpu_s else None,
    )
