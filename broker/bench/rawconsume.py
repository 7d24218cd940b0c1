"""The raw baseline's consumer process:
``python -m broker.bench.rawconsume BOOTSTRAP TOPIC GROUP pace|no-pace``.

A plain aiokafka consumer in a group with manual commits, like the daemon: it reads batches with
``getmany``, parses each record's JSON (the least any consumer does), commits after each batch and
prints ``<records so far> <monotonic time>`` after each commit. No crypto, no policy, no store.
It runs until SIGTERM. ``pace`` paces empty fetches as the daemons' consumers do on the same
broker (``KafkaSettings.pace_empty_fetches``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from aiokafka import TopicPartition

from broker.transport import KafkaSettings, make_consumer


async def consume(bootstrap: str, topic: str, group: str, *, pace: bool = False) -> None:
    """Consume ``topic`` as ``group`` until SIGTERM, reporting progress on stdout."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = make_consumer(
        KafkaSettings(bootstrap=bootstrap, session_timeout_ms=6_000, pace_empty_fetches=pace),
        topic,
        group_id=group,
    )
    await consumer.start()
    count = 0
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=200)
            if not batches:
                continue
            offsets: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for record in records:
                    json.loads(record.value or b"{}")
                    offsets[TopicPartition(tp.topic, tp.partition)] = record.offset + 1
                count += len(records)
            await consumer.commit(offsets)
            sys.stdout.write(f"{count} {time.monotonic()}\n")
            sys.stdout.flush()
    finally:
        await consumer.stop()


if __name__ == "__main__":  # pragma: no cover - run as a helper process
    asyncio.run(consume(sys.argv[1], sys.argv[2], sys.argv[3], pace=sys.argv[4:] == ["pace"]))
