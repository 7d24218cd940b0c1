"""SIGKILL on a PostgreSQL store (issue 23, ``make verify``): FR's daemon keeps its store in a
PostgreSQL database and is SIGKILLed at random points (seeded) while IT publishes canary notices
and a stranger writes garbage into FR's inbox. After a final drain every notice is stored exactly
once (0 lost, 0 duplicated) and every garbage record was quarantined; the counts go into the
session tally like those of tests/verify/test_faults.py."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

import pytest

from broker import devbroker
from tests.node.helpers import Net
from tests.replicas.support import Store, use_store
from tests.verify.support import COUNTS, TALLY, canary_notice, produce_raw, read_all, settle
from tests.verify.test_faults import BASE_SEED, _finish, _spawn

# Not marked e2e: runs once, on noida-db (`make verify`: the slow profile's sizes).


@pytest.mark.parametrize("run", range(COUNTS.kill_seeds))
async def test_sigkill_at_random_points_on_postgresql(
    run: int,
    fresh_broker: devbroker.DevBroker,
    idempotence_supported: bool,
    pg_url: str,
    tmp_path: Path,
) -> None:
    """FR's daemon (store: PostgreSQL) SIGKILLed at random moments mid-stream, then drained:
    every notice stored once, every garbage record quarantined, nothing lost or duplicated."""
    seed = BASE_SEED + 2000 + run
    rng = random.Random(seed)
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR"), bootstrap, idempotence=idempotence_supported)
    config = net.paths["FR"]
    use_store(config, pg_url)
    await net.ensure_topics("IT", "FR")
    count = COUNTS.kill_notices
    notices = [canary_notice(f"IT-2026-P{run}{i:04d}") for i in range(count)]
    garbage = 0

    async def publish_all() -> list[str]:
        nonlocal garbage
        sent: list[str] = []
        async with net.publisher("IT") as pub:
            for i in range(0, count, 20):
                results = await asyncio.gather(
                    *(pub.publish(n, ["FR"]) for n in notices[i : i + 20])
                )
                sent += [r.notice_id for r in results if r.sent == ["FR"]]
                junk = [rng.randbytes(rng.randrange(1, 300)) for _ in range(rng.randrange(1, 4))]
                await produce_raw(bootstrap, [("nbx.inbox.FR", None, j, []) for j in junk])
                garbage += len(junk)
                await asyncio.sleep(rng.uniform(0.0, 0.2))
        return sent

    publishing = asyncio.create_task(publish_all())
    kills = 0
    for _ in range(COUNTS.kills_per_seed):
        proc = _spawn(config)
        await asyncio.sleep(rng.uniform(0.5, 3.5))  # a random kill point (seeded), not a wait
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        await asyncio.to_thread(_finish, proc)
    sent = await publishing
    drain = _spawn(config, "--until-idle", "5")
    _out, err = await asyncio.to_thread(_finish, drain, 300)
    TALLY.fault("daemon SIGKILL (PostgreSQL store)", kills)
    store = Store(config)
    stored = store.notice_ids()
    delivered = store.delivered()
    quarantine = await asyncio.to_thread(
        lambda: read_all(bootstrap, "nbx.quarantine.FR", expect=garbage)
    )
    sources = {dict(h)["nbx-source"] for _, _, h in quarantine}
    settle(
        len(sent) + len(sources),
        len(set(stored) & set(sent)),
        len(sources),
        lost=len(set(sent) - set(stored)),
        duplicated=sum(c - 1 for c in delivered.values()) + len(stored) - len(set(stored)),
    )
    TALLY.input("inbox record values", garbage)
    assert drain.returncode == 0, f"seed {seed}: {err[-2000:]}"
    assert kills >= 1, f"seed {seed}"
    assert len(sent) == count, f"seed {seed}: the publisher could not send every notice"
    assert sorted(stored) == sorted(sent), f"seed {seed}: lost or extra notices"
    assert all(c == 1 for c in delivered.values()), f"seed {seed}: a notice was delivered twice"
    assert len(sources) == garbage, f"seed {seed}: {garbage} garbage, {len(sources)} quarantined"
