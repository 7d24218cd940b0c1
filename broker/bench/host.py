"""A broadcast receiver process hosting many bureaus' daemons behind one consumer.

``python -m broker.bench.host FOLDER GROUP CC[,CC...]``: one :class:`ConsumerDaemon` per bureau
(its own keys, directory, policies and SQLite store, from ``FOLDER/<CC>/node.toml``), but a single
aiokafka consumer (group ``GROUP``) subscribed to every hosted inbox and a single producer for the
receipts. 195 consumer groups with a heartbeat and a fetch loop each would cost a 2-core machine
more than the notices do; a bureau runs one daemon on its own machine, so sharing the client here
measures the per-bureau work (open, validate, policy, store, receipt) and not 195 idle clients.

Each poll's records are split by topic and handed to that bureau's daemon
(:meth:`ConsumerDaemon.process`: verify, store, every receipt acknowledged); once all are done the
poll's offsets are committed in one request, as any single consumer commits its poll. After each
delivery is committed to the store the host notes ``D <notice_id> <CC> <monotonic time>`` (the
time of that commit) and prints the poll's lines on stdout once the poll is done. Logs go to stderr.
SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from broker.envelope import VerifiedPackage
from broker.logging import configure
from broker.node import ConsumerDaemon
from broker.node.config import NodeConfig
from broker.sinks import Applied
from broker.transport import make_consumer, make_producer
from broker.vocab import MessageKind


def _reporter(cc: str, lines: list[str]) -> Any:
    """Note the store commit time of each delivery; the lines are written once per poll (one
    write per delivery on an unbuffered pipe cost ~0.1 ms of the receivers' CPU each)."""

    def delivered(package: VerifiedPackage, outcome: Applied) -> None:
        if outcome is Applied.DELIVERED:  # stored (D), or its approval stored: actionable (A)
            tag = "A" if package.kind == MessageKind.REVIEW else "D"
            lines.append(f"{tag} {package.notice_id} {cc} {time.monotonic()}\n")

    return delivered


def settle_heap() -> None:
    """Keep the garbage collector off the hosted bureaus' start-up heap.

    A host holds ~98 bureaus' keys, directories, policies and stores in one process; with the
    default thresholds CPython's collections walked all of it again and again (0.9-1.6 s of a
    host's 30-40 s run, with full collections of 80-230 ms). A bureau's own daemon has one
    bureau's heap (measured: 15-45 ms of collection over 1 500 deliveries), so this is a cost of
    hosting many in one process, not of the receive path, and is removed here: collect, freeze
    what survived, collect the young generation less often. Cyclic garbage made later is still
    collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


async def serve(folder: Path, group: str, bureaus: list[str]) -> None:
    """Run the hosted bureaus' receive path until SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemons: dict[str, ConsumerDaemon] = {}
    lines: list[str] = []
    for cc in bureaus:
        daemon = ConsumerDaemon.from_config(NodeConfig.load(folder / cc / "node.toml"))
        daemon.on_delivered = _reporter(cc, lines)
        daemons[daemon.inbox_topic] = daemon
    settings = next(iter(daemons.values())).settings
    consumer = make_consumer(settings, *daemons, group_id=group)
    producer = make_producer(settings)
    await producer.start()
    await consumer.start()
    settle_heap()
    try:
        while not stop.is_set():
            polled = await consumer.getmany(timeout_ms=200, max_records=500)
            by_topic: dict[str, dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]] = {}
            for tp, records in polled.items():
                by_topic.setdefault(tp.topic, {})[tp] = records
            # each daemon's own batch step (store, receipts, acknowledgements; their
            # acknowledgements are awaited together), then one commit for the whole poll
            done = await asyncio.gather(
                *(daemons[t].process(producer, b) for t, b in by_topic.items())
            )
            if done:
                await consumer.commit({tp: o for offsets in done for tp, o in offsets.items()})
            if lines:
                sys.stdout.write("".join(lines))
                sys.stdout.flush()
                lines.clear()
    finally:
        await consumer.stop()
        await producer.stop()
        for daemon in daemons.values():
            await daemon.close()
            daemon.sink.close()


if __name__ == "__main__":  # pragma: no cover - run as a helper process
    configure(stream="stderr")
    asyncio.run(serve(Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")))
