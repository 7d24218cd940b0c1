"""Leak checks: canary personal data planted in the test notices never appears on the wire (read
by an independent Kafka client, confluent-kafka/librdkafka), in any log line, in the quarantine
topic, or in an error message."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from broker import devbroker
from broker.envelope import Grant, seal
from broker.errors import EnvelopeRejected
from broker.keys.files import load_bureau_keys
from broker.sinks.audit import Access
from tests.node.helpers import Net, read_topic, wait_for
from tests.verify.support import (
    CANARIES,
    LOGS,
    TALLY,
    audit_canary_hits,
    audit_log_text,
    canary,
    canary_hits,
    canary_notice,
    encrypt_to,
    produce_raw,
    read_all,
    topics,
    wire_findings,
)

# Not marked e2e: the suite runs once, on noida-db, in `make unit` (`make verify`: slow profile).


async def test_no_canary_on_any_topic_in_any_log_or_quarantine_record(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """IT, FR and DE exchange canary-laden notices, updates, a cancel and receipts; a replay and
    a schema-invalid package full of canaries are quarantined by FR. Then every record on every
    nbx.* topic (keys, values and headers, read with confluent-kafka), every captured log line,
    the quarantine records and the rejection messages are searched: no canary anywhere."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR", "DE"), bootstrap, idempotence=idempotence_supported)
    await net.start("IT", "FR", "DE")
    results = []
    try:
        notices = [canary_notice(f"IT-2026-L{i:03d}") for i in range(4)]
        for n in notices:
            results.append(await net.publish("IT", n, "all"))
        results.append(await net.publish("FR", canary_notice("FR-2026-L001", sender="FR"), "all"))
        results.append(
            await net.publish("IT", canary_notice("IT-2026-Y000", name="yellow"), ["FR"])
        )
        async with net.publisher("IT") as pub:
            cancel = await pub.lifecycle(
                "cancel",
                notices[0].notice_id,
                "red",
                ["FR", "DE"],
                details={"notice_id": notices[0].notice_id, "reason": "test"},
            )
            results.append(cancel)
        fr, de = net.daemon("FR"), net.daemon("DE")
        assert await wait_for(lambda: fr.stats.delivered + fr.stats.purged >= 6, timeout_s=90), (
            fr.stats,
            de.stats,
        )
        # a replay of a genuine record: FR decrypts it, then quarantines the raw bytes
        key, value, _ = (await read_topic(bootstrap, "nbx.inbox.FR", expect=1))[0]
        # a package that opens (signed by IT, addressed to FR) but fails the schema, all canaries
        it = load_bureau_keys(net.configs["IT"].keys.dir, "IT")
        frk = load_bureau_keys(net.configs["FR"].keys.dir, "FR")
        units = {"person.family_name": canary("BAD"), "person.date_of_birth": canary("DOB")}
        sealed = seal(
            signer=it,
            kind="publish",
            notice_id="IT-2026-LBAD",
            notice_type="red",
            header={"notice_id": "IT-2026-LBAD", "notice_type": "red", "issuing_bureau": "IT"},
            units=units,
            grants={"FR": Grant(frozenset(units), (), "FR@1")},
            handling="H1",
        )
        bad = sealed.package_for(
            "FR",
            topic="nbx.inbox.FR",
            recipient_kid=frk.encryption_key_id,
            recipient_key=frk.encryption_key.public_key(),
        )
        # a validly encrypted plaintext made of canaries (malformed once decrypted)
        junk = encrypt_to(frk, json.dumps({"statement": canary("JUNK")}).encode())
        before = fr.stats.quarantined
        await produce_raw(
            bootstrap,
            [
                ("nbx.inbox.FR", key, value, []),
                ("nbx.inbox.FR", b"x", bad, []),
                ("nbx.inbox.FR", b"y", junk, []),
            ],
        )
        assert await wait_for(lambda: fr.stats.quarantined >= before + 3, timeout_s=60)
        assert de.stats.delivered >= 5
        # consultations: a read of a canary notice's view is an audit entry (ids, no data)
        for sink in (fr.sink, de.sink):
            shown = sink.notice(notices[1].notice_id, Access("officer-1", "case check 2026/7"))
            assert shown is not None
            assert canary_hits(json.dumps(shown))  # the view itself holds the canaries
        # every receipt answered reaches its sender (the wire scan below includes them)
        daemons = [net.daemon(cc) for cc in ("IT", "FR", "DE")]
        assert await wait_for(
            lambda: (
                de.stats.purged >= 1
                and sum(d.stats.receipts_received for d in daemons)
                == sum(d.stats.receipts_sent for d in daemons)
            ),
            timeout_s=60,
        ), [d.stats for d in daemons]
    finally:
        await net.stop()
    # every node's audit log (entries and signed checkpoints): ids and codes, no canary
    audit_hits: list[str] = []
    for cc in ("IT", "FR", "DE"):
        store = net.configs[cc].sink_path()
        assert "consultation" in audit_log_text(store) or cc == "IT"
        audit_hits += audit_canary_hits(store)
    TALLY.count("canary hits", len(audit_hits))
    assert not audit_hits, f"canaries in an audit log: {audit_hits[:5]}"

    hits: list[str] = []
    records = 0
    names = await asyncio.to_thread(topics, bootstrap)
    nbx_topics = [t for t in names if t.startswith("nbx.")]
    assert {"nbx.inbox.FR", "nbx.receipts.IT", "nbx.quarantine.FR"} <= set(nbx_topics)
    # record keys, headers and sizes of what NBX wrote (not the three records injected above)
    secrets = {r.notice_id for r in results} | {r.msg_id for r in results} | {"IT-2026-LBAD"}
    injected = {b"x", b"y"}
    written: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
    for topic in nbx_topics:
        got = await asyncio.to_thread(read_all, bootstrap, topic)
        for k, v, headers in got:
            records += 1
            hits += canary_hits(k) + canary_hits(v)
            for name, hv in headers:
                hits += canary_hits(name) + canary_hits(hv or b"")
        if topic.startswith(("nbx.inbox.", "nbx.receipts.")):
            written += [r for r in got if r[0] not in injected]
    TALLY.input("wire records scanned for canaries", records)
    TALLY.input("wire records scanned for keys, headers and sizes", len(written))
    assert len(written) > 15
    assert len({len(v) for _, v, _ in written}) < len(written)  # sizes collapse onto buckets
    wire = wire_findings(written, secrets=secrets, cap=net.configs["IT"].limits.max_frame_bytes)
    assert not wire, f"the broker learns more than it should: {sorted(set(wire))[:5]}"
    # the rejection messages a daemon or operator could see
    from broker.envelope import open_package

    messages = []
    for data in (bad, junk, value):
        try:
            open_package(
                data,
                topic="nbx.inbox.DE",
                recipient="DE",
                decryption_keys={frk.encryption_key_id: frk.encryption_key},
                directory=net.daemon("FR").directory,
            )
        except EnvelopeRejected as exc:
            messages.append(str(exc) + repr(exc))
    hits += canary_hits("\n".join(messages))
    log_hits = canary_hits(LOGS.text())
    TALLY.count("canary hits", len(hits))
    assert len(CANARIES) > 20
    assert records > 20
    assert not hits, f"canaries on the wire or in error messages: {sorted(set(hits))[:5]}"
    assert not log_hits, f"canaries in the logs: {log_hits[:5]}"
    reasons = [
        dict(h)["nbx-reason"]
        for _, _, h in await asyncio.to_thread(read_all, bootstrap, "nbx.quarantine.FR", expect=3)
    ]
    assert {b"replay", b"schema", b"malformed"} <= set(reasons)
