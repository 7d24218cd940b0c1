"""The benchmarks of issue 23: the ``raw+store`` baseline (SQLite and PostgreSQL), daemon replicas,
and the stores in PostgreSQL (``--sink postgresql``).

As in test_bench.py timings are not asserted (the machine is shared): every message is delivered
exactly once, each figure is present, the CLI prints what it measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker import devbroker, devpg
from broker.bench import broadcast, raw, secure
from broker.bench.common import Target
from broker.bench.pgstore import PgTarget, pg_target
from broker.bench.rawstore import PostgresRecords, SqliteRecords, open_records
from broker.bench.report import Report
from broker.cli import main
from tests.conftest import PG_PASSWORD, PG_PASSWORD_ENV


@pytest.fixture
def target(
    kafka_bootstrap: str, idempotence_supported: bool, dev_broker: devbroker.DevBroker
) -> Target:
    return Target(kafka_bootstrap, "test", dev_broker.pid, idempotence_supported)


@pytest.fixture
def pg(postgres_server: devpg.DevPostgres) -> PgTarget:
    """The session's PostgreSQL server as the benchmarks' target (ours: its CPU is read)."""
    return PgTarget(
        host=devpg.HOST,
        port=postgres_server.port,
        user=devpg.SUPERUSER,
        password=PG_PASSWORD,
        pid=postgres_server.pid,
    )


ROWS = [("t", 0, 0, b"k", b'{"a": 1}'), ("t", 0, 1, None, b"{}"), ("t", 1, 0, b"k", None)]


def test_sqlite_records_store_each_position_once(tmp_path: Path) -> None:
    """A batch is one transaction; a redelivered batch (same positions) stores nothing again."""
    store = open_records(f"sqlite:///{tmp_path / 'r.sqlite'}")
    assert isinstance(store, SqliteRecords)
    store.write(ROWS)
    store.write(ROWS[1:])  # redelivered after a crash between the store's and Kafka's commit
    assert store.count() == 3
    store.close()


def test_postgres_records_store_each_position_once(pg_url: str) -> None:
    """The same on PostgreSQL, password from the environment variable named."""
    store = open_records(pg_url, PG_PASSWORD_ENV)
    assert isinstance(store, PostgresRecords)
    store.write(ROWS)
    store.write(ROWS)
    assert store.count() == 3
    store.close()


def test_records_refuse_another_url() -> None:
    """Only sqlite:/// and postgresql:// urls name a store."""
    with pytest.raises(ValueError, match="expected sqlite:///PATH or postgresql://"):
        open_records("jsonl:///x")


def test_pg_url_with_a_password_is_refused_without_printing_it() -> None:
    """``--pg-url`` takes no password (it comes from ``--pg-password-env``)."""
    with (
        pytest.raises(ValueError, match="no password in it") as info,
        pg_target("postgresql://nbx:s3cret@127.0.0.1:5/db"),
    ):
        pass
    assert "s3cret" not in str(info.value)


def test_pg_target_reads_a_given_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--pg-url``: host, port, user from the url, password from the variable; CPU unknown."""
    monkeypatch.setenv("NBX_PG_PASSWORD", "pw")
    with pg_target("postgresql://bench@127.0.0.1:6543/postgres") as given:
        assert (given.host, given.port, given.user, given.password) == (
            "127.0.0.1",
            6543,
            "bench",
            "pw",
        )
        assert given.pid is None
        assert given.cpu_s() is None
        assert given.url("x") == "postgresql://bench@127.0.0.1:6543/x"


async def test_raw_store_on_sqlite_and_postgresql(target: Target, pg: PgTarget) -> None:
    """raw+store delivers every message through either store; PostgreSQL's CPU is reported, and
    the run's database is dropped after."""
    report = Report(broker="test", cores=2)
    lite = await raw.run(target, messages=20, repeats=1, concurrency=4, warmup=5, store="sqlite")
    assert (lite.mode, lite.sink, lite.label) == ("raw+store", "sqlite", "raw+store sqlite")
    assert lite.db_cpu_ms_per_delivery is None
    before = _databases(pg)
    report.raw_store = await raw.run(
        target, messages=20, repeats=2, concurrency=4, warmup=5, store="postgresql", pg=pg
    )
    assert _databases(pg) == before
    r = report.raw_store
    assert r.label == "raw+store postgresql"
    assert len(r.deliveries_per_s_runs) == 2
    assert all(rate > 0 for rate in r.deliveries_per_s_runs)
    # read (20 inserts in a window can cost the server less than one clock tick: >= 0)
    assert r.db_cpu_ms_per_delivery is not None
    assert r.db_cpu_ms_per_delivery >= 0
    assert "raw+store postgresql" in report.table()


