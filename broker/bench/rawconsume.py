"""The raw baselines' consumer process:
``python -m broker.bench.rawconsume BOOTSTRAP TOPIC GROUP pace|no-pace [STORE_URL]``.

A plain aiokafka consumer in a group with manual commits, like the daemon: it reads batches with
``getmany``, parses each record's JSON (the least any consumer does), commits after each batch and
prints ``<records so far> <monotonic time>`` after each commit. No crypto, no policy.
It runs until SIGTERM. ``pace`` paces empty fetches as the daemons' consumers do on the same
broker (``KafkaSettings.pace_empty_fetches``).

With ``STORE_URL`` (``sqlite:///PATH`` or ``postgresql://...``, the ``raw+store`` baseline) each
batch is first written to that store in one transaction (:mod:`broker.bench.rawstore`), and its
offsets are committed to Kafka only once the store has it, as the daemon does.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from aiokafka import TopicPartition

from broker.bench.rawstore import RecordStore, Row, open_records
from broker.transport import KafkaSettings, make_consumer


async def consume(
    bootstrap: str, topic: str, group: str, *, pace: bool = False, store: RecordStore | None = None
) -> None:
    """Consume ``topic`` as ``group`` until SIGTERM, reporting progress on stdout; with ``store``,
    each batch is stored (one transaction) before its offsets are committed."""
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
            rows: list[Row] = []
            for tp, records in batches.items():
                for record in records:
                    json.loads(record.value or b"{}")
                    offsets[TopicPartition(tp.topic, tp.partition)] = record.offset + 1
                    if store is not None:
                        rows.append(
                            (tp.topic, tp.partition, record.offset, record.key, record.value)
                        )
                count += len(records)
            if store is not None:
                store.write(rows)  # durable before Kafka hears the batch is done
            await consumer.commit(offsets)
            sys.stdout.write(f"{count} {time.monotonic()}\n")
            sys.stdout.flush()
    finally:
        await consumer.stop()
        if store is not None:
            store.close()


def main(argv: list[str]) -> None:
    """Run the helper with its command-line arguments (see the module docstring)."""
    store = open_records(argv[4]) if len(argv) > 4 else None
    asyncio.run(consume(argv[0], argv[1], argv[2], pace=argv[3] == "pace", store=store))


if __name__ == "__main__":  # pragma: no cover - run as a helper process
    main(sys.argv[1:])
