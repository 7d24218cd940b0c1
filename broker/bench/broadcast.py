"""One red notice to 195 bureaus: latency from the publish call to stored at every recipient.

``recipients`` bureaus (ISO 3166 countries in alphabetical order, the sender ``IT`` and the secure
mode's recipient ``DE`` left out) are provisioned with the example policies. Their receive path
runs in ``hosts`` processes of :mod:`broker.bench.host` (one shared consumer per process; see
there why), split evenly. The
publisher runs here and publishes one notice at a time to ``all``; a notice's latency runs from the
``publish`` call to the last recipient's store commit (each host prints a line per delivery with a
``time.monotonic`` stamp, the same clock as ours). The next notice is published once the previous
one is stored everywhere, so each latency is one broadcast on its own. The first ``warmup``
notices (consumer group joins, connection set-up, caches) are not counted.

``sink="postgresql"``: every hosted bureau's store is a database of its own on ``pg`` (one server,
as a test network would have; copies of one template database that already has the schema, so
setting up 195 is quick), each daemon holding its connection (``max_connections`` is raised on the
embedded server to fit). The reviewer and the sender keep SQLite. The server's CPU (postmaster and
backends) is reported per delivery apart from the hosts'.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pycountry

from broker.bench.common import (
    RECIPIENT,
    SENDER,
    Target,
    median,
    percentile,
    proc_cpu_s,
    proc_peak_rss_mb,
    python_argv,
    running,
    self_cpu_s,
    wait_until,
)
from broker.bench.pgstore import PgTarget
from broker.bench.rawstore import PASSWORD_ENV
from broker.bench.report import BroadcastResult
from broker.bench.secure import notices, set_postgres_sink
from broker.examples import policies_dir
from broker.node import Publisher, PublishResult
from broker.node.config import NodeConfig
from broker.node.provision import provision


def bureau_ids(count: int, *, skip: tuple[str, ...] = ()) -> list[str]:
    """``count`` country codes in alphabetical order, without the sender and ``skip``."""
    codes = sorted(c.alpha_2 for c in pycountry.countries if c.alpha_2 not in (SENDER, *skip))
    if count > len(codes):
        msg = f"at most {len(codes)} recipients"
        raise ValueError(msg)
    return codes[:count]


#: the network's reviewer in a broadcast with review
REVIEWER = "XR"


@contextlib.contextmanager
def _password_in_env(pg: PgTarget) -> Iterator[None]:
    """:data:`PASSWORD_ENV` set in this process for as long as the template is opened."""
    before = os.environ.get(PASSWORD_ENV)
    if pg.password is not None:
        os.environ[PASSWORD_ENV] = pg.password
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = before


def postgres_stores(
    pg: PgTarget, run_id: str, configs: dict[str, Path], stack: contextlib.ExitStack
) -> None:
    """Give each bureau of ``configs`` a database of its own on ``pg`` (dropped when ``stack``
    closes, unless the server is the run's own): a template opened once by the sink (the
    schema), then one copy per bureau."""
    from broker.sinks import open_sink

    template = f"nbx_bench_{run_id}_template"
    names = {cc: f"nbx_bench_{run_id}_{cc.lower()}" for cc in configs}
    if pg.server is None:  # an embedded server's data goes with it (196 drops take minutes)
        stack.callback(pg.drop_databases, [template, *names.values()])
    pg.ensure_connections(len(configs) + 10)
    pg.create_databases([template])
    with _password_in_env(pg):
        open_sink(pg.url(template), password_env=PASSWORD_ENV).close()
    pg.create_databases(list(names.values()), template=template)
    for cc, path in configs.items():
        set_postgres_sink(path, pg.url(names[cc]))


class Deliveries:
    """Times reported by the hosts, notice id -> bureau -> monotonic time: ``at`` when stored,
    ``approved`` when the reviewer's approval was stored (the notice actionable)."""

    def __init__(self) -> None:
        """Nothing delivered yet."""
        self.at: dict[str, dict[str, float]] = {}
        self.approved: dict[str, dict[str, float]] = {}

    async def follow(self, stream: asyncio.StreamReader) -> None:
        """Read ``D|A <notice_id> <CC> <t>`` lines until the stream ends."""
        while line := await stream.readline():
            parts = line.decode().split()
            if len(parts) == 4 and parts[0] in ("D", "A"):
                seen = self.at if parts[0] == "D" else self.approved
                seen.setdefault(parts[1], {})[parts[2]] = float(parts[3])

    def complete(self, notice_id: str, recipients: list[str], *, approved: bool = False) -> bool:
        """Whether every one of ``recipients`` stored ``notice_id`` (or its approval)."""
        got = (self.approved if approved else self.at).get(notice_id, {})
        return all(r in got for r in recipients)