async def test_secure_two_replicas_on_postgresql_store_each_message_once(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, pg: PgTarget
) -> None:
    """Two daemon replicas of DE sharing one PostgreSQL database over a 2-partition inbox: every
    message is stored once (the replicas' logged deliveries add up to what was published and to
    the rows in the database), both daemons' CPU and the server's are counted, and the run's
    database is dropped after. A broker of its own: DE's inbox must be created here with two
    partitions (the session's has one), and its group must hold no member of another test."""
    target = Target(fresh_broker.bootstrap, "test", fresh_broker.pid, idempotence_supported)
    before = _databases(pg)
    r = await secure.run(
        target,
        messages=10,
        repeats=1,
        concurrency=4,
        warmup=3,
        replicas=2,
        partitions=2,
        sink="postgresql",
        pg=pg,
    )
    assert _databases(pg) == before
    assert (r.replicas, r.partitions, r.label) == (2, 2, "secure postgresql x2")
    assert r.db_cpu_ms_per_delivery is not None  # read (a small run may cost less than a tick)
    assert r.db_cpu_ms_per_delivery >= 0
    assert len(r.replica_deliveries) == 2
    # every replica stored some (the benchmark waits for that before measuring), and together
    # exactly what was published: nothing lost, nothing stored twice
    assert all(n > 0 for n in r.replica_deliveries)
    assert r.sent is not None
    assert r.sent >= 1 + 3 + 10  # the topic-creating one, the joins' rounds, warm-up, window
    assert sum(r.replica_deliveries) == r.stored == r.sent
    assert r.consumer_cpu_ms_per_delivery is not None
    assert r.consumer_cpu_ms_per_delivery > 0
    report = Report(broker="test", cores=2, secure=r)
    assert "deliveries per replica over the run" in report.table()


async def test_broadcast_on_postgresql_stores_at_every_recipient(
    target: Target, pg: PgTarget
) -> None:
    """Every hosted bureau's store is a database of its own on the server (copies of one
    template), each broadcast is stored at all, and every database is dropped after."""
    before = _databases(pg)
    r = await broadcast.run(
        target,
        recipients=3,
        notices_count=1,
        hosts=1,
        warmup=1,
        review=False,
        sink="postgresql",
        pg=pg,
    )
    assert _databases(pg) == before
    assert (r.sink, r.recipients, r.notices, r.excluded_or_failed) == ("postgresql", 3, 1, 0)
    assert r.db_cpu_ms_per_delivery is not None  # read (a small run may cost less than a tick)
    assert r.db_cpu_ms_per_delivery >= 0
    assert "stores: postgresql" in Report(broker="test", cores=2, broadcast=r).table()


def _databases(pg: PgTarget) -> set[str]:
    with pg.connect() as db:
        return {row[0] for row in db.execute("SELECT datname FROM pg_database").fetchall()}


def test_cli_raw_store_json(kafka_bootstrap: str) -> None:
    """``nbx bench raw+store --json`` prints the raw+store result (SQLite by default)."""
    result = CliRunner().invoke(
        main,
        ["bench", "raw+store", "--bootstrap", kafka_bootstrap, "--messages", "10", "--repeats",
         "1", "--warmup", "2", "--concurrency", "2", "--json", "--no-idempotence"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["raw_store"]["mode"] == "raw+store"
    assert data["raw_store"]["sink"] == "sqlite"
    assert data["raw"] is None
    assert data["secure_over_raw_store"] is None
    assert (
        result.stderr.splitlines()[0]
        == "nbx: bench: raw+store sqlite (10 messages x 1 windows) ..."
    )
