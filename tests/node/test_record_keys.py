"""Record keys are opaque (docs/security/metadata.md, 10a): the broker sees a keyed hash, never a
notice id, and one notice's messages to one recipient still share a key (one partition, in
order)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from broker import devbroker
from broker.keys import BureauKeys
from broker.transport.record_keys import KEY_BYTES, record_key
from tests.node.helpers import Net, example, read_topic, wait_for


def test_record_key_is_a_keyed_hash_per_sender_recipient_and_subject() -> None:
    """Deterministic for one (sender key, recipient, subject); differs when any of them differs;
    16 bytes of HMAC as unpadded base64url; the subject does not appear in it."""
    it, other = BureauKeys.generate("IT"), BureauKeys.generate("IT")
    key = record_key(it, "FR", "IT-2026-000123")
    assert key == record_key(it, "FR", "IT-2026-000123")
    assert len(base64.urlsafe_b64decode(key + b"==")) == KEY_BYTES == 16
    assert len(key) == 22
    assert b"=" not in key
    assert key != record_key(it, "DE", "IT-2026-000123")  # per recipient: no cross-topic link
    assert key != record_key(it, "FR", "IT-2026-000124")
    assert key != record_key(other, "FR", "IT-2026-000123")  # another sender secret
    assert b"IT-2026" not in key
    assert b"000123" not in key
    # (recipient, subject) is encoded without ambiguity
    assert record_key(it, "FR", "A:B") != record_key(it, "FR:A", "B")


def test_record_key_secret_is_not_the_signing_key_itself() -> None:
    """The secret is derived with HKDF under its own domain string: knowing a key proves nothing
    about the signing key, and it does not equal an HMAC keyed with the raw private key."""
    import hashlib
    import hmac

    from broker.wire.canonical import jcs

    it = BureauKeys.generate("IT")
    raw = it.signing_key.private_bytes_raw()
    naive = hmac.new(raw, jcs(["FR", "N-1"]), hashlib.sha256).digest()[:16]
    assert base64.urlsafe_b64decode(record_key(it, "FR", "N-1") + b"==") != naive


@pytest.mark.e2e
async def test_no_record_key_on_the_wire_names_the_notice(
    fresh_broker: devbroker.DevBroker, idempotence_supported: bool, tmp_path: Path
) -> None:
    """IT publishes a notice and an update to FR and DE, FR and DE answer with receipts: no key on
    an inbox or receipts topic equals or contains a notice id or a message id; the notice's two
    messages to FR share one key, FR's and DE's keys differ."""
    bootstrap = fresh_broker.bootstrap
    net = Net(tmp_path, ("IT", "FR", "DE"), bootstrap, idempotence=idempotence_supported)
    red = example("red", issuing_bureau="IT", notice_id="IT-2026-K00001")
    first = await net.publish("IT", red, ["FR", "DE"])
    update = example("red", issuing_bureau="IT", notice_id="IT-2026-K00001", version=2)
    second = await net.publish("IT", update, ["FR", "DE"])
    await net.start("FR", "DE")
    try:
        fr, de = net.daemon("FR"), net.daemon("DE")
        assert await wait_for(lambda: fr.stats.receipts_sent >= 2 and de.stats.receipts_sent >= 2)
    finally:
        await net.stop()
    fr_in = await read_topic(bootstrap, "nbx.inbox.FR", expect=2)
    de_in = await read_topic(bootstrap, "nbx.inbox.DE", expect=2)
    receipts = await read_topic(bootstrap, "nbx.receipts.IT", expect=2)
    assert len(fr_in) == len(de_in) == 2
    assert len(receipts) >= 2
    secrets = {red.notice_id, first.msg_id, second.msg_id}
    for key, _, _ in [*fr_in, *de_in, *receipts]:
        text = key.decode()
        assert all(s not in text and text not in s for s in secrets), key
        assert len(text) == 22
    assert fr_in[0][0] == fr_in[1][0]  # one notice, one recipient: one key, one partition
    assert de_in[0][0] == de_in[1][0]
    assert fr_in[0][0] != de_in[0][0]
