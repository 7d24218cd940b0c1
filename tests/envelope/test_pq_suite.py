"""Suite 2: ML-KEM-768 + X25519 hybrid HPKE, selected by a recipient's directory key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.envelope import frame, open_package
from broker.envelope.canonical import b64u
from broker.envelope.suites import SUITE_MLKEM768_X25519
from broker.errors import EnvelopeRejected
from broker.keys.directory import KeyRecord
from broker.keys.hybrid import HybridEncryptionKey

from .world import OPEN_AT, T0, UNITS, inbox, make_world, seal_notice


@pytest.fixture(scope="module")
def pq_world():
    world = make_world()
    hybrid = HybridEncryptionKey.generate()
    fr = next(b for b in world.body.bureaus if b.id == "FR")
    record = KeyRecord(
        kid=hybrid.key_id,
        use="encrypt",
        alg="MLKEM768-X25519",
        public=b64u(hybrid.public_bytes()),
        not_before=T0 - timedelta(hours=1),
    )
    bureaus = [
        b.model_copy(update={"keys": (*b.keys, record)}) if b.id == "FR" else b
        for b in world.body.bureaus
    ]
    assert fr in world.body.bureaus
    body = world.body.model_copy(
        update={"serial": world.body.serial + 1, "bureaus": tuple(bureaus)}
    )
    world.resign_directory(type(body).model_validate(body.to_json()))
    return world, hybrid


def _open(world, data, keys, **kw):
    return open_package(
        data,
        topic=inbox("FR"),
        recipient="FR",
        decryption_keys=keys,
        directory=world.directory,
        now=OPEN_AT,
        **kw,
    )


def test_hybrid_key_selected_and_roundtrips(pq_world):
    """The directory hands out FR's newer hybrid key; the frame names suite 2 and opens."""
    world, hybrid = pq_world
    kid, key = world.directory.recipient_key("FR", T0)
    assert kid == hybrid.key_id
    data = seal_notice(world).package_for(
        "FR", topic=inbox("FR"), recipient_kid=kid, recipient_key=key
    )
    assert frame.decode(data).suite == SUITE_MLKEM768_X25519
    got = _open(world, data, {kid: hybrid.hpke_private_key()})
    assert got.disclosed["person.family_name"] == UNITS["person.family_name"]


def test_suite_downgrade_rejected(pq_world):
    """Relabelling a suite-2 frame as suite 1 fails: the suite must match the key and is in info."""
    world, hybrid = pq_world
    kid, key = world.directory.recipient_key("FR", T0)
    data = bytearray(
        seal_notice(world).package_for(
            "FR", topic=inbox("FR"), recipient_kid=kid, recipient_key=key
        )
    )
    data[5] = 1
    with pytest.raises(EnvelopeRejected) as info:
        _open(world, bytes(data), {kid: hybrid.hpke_private_key()})
    assert info.value.reason == "decrypt"
    with pytest.raises(EnvelopeRejected) as info:
        _open(world, bytes(data), {kid: world.keys["FR"].encryption_key})
    assert info.value.reason == "decrypt"
