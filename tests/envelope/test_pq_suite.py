"""Suite 2: ML-KEM-768 + X25519 hybrid HPKE, selected by a recipient's directory key."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from broker.envelope import open_package
from broker.errors import EnvelopeRejected
from broker.keys.directory import KeyRecord
from broker.keys.hybrid import HybridEncryptionKey
from broker.wire import frame
from broker.wire.canonical import b64u
from broker.wire.suites import SUITE_MLKEM768_X25519, SUITE_X25519

from .world import OPEN_AT, T0, UNITS, World, inbox, make_world, seal_notice

if TYPE_CHECKING:
    from broker.envelope.open import VerifiedPackage
    from broker.wire.suites import RecipientPrivateKey

#: a world whose directory also lists FR's hybrid key, and that key
PQWorld = tuple[World, HybridEncryptionKey]


@pytest.fixture(scope="module")
def pq_world() -> PQWorld:
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


def _open(
    world: World, data: bytes, keys: Mapping[str, RecipientPrivateKey], **kw: Any
) -> VerifiedPackage:
    return open_package(
        data,
        topic=inbox("FR"),
        recipient="FR",
        decryption_keys=keys,
        directory=world.directory,
        now=OPEN_AT,
        **kw,
    )


def test_hybrid_key_selected_and_roundtrips(pq_world: PQWorld) -> None:
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


def test_suite_downgrade_rejected(pq_world: PQWorld) -> None:
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


def test_min_suite_refuses_suite_1_before_decrypting(pq_world: PQWorld) -> None:
    """A recipient that requires suite 2 refuses a suite-1 frame from a lagging sender (one that
    still encrypts to its X25519 key) with ``suite-too-weak``, and still opens suite 2."""
    world, hybrid = pq_world
    keys: dict[str, RecipientPrivateKey] = {
        world.keys["FR"].encryption_key_id: world.keys["FR"].encryption_key,
        hybrid.key_id: hybrid.hpke_private_key(),
    }
    old_kid, old_key = world.directory.encryption_key("FR", T0)
    lagging = seal_notice(world).package_for(
        "FR", topic=inbox("FR"), recipient_kid=old_kid, recipient_key=old_key
    )
    assert frame.decode(lagging).suite == SUITE_X25519
    assert _open(world, lagging, keys).disclosed  # suite 1 is still accepted by default
    with pytest.raises(EnvelopeRejected) as info:
        _open(world, lagging, keys, min_suite=SUITE_MLKEM768_X25519)
    assert info.value.reason == "suite-too-weak"
    kid, key = world.directory.recipient_key("FR", T0)
    current = seal_notice(world).package_for(
        "FR", topic=inbox("FR"), recipient_kid=kid, recipient_key=key
    )
    assert _open(world, current, keys, min_suite=SUITE_MLKEM768_X25519).disclosed


def test_static_directory_hands_out_the_hybrid_key() -> None:
    """The in-memory lookup gives a hybrid-only bureau's hybrid key (suite 2), a migrating
    bureau's hybrid key, a classic bureau's X25519 key, and refuses X25519 for a hybrid-only one."""
    from broker.errors import KeyDirectoryError
    from broker.keys import BureauKeys, StaticDirectory
    from broker.wire.suites import suite_for_public

    only = BureauKeys.generate("FR", pq=True)
    classic = BureauKeys.generate("IT")
    both = BureauKeys(
        "DE",
        classic.signing_key,
        BureauKeys.generate("DE").encryption_key,
        hybrid_key=only.hybrid_key,
    )
    lookup = StaticDirectory([only.public(), classic.public(), both.public()])
    assert only.hybrid_key is not None
    assert lookup.recipient_key("FR")[0] == only.hybrid_key.key_id
    assert suite_for_public(lookup.recipient_key("FR")[1]) == SUITE_MLKEM768_X25519
    assert suite_for_public(lookup.recipient_key("DE")[1]) == SUITE_MLKEM768_X25519
    assert lookup.recipient_key("IT")[0] == classic.encryption_key_id
    assert suite_for_public(lookup.recipient_key("IT")[1]) == SUITE_X25519
    with pytest.raises(KeyDirectoryError, match="no X25519"):
        lookup.encryption_key("FR")
    with pytest.raises(KeyDirectoryError, match="X25519"):
        BureauKeys("XX", classic.signing_key, None)
