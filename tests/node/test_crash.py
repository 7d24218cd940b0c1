"""Crash safety: SIGKILL the consumer daemon at random points while 500 notices arrive.

After restarts, every notice is in the store exactly once: none lost, none duplicated.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker import devbroker
from tests.conftest import broker_impl
from tests.node.helpers import Net, example
from tests.verify.support import handled_everything

pytestmark = pytest.mark.e2e

COUNT = 500


def _daemon(config: Path, *extra: str, out: Path | None = None) -> subprocess.Popen[bytes]:
    """``nbx consume`` for ``config``; its log lines go to the file ``out`` when given."""
    if out is None:
        return subprocess.Popen(
            [sys.executable, "-m", "broker", "consume", "--config", str(config), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    with out.open("wb") as stdout:
        return subprocess.Popen(
            [sys.executable, "-m", "broker", "consume", "--config", str(config), *extra],
            stdout=stdout,
            stderr=subprocess.PIPE,
        )


async def drain(config: Path, bootstrap: str, cc: str) -> tuple[int | None, bytes]:
    """A last daemon run of bureau ``cc`` that handles everything left on its topics. On tansu
    (ListOffsets answers 0) ``--until-idle 5``; else until its group has committed the end of
    its inbox and receipts topics, then SIGTERM (it finishes the batch in hand, commits and
    exits 0): a condition, not five seconds of idle. Nothing may be written to them meanwhile.
    Returns the exit code and what the daemon wrote on stderr."""
    if broker_impl() == "tansu":
        proc = _daemon(config, "--until-idle", "5")
        try:
            await asyncio.to_thread(proc.wait, 300)
        finally:  # never leave a daemon behind, even when the drain hangs
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return proc.returncode, _stderr(proc)
    out = config.parent / "drain.out"
    proc = _daemon(config, out=out)
    topics = (f"nbx.inbox.{cc}", f"nbx.receipts.{cc}")
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            started = b"daemon.started" in out.read_bytes()  # its SIGTERM handler is set
            if started and await handled_everything(bootstrap, f"nbx.{cc}", topics):
                proc.send_signal(signal.SIGTERM)
                break
            await asyncio.sleep(0.5)
        await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, _stderr(proc)


def _stderr(proc: subprocess.Popen[bytes]) -> bytes:
    """What an ended daemon wrote on stderr (the pipe closed)."""
    if proc.stderr is None:
        return b""
    with proc.stderr:
        return proc.stderr.read()


async def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Five SIGKILLs at random moments while IT publishes 500 notices to FR; a final drain run;
    FR's SQLite file then holds each of the 500 notices exactly once, and the delivery log has
    exactly one 'delivered' entry per notice."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    config = net.paths["FR"]
    notices = [example("red", notice_id=f"IT-2026-{i:05d}") for i in range(COUNT)]

    async def publish_all() -> list[str]:
        sent: list[str] = []
        async with net.publisher("IT") as pub:
            for i in range(0, COUNT, 25):
                results = await asyncio.gather(
                    *(pub.publish(n, ["FR"]) for n in notices[i : i + 25])
                )
                sent += [r.notice_id for r in results if r.sent == ["FR"]]
                await asyncio.sleep(rng.uniform(0.0, 0.15))
        return sent

    publishing = asyncio.create_task(publish_all())
    kills = 0
    for _ in range(5):
        proc = _daemon(config)
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        _stderr(proc)
    sent = await publishing
    assert len(sent) == COUNT, f"seed {seed}: publisher could not send every notice"
    code, err = await drain(config, fresh_broker.bootstrap, "FR")
    assert code == 0, err.decode()[-2000:]

    db = sqlite3.connect(net.configs["FR"].sink_path())
    try:
        stored = db.execute("SELECT notice_id FROM notices").fetchall()
        delivered = db.execute(
            "SELECT notice_id, COUNT(*) FROM deliveries WHERE outcome = 'delivered' "
            "GROUP BY notice_id"
        ).fetchall()
    finally:
        db.close()
    assert kills >= 1, f"seed {seed}"
    assert sorted(n for (n,) in stored) == sorted(sent), f"seed {seed}"
    assert len(delivered) == COUNT, f"seed {seed}"
    assert all(c == 1 for _, c in delivered), f"seed {seed}: a notice was delivered twice"
