"""``nbx bench envelope|raw|raw+store|secure|broadcast|ops|all``: the benchmarks
(docs/performance.md).

``bench envelope`` times sealing and opening alone (:mod:`broker.bench.envelope`). Every other
mode starts the embedded broker unless ``--bootstrap`` names one, and prints a table, or JSON with
``--json``. ``--sink postgresql`` puts the stores of raw+store, secure and broadcast in PostgreSQL
(an embedded server started for the run unless ``--pg-url`` names one). See
``docs/performance.md`` for the method and the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from broker.cli.progress import Progress

_MODES = ("raw", "raw+store", "secure", "broadcast", "ops")


@click.group("bench")
def bench() -> None:
    """Benchmarks: the envelope alone, and the end-to-end paths (docs/performance.md)."""


@bench.command("envelope")
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True)
@click.option(
    "--recipients",
    "counts",
    type=click.IntRange(1, 250),
    multiple=True,
    default=(1, 10, 195),
    show_default=True,
)
def bench_envelope(rounds: int, counts: tuple[int, ...]) -> None:
    """Time sealing (sign once + encrypt per recipient) and opening one package."""
    from broker.bench.envelope import run

    click.echo(
        f"{'recipients':>10}  {'seal+encrypt ms':>15}  {'per recipient ms':>16}  {'open ms':>8}"
    )
    for row in run(counts, rounds=rounds, clock=time.perf_counter):
        click.echo(
            f"{row.recipients:>10}  {row.seal_ms:>15.2f}  "
            f"{row.seal_ms / row.recipients:>16.3f}  {row.open_ms:>8.3f}"
        )


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.option("--bootstrap", default=None, help="Use this Kafka broker (host:port)."),
        click.option(
            "--impl",
            type=click.Choice(["noida", "tansu"]),
            default="noida",
            show_default=True,
            help="Embedded broker to start when no --bootstrap is given.",
        ),
        click.option("--messages", type=click.IntRange(1), default=1000, show_default=True,
                     help="raw/secure: messages per measured window."),
        click.option("--repeats", type=click.IntRange(1), default=3, show_default=True,
                     help="raw/secure: measured windows (the median is reported)."),
        click.option("--warmup", type=click.IntRange(1), default=100, show_default=True,
                     help="raw/secure: messages sent before measuring."),
        click.option("--concurrency", type=click.IntRange(1), default=32, show_default=True,
                     help="raw/secure: sends (publish calls) in flight."),
        click.option("--recipients", type=click.IntRange(1, 248), default=195,
                     show_default=True, help="broadcast: bureaus addressed."),
        click.option("--notices", type=click.IntRange(1), default=50, show_default=True,
                     help="broadcast: measured notices (p50/p99 over these)."),
        click.option("--hosts", type=click.IntRange(1), default=2, show_default=True,
                     help="broadcast: receiver processes hosting the bureaus."),
        click.option("--review/--no-review", default=True, show_default=True,
                     help="broadcast: a reviewer in the network (notices stored pending-review, "
                     "approved at once: publish -> actionable is measured too)."),
        click.option("--profile", "profile", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="Write cProfile files of every NBX process here."),
        click.option("--idempotence/--no-idempotence", default=None,
                     help="Producer idempotence (default: on, off on tansu)."),
        click.option("--sink", type=click.Choice(["sqlite", "postgresql"]), default="sqlite",
                     show_default=True,
                     help="raw+store/secure/broadcast: the receiving side's store."),
        click.option("--pg-url", default=None, metavar="postgresql://USER@HOST:PORT/DB",
                     help="--sink postgresql: this server (USER needs CREATEDB; a database per "
                     "run is created and dropped); default: start an embedded one."),
        click.option("--pg-password-env", default="NBX_PG_PASSWORD", show_default=True,
                     metavar="NAME", help="The variable holding --pg-url's password "
                     "(unset: libpq's PGPASSWORD or ~/.pgpass)."),
        click.option("--replicas", type=click.IntRange(1, 8), default=1, show_default=True,
                     help="secure: daemon replicas of the receiving bureau (one group, store)."),
        click.option("--partitions", type=click.IntRange(1), default=None,
                     help="secure: partitions of the inbox (default: one per replica)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def _run(modes: tuple[str, ...], **kw: Any) -> None:
    from broker.bench import broadcast, ops, raw, secure
    from broker.bench.common import broker_target
    from broker.bench.pgstore import PgTarget, pg_target
    from broker.bench.report import Report
    from broker.logging import Discard, configure

    configure(stream=Discard())  # the publisher's JSON log lines are rendered, then discarded
    profile: Path | None = kw["profile"]
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    flow = {k: kw[k] for k in ("messages", "repeats", "concurrency", "warmup")}
    windows = f"{kw['messages']} messages x {kw['repeats']} windows"
    with contextlib.ExitStack() as stack:
        # stderr: a spinner per phase on a terminal, plain lines otherwise (never in --json)
        progress = stack.enter_context(Progress("bench", unit="notices"))
        if kw["bootstrap"] is None:
            progress.phase(f"starting the embedded {kw['impl']} broker")
        target = stack.enter_context(broker_target(kw["bootstrap"], kw["impl"], kw["idempotence"]))
        report = Report(broker=target.impl, cores=os.cpu_count() or 1)
        sink = kw["sink"]
        stored = {"raw+store", "secure", "broadcast"} & set(modes)
        pg: PgTarget | None = None
        if sink == "postgresql" and stored:
            if kw["pg_url"] is None:
                progress.phase("starting the embedded PostgreSQL server")
            pg = stack.enter_context(pg_target(kw["pg_url"], kw["pg_password_env"]))
        replicas = kw["replicas"]
        scale = "" if replicas == 1 else f", {replicas} replicas"

        async def main() -> None:
            if "raw" in modes:
                progress.phase(f"raw ({windows})")
                report.raw = await raw.run(target, **flow)
            if "raw+store" in modes:
                progress.phase(f"raw+store {sink} ({windows})")
                report.raw_store = await raw.run(target, store=sink, pg=pg, **flow)
            if "secure" in modes:
                progress.phase(f"secure {sink} ({windows}{scale})")
                report.secure = await secure.run(
                    target,
                    profile=profile,
                    sink=sink,
                    replicas=replicas,
                    partitions=kw["partitions"],
                    pg=pg,
                    **flow,
                )
            if "broadcast" in modes:
                progress.phase(
                    f"broadcast ({kw['notices']} notices to {kw['recipients']} bureaus, "
                    "after warm-up)"
                )
                report.broadcast = await broadcast.run(
                    target,
                    recipients=kw["recipients"],
                    notices_count=kw["notices"],
                    hosts=kw["hosts"],
                    warmup=3,
                    profile=profile,
                    review=kw["review"],
                    on_notice=progress.count,
                    sink=sink,
                    pg=pg,
                )

        asyncio.run(main())
        if "ops" in modes:
            progress.phase(f"ops (each step for {kw['recipients']} recipients)")
            report.ops = ops.run(audience=kw["recipients"])
    if kw["as_json"]:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report.table())


def _command(name: str, modes: tuple[str, ...], help_text: str) -> click.Command:
    @bench.command(name, help=help_text)
    @_options
    def command(**kw: Any) -> None:
        _run(modes, **kw)

    return command


raw_cmd = _command("raw", ("raw",), "Plain aiokafka producer -> consumer of the notice JSON.")
raw_store_cmd = _command(
    "raw+store",
    ("raw+store",),
    "raw, the consumer also writing each record into the store (one transaction per batch).",
)
secure_cmd = _command(
    "secure",
    ("secure",),
    "Publisher -> consumer daemon(s) (processes) -> SQLite or PostgreSQL, with receipts.",
)
broadcast_cmd = _command(
    "broadcast", ("broadcast",), "One red notice to 195 bureaus: publish -> stored at all."
)
ops_cmd = _command("ops", ("ops",), "The cost of each step of the secure path on its own.")
all_cmd = _command(
    "all",
    _MODES,
    "raw, raw+store, secure (and their ratios), broadcast and ops in one run, same broker.",
)


def register(group: click.Group) -> None:
    """Add the ``bench`` command group to ``group``."""
    group.add_command(bench)
