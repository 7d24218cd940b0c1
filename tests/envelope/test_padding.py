"""Frame padding (docs/security/metadata.md, 10b): frame sizes take only bucket values, so notices
of different types and differently redacted views in one bucket are indistinguishable by size."""

from __future__ import annotations

from typing import Any

import pytest

from broker.envelope import Grant, seal
from broker.envelope.open import MAX_FRAME_BYTES, UnverifiedPackage
from broker.envelope.seal import PAD_MIN, PAD_STEP, bucket_sizes, padded_size
from broker.keys.hybrid import HybridEncryptionKey
from broker.schemas import disclosure_units, non_redactable
from broker.wire import frame
from tests.node.helpers import example

from .world import DE_GRANT, FR_GRANT, T0, decrypt, make_world, open_as, package, seal_notice

BUCKETS = bucket_sizes(MAX_FRAME_BYTES)


def test_buckets_are_powers_of_two_then_multiples_of_64k_up_to_the_cap() -> None:
    """1, 2, 4 ... 64 KiB, then 128, 192 ... KiB, the cap last; never above the cap."""
    assert BUCKETS[:7] == [1024, 2048, 4096, 8192, 16384, 32768, 65536]
    assert BUCKETS[7:9] == [2 * PAD_STEP, 3 * PAD_STEP]
    assert BUCKETS[-1] == MAX_FRAME_BYTES
    assert bucket_sizes(100_000) == [*BUCKETS[:7], 100_000]
    for size in (1, 700, 1024, 1025, 40_000, 65_537, 300_000, MAX_FRAME_BYTES):
        padded = padded_size(size, MAX_FRAME_BYTES)
        assert padded in BUCKETS
        assert size <= padded <= MAX_FRAME_BYTES
        # the smallest bucket that fits
        assert next(b for b in BUCKETS if b >= size) == padded
    assert padded_size(PAD_MIN - 10, 5000) == PAD_MIN
    assert padded_size(4000, 3000) == 4000  # already over the cap: left alone (refused anyway)
    assert padded_size(2500, 3000) == 3000  # the cap is the last bucket


def _notice_frame(
    world: Any, name: str, keep: int | None = None, recipient: str = "FR"
) -> tuple[bytes, int]:
    """The frame of example notice ``name`` with its first ``keep`` units disclosed (all if
    None), and the length of its unpadded package."""
    notice = example(name)
    units = {u.path: u.value for u in disclosure_units(notice)}
    disclosed = frozenset(sorted(units)[:keep])
    sealed = seal(
        signer=world.keys["IT"],
        kind="publish",
        notice_id=notice.notice_id,
        notice_type=str(notice.notice_type),
        header=non_redactable(notice),
        units=units,
        grants={recipient: Grant(disclosed, (), "FR@1")},
        handling="H1",
        now=T0,
    )
    return package(world, sealed, recipient), len(sealed.plaintext_for(recipient))


def test_red_and_yellow_notice_frames_have_equal_sizes_in_one_bucket() -> None:
    """A yellow notice fully disclosed and a red notice redacted into the same bucket (the
    largest prefix of its units that fits): different plaintext sizes, one frame size. Fully
    disclosed, the red notice is a bucket larger."""
    world = make_world()
    yellow, yellow_plain = _notice_frame(world, "yellow")
    red_full, _ = _notice_frame(world, "red")
    assert len(red_full) in BUCKETS
    assert len(red_full) > len(yellow)
    n_red = len(disclosure_units(example("red")))
    keep = next(
        k for k in range(n_red, 0, -1) if len(_notice_frame(world, "red", k)[0]) <= len(yellow)
    )
    red, red_plain = _notice_frame(world, "red", keep)
    assert red_plain != yellow_plain
    assert len(red) == len(yellow)
    assert len(red) in BUCKETS
    assert open_as(world, red).notice_type == "red"
    assert open_as(world, yellow).notice_type == "yellow"


def test_two_redacted_views_have_equal_frame_sizes() -> None:
    """FR's redacted view and DE's full view of one message: different plaintexts, one size."""
    world = make_world()
    sealed = seal_notice(world)
    assert len(sealed.plaintext_for("FR")) != len(sealed.plaintext_for("DE"))
    fr, de = package(world, sealed, "FR"), package(world, sealed, "DE")
    assert len(fr) == len(de)
    assert len(fr) in BUCKETS
    assert open_as(world, fr).withheld == FR_GRANT.withheld
    assert set(open_as(world, de, "DE").disclosed) == DE_GRANT.disclosed


def test_padding_is_json_whitespace_the_previous_strict_parse_accepts() -> None:
    """The padded plaintext is the package JSON followed by spaces: the unchanged strict model
    of the previous release parses it to the same package."""
    world = make_world()
    sealed = seal_notice(world)
    data = package(world, sealed, "FR")
    from broker.envelope.seal import hpke_info
    from broker.wire.suites import HPKE_SUITES

    parsed = frame.decode(data)
    keys = world.keys["FR"]
    info = hpke_info("nbx.inbox.FR", "FR", parsed.recipient_kid, parsed.suite)
    plaintext = HPKE_SUITES[parsed.suite].decrypt(parsed.ciphertext, keys.encryption_key, info=info)
    unpadded = sealed.plaintext_for("FR")
    assert plaintext.startswith(unpadded)
    assert set(plaintext[len(unpadded) :]) == {ord(" ")}
    assert UnverifiedPackage.model_validate_json(plaintext) == (
        UnverifiedPackage.model_validate_json(unpadded)
    )
    assert decrypt(world, data)["policy"] == FR_GRANT.policy


@pytest.mark.parametrize("cap", [PAD_MIN, 1500, 3000])
def test_padding_never_pushes_a_frame_over_the_cap(cap: int) -> None:
    """A frame is padded to its bucket, to the cap at most; a frame already over the cap is not
    padded at all (and is refused as too-large by receivers with that limit)."""
    world = make_world()
    keys = world.keys["FR"]
    # header, key id, X25519 encapsulated key, AES-GCM tag: the frame around the package
    overhead = 7 + len(keys.encryption_key_id) + 32 + 16
    for value in ("ROSSI", "X" * 600, "X" * 2000):
        units = {"person.family_name": value}
        sealed = seal(
            signer=world.keys["IT"],
            kind="notice",
            notice_id="N-1",
            notice_type="red",
            header={},
            units=units,
            grants={"FR": Grant(frozenset(units), (), "FR@1")},
            handling="H1",
            now=T0,
        )
        data = sealed.package_for(
            "FR",
            topic="nbx.inbox.FR",
            recipient_kid=keys.encryption_key_id,
            recipient_key=keys.encryption_key.public_key(),
            max_frame_bytes=cap,
        )
        natural = overhead + len(sealed.plaintext_for("FR"))
        if natural > cap:
            assert len(data) == natural  # no padding at all
        else:
            assert len(data) <= cap
            assert len(data) in bucket_sizes(cap)
            assert open_as(world, data, max_size=cap).msg_id == sealed.msg_id


def test_hybrid_suite_frames_take_bucket_sizes_too() -> None:
    """Suite 2's larger encapsulated key is accounted for: its frames are bucket sizes."""
    world = make_world()
    sealed = seal_notice(world)
    hybrid = HybridEncryptionKey.generate()
    data = sealed.package_for(
        "FR",
        topic="nbx.inbox.FR",
        recipient_kid=hybrid.key_id,
        recipient_key=hybrid.hpke_public_key(),
    )
    assert frame.decode(data).suite == 2
    assert len(data) in BUCKETS
    assert len(data) > len(package(world, sealed, "FR"))  # the same package, a larger bucket
