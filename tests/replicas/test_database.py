"""The database of two replicas failing (issue 23): restarted after a crash mid-stream, and
unreachable when a replica starts. The daemons wait and retry with backoff (``store.retry``,
``store.waiting``), commit nothing to Kafka before the store has it, and lose nothing: every
notice stored exactly once, one receipt per notice at each sender, nothing quarantined."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broker import devbroker, devpg
from tests.node.helpers import Net
from tests.replicas.support import (
    SLOW,
    Replica,
    Replicas,
    Store,
    partitioned,
    publish_stream,
    receipts_from,
    stream,
    until,
    use_store,
)
from tests.replicas.test_failover import quarantined

#: notices per sender: two senders, 2,000 in all, as in the failover test (the slow profile
#: sends 5,000 each)
PER_SENDER = 5_000 if SLOW else 1_000


def _net(tmp_path: Path, bootstrap: str, idempotence: bool, url: str) -> Net:
    net = Net(tmp_path, ("IT", "DE", "FR"), bootstrap, idempotence=idempotence)
    use_store(net.paths["FR"], url)
    return net


async def _settled(
    net: Net, store: Store, sent: dict[str, list[str]], bootstrap: str, *replicas: Replica
) -> None:
    """Wait until every notice is stored and answered, stop the replicas (exit 0) and check
    that nothing was lost, stored twice, answered twice or quarantined."""
    total = sum(len(ids) for ids in sent.values())
    await until(lambda: store.stored() >= total, "every notice stored")
    await until(
        lambda: all(len(receipts_from(net.paths[s], "FR")) >= len(ids) for s, ids in sent.items()),
        "every receipt recorded by the senders",
    )
    for r in replicas:
        assert r.stop() == 0, r.err.read_text()[-2000:]
    assert store.notice_ids() == sorted(i for ids in sent.values() for i in ids)
    assert set(store.delivered().values()) == {1}
    for sender, ids in sent.items():
        receipts = receipts_from(net.paths[sender], "FR")
        assert sorted(receipts) == sorted(ids)
        assert set(receipts.values()) == {1}
    assert await quarantined(bootstrap, "nbx.quarantine.FR") == 0


async def test_the_database_crashes_and_restarts_mid_stream(
    fresh_broker: devbroker.DevBroker,
    idempotence_supported: bool,
    fresh_postgres: devpg.DevPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two replicas share FR's database; it is SIGKILLed while IT and DE send, then started
    again: the replicas log ``store.retry`` (unreachable) and deliver everything once."""
    partitioned(monkeypatch, 2)
    bootstrap = fresh_broker.bootstrap
    net = _net(tmp_path, bootstrap, idempotence_supported, fresh_postgres.create_database("fr"))
    await net.ensure_topics("IT", "DE", "FR")
    replicas = Replicas(net.paths["FR"])
    store = Store(net.paths["FR"])
    one, two = replicas.start("1"), replicas.start("2")
    try:
        await until(lambda: one.assigned() > 0 and two.assigned() > 0, "both replicas assigned")
        await net.start("IT", "DE")
        publishing = asyncio.gather(
            publish_stream(net, "IT", stream("IT", PER_SENDER, "D")),
            publish_stream(net, "DE", stream("DE", PER_SENDER, "D")),
        )
        await until(lambda: store.stored() >= PER_SENDER // 2, "a quarter of the stream stored")
        await asyncio.to_thread(fresh_postgres.kill)
        await until(
            lambda: any(
                e["reason"] == "unreachable" for r in (one, two) for e in r.events("store.retry")
            ),
            "a replica retrying the store",
        )
        await asyncio.to_thread(fresh_postgres.restart)
        sent_it, sent_de = await publishing
        await _settled(net, store, {"IT": sent_it, "DE": sent_de}, bootstrap, one, two)
    finally:
        replicas.stop_all()
        await net.stop()
    assert len(sent_it) == len(sent_de) == PER_SENDER


async def test_the_database_unreachable_when_a_replica_starts(
    fresh_broker: devbroker.DevBroker,
    idempotence_supported: bool,
    fresh_postgres: devpg.DevPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FR's database is down when its replica starts: the replica logs ``store.waiting`` with a
    growing backoff and consumes nothing; once the database is up it delivers everything."""
    partitioned(monkeypatch, 2)
    bootstrap = fresh_broker.bootstrap
    net = _net(tmp_path, bootstrap, idempotence_supported, fresh_postgres.create_database("fr"))
    await net.ensure_topics("IT", "DE", "FR")
    await asyncio.to_thread(fresh_postgres.stop, clean=False)
    replicas = Replicas(net.paths["FR"])
    store = Store(net.paths["FR"])
    one = replicas.start("1")
    try:
        await net.start("IT")
        sent = await publish_stream(net, "IT", stream("IT", PER_SENDER // 10, "U"))
        await until(lambda: len(one.events("store.waiting")) >= 3, "the replica waiting")
        waits = [e["retry_in_s"] for e in one.events("store.waiting")]
        assert waits[:3] == [0.2, 0.4, 0.8]
        assert {e["reason"] for e in one.events("store.waiting")} == {"unreachable"}
        assert not one.events("daemon.started")  # nothing consumed while the store is down
        await asyncio.to_thread(fresh_postgres.restart)
        await _settled(net, store, {"IT": sent}, bootstrap, one)
    finally:
        replicas.stop_all()
        await net.stop()
    assert len(sent) == PER_SENDER // 10
