"""Replica ids: the static membership id of each replica, the claim of an id (a second daemon
with the same id is refused with one line and exit code 4), and waiting for a store that is not
reachable yet (``store.waiting``), without a broker or a database server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog

from broker.errors import ConfigError, SinkError
from broker.examples import policies_dir
from broker.node.config import NodeConfig
from broker.node.provision import provision
from broker.node.replicas import (
    EXIT_REPLICA_IN_USE,
    ReplicaInUseError,
    backoff,
    claim,
    open_store,
)
from broker.sinks import SqliteSink
from broker.vocab import StoreFailure
from tests.node.test_cli_node import nbx_in_process
from tests.replicas.support import use_store


@pytest.fixture
def fr(tmp_path: Path) -> Path:
    """The config file of a provisioned bureau FR (its broker is never contacted here)."""
    return provision(tmp_path, ["FR"], bootstrap="127.0.0.1:1", policies=policies_dir())["FR"]


def test_replica_id_is_the_static_membership_id(fr: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica id makes the group instance id ``nbx.<CC>.<N>`` (also from ``NBX_REPLICA``);
    without one the daemon keeps the configured or host-based id and is replica ``default``."""
    config = NodeConfig.load(fr)
    assert config.replica is None
    assert str(config.kafka_settings().group_instance_id).startswith("nbx.FR.")
    two = config.model_copy(update={"replica": "2"})
    assert two.kafka_settings().group_instance_id == "nbx.FR.2"
    monkeypatch.setenv("NBX_REPLICA", "east-1")
    assert NodeConfig.load(fr).kafka_settings().group_instance_id == "nbx.FR.east-1"
    monkeypatch.setenv("NBX_REPLICA", "a b")
    with pytest.raises(ConfigError, match=r": replica: String should match pattern"):
        NodeConfig.load(fr)


def test_a_held_replica_id_is_refused_until_released(fr: Path) -> None:
    """The first claim of an id holds a lock beside the store; a second claim of the same id
    fails with the exact line; another id is free; once released the id can be claimed again."""
    config = NodeConfig.load(fr).model_copy(update={"replica": "1"})
    lock = config.sink_path().with_name(f"{config.sink_path().name}.replica-1.lock")
    first = claim(config)
    try:
        with pytest.raises(ReplicaInUseError) as refused:
            claim(config)
        assert str(refused.value) == (
            f"replica 1 of bureau FR is already running (it holds the lock {lock}); "
            "give this daemon another replica id: nbx consume --replica N"
        )
        assert refused.value.exit_code == EXIT_REPLICA_IN_USE == 4
        other = claim(config.model_copy(update={"replica": "2"}))
        other.release()
        default = claim(NodeConfig.load(fr))  # no id: the replica "default"
        with pytest.raises(ReplicaInUseError, match=r"^replica default of bureau FR is already"):
            claim(NodeConfig.load(fr))
        default.release()
    finally:
        first.release()
    claim(config).release()


def test_consume_with_a_held_replica_id_exits_4_with_one_line(fr: Path) -> None:
    """``nbx consume --replica 1`` while replica 1 runs: exit 4, one error line, before it
    connects to anything (the broker of this config does not exist)."""
    config = NodeConfig.load(fr).model_copy(update={"replica": "1"})
    lock = config.sink_path().with_name(f"{config.sink_path().name}.replica-1.lock")
    held = claim(config)
    try:
        result = nbx_in_process("consume", "--config", str(fr), "--replica", "1")
    finally:
        held.release()
    assert result.returncode == 4, result.stderr
    assert result.stderr.splitlines() == [
        f"nbx: error: replica 1 of bureau FR is already running (it holds the lock {lock}); "
        "give this daemon another replica id: nbx consume --replica N"
    ]
    bad = nbx_in_process("consume", "--config", str(fr), "--replica", "a/b")
    assert bad.returncode == 2
    assert "--replica: expected letters, digits, - or _ (at most 32), got 'a/b'" in bad.stderr


def test_backoff_doubles_up_to_its_cap() -> None:
    """The waits of a capped exponential backoff."""
    step = backoff(0.2, 1.0)
    assert [step() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


async def test_store_unreachable_at_start_is_waited_for(fr: Path) -> None:
    """The store cannot be reached for the first two attempts: the daemon logs
    ``store.waiting`` for each (attempt, reason, backoff) and goes on once it opens; a failure
    that is not transient is raised at once; a stop while waiting returns None."""
    config = NodeConfig.load(fr)
    attempts: list[int] = []

    def flaky() -> SqliteSink:
        attempts.append(1)
        if len(attempts) <= 2:
            raise SinkError("down", reason=StoreFailure.UNREACHABLE)
        return SqliteSink(config.sink_path())

    with structlog.testing.capture_logs() as logs:
        opened = await open_store(config, asyncio.Event(), opener=flaky, first_s=0.01)
    assert opened is not None
    held, sink = opened
    sink.close()
    held.release()
    waiting = [e for e in logs if e["event"] == "store.waiting"]
    assert [(e["attempt"], e["reason"], e["retry_in_s"]) for e in waiting] == [
        (1, "unreachable", 0.01),
        (2, "unreachable", 0.02),
    ]

    def denied() -> SqliteSink:
        raise SinkError("no", reason=StoreFailure.ACCESS_DENIED)

    with pytest.raises(SinkError) as failed:
        await open_store(config, asyncio.Event(), opener=denied)
    assert failed.value.reason == StoreFailure.ACCESS_DENIED

    def down() -> SqliteSink:
        raise SinkError("down", reason=StoreFailure.UNREACHABLE)

    stopping = asyncio.Event()
    waiter = asyncio.create_task(open_store(config, stopping, opener=down, first_s=0.01))
    await asyncio.sleep(0)
    stopping.set()
    assert await waiter is None


def test_a_held_replica_id_is_refused_on_postgresql(fr: Path, pg_url: str) -> None:
    """With a PostgreSQL store the claim is a session advisory lock: a second claim of replica 1
    fails with the exact line naming the database; the lock ends with the session (release)."""
    use_store(fr, pg_url)
    config = NodeConfig.load(fr).model_copy(update={"replica": "1"})
    where = pg_url.rsplit("@", 1)[1]  # 127.0.0.1:PORT/DB
    host, database = where.split("/")
    first = claim(config)
    try:
        with pytest.raises(ReplicaInUseError) as refused:
            claim(config)
        assert str(refused.value) == (
            f"replica 1 of bureau FR is already running (it holds its lock in database "
            f"{database} at {host}); give this daemon another replica id: nbx consume --replica N"
        )
        claim(config.model_copy(update={"replica": "2"})).release()
    finally:
        first.release()
    claim(config).release()
