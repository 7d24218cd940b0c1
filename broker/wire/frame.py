"""The versioned binary frame that travels as a Kafka record value.

Layout (all integers big-endian)::

    magic    4 bytes   b"NBX\\x00"
    version  1 byte    FORMAT_VERSION
    suite    1 byte    HPKE suite id (:mod:`broker.wire.suites`: 1 X25519, 2 ML-KEM-768+X25519)
    kid_len  1 byte    length of the recipient key id
    kid      kid_len   recipient encryption key id (ASCII)
    ct       rest      HPKE single-shot ciphertext (encapsulated key || AEAD ciphertext)

Only the recipient key id is visible to the broker; everything else is inside the ciphertext.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from broker.errors import EnvelopeRejected
from broker.vocab import Reason
from broker.wire.suites import HPKE_SUITES, SUITE_MLKEM768_X25519, SUITE_X25519

MAGIC = b"NBX\x00"
FORMAT_VERSION = 1
SUITES = frozenset(HPKE_SUITES)
__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "SUITES",
    "SUITE_MLKEM768_X25519",
    "SUITE_X25519",
    "Frame",
    "decode",
    "encode",
]
_HEAD = struct.Struct(">4sBBB")
#: bytes before the key id: magic, version, suite, key id length
HEAD_BYTES = _HEAD.size


@dataclass(frozen=True)
class Frame:
    """A parsed frame; its contents are not yet authenticated."""

    version: int
    suite: int
    recipient_kid: str
    ciphertext: bytes


def encode(suite: int, recipient_kid: str, ciphertext: bytes) -> bytes:
    """Build a frame."""
    if suite not in SUITES:
        msg = f"unknown suite {suite}"
        raise ValueError(msg)
    kid = recipient_kid.encode("ascii")
    if not 0 < len(kid) < 256:
        msg = "recipient key id must be 1..255 ASCII bytes"
        raise ValueError(msg)
    return _HEAD.pack(MAGIC, FORMAT_VERSION, suite, len(kid)) + kid + ciphertext


def decode(data: bytes) -> Frame:
    """Parse a frame, raising ``EnvelopeRejected("frame")`` on any structural problem."""
    if len(data) < _HEAD.size:
        raise EnvelopeRejected(Reason.FRAME)
    magic, version, suite, kid_len = _HEAD.unpack_from(data)
    if magic != MAGIC or version != FORMAT_VERSION or suite not in SUITES or kid_len == 0:
        raise EnvelopeRejected(Reason.FRAME)
    end = _HEAD.size + kid_len
    if len(data) <= end:
        raise EnvelopeRejected(Reason.FRAME)
    try:
        kid = data[_HEAD.size : end].decode("ascii")
    except UnicodeDecodeError:
        raise EnvelopeRejected(Reason.FRAME) from None
    return Frame(version, suite, kid, bytes(data[end:]))
