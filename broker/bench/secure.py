"""The secure path: publisher -> consumer daemon -> SQLite sink, with signed receipts.

Two bureaus are provisioned in a temporary folder (:func:`broker.node.provision.provision`, the
example policies). The publisher of ``IT`` runs in this process and publishes the red notice to
``DE`` with ``concurrency`` ``publish`` calls in flight; ``DE``'s daemon runs as its own process
exactly as a bureau runs it (``python -m broker consume --config ... --until-idle ...``), logs
included. A message counts as delivered once its row is committed in ``DE``'s store, which this
process reads (read-only) every 5 ms. The daemon's peak RSS is its ``VmHWM`` after the last window.

``profile`` (a folder) runs the daemon under cProfile (``daemon.prof``, written when it exits) and
profiles this process during the windows (``publisher.prof``).
"""

from __future__ import annotations

import cProfile
import sqlite3
import tempfile
import uuid
from pathlib import Path

from broker.bench.common import (
    RECIPIENT,
    SENDER,
    Target,
    notice_id,
    proc_peak_rss_mb,
    python_argv,
    red_notice_data,
    running,
)
from broker.bench.report import ThroughputResult
from broker.bench.throughput import measure, result
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
) -> ThroughputResult:
    """Measure the secure path on ``target``."""
    run_id = uuid.uuid4().hex[:8]
    batch = notices(run_id, 1 + warmup + messages * repeats)
    with tempfile.TemporaryDirectory(prefix="nbx-bench-secure-") as tmp:
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
        sender = NodeConfig.load(paths[SENDER])
        counter = StoreCounter(store_path(NodeConfig.load(paths[RECIPIENT])))
        log = folder / "daemon.log"
        profiler = cProfile.Profile() if profile is not None else None
        async with Publisher.from_config(sender) as pub:

            async def send(i: int) -> None:
                res = await pub.publish(batch[i], [RECIPIENT])
                if res.failed:
                    msg = f"publish failed: {res.failed[0].reason}"
                    raise RuntimeError(msg)

            await send(0)  # create the inbox topic before the daemon subscribes
            argv = python_argv(
                "-m",
                "broker",
                "consume",
                "--config",
                str(paths[RECIPIENT]),
                "--until-idle",
                "120",
                profile=None if profile is None else profile / "daemon.prof",
            )
            try:
                async with running(argv, log=log) as proc:
                    if profiler is not None:
                        profiler.enable()
                    windows = await measure(
                        send=lambda i: send(i + 1),
                        delivered=lambda: counter() - 1,
                        warmup=warmup,
                        messages=messages,
                        repeats=repeats,
                        concurrency=concurrency,
                        consumer=proc,
                        consumer_log=log,
                        broker_pid=target.broker_pid,
                    )
                    if profiler is not None:
                        profiler.disable()
                    rss = proc_peak_rss_mb(proc.pid)
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
    )
