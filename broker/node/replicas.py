"""Daemon replicas of one bureau: the replica id, its claim, and waiting for the store.

Several ``nbx consume`` daemons of one bureau share the consumer group ``nbx.<CC>`` (Kafka gives
each its partitions of the inbox) and one store (a PostgreSQL database; two daemons may also
share a SQLite file for development). Each runs with its own **replica id** (``replica`` in
node.toml, ``NBX_REPLICA``, ``nbx consume --replica N``); its static group membership id is
``nbx.<CC>.<N>`` (:meth:`broker.node.config.NodeConfig.kafka_settings`). A daemon without a
replica id is the replica ``default``.

Two daemons with the same replica id would share one static membership id, and Kafka would fence
one of them at random; so a daemon **claims** its replica id before it consumes
(:func:`claim`) and holds the claim for its life:

- PostgreSQL: a session advisory lock ``pg_try_advisory_lock(LOCK_REPLICA, hashtext(CC/N))`` on
  a connection of its own (the server releases it when the daemon's session ends: a SIGKILLed
  daemon frees its id at once);
- a file store: an exclusive ``flock`` on ``<store>.replica-<N>.lock`` beside the store (the
  kernel releases it when the process dies).

A second claim of a held id raises :class:`ReplicaInUseError` (exit code 4, one line; see
docs/operations.md, "Replicas").

The store may be unreachable when a daemon starts (a database server restarting):
:func:`open_store` waits for it with a capped exponential backoff (``store.waiting``) while the
failure is transient (:data:`~broker.vocab.TRANSIENT_STORE_FAILURES`); any other failure is
raised at once (exit 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from broker.errors import NbxError, SinkError
from broker.logging import get_logger
from broker.vocab import TRANSIENT_STORE_FAILURES

if TYPE_CHECKING:
    from broker.node.config import NodeConfig
    from broker.sinks.base import Sink

#: the replica id of a daemon started without one
DEFAULT_REPLICA = "default"
#: what a replica id may be: a short code (it becomes part of the static membership id, of a lock
#: file's name and of log lines)
REPLICA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
#: the exit code of ``nbx consume`` when its replica id is held by a running daemon
EXIT_REPLICA_IN_USE = 4
#: the first and the longest wait between two attempts to reach the store (s)
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0


class ReplicaInUseError(NbxError):
    """Another running daemon of this bureau holds this replica id."""

    exit_code = EXIT_REPLICA_IN_USE


def replica_of(config: NodeConfig) -> str:
    """The replica id of ``config`` (:data:`DEFAULT_REPLICA` when none is set)."""
    return config.replica or DEFAULT_REPLICA


def in_use_line(bureau: str, replica: str, where: str) -> str:
    """The error of a second daemon with a replica id already held (``where``: the store)."""
    return (
        f"replica {replica} of bureau {bureau} is already running (it holds {where}); "
        "give this daemon another replica id: nbx consume --replica N"
    )


def backoff(first_s: float = BACKOFF_FIRST_S, cap_s: float = BACKOFF_MAX_S) -> Callable[[], float]:
    """A capped exponential backoff: each call returns the next wait (s)."""
    state = {"next": first_s}

    def step() -> float:
        wait = state["next"]
        state["next"] = min(wait * 2, cap_s)
        return wait

    return step


class ReplicaClaim(Protocol):
    """A held replica id; :meth:`release` gives it up."""

    replica: str

    def release(self) -> None:
        """Give the id up (also done by the OS or the server when the process dies)."""


class FileClaim:
    """A replica id claimed with an exclusive ``flock`` on a lock file beside a file store."""

    def __init__(self, path: Path, bureau: str, replica: str) -> None:
        """Take the lock on ``path`` at once or raise :class:`ReplicaInUseError`."""
        self.replica = replica
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ReplicaInUseError(in_use_line(bureau, replica, f"the lock {path}")) from None
        self._fd: int | None = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        """Unlock and close the lock file (the file stays: removing it would race a claim)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class PostgresClaim:
    """A replica id claimed with a session advisory lock on a connection of its own."""

    def __init__(self, conn: Any, bureau: str, replica: str, where: str) -> None:
        """Take the lock on the open psycopg connection ``conn`` at once or raise
        :class:`ReplicaInUseError` (the connection is closed then)."""
        self.replica = replica
        self._conn: Any = conn
        from broker.sinks.postgres import LOCK_REPLICA

        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_REPLICA, f"{bureau}/{replica}")
        ).fetchone()
        if not row or not row[0]:
            conn.close()
            self._conn = None
            raise ReplicaInUseError(in_use_line(bureau, replica, f"its lock in {where}"))

    def release(self) -> None:
        """Close the connection: the server releases the lock with the session."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def claim(config: NodeConfig) -> ReplicaClaim:
    """Claim ``config``'s replica id for this process (see the module docstring); raises
    :class:`ReplicaInUseError`, or the :class:`~broker.errors.SinkError` of a database that
    cannot be reached for the claim (reason ``unreachable``: :func:`open_store` waits)."""
    replica = replica_of(config)
    if config.sink.is_file():
        store = config.sink_path()
        lock = store.with_name(f"{store.name}.replica-{replica}.lock")
        return FileClaim(lock, config.bureau, replica)
    from broker.sinks.postgres import connect, parse_url

    target = parse_url(config.sink.url, config.sink.password_env)
    conn = connect(target)  # a failure: SinkError with the store's reason (unreachable ...)
    where = f"database {target.database} at {target.where}"
    return PostgresClaim(conn, config.bureau, replica, where)


async def open_store(
    config: NodeConfig,
    stopping: asyncio.Event,
    *,
    opener: Callable[[], Sink] | None = None,
    first_s: float = BACKOFF_FIRST_S,
    cap_s: float = BACKOFF_MAX_S,
) -> tuple[ReplicaClaim, Sink] | None:
    """Open ``config``'s store and claim its replica id, waiting while the store is unreachable
    (``store.waiting`` at each attempt, capped exponential backoff) until it opens or
    ``stopping`` is set (then None). A failure that is not transient is raised at once (a
    :class:`~broker.errors.SinkError`: exit 3), and so is :class:`ReplicaInUseError`."""
    from broker.node.runtime import load_node

    log = get_logger()
    opener = opener or (lambda: load_node(config).open_store())
    wait = backoff(first_s, cap_s)
    attempt = 0
    while not stopping.is_set():
        attempt += 1
        sink: Sink | None = None
        try:
            sink = await asyncio.to_thread(opener)
            held = await asyncio.to_thread(claim, config)
        except SinkError as exc:
            if sink is not None:
                with contextlib.suppress(SinkError):
                    sink.close()
            if exc.reason not in TRANSIENT_STORE_FAILURES:
                raise
            retry_in = wait()
            log.warning(
                "store.waiting",
                bureau=config.bureau,
                replica=replica_of(config),
                attempt=attempt,
                reason=exc.reason,
                retry_in_s=retry_in,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), retry_in)
            continue
        except BaseException:
            if sink is not None:
                with contextlib.suppress(SinkError):
                    sink.close()
            raise
        return held, sink
    return None
