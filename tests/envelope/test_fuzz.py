"""Hypothesis fuzzing of the opening function.

Whatever bytes arrive - random noise, a valid frame with bytes changed, inserted or removed, or an
arbitrary (even validly encrypted) plaintext - opening either raises :class:`EnvelopeRejected` or
returns exactly the view that was sealed. It never raises anything else.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import EnvelopeRejected
from broker.wire.canonical import b64u

from .world import FR_GRANT, UNITS, encrypt, make_world, open_as, package, seal_notice

WORLD = make_world()
SEALED = seal_notice(WORLD)
FRAME = package(WORLD, SEALED)
EXPECTED = open_as(WORLD, FRAME)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(data: bytes) -> None:
    """Open ``data``: a rejection, or exactly the sealed view."""
    try:
        got = open_as(WORLD, data)
    except EnvelopeRejected:
        return
    assert got == EXPECTED
    assert dict(got.disclosed) == {k: UNITS[k] for k in FR_GRANT.disclosed}


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    """Random bytes never open and never crash the opener."""
    check(data)


@FUZZ
@given(st.binary(max_size=64))
def test_arbitrary_bytes_with_valid_header(tail: bytes) -> None:
    """A valid magic/version/suite/key id followed by garbage is rejected."""
    check(FRAME[: 7 + FRAME[6]] + tail)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(FRAME) - 1), st.integers(0, 255), st.sampled_from("rid")),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_valid_frame(edits: list[tuple[int, int, str]]) -> None:
    """Replacing, inserting or deleting bytes of a valid frame: rejected or the same view."""
    data = bytearray(FRAME)
    for pos, value, op in edits:
        pos = min(pos, len(data) - 1)
        if op == "r":
            data[pos] = value
        elif op == "i":
            data.insert(pos, value)
        elif data:
            del data[pos]
    check(bytes(data))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(st.binary(max_size=512))
def test_encrypted_arbitrary_plaintext(plaintext: bytes) -> None:
    """Anyone can encrypt to FR's public key: arbitrary plaintext is rejected, never a crash."""
    check(encrypt(WORLD, plaintext))


@FUZZ
@given(JSON, JSON, st.data())
def test_encrypted_package_like_json(
    statement: object, disclosures: object, data: st.DataObject
) -> None:
    """Package-shaped JSON with arbitrary members (including numbers JCS cannot encode, deep
    nesting and NaN) is rejected as an EnvelopeRejected, never another exception."""
    base = json.loads(
        json.dumps(
            {"statement": "", "signature": "", "disclosures": [], "withheld": [], "policy": "p"}
        )
    )
    key = data.draw(st.sampled_from(sorted(base)))
    base[key] = disclosures
    base["statement"] = data.draw(
        st.sampled_from([b64u(json.dumps(statement).encode()), b64u(b"{}"), "!!"])
    )
    check(encrypt(WORLD, json.dumps(base, allow_nan=True).encode()))


def test_deeply_nested_and_huge_numbers() -> None:
    """Inputs that make JSON or JCS code raise unusual exceptions are still plain rejections."""
    for plaintext in (
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps(
            {
                "statement": b64u(b'{"v": 1e400}'),
                "signature": "",
                "disclosures": [],
                "withheld": [],
                "policy": "",
            }
        ).encode(),
        json.dumps(
            {
                "statement": b64u(b'{"v": 1}'),
                "signature": "",
                "disclosures": [["s", "p", 2**80]],
                "withheld": [],
                "policy": "",
            }
        ).encode(),
        json.dumps(
            {
                "statement": b64u(b'{"v": NaN}'),
                "signature": "",
                "disclosures": [],
                "withheld": [],
                "policy": "",
            }
        ).encode(),
    ):
        check(encrypt(WORLD, plaintext))


def test_valid_statement_with_unencodable_disclosure() -> None:
    """A genuine statement with a disclosure JCS cannot encode (integer beyond 2**53, NaN)."""
    from .world import decrypt

    for bad in (2**80, float("nan"), float("inf")):
        pkg = decrypt(WORLD, FRAME)
        pkg["disclosures"].append(["AAAAAAAAAAAAAAAAAAAAAA", "x", bad])
        check(encrypt(WORLD, json.dumps(pkg, allow_nan=True).encode()))


def _batched_package() -> tuple[dict[str, object], object]:
    """FR's decrypted package of message 1 of a genuine batch of three, and what it opens to."""
    from .world import decrypt, sealed_batch

    frame = package(WORLD, sealed_batch(WORLD, 3)[1])
    return decrypt(WORLD, frame), open_as(WORLD, frame)


BATCHED, BATCHED_VIEW = _batched_package()


@FUZZ
@given(JSON | st.fixed_dictionaries({"index": JSON, "size": JSON, "path": JSON}), st.data())
def test_arbitrary_proof_member(proof: object, data: st.DataObject) -> None:
    """A genuine batched package whose proof (or one of its members) is replaced by arbitrary
    JSON: rejected as an EnvelopeRejected, or, if the proof is unchanged, the same view."""
    pkg = json.loads(json.dumps(BATCHED))
    if data.draw(st.booleans()):
        pkg["proof"] = proof
    else:
        key = data.draw(st.sampled_from(["index", "size", "path"]))
        pkg["proof"][key] = proof
    data_ = encrypt(WORLD, json.dumps(pkg, allow_nan=True).encode())
    if json.dumps(pkg["proof"]) == json.dumps(BATCHED["proof"]):  # the genuine proof: opens
        assert open_as(WORLD, data_) == BATCHED_VIEW
        return
    with pytest.raises(EnvelopeRejected) as info:
        open_as(WORLD, data_)
    assert info.value.reason in {"malformed", "signature"}
