"""A SIGKILL of the daemon at random points never leaves an action without its audit entry or an
entry without its action: after every kill, the store's delivery log (one row per message
handled) and the audit log name the same messages, once each, and the chain is intact."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
from pathlib import Path

import pytest

from broker import devbroker
from broker.sinks import SqliteSink
from broker.sinks.audit import verify
from tests.node.helpers import Net, example
from tests.node.test_crash import _daemon, drain

pytestmark = pytest.mark.e2e

COUNT = 200
#: the entries of a message handled (a purge caused by a refusal or delete would add one more,
#: named by the same msg id; this traffic has none)
RECEIVE = frozenset({"collection", "alteration", "rejection", "erasure", "decision"})


def _compare(store: Path) -> tuple[int, str | None]:
    """Compare the delivery log with the audit log; (messages handled, chain problem)."""
    db = sqlite3.connect(store)
    try:
        deliveries = db.execute("SELECT sender, msg_id FROM deliveries").fetchall()
    finally:
        db.close()
    sink = SqliteSink(store, durable=False)
    try:
        entries = sink.audit_entries()
    finally:
        sink.close()
    handled = sorted(m for _, m in deliveries)
    recorded = sorted(str(e.msg_id) for e in entries if e.action in RECEIVE)
    assert recorded == handled, "an action without its entry, or an entry without its action"
    assert len(set(recorded)) == len(recorded), "a message recorded twice"
    return len(handled), verify(entries, [], lambda cp: None)


async def test_sigkill_never_separates_an_action_from_its_entry(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    net = Net(tmp_path, ("IT", "FR"), fresh_broker.bootstrap, idempotence=idempotence_supported)
    config = net.paths["FR"]
    store = net.configs["FR"].sink_path()
    notices = [example("red", notice_id=f"IT-2026-{i:05d}") for i in range(COUNT)]

    async def publish_all() -> int:
        sent = 0
        async with net.publisher("IT") as pub:
            for i in range(0, COUNT, 20):
                results = await asyncio.gather(
                    *(pub.publish(n, ["FR"]) for n in notices[i : i + 20])
                )
                sent += sum(r.sent == ["FR"] for r in results)
                # every 20th notice is cancelled again: an erasure among the collections
                cancel = await pub.lifecycle(
                    "cancel", notices[i].notice_id, "red", ["FR"], details={"reason": "found"}
                )
                sent += cancel.sent == ["FR"]
                await asyncio.sleep(rng.uniform(0.0, 0.1))
        return sent

    publishing = asyncio.create_task(publish_all())
    kills = 0
    for _ in range(4):
        proc = _daemon(config)
        await asyncio.sleep(rng.uniform(0.5, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        if store.exists():
            _, problem = _compare(store)
            assert problem is None, f"seed {seed}: {problem}"
    sent = await publishing
    assert sent == COUNT + COUNT // 20, f"seed {seed}: publisher could not send every message"
    code, err = await drain(config, fresh_broker.bootstrap, "FR")
    assert code == 0, err.decode()[-2000:]
    handled, problem = _compare(store)
    assert kills >= 1, f"seed {seed}"
    assert handled == sent, f"seed {seed}"
    assert problem is None, f"seed {seed}: {problem}"