async def run(
    target: Target,
    *,
    recipients: int,
    notices_count: int,
    hosts: int,
    warmup: int,
    profile: Path | None = None,
    review: bool = True,
    on_notice: Callable[[int, int], None] | None = None,
    sink: Literal["sqlite", "postgresql"] = "sqlite",
    pg: PgTarget | None = None,
) -> BroadcastResult:
    """Measure broadcasts on ``target``; with ``review``, the network has a reviewer (its rules
    are in force: every recipient stores the red notice pending-review), which approves each
    notice as soon as it is stored everywhere; the time until the approval is stored everywhere
    (the notice actionable) is measured too. ``on_notice(done, total)`` is called after each
    notice (warm-up and measured), for a progress display. ``sink``/``pg``: see the module."""
    if sink == "postgresql" and pg is None:
        msg = "broadcast with postgresql needs a PostgreSQL server"
        raise ValueError(msg)
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    batch = notices(run_id, warmup + notices_count)
    # not the secure mode's recipient: in `nbx bench all` its inbox still holds that run's
    # thousands of packages (sealed to other keys), which a host would first drain
    bureaus = bureau_ids(recipients, skip=(RECIPIENT,))
    hosts = max(1, min(hosts, len(bureaus)))
    deliveries = Deliveries()
    latencies: list[float] = []
    actionable: list[float] = []
    approvals: list[float] = []
    calls: list[float] = []
    cpus: list[float] = []
    excluded = 0
    db_cpu0: float | None = None
    db_cpu: float | None = None
    with (
        tempfile.TemporaryDirectory(prefix="nbx-bench-broadcast-") as tmp,
        contextlib.ExitStack() as databases,
    ):
        folder = Path(tmp)
        reviewers = [REVIEWER] if review else []
        paths = provision(
            folder,
            [SENDER, *bureaus, *reviewers],
            roles={REVIEWER: ["reviewer"]} if review else None,
            bootstrap=target.bootstrap,
            policies=policies_dir(),
            enable_idempotence=target.idempotence,
            require_log_append_time=target.stamps_log_append_time,
            pace_empty_fetches=target.paces_empty_fetches,
            # a host's poll covers ~98 bureaus; on PostgreSQL beside other work one took longer
            # than 6 s, its session expired and its commit failed (the run aborted)
            session_timeout_ms=6_000 if sink == "sqlite" else 30_000,
        )
        env = None
        if pg is not None and sink == "postgresql":
            postgres_stores(pg, run_id, {cc: paths[cc] for cc in bureaus}, databases)
            env = pg.env()
        reviewer_config = NodeConfig.load(paths[REVIEWER]) if review else None
        async with contextlib.AsyncExitStack() as stack:
            pub = await stack.enter_async_context(
                Publisher.from_config(NodeConfig.load(paths[SENDER]))
            )
            xr = None
            if reviewer_config is not None:
                xr = await stack.enter_async_context(Publisher.from_config(reviewer_config))
            first = await pub.publish(batch[0], "all")  # creates every inbox topic
            procs = []
            readers = []
            try:
                for h in range(hosts):
                    share = bureaus[h::hosts]
                    argv = python_argv(
                        "-m",
                        "broker.bench.host",
                        str(folder),
                        f"bench-bcast-{run_id}-{h}",
                        ",".join(share),
                        profile=None if profile is None else profile / f"host{h}.prof",
                    )
                    ctx = running(argv, log=folder / f"host{h}.log", stdout_pipe=True, env=env)
                    proc = await ctx.__aenter__()
                    procs.append((ctx, proc))
                    if proc.stdout is None:  # pragma: no cover - piped above
                        raise RuntimeError("no stdout pipe")
                    readers.append(asyncio.create_task(deliveries.follow(proc.stdout)))

                async def settle(
                    notice_id: str, sent: list[str], *, approved: bool = False
                ) -> float:
                    return await wait_until(
                        lambda: deliveries.complete(notice_id, sent, approved=approved),
                        timeout_s=180,
                        what=f"broadcast {notice_id}" + (" approval" if approved else ""),
                        interval_s=0.002,
                        alive=procs[0][1],
                        log=folder / "host0.log",
                    )

                async def approve(result: PublishResult, hosted: list[str]) -> float:
                    """The reviewer approves the stored notice; when it is actionable at all."""
                    if xr is None or result.statement_hash is None:  # pragma: no cover
                        msg = "a review needs the reviewer and the statement hash"
                        raise RuntimeError(msg)
                    await xr.review(
                        subject_sender=SENDER,
                        subject_msg_id=result.msg_id,
                        notice_id=result.notice_id,
                        notice_type="red",
                        statement_hash=result.statement_hash,
                        decision="approved",
                        reason="benchmark",
                        to=[*hosted, SENDER],
                    )
                    await settle(result.notice_id, hosted, approved=True)
                    return max(deliveries.approved[result.notice_id][r] for r in hosted)

                def hosted(result: PublishResult) -> list[str]:
                    return [r for r in result.sent if r not in reviewers]  # XR is not hosted

                await settle(batch[0].notice_id, hosted(first))
                if xr is not None:
                    await approve(first, hosted(first))
                setup_s = time.monotonic() - started
                pids = [p.pid for _, p in procs]
                host_cpu0 = [proc_cpu_s(pid) for pid in pids]
                broker_cpu0 = proc_cpu_s(target.broker_pid)
                db_cpu0 = pg.cpu_s() if pg is not None and env is not None else None
                for i, notice in enumerate(batch[1:], start=1):
                    cpu0 = self_cpu_s()
                    t0 = time.monotonic()
                    result = await pub.publish(notice, "all")
                    t1 = time.monotonic()
                    cpu1 = self_cpu_s()
                    to = hosted(result)
                    await settle(notice.notice_id, to)
                    done = max(deliveries.at[notice.notice_id][r] for r in to)
                    if xr is not None:
                        t2 = time.monotonic()
                        ready = await approve(result, to)
                        if i >= warmup:
                            actionable.append((ready - t0) * 1000)
                            approvals.append((ready - t2) * 1000)
                    if i >= warmup:
                        latencies.append((done - t0) * 1000)
                        calls.append((t1 - t0) * 1000)
                        cpus.append((cpu1 - cpu0) * 1000)
                        excluded += len(result.outcomes) - len(result.sent)
                    if on_notice is not None:
                        on_notice(i, len(batch) - 1)
                host_cpu = [proc_cpu_s(pid) for pid in pids]
                broker_cpu = proc_cpu_s(target.broker_pid)
                db_cpu = pg.cpu_s() if pg is not None and env is not None else None
                rss = [proc_peak_rss_mb(pid) for pid in pids]
            finally:
                for ctx, _ in reversed(procs):
                    await ctx.__aexit__(None, None, None)
                for task in readers:
                    task.cancel()
    measured = len(batch) - warmup
    deliveries_total = sum(len(deliveries.at.get(n.notice_id, {})) for n in batch[warmup:])
    receiver_cpu = None
    if all(v is not None for v in (*host_cpu, *host_cpu0)) and deliveries_total:
        spent = sum(a - b for a, b in zip(host_cpu, host_cpu0, strict=True) if a and b)
        receiver_cpu = spent * 1000 / deliveries_total
    broker_ms = None
    if broker_cpu is not None and broker_cpu0 is not None:
        broker_ms = (broker_cpu - broker_cpu0) * 1000 / measured
    db_ms = None
    if db_cpu is not None and db_cpu0 is not None and deliveries_total:
        db_ms = round((db_cpu - db_cpu0) * 1000 / deliveries_total, 3)
    return BroadcastResult(
        recipients=len(bureaus),
        notices=len(latencies),
        hosts=hosts,
        latency_p50_ms=round(median(latencies), 1),
        latency_p99_ms=round(percentile(latencies, 99), 1),
        latency_max_ms=round(max(latencies, default=0.0), 1),
        publish_call_p50_ms=round(median(calls), 1),
        publisher_cpu_ms_per_broadcast=round(median(cpus), 1),
        receiver_cpu_ms_per_delivery=None if receiver_cpu is None else round(receiver_cpu, 3),
        broker_cpu_ms_per_broadcast=None if broker_ms is None else round(broker_ms, 1),
        host_peak_rss_mb=[None if v is None else round(v, 1) for v in rss],
        excluded_or_failed=excluded,
        review=review,
        actionable_p50_ms=round(median(actionable), 1) if actionable else None,
        actionable_p99_ms=round(percentile(actionable, 99), 1) if actionable else None,
        approval_p99_ms=round(percentile(approvals, 99), 1) if approvals else None,
        setup_s=round(setup_s, 1),
        latencies_ms=[round(v, 1) for v in latencies],
        sink=sink,
        db_cpu_ms_per_delivery=db_ms,
    )
