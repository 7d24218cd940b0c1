"""Access checks on the real broker: confidentiality against every other bureau's keys, origin
authenticity against a recipient that forwards or forges, and what the broker operator sees."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from broker import devbroker
from broker.envelope import Grant, open_package, seal
from broker.envelope.seal import hpke_info
from broker.errors import EnvelopeRejected
from broker.keys.files import load_bureau_keys
from broker.schemas import disclosure_units, non_redactable
from broker.wire import frame
from broker.wire.suites import HPKE_SUITES
from tests.node.helpers import Net, read_topic, wait_for
from tests.verify.support import (
    TALLY,
    canary_hits,
    canary_notice,
    decrypt_as,
    encrypt_to,
    produce_raw,
    read_all,
    resigned,
    settle,
    statement_of,
    topics,
)

# Not marked e2e: the suite runs once, on noida-db, in `make unit` (`make verify`: slow profile).
BUREAUS = ("IT", "FR", "DE", "ES")


async def test_no_other_bureau_can_decrypt_an_inbox_even_with_all_their_keys(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Every record on FR's inbox is tried with the private keys of every other bureau (the
    sender included), alone and all together, under every recipient/topic binding: HPKE never
    opens, and opening as FR with their keys is always 'decrypt'."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, BUREAUS, bootstrap, idempotence=idempotence_supported)
    for i in range(3):
        await net.publish("IT", canary_notice(f"IT-2026-A{i:03d}"), "all")
    frames = [v for _, v, _ in await read_topic(bootstrap, "nbx.inbox.FR", expect=3)]
    keys = {cc: load_bureau_keys(net.configs[cc].keys.dir, cc) for cc in BUREAUS}
    others = [keys[cc] for cc in BUREAUS if cc != "FR"]
    tries = 0
    for data in frames:
        parsed = frame.decode(data)
        suite = HPKE_SUITES[parsed.suite]
        for k, (recipient, topic) in itertools.product(
            others, itertools.product(BUREAUS, [f"nbx.inbox.{cc}" for cc in BUREAUS])
        ):
            for kid in {parsed.recipient_kid, k.encryption_key_id}:
                tries += 1
                with pytest.raises(InvalidTag):
                    suite.decrypt(
                        parsed.ciphertext,
                        k.encryption_key,
                        info=hpke_info(topic, recipient, kid, parsed.suite),
                    )
        all_keys = {parsed.recipient_kid: others[0].encryption_key}
        all_keys |= {k.encryption_key_id: k.encryption_key for k in others}
        for k in others:
            for recipient in ("FR", k.bureau):
                tries += 1
                with pytest.raises(EnvelopeRejected) as info:
                    open_package(
                        data,
                        topic="nbx.inbox.FR",
                        recipient=recipient,
                        decryption_keys=all_keys | {parsed.recipient_kid: k.encryption_key},
                        directory=net.daemon("FR").directory,
                    )
                assert info.value.reason == "decrypt"
    TALLY.input("foreign-key decryption attempts", tries)


async def test_a_recipient_cannot_make_a_notice_appear_to_come_from_another_bureau(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR, holding its own keys and a genuine package from IT, forges records for DE: IT's
    package re-encrypted for DE, with edits re-signed by FR, or signed by FR under IT's name and
    key id. DE's daemon delivers none of them, and DE's store holds only IT's genuine notice."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR", "DE"), bootstrap, idempotence=idempotence_supported)
    notice = canary_notice("IT-2026-F001")
    await net.publish("IT", notice, ["FR", "DE"])
    genuine = (await read_topic(bootstrap, "nbx.inbox.FR", expect=1))[0][1]
    fr = load_bureau_keys(net.configs["FR"].keys.dir, "FR")
    de = load_bureau_keys(net.configs["DE"].keys.dir, "DE")
    package = decrypt_as(fr, genuine)
    statement = statement_of(package)
    forged_stmt = dict(statement, created_at=statement["created_at"])
    forgeries = [
        json.dumps(package).encode(),  # IT's package for FR, forwarded to DE
        json.dumps(resigned(package, forged_stmt, fr.signing_key)).encode(),
        json.dumps(
            resigned(package, dict(statement, sender_kid=fr.signing_key_id), fr.signing_key)
        ).encode(),
    ]
    values = [encrypt_to(de, f) for f in forgeries]
    await produce_raw(bootstrap, [("nbx.inbox.DE", b"f", v, []) for v in values])
    TALLY.input("forged origin records", len(values))
    await net.start("DE")
    d = net.daemon("DE")
    try:
        assert await wait_for(lambda: d.stats.delivered + d.stats.quarantined >= 1 + len(values))
        rows = d.sink.notices()
    finally:
        await net.stop()
    settle(1 + len(values), d.stats.delivered, d.stats.quarantined, 0, 0)
    assert d.stats.delivered == 1, d.stats.reasons
    assert d.stats.quarantined == len(values), d.stats.reasons
    assert [(r["sender"], r["notice_id"]) for r in rows] == [("IT", notice.notice_id)]


async def test_a_notice_claiming_another_issuing_bureau_is_not_delivered(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """FR signs (with its own key, validly) a red notice whose issuing_bureau is IT and whose
    notice id is IT's. The stored view would say 'issued by IT' although IT never signed it:
    DE must not deliver it (the issuing bureau must be the signer)."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR", "DE"), bootstrap, idempotence=idempotence_supported)
    notice = canary_notice("IT-2026-F002")
    fr = load_bureau_keys(net.configs["FR"].keys.dir, "FR")
    de = load_bureau_keys(net.configs["DE"].keys.dir, "DE")
    units = {u.path: u.value for u in disclosure_units(notice)}
    sealed = seal(
        signer=fr,
        kind="publish",
        notice_id=notice.notice_id,
        notice_type="red",
        header=non_redactable(notice),
        units=units,
        grants={"DE": Grant(frozenset(units), (), "DE@1")},
        handling="H1",
    )
    impostor = sealed.package_for(
        "DE",
        topic="nbx.inbox.DE",
        recipient_kid=de.encryption_key_id,
        recipient_key=de.encryption_key.public_key(),
    )
    await net.ensure_topics("DE")
    await produce_raw(bootstrap, [("nbx.inbox.DE", notice.notice_id.encode(), impostor, [])])
    TALLY.input("forged origin records")
    await net.start("DE")
    d = net.daemon("DE")
    try:
        assert await wait_for(lambda: d.stats.delivered + d.stats.quarantined >= 1)
        rows = d.sink.notices()
    finally:
        await net.stop()
    assert d.stats.delivered == 0, [(r["sender"], r["notice_id"]) for r in rows]
    assert d.stats.reasons == {"origin-mismatch": 1}


