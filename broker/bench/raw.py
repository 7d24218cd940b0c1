"""The raw baselines: a plain aiokafka producer -> consumer of the notice JSON (no crypto, policy);
``raw+store`` also writes each record into a durable store (:mod:`broker.bench.rawstore`).

The producer is built by :func:`broker.transport.make_producer` (``acks=all``, idempotence as the
broker allows, ``linger_ms=5``), exactly as the publisher's, and sends the red notice's JSON with
``send_and_wait``; the consumer is a separate process (:mod:`broker.bench.rawconsume`) in its own
group, committing after each batch like the daemon. Only the NBX work differs from the secure mode.
With ``store`` (``sqlite`` or ``postgresql``) the consumer writes each batch into a plain table of
that store in one transaction before committing its offsets (the ``raw+store`` mode): what a user
of plain Kafka would still do to keep each record, so that secure against raw+store shows the cost
of security apart from the cost of durability.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import uuid
from pathlib import Path
from typing import Literal

from broker.bench.common import (
    SENDER,
    Target,
    notice_id,
    proc_peak_rss_mb,
    python_argv,
    red_notice_data,
    running,
)
from broker.bench.pgstore import PgTarget
from broker.bench.report import ThroughputResult
from broker.bench.throughput import measure, result
from broker.transport import KafkaSettings, make_producer


async def run(
    target: Target,
    *,
    messages: int,
    repeats: int,
    concurrency: int,
    warmup: int,
    store: Literal["sqlite", "postgresql"] | None = None,
    pg: PgTarget | None = None,
) -> ThroughputResult:
    """Measure the raw baseline on ``target``; with ``store``, raw+store (``pg``: the server of
    ``postgresql``)."""
    if store == "postgresql" and pg is None:
        msg = "raw+store postgresql needs a PostgreSQL server"
        raise ValueError(msg)
    run_id = uuid.uuid4().hex[:8]
    topic = f"nbx.bench.raw.{run_id}"
    data = red_notice_data()
    payloads = []
    for i in range(warmup + messages * repeats):
        data["notice_id"] = notice_id(run_id, i)
        payloads.append(json.dumps(data, ensure_ascii=False).encode())
    settings = KafkaSettings(
        bootstrap=target.bootstrap, enable_idempotence=target.idempotence, client_id="nbx-bench"
    )
    producer = make_producer(settings)
    await producer.start()
    count = 0

    async def send(i: int) -> None:
        await producer.send_and_wait(
            topic, payloads[i], key=SENDER.encode(), headers=[("nbx-format", b"1")]
        )

    async def follow(stream: asyncio.StreamReader) -> None:
        nonlocal count
        while line := await stream.readline():
            count = int(line.split()[0])

    database = f"nbx_bench_{run_id}_raw"
    with tempfile.TemporaryDirectory(prefix="nbx-bench-raw-") as tmp, contextlib.ExitStack() as dbs:
        log = Path(tmp) / "rawconsume.log"
        store_args: list[str] = []
        env = None
        if store == "sqlite":
            store_args = [f"sqlite:///{Path(tmp) / 'records.sqlite'}"]
        elif pg is not None and store == "postgresql":
            pg.create_databases([database])
            dbs.callback(pg.drop_databases, [database])
            store_args = [pg.url(database)]
            env = pg.env()
        try:
            await send(0)  # create the topic before the consumer subscribes
            argv = python_argv(
                "-m",
                "broker.bench.rawconsume",
                target.bootstrap,
                topic,
                f"bench-raw-{run_id}",
                "pace" if target.paces_empty_fetches else "no-pace",
                *store_args,
            )
            async with running(argv, log=log, stdout_pipe=True, env=env) as proc:
                if proc.stdout is None:  # pragma: no cover - piped above
                    raise RuntimeError("no stdout pipe")
                reader = asyncio.create_task(follow(proc.stdout))
                windows = await measure(
                    send=send,
                    delivered=lambda: count - 1,
                    warmup=warmup,
                    messages=messages,
                    repeats=repeats,
                    concurrency=concurrency,
                    consumer=proc,
                    consumer_log=log,
                    broker_pid=target.broker_pid,
                    db_cpu=pg.cpu_s if pg is not None and store == "postgresql" else None,
                )
                rss = proc_peak_rss_mb(proc.pid)
            reader.cancel()
        finally:
            await producer.stop()
    return result(
        "raw" if store is None else "raw+store",
        windows,
        messages=messages,
        repeats=repeats,
        concurrency=concurrency,
        payload_bytes=len(payloads[0]),
        consumer_peak_rss_mb=rss,
        sink=store,
    )
