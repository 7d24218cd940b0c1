"""The secure path: publisher -> consumer daemon(s) -> SQLite or PostgreSQL store, with receipts.

Two bureaus are provisioned in a temporary folder (:func:`broker.node.provision.provision`, the
example policies). The publisher of ``IT`` runs in this process and publishes the red notice to
``DE`` with ``concurrency`` ``publish`` calls in flight; ``DE``'s daemon runs as its own process
exactly as a bureau runs it (``python -m broker consume --config ... --until-idle ...``), logs
included. A message counts as delivered once its row is committed in ``DE``'s store, which this
process reads (read-only) every 5 ms. The daemon's peak RSS is its ``VmHWM`` after the last window.

``sink="postgresql"`` puts ``DE``'s store in a database of its own on ``pg`` (created for the run,
dropped after; the publisher ``IT`` keeps its SQLite bookkeeping: the receive path is measured);
the counter then reads that database, and the server's CPU (postmaster and backends) is reported
per delivery apart. ``replicas=2`` runs two daemons of ``DE`` on the same config and store, in the
consumer group ``nbx.DE`` with their own static membership ids (``nbx.DE.1``, ``nbx.DE.2``) and
replica ids (``NBX_REPLICA``), over an inbox of ``partitions`` partitions (default: one per
replica): Kafka gives each its share of the partitions, and the window's consumer CPU is the sum
of both daemons'.

``profile`` (a folder) runs the daemon under cProfile (``daemon.prof``, ``daemon2.prof`` for a
second replica, written when it exits) and profiles this process during the windows
(``publisher.prof``).
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from broker.bench.common import (
    RECIPIENT,
    SENDER,
    Target,
    notice_id,
    proc_peak_rss_mb,
    python_argv,
    red_notice_data,
    running,
    wait_until,
)
from broker.bench.pgstore import PgTarget
from broker.bench.rawstore import PASSWORD_ENV
from broker.bench.report import ThroughputResult
from broker.bench.throughput import at_least, measure, produce, result
from broker.examples import policies_dir
from broker.node import Publisher
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.schemas import NoticeBase, parse_notice


def store_path(config: NodeConfig) -> Path:
    """The SQLite file of a node (its sink URL is ``sqlite:///PATH``)."""
    return Path(config.sink.url.partition(":///")[2])


class StoreCounter:
    """Counts delivered rows in a daemon's store, read-only, opening it once it exists."""

    def __init__(self, path: Path) -> None:
        """Watch the store at ``path``."""
        self.path = path
        self._db: sqlite3.Connection | None = None

    def __call__(self) -> int:
        """Rows of ``deliveries`` with outcome ``delivered`` (0 before the store exists)."""
        if self._db is None:
            if not self.path.exists():
                return 0
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            row = self._db.execute(
                "SELECT count(*) FROM deliveries WHERE outcome = 'delivered'"
            ).fetchone()
        except sqlite3.OperationalError:  # the daemon has not created its tables yet
            return 0
        return int(row[0])

    def close(self) -> None:
        """Close the read connection."""
        if self._db is not None:
            self._db.close()


class PgStoreCounter:
    """Counts delivered rows in a daemon's PostgreSQL store (0 until its tables exist)."""

    def __init__(self, pg: PgTarget, database: str) -> None:
        """Watch ``database`` on ``pg``."""
        self.pg = pg
        self.database = database
        self._db: Any = None

    def __call__(self) -> int:
        """Rows of ``deliveries`` with outcome ``delivered``."""
        import psycopg

        if self._db is None:
            self._db = self.pg.connect(self.database)
        try:
            row = self._db.execute(
                "SELECT count(*) FROM deliveries WHERE outcome = 'delivered'"
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # the daemon has not created its tables yet
            return 0
        return int(row[0])

    def close(self) -> None:
        """Close the read connection."""
        if self._db is not None:
            self._db.close()


def set_partitions(config: Path, partitions: int) -> None:
    """Give a provisioned ``node.toml`` ``[kafka] topic_partitions`` (the inbox topic is created
    with it by the first publish)."""
    text = config.read_text()
    config.write_text(text.replace("[kafka]\n", f"[kafka]\ntopic_partitions = {partitions}\n", 1))


def set_postgres_sink(config: Path, url: str) -> None:
    """Point a provisioned ``node.toml``'s ``[sink]`` at ``url``, password from
    :data:`PASSWORD_ENV`."""
    lines: list[str] = []
    for line in config.read_text().splitlines(keepends=True):
        if line.startswith("url = ") and lines and lines[-1].startswith("[sink]"):
            line = f'url = "{url}"\npassword_env = "{PASSWORD_ENV}"\n'
        lines.append(line)
    config.write_text("".join(lines))


def _log_name(replica: int) -> str:
    return "daemon.log" if replica == 1 else f"daemon{replica}.log"


def delivered_lines(log: Path) -> int:
    """How many deliveries a daemon logged (``package.delivered`` events): each replica's share."""
    try:
        return log.read_bytes().count(b'"package.delivered"')
    except OSError:
        return 0


#: notices per round, and rounds at most, sent until every replica has stored one (its partitions)
JOIN_ROUND = 10
JOIN_ROUNDS = 30


async def until_each_replica_delivers(
    send: Callable[[int], Awaitable[None]], counter: Callable[[], int], logs: list[Path]
) -> int:
    """Send rounds of :data:`JOIN_ROUND` notices (``send(1)``, ``send(2)``, ...) until every
    replica logged a delivery, so no rebalance falls into a measured window; returns how many
    were sent."""
    sent = 0
    for _ in range(JOIN_ROUNDS):
        await produce(lambda i: send(1 + i), range(sent, sent + JOIN_ROUND), JOIN_ROUND)
        sent += JOIN_ROUND
        await wait_until(
            at_least(counter, 1 + sent), timeout_s=120, what="the replicas' first deliveries"
        )
        if all(delivered_lines(log) > 0 for log in logs):
            return sent
    msg = f"a replica stored nothing of {sent} notices: {[delivered_lines(p) for p in logs]}"
    raise RuntimeError(msg)


def notices(run_id: str, count: int) -> list[NoticeBase]:
    """``count`` copies of the red notice with unique ids (parsed before any timing)."""
    base = parse_notice(red_notice_data())
    return [base.model_copy(update={"notice_id": notice_id(run_id, i)}) for i in range(count)]


async def run(
    target: Target,
    *,
    messages: int,
    repeats: int,
    concurrency: int,
    warmup: int,
    profile: Path | None = None,
    sink: Literal["sqlite", "postgresql"] = "sqlite",
    pg: PgTarget | None = None,
    replicas: int = 1,
    partitions: int | None = None,
) -> ThroughputResult:
    """Measure the secure path on ``target`` (see the module docstring for the options)."""
    if sink == "postgresql" and pg is None:
        msg = "secure with postgresql needs a PostgreSQL server"
        raise ValueError(msg)
    partitions = partitions or replicas
    run_id = uuid.uuid4().hex[:8]
    spare = JOIN_ROUNDS * JOIN_ROUND if replicas > 1 else 0
    batch = notices(run_id, 1 + spare + warmup + messages * repeats)
    sent = 0
    database = f"nbx_bench_{run_id}_{RECIPIENT.lower()}"
    with (
        tempfile.TemporaryDirectory(prefix="nbx-bench-secure-") as tmp,
        contextlib.ExitStack() as databases,
    ):
        folder = Path(tmp)
        paths = provision(
            folder,
            [SENDER, RECIPIENT],
            bootstrap=target.bootstrap,
            policies=policies_dir(),
            enable_idempotence=target.idempotence,
            require_log_append_time=target.stamps_log_append_time,
            pace_empty_fetches=target.paces_empty_fetches,
            session_timeout_ms=6_000,
        )
        for path in paths.values():
            set_partitions(path, partitions)
        env: dict[str, str] | None = None
        counter: StoreCounter | PgStoreCounter
        if pg is not None and sink == "postgresql":
            pg.create_databases([database])
            databases.callback(pg.drop_databases, [database])
            set_postgres_sink(paths[RECIPIENT], pg.url(database))
            counter = PgStoreCounter(pg, database)
            env = pg.env()
        else:
            counter = StoreCounter(store_path(NodeConfig.load(paths[RECIPIENT])))
        sender = NodeConfig.load(paths[SENDER])
        log = folder / "daemon.log"
        profiler = cProfile.Profile() if profile is not None else None
        async with Publisher.from_config(sender) as pub, contextlib.AsyncExitStack() as stack:

            async def send(i: int) -> None:
                nonlocal sent
                sent += 1
                res = await pub.publish(batch[i], [RECIPIENT])
                if res.failed:
                    msg = f"publish failed: {res.failed[0].reason}"
                    raise RuntimeError(msg)

            await send(0)  # create the inbox topic before the daemon subscribes

            async def daemon(n: int) -> Any:
                """Start replica ``n`` (1, 2, ...) of DE's daemon."""
                name = _log_name(n).removesuffix(".log")
                argv = python_argv(
                    "-m",
                    "broker",
                    "consume",
                    "--config",
                    str(paths[RECIPIENT]),
                    "--until-idle",
                    "120",
                    profile=None if profile is None else profile / f"{name}.prof",
                )
                own = dict(env) if env is not None else dict(os.environ)
                if replicas > 1:
                    own["NBX_REPLICA"] = str(n)
                    own["NBX_KAFKA__GROUP_INSTANCE_ID"] = f"nbx.{RECIPIENT}.{n}"
                return await stack.enter_async_context(
                    running(argv, log=folder / f"{name}.log", env=own)
                )

            try:
                procs = [await daemon(n) for n in range(1, replicas + 1)]
                proc = procs[0]
                first = 1
                if replicas > 1:  # every replica has its partitions before anything is measured
                    first += await until_each_replica_delivers(
                        send, counter, [folder / _log_name(n) for n in range(1, replicas + 1)]
                    )
                if profiler is not None:
                    profiler.enable()
                windows = await measure(
                    send=lambda i: send(i + first),
                    delivered=lambda: counter() - first,
                    warmup=warmup,
                    messages=messages,
                    repeats=repeats,
                    concurrency=concurrency,
                    consumer=proc,
                    consumer_log=log,
                    broker_pid=target.broker_pid,
                    more_consumers=procs[1:],
                    db_cpu=pg.cpu_s if pg is not None and sink == "postgresql" else None,
                )
                if profiler is not None:
                    profiler.disable()
                peaks = [proc_peak_rss_mb(p.pid) for p in procs]
                shares = [delivered_lines(folder / _log_name(n)) for n in range(1, replicas + 1)]
                stored = counter()
                rss = max((v for v in peaks if v is not None), default=None)
                signer = pub.signer
                per_signature = round(signer.statements / max(1, signer.signatures), 1)
            finally:
                counter.close()
        if profiler is not None and profile is not None:
            profiler.dump_stats(profile / "publisher.prof")
    return result(
        "secure",
        windows,
        messages=messages,
        repeats=repeats,
        concurrency=concurrency,
        payload_bytes=len(batch[0].model_dump_json()),
        consumer_peak_rss_mb=rss,
        messages_per_signature=per_signature,
        sink=sink,
        replicas=replicas,
        partitions=partitions,
        replica_deliveries=shares,
        sent=sent,
        stored=stored,
    )
