"""Time, ids and bounds at the envelope (docs/security/receive-path.md).

A key thief chooses ``created_at``, ``expires_at`` and the msg id; a topic that keeps the
producer's timestamps lets him choose the receive time too. Every signed structure is bounded in
depth and size so that no validly signed package can exhaust the code after :func:`open_package`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from broker.envelope.open import MAX_CLOCK_SKEW, MAX_ENTRIES, MAX_NESTING, MAX_VALIDITY
from broker.ids import uuid7, uuid7_time_ms
from broker.keys.directory_edit import revoke_key

from .world import (
    DE_GRANT,
    FR_GRANT,
    T0,
    UNITS,
    World,
    make_world,
    open_as,
    package,
    seal_notice,
)


def reason(world: World, data: bytes, **kwargs: Any) -> str:
    """The rejection reason for ``data`` opened by FR."""
    from broker.errors import EnvelopeRejected

    with pytest.raises(EnvelopeRejected) as exc:
        open_as(world, data, **kwargs)
    return exc.value.reason


def nested(depth: int) -> Any:
    """A JSON value ``depth`` lists deep."""
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


# --- validity -------------------------------------------------------------------------------


def test_statement_may_claim_at_most_the_maximum_validity() -> None:
    """A statement valid for MAX_VALIDITY opens; one day longer is refused as ``validity``
    (a stolen key cannot mint messages that stay acceptable for ten years)."""
    world = make_world()
    ok = package(world, seal_notice(world, validity=MAX_VALIDITY))
    assert open_as(world, ok).sender == "IT"
    long = package(world, seal_notice(world, validity=MAX_VALIDITY + timedelta(days=1)))
    assert reason(world, long) == "validity"
    decade = package(world, seal_notice(world, validity=timedelta(days=3650)))
    assert reason(world, decade) == "validity"


def test_receive_time_ahead_of_local_time_is_refused() -> None:
    """The broker's receive time may be at most MAX_CLOCK_SKEW ahead of the local clock."""
    world = make_world()
    data = package(world, seal_notice(world))
    now = T0 + timedelta(minutes=10)
    assert open_as(world, data, now=now, received_at=now + MAX_CLOCK_SKEW).sender == "IT"
    ahead = now + MAX_CLOCK_SKEW + timedelta(seconds=1)
    assert reason(world, data, now=now, received_at=ahead) == "clock-skew"


def test_back_dated_statement_and_record_do_not_escape_a_revocation() -> None:
    """The thief of a revoked key back-dates created_at and (on a topic that keeps producer
    time) the record timestamp to before the revocation: refused, because the revocation is also
    checked at the time of opening."""
    world = make_world()
    revoked_at = T0 + timedelta(hours=1)
    world.resign_directory(
        revoke_key(
            world.body,
            "IT",
            world.keys["IT"].signing_key_id,
            at=revoked_at,
            reason="key-compromise",
            now=revoked_at,
        )
    )
    data = package(world, seal_notice(world, now=T0))
    later = revoked_at + timedelta(days=1)
    assert reason(world, data, now=later, received_at=T0 + timedelta(minutes=1)) == "key-revoked"


# --- message ids ----------------------------------------------------------------------------


def test_msg_id_must_be_a_uuid7_of_the_creation_time() -> None:
    """A msg id that is not a UUIDv7, or whose time is more than MAX_CLOCK_SKEW from
    created_at (an id copied from another message), makes the statement malformed."""
    world = make_world()
    ms = int(T0.timestamp() * 1000)
    fits = package(world, seal_notice(world, msg_id=uuid7(ms + 60_000)))
    assert open_as(world, fits).sender == "IT"
    skew_ms = int(MAX_CLOCK_SKEW.total_seconds() * 1000)
    for bad in (
        "m-1",
        "0194694c-5dc0-4000-8000-000000000001",  # version 4
        "0194694C-5DC0-7000-8000-000000000001",  # not lowercase
        "0194694c-5dc0-7000-c000-000000000001",  # wrong variant
        uuid7(ms - skew_ms - 1000),
        uuid7(ms + skew_ms + 1000),
    ):
        assert reason(world, package(world, seal_notice(world, msg_id=bad))) == "malformed", bad


def test_uuid7_time_parsing() -> None:
    """uuid7_time_ms reads back the time uuid7 wrote and refuses anything else."""
    assert uuid7_time_ms(uuid7(1_736_933_400_000)) == 1_736_933_400_000
    assert uuid7_time_ms("not-a-uuid") is None
    assert uuid7_time_ms("0194694c-5dc0-7000-8000-00000000000g") is None
    assert uuid7_time_ms("0194694c5dc070008000000000000001----") is None


# --- bounds -----------------------------------------------------------------------------------


def _seal_with(world: World, *, header: Any = None, units: dict[str, Any] | None = None) -> bytes:
    from broker.envelope import Grant, seal

    all_units = dict(units if units is not None else UNITS)
    return package(
        world,
        seal(
            signer=world.keys["IT"],
            kind="notice",
            notice_id="2025/RED/0042",
            notice_type="red",
            header=header if header is not None else {"category": "red"},
            units=all_units,
            grants={"FR": Grant(frozenset(all_units), (), "FR@1")}
            if units is not None
            else {"FR": FR_GRANT, "DE": DE_GRANT},
            handling="restricted",
            now=T0,
        ),
    )


def test_validly_signed_deep_header_is_malformed() -> None:
    """A header nested 500 levels deep (it used to pass opening and then exhaust the recursion
    of view assembly in the daemon) is refused at opening; MAX_NESTING levels still open."""
    world = make_world()
    ok = _seal_with(world, header={"category": "red", "deep": nested(MAX_NESTING - 2)})
    assert open_as(world, ok).header["category"] == "red"
    for depth in (MAX_NESTING, 500):
        data = _seal_with(world, header={"category": "red", "deep": nested(depth)})
        assert reason(world, data) == "malformed"


def test_validly_signed_deep_disclosure_is_malformed() -> None:
    """A disclosed value nested beyond MAX_NESTING is refused at opening."""
    world = make_world()
    data = _seal_with(world, units={**UNITS, "person.aliases": nested(200)})
    assert reason(world, data) == "malformed"


def test_validly_signed_wide_structures_are_malformed() -> None:
    """More than MAX_ENTRIES entries in a header list, or more disclosures, are refused."""
    world = make_world()
    wide = _seal_with(world, header={"category": "red", "list": list(range(MAX_ENTRIES + 1))})
    assert reason(world, wide) == "malformed"
    many = {f"u.{i}": i for i in range(MAX_ENTRIES + 1)}
    assert reason(world, _seal_with(world, units=many)) == "malformed"
