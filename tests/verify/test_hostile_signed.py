"""Validly signed hostile packages and hostile record timestamps, through the whole daemon.

The hostile-inbox suite attacks the envelope from outside: most of its records fail at opening.
Here the attacker holds a sender's signing key (an insider, or a thief): every package opens, so
its header and disclosed values reach what comes after the envelope (the kind and topic check,
the replay guard, view assembly, schema validation, the inbound policy, the store). A second
stream carries genuine packages on records whose timestamps are anything a producer may write
(the inbox re-created without LogAppendTime, the check switched off as it is for tansu).

The daemon must never stop, must never need the catch-all (reason ``internal`` would be a bug
found), must account for every record (delivered or quarantined with a known reason) and must
deliver the genuine notices around the attack exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import strategies as st

from broker import devbroker
from broker.envelope import Grant, seal
from broker.keys import BureauKeys
from broker.keys.files import load_bureau_keys
from broker.schemas import disclosure_units, non_redactable
from tests.node.helpers import Net, wait_for
from tests.verify.support import COUNTS, KNOWN_REASONS, TALLY, canary_notice, generate, settle

# Not marked e2e: the suite runs once, on noida-db, in `make unit` (`make verify`: slow profile).

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.integers()  # beyond 2**53: no canonical form, sealing refuses it (example skipped)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "IT", "FR", "red", "un", "2026-13-45", "9999-12-31T23:59:59Z", "H3"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A value nested up to 400 levels (lists or objects)."""
    value: Any = draw(SCALARS)
    for _ in range(draw(st.integers(1, 400))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


@st.composite
def wide(draw: st.DrawFn) -> list[int]:
    """A list of 4,000 to 4,200 digits. The digits come from a seeded generator: drawn one by one
    through hypothesis (``st.lists(st.integers(0, 9), min_size=4000, ...)``), they took most of
    this test's time, and what the attack needs is the width, not hypothesis' choice of digits."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    return [rng.randrange(10) for _ in range(draw(st.integers(4000, 4200)))]


HOSTILE = JSON | deep() | wide()
#: (header edits, unit edits): each edit sets one key or path to a hostile value
EDITS = st.tuples(
    st.lists(st.tuples(st.text(max_size=16), HOSTILE), max_size=3),
    st.lists(st.tuples(st.text(max_size=16), HOSTILE), max_size=3),
    st.integers(0, 2**16),
)
TIMESTAMPS = st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**40), 2**45)


def _keys_of(net: Net, cc: str) -> BureauKeys:
    return load_bureau_keys(net.configs[cc].keys.dir, cc)


def _frame(it: BureauKeys, fr: BureauKeys, notice_id: str, edits: Any) -> bytes | None:
    """A package signed by IT for FR: a canary notice with hostile header and unit edits."""
    header_edits, unit_edits, pick = edits
    notice = canary_notice(notice_id)
    header = non_redactable(notice)
    units = {u.path: u.value for u in disclosure_units(notice)}
    existing_header, existing_units = sorted(header), sorted(units)
    for i, (key, value) in enumerate(header_edits):
        # half of the edits hit a real header field, half add a new one
        header[existing_header[(pick + i) % len(existing_header)] if i % 2 == 0 else key] = value
    for i, (path, value) in enumerate(unit_edits):
        units[existing_units[(pick + i) % len(existing_units)] if i % 2 == 0 else path] = value
    try:
        sealed = seal(
            signer=it,
            kind="publish",
            notice_id=notice_id,
            notice_type="red",
            header=header,
            units=units,
            grants={"FR": Grant(frozenset(units), (), "FR@1")},
            handling="H1",
        )
        return sealed.package_for(
            "FR",
            topic="nbx.inbox.FR",
            recipient_kid=fr.encryption_key_id,
            recipient_key=fr.encryption_key.public_key(),
        )
    except (ValueError, TypeError, OverflowError):  # no canonical form: the sender cannot sign
        return None


async def _produce(bootstrap: str, records: list[tuple[bytes, int | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 << 20)
    await producer.start()
    try:
        for i in range(0, len(records), 200):
            acks = [
                await producer.send("nbx.inbox.FR", value, key=b"k", timestamp_ms=ts)
                for value, ts in records[i : i + 200]
            ]
            await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def test_signed_hostile_packages_and_record_timestamps_never_stop_the_daemon(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Hundreds of validly signed packages with generated hostile headers and disclosed values
    (deep nesting, wide lists, wrong types, odd keys), and genuine packages on records with
    generated timestamps (far past, far future, out of any date's range), between genuine
    notices: every record is delivered or quarantined with a known reason, none as
    ``internal``, the daemon keeps running and the genuine notices are stored once."""
    bootstrap = fresh_broker.bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # an inbox that keeps the producer's timestamps (re-created without LogAppendTime)
        await admin.create_topics([NewTopic("nbx.inbox.FR", 1, 1)])
    finally:
        await admin.close()
    net = Net(tmp_path, ("IT", "FR"), bootstrap, idempotence=idempotence_supported)
    it, fr_keys = _keys_of(net, "IT"), _keys_of(net, "FR")
    n = COUNTS.inbox_records // 3
    records: list[tuple[bytes, int | None]] = []
    for i, edits in enumerate(generate(EDITS, n)):
        frame = await asyncio.to_thread(_frame, it, fr_keys, f"IT-2026-S{i:05d}", edits)
        if frame is not None:
            records.append((frame, None))
    signed = len(records)
    # each time check is met at least once whatever hypothesis draws: an hour ahead of the
    # local clock, beyond any date, far in the past
    fixed = [int(time.time() * 1000) + 3_600_000, 1 << 62, -(1 << 40)]
    for i, ts in enumerate(fixed + generate(TIMESTAMPS, n // 2)):
        frame = await asyncio.to_thread(_frame, it, fr_keys, f"IT-2026-T{i:05d}", ([], [], 0))
        assert frame is not None
        records.append((frame, ts))
    timestamps = len(records) - signed
    genuine = [canary_notice(f"IT-2026-G{i:04d}") for i in range(4)]
    await net.publish("IT", genuine[0], ["FR"])
    await net.publish("IT", genuine[1], ["FR"])
    await _produce(bootstrap, records)
    await net.publish("IT", genuine[2], ["FR"])
    await net.publish("IT", genuine[3], ["FR"])
    TALLY.input("signed hostile packages", signed)
    TALLY.input("hostile record timestamps", timestamps)

    config = net.configs["FR"]
    kafka = config.kafka.model_copy(update={"require_log_append_time": False})
    net.configs["FR"] = config.model_copy(update={"kafka": kafka})
    fr = net.daemon("FR")
    total = len(records) + len(genuine)
    await net.start("FR")
    try:
        done = await wait_for(
            lambda: (
                fr.stats.delivered + fr.stats.stale + fr.stats.quarantined >= total
                or net.tasks["FR"].done()
            ),
            timeout_s=120 + total / 10,
        )
        crashed = net.tasks["FR"].done()
        stats = fr.stats
        stored = {r["notice_id"] for r in fr.sink.notices()}
    finally:
        if net.tasks["FR"].done():
            TALLY.count("crashes")
        await net.stop()
    accounted = stats.delivered + stats.stale + stats.quarantined
    settle(total, stats.delivered, stats.quarantined, lost=total - accounted, duplicated=0)
    assert not crashed, f"daemon stopped: {stats}"
    assert done, f"daemon stalled: {stats}"
    assert accounted == total, stats
    assert "internal" not in stats.reasons, stats.reasons
    assert set(stats.reasons) <= KNOWN_REASONS, stats.reasons
    assert {g.notice_id for g in genuine} <= stored
    # the timestamp stream reached every time check (near-now times are accepted)
    assert {"timestamp", "clock-skew"} <= set(stats.reasons), stats.reasons
