"""Shared pieces of the replica tests: a network whose receiving bureau FR runs several
``nbx consume --replica N`` processes on a partitioned inbox and one store (SQLite file or a
PostgreSQL database), the senders' daemons in this process, and exact counts read from the
stores."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from broker.node.config import NodeConfig
from broker.schemas import NoticeBase
from tests.conftest import PG_PASSWORD_ENV
from tests.node.helpers import Net, example

ROOT = Path(__file__).resolve().parents[2]
#: how many notices the failover streams carry (issue 23: 2,000; more with the slow profile)
SLOW = os.environ.get("NBX_VERIFY_PROFILE", "default") == "slow"
#: how long a condition may take at most before a test fails (a bound, never a pause: every
#: wait returns as soon as its condition holds)
BOUND_S = 240.0


def partitioned(monkeypatch: pytest.MonkeyPatch, partitions: int = 2) -> None:
    """Every node configured from now on (also the ``nbx`` processes) creates its topics with
    ``partitions`` partitions."""
    monkeypatch.setenv("NBX_KAFKA__TOPIC_PARTITIONS", str(partitions))


def use_store(config: Path, url: str) -> None:
    """Point the node file ``config`` at the store ``url`` (a PostgreSQL database: its password
    in the test server's variable)."""
    text = config.read_text()
    new = f'url = "{url}"'
    if url.startswith("postgresql://"):
        new += f'\npassword_env = "{PG_PASSWORD_ENV}"'
    text, n = re.subn(r'(?m)^url = "sqlite:///[^"]*"$', new, text)
    assert n == 1, text
    config.write_text(text)


@dataclass
class Replica:
    """One ``nbx consume`` process of FR; its stdout (JSON log lines) and stderr go to files."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The log events it wrote so far (named ``name``)."""
        found = []
        for line in self.out.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if name is None or event.get("event") == name:
                    found.append(event)
        return found

    def assigned(self) -> int:
        """How many partitions its last assignment gave it (0 before the first)."""
        got = self.events("replica.partitions-assigned")
        return int(got[-1]["count"]) if got else 0

    def stop(self, timeout_s: float = BOUND_S) -> int:
        """SIGTERM, wait, return the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@dataclass
class Replicas:
    """The replicas of FR started by a test (stopped by pid at its end)."""

    config: Path
    started: list[Replica] = field(default_factory=list)

    def start(self, replica: str, *args: str) -> Replica:
        """Start ``nbx consume --replica replica``."""
        n = len(self.started)
        out = self.config.parent / f"replica-{replica}-{n}.out"
        err = self.config.parent / f"replica-{replica}-{n}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "broker",
                    "consume",
                    "--config",
                    str(self.config),
                    "--replica",
                    replica,
                    *args,
                ],
                cwd=ROOT,
                env=dict(os.environ),
                stdout=o,
                stderr=e,
            )
        started = Replica(proc, out, err)
        self.started.append(started)
        return started

    def stop_all(self) -> None:
        """Stop every replica still running (by pid)."""
        for r in self.started:
            r.stop()


class Store:
    """Counts read from FR's store, SQLite or PostgreSQL (the same tables in both)."""

    def __init__(self, config: Path) -> None:
        """The store of the node file ``config``."""
        self.config = NodeConfig.load(config)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a read-only query."""
        if self.config.sink.is_file():
            path = self.config.sink_path()
            if not path.exists():
                return []
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                return db.execute(sql).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise
            finally:
                db.close()
        import psycopg

        password = os.environ.get(self.config.sink.password_env or PG_PASSWORD_ENV)
        try:
            with psycopg.connect(self.config.sink.url, password=password) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        except psycopg.errors.UndefinedTable:
            return []
        except psycopg.OperationalError:  # the server is down for the moment
            return []

    def stored(self) -> int:
        """How many notices the store holds."""
        rows = self.rows("SELECT COUNT(*) FROM notices")
        return int(rows[0][0]) if rows else 0

    def delivered(self) -> dict[str, int]:
        """How many times each notice was delivered (a redelivery is recorded apart)."""
        return {
            str(n): int(c)
            for n, c in self.rows(
                "SELECT notice_id, COUNT(*) FROM deliveries WHERE outcome = 'delivered' "
                "GROUP BY notice_id"
            )
        }

    def notice_ids(self) -> list[str]:
        """Every stored notice id (a duplicate would show twice)."""
        return sorted(str(n) for (n,) in self.rows("SELECT notice_id FROM notices"))


def receipts_from(config: Path, recipient: str) -> dict[str, int]:
    """How many ``delivered`` receipts from ``recipient`` a sender's (SQLite) store recorded,
    per notice id."""
    path = NodeConfig.load(config).sink_path()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return {
            str(n): int(c)
            for n, c in db.execute(
                "SELECT notice_id, COUNT(*) FROM receipts WHERE recipient = ? "
                "AND status = 'delivered' GROUP BY notice_id",
                (recipient,),
            )
        }
    finally:
        db.close()


def stream(sender: str, count: int, tag: str) -> list[NoticeBase]:
    """``count`` distinct red notices of ``sender``."""
    return [
        example("red", notice_id=f"{sender}-2026-{tag}{i:05d}", issuing_bureau=sender)
        for i in range(count)
    ]


async def publish_stream(
    net: Net, sender: str, notices: Sequence[NoticeBase], to: str = "FR", group: int = 50
) -> list[str]:
    """Publish ``notices`` to ``to`` (``group`` at a time); the ids the broker acknowledged."""
    sent: list[str] = []
    async with net.publisher(sender) as pub:
        for i in range(0, len(notices), group):
            results = await asyncio.gather(*(pub.publish(n, [to]) for n in notices[i : i + group]))
            sent += [r.notice_id for r in results if r.sent == [to]]
    return sent


async def until(check: Callable[[], bool], what: str, timeout_s: float = BOUND_S) -> None:
    """Wait until ``check()`` holds (run in a worker thread: it may query a store); fail naming
    ``what`` after ``timeout_s`` (a bound for a hung test, not a pause: it returns as soon as
    the condition holds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.2)
    assert await asyncio.to_thread(check), f"timed out after {timeout_s} s waiting for {what}"
