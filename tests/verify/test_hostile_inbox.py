"""Hostile Kafka records on a bureau's inbox and receipts topics.

Anyone who can write to ``nbx.inbox.FR`` can send anything: noise, mutated genuine frames,
validly encrypted garbage, re-signed and edited packages, frames for another bureau, replays,
oversized and empty values, odd keys and headers. The daemon must never crash, never deliver one,
and quarantine each with a known reason code; genuine notices around them are delivered once.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import strategies as st

from broker import devbroker
from broker.keys.files import load_bureau_keys
from tests.node.helpers import STALL_S, Net, read_topic, wait_until_idle
from tests.verify.support import (
    COUNTS,
    KNOWN_REASONS,
    TALLY,
    canary_notice,
    decrypt_as,
    encrypt_to,
    generate,
    produce_raw,
    read_all,
    resigned,
    settle,
    statement_of,
)

# Not marked e2e: the suite runs once, on noida-db, in `make unit` (`make verify`: slow profile).

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=16,
)
HEADERS = st.lists(st.tuples(st.text(max_size=16), st.binary(max_size=48)), max_size=4)
KEYS = st.none() | st.binary(max_size=40)
EDIT = st.lists(
    st.tuples(st.integers(0, 1 << 16), st.integers(0, 255), st.sampled_from("rid")),
    min_size=1,
    max_size=6,
)
LIMIT = 64 * 1024  # the daemon's frame limit in this test (the broker's record limit is ~1 MiB)
PACKAGE_FIELDS = ("statement", "signature", "disclosures", "withheld", "policy")


def _mutate(frame: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    data = bytearray(frame)
    for pos, value, op in edits:
        pos %= max(len(data), 1)
        if op == "r" and data:
            data[pos] = value
        elif op == "i":
            data.insert(pos, value)
        elif data:
            del data[pos]
    return bytes(data)


#: the daemon is stalled (a bug, not a slow machine) when neither its counts nor its group's
class Corpus:
    """Builds hostile values from genuine frames, FR's public key and an insider's keys."""

    def __init__(self, fr_keys: Any, genuine: bytes, for_de: bytes, signers: list[Any]) -> None:
        self.fr = fr_keys
        self.genuine = genuine
        self.for_de = for_de
        self.package = decrypt_as(fr_keys, genuine)
        self.statement = statement_of(self.package)
        self.signers = signers

    def noise(self, data: bytes) -> bytes:
        return data

    def mutated(self, edits: list[tuple[int, int, str]]) -> bytes | None:
        out = _mutate(self.genuine, edits)
        return None if out == self.genuine else out

    def encrypted_json(self, value: Any) -> bytes:
        return encrypt_to(self.fr, json.dumps(value).encode())

    def encrypted_bytes(self, value: bytes) -> bytes:
        return encrypt_to(self.fr, value)

    def package_edit(self, args: tuple[str, Any]) -> bytes | None:
        name, value = args
        package = dict(self.package)
        if package.get(name) == value:
            return None
        package[name] = value
        return encrypt_to(self.fr, json.dumps(package).encode())

    def statement_edit(self, args: tuple[str, Any, int]) -> bytes | None:
        name, value, signer = args
        statement = dict(self.statement)
        if statement.get(name) == value and signer == 0:
            return None
        statement[name] = value
        try:
            package = resigned(self.package, statement, self.signers[signer])
        except (TypeError, ValueError):
            return None
        return encrypt_to(self.fr, json.dumps(package).encode())


async def test_hostile_records_are_quarantined_never_delivered(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Thousands of generated hostile records (10,000 in the slow profile) between genuine
    notices on FR's inbox and receipts topics: the daemon keeps running, delivers exactly the
    genuine notices, and quarantines every hostile record with a known reason code, raw bytes
    kept, one quarantine record each."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR", "DE"), bootstrap, idempotence=idempotence_supported)
    first = [canary_notice(f"IT-2026-H{i:04d}") for i in range(3)]
    last = [canary_notice(f"IT-2026-H{i:04d}") for i in range(3, 5)]
    for notice in first:
        await net.publish("IT", notice, ["FR", "DE"])
    genuine = (await read_topic(bootstrap, "nbx.inbox.FR", expect=3))[0][1]
    for_de = (await read_topic(bootstrap, "nbx.inbox.DE", expect=3))[0][1]
    fr_keys = load_bureau_keys(net.configs["FR"].keys.dir, "FR")
    it_keys = load_bureau_keys(net.configs["IT"].keys.dir, "IT")
    signers = [ed25519.Ed25519PrivateKey.generate(), fr_keys.signing_key, it_keys.signing_key]
    corpus = Corpus(fr_keys, genuine, for_de, signers)

    n = COUNTS.inbox_records
    fixed: list[bytes | None] = [
        b"",
        None,
        genuine,  # a replay of a delivered record
        genuine,
        for_de,  # a frame for DE moved to FR's inbox
        genuine[:7],
        genuine[:-1],
        genuine + b"\x00",
        b"\x00" * (LIMIT + 1),  # one byte over the frame limit
        genuine + b"\x00" * (LIMIT - len(genuine) + 1),
        encrypt_to(fr_keys, b"{}" * 10),
    ]
    stmt_keys = sorted(corpus.statement)
    plans: list[tuple[Any, Any, int]] = [
        (corpus.noise, st.binary(max_size=4096), n * 25 // 100),
        (corpus.mutated, EDIT, n * 25 // 100),
        (corpus.encrypted_json, JSON, n * 15 // 100),
        (corpus.encrypted_bytes, st.binary(max_size=512), n * 5 // 100),
        (
            corpus.package_edit,
            st.tuples(st.sampled_from(PACKAGE_FIELDS), JSON),
            n * 15 // 100,
        ),
        (
            corpus.statement_edit,
            st.tuples(st.sampled_from(stmt_keys), JSON, st.integers(0, len(signers) - 1)),
            n * 15 // 100,
        ),
    ]
    values: list[bytes | None] = list(fixed)
    for build, strategy, count in plans:
        for drawn in generate(strategy, count):
            value = build(drawn)
            if value is not None:
                values.append(value)
    rng = random.Random(n)
    while len(values) < n:  # top up with corpus mutations if hypothesis ran out of new examples
        out = corpus.mutated([(rng.randrange(1 << 16), rng.randrange(256), "r")])
        if out is not None:
            values.append(out)
    headers = generate(HEADERS, 500) or [[]]
    keys = generate(KEYS, 200) or [None]
    records = []
    for i, value in enumerate(values):
        topic = "nbx.receipts.FR" if i % 20 == 7 else "nbx.inbox.FR"
        h = headers[i % len(headers)]
        records.append((topic, keys[i % len(keys)], value, h))
    rng.shuffle(records)
    await net.ensure_topics("FR")
    await produce_raw(bootstrap, records)
    for notice in last:
        await net.publish("IT", notice, ["FR"])
    hostile = len(records)
    TALLY.input("inbox record values", hostile)
    TALLY.input("inbox record headers", sum(1 for r in records if r[3]))
    TALLY.input("inbox record keys", hostile)

    fr = net.daemon("FR")
    fr.max_frame_bytes = LIMIT
    await net.start("FR")
    genuine_count = len(first) + len(last)
    try:
        # idle, not a deadline: the group's commits reach the end of both topics
        done = await wait_until_idle(
            fr, net.tasks["FR"], bootstrap, "nbx.FR", ("nbx.inbox.FR", "nbx.receipts.FR")
        )
        crashed = net.tasks["FR"].done()
        if crashed:
            TALLY.count("crashes")
        stored = {r["notice_id"] for r in fr.sink.notices()}
        stats = fr.stats
    finally:
        await net.stop()
    delivered = stats.delivered
    settle(
        genuine_count + hostile,
        delivered,
        stats.quarantined,
        lost=genuine_count + hostile - delivered - stats.quarantined,
        duplicated=max(0, delivered - genuine_count),
    )
    assert not crashed, f"daemon stopped: {stats}"
    assert done, f"daemon stalled (no progress for {STALL_S:g} s): {stats}"
    assert stored == {x.notice_id for x in first + last}
    assert delivered == genuine_count, stats
    assert stats.quarantined == hostile, stats
    assert set(stats.reasons) <= KNOWN_REASONS, stats.reasons
    quarantined = await asyncio.to_thread(read_all, bootstrap, "nbx.quarantine.FR", expect=hostile)
    assert len(quarantined) == hostile
    for _key, _value, hdrs in quarantined:
        h = dict(hdrs)
        assert h["nbx-reason"].decode() in KNOWN_REASONS
        assert h["nbx-source"].startswith(b"nbx.")
