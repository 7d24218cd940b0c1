"""SIGKILL on a PostgreSQL store (issue 23, ``make verify``): FR's daemon keeps its store in a
PostgreSQL database and is SIGKILLed at random points (seeded) while IT publishes canary notices
and a stranger writes garbage into FR's inbox. After a final drain every notice is stored exactly
once (0 lost, 0 duplicated) and every garbage record was quarantined; the counts go into the
session tally like those of tests/verify/test_faults.py, whose scenario this is."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import devbroker
from tests.verify.support import COUNTS
from tests.verify.test_faults import _sigkill_run

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
    await _sigkill_run(
        run, fresh_broker.bootstrap, idempotence_supported, tmp_path, store_url=pg_url
    )