async def test_the_broker_operator_sees_only_the_minimal_header(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """Raw access to every nbx.* topic (confluent-kafka): inbox and receipt records are keyed by
    an opaque keyed hash that names no notice; headers are only nbx-format and nbx-kid (plus
    nbx-reason/nbx-source in quarantine); the clear part of each value is the frame head (magic,
    version, suite, key id); no name, notice type, sender, charge or other content appears."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR", "DE"), bootstrap, idempotence=idempotence_supported)
    await net.start("FR", "DE", "IT")
    try:
        notices = [canary_notice(f"IT-2026-O{i:03d}") for i in range(3)]
        for n in notices:
            await net.publish("IT", n, "all")
        assert await wait_for(lambda: net.daemon("FR").stats.delivered == 3)
        assert await wait_for(lambda: net.daemon("IT").stats.receipts_received >= 6)
    finally:
        await net.stop()
    allowed = {"nbx-format", "nbx-kid"}
    seen = 0
    ids = {n.notice_id.encode() for n in notices}
    for topic in [t for t in await asyncio.to_thread(topics, bootstrap) if t.startswith("nbx.")]:
        if topic.startswith("nbx.quarantine."):
            continue
        for key, value, headers in await asyncio.to_thread(read_all, bootstrap, topic):
            if topic == "nbx.directory":
                continue
            seen += 1
            names = {h for h, _ in headers}
            assert names <= allowed, (topic, names)
            parsed = frame.decode(value)
            assert value.endswith(parsed.ciphertext)
            assert len(value) - len(parsed.ciphertext) == 7 + len(parsed.recipient_kid)
            assert not canary_hits(value)
            assert not canary_hits(key)
            for word in (b"red", b'"sender"', b"IT-2026", b"ROSSETTI", b"fraud"):
                assert word not in value[: len(value) - len(parsed.ciphertext)]
            # inbox and receipts: an opaque keyed hash, never a notice or message id
            assert len(key) == 22
            assert not any(key in i or i in key for i in ids)
    TALLY.input("wire records checked for minimal header", seen)
    assert seen >= 8  # 6 inbox records + at least one receipt message each from FR and DE
