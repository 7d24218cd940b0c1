"""Opaque Kafka record keys: what the broker sees instead of a notice id.

A record key decides the partition, so one notice's messages to one recipient must share a key
(they stay on one partition, in order); but a key in clear, such as the notice id, tells the
broker operator who issued what and when, and ids that encode the notice type leak it.

So every inbox and receipts record is keyed by::

    secret = HKDF-SHA256(ikm = the sender's Ed25519 private key (32 raw bytes),
                         salt = none, info = DOMAIN, length = 32)
    key    = base64url(HMAC-SHA256(secret, JCS([recipient, subject]))[:16])   # 22 characters

``subject`` is the notice id for notices and lifecycle messages, and the receipt message's own
id for receipts (a receipt message answers several notices; its key names none of them). The
recipient is part of the input, so the broker cannot link the packages of one message across
recipients by their key either. Without the sender's private key nobody can invert a key or test
a guessed notice id against it.

The secret follows the signing key: after a signing-key rotation the same notice gets another
key, so its messages sent before and after the rotation may sit on different partitions of an
inbox with more than one partition (inbox topics have one partition by default, where this does
not matter). Receivers never rely on that order: the store keeps the highest version whatever
the arrival order. A separate long-lived secret would keep the partition across rotations but
would be one more secret to generate, store, back up and rotate; the signing key is already all
of that.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.wire.canonical import jcs

#: HKDF ``info``: the secret serves record keys and nothing else.
DOMAIN = b"nbx/record-key/v1"
#: bytes of HMAC output kept in a key (128 bits: no collisions in any realistic topic).
KEY_BYTES = 16


@functools.lru_cache(maxsize=16)
def _secret(private_raw: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DOMAIN).derive(private_raw)


class SigningKeyHolder(Protocol):
    """The sender, as far as a record key needs it: its Ed25519 signing key.

    :class:`broker.keys.BureauKeys` is one. Taking this instead of ``BureauKeys`` keeps the
    transport below :mod:`broker.keys` (docs/architecture.md section 2): the directory topic's
    clients in ``keys/`` are built here, so ``transport/`` must not import ``keys/``.
    """

    @property
    def signing_key(self) -> ed25519.Ed25519PrivateKey:
        """The sender's private signing key."""
        ...


def record_key(sender: SigningKeyHolder, recipient: str, subject: str) -> bytes:
    """The record key of a message from ``sender`` to ``recipient`` about ``subject``."""
    secret = _secret(sender.signing_key.private_bytes_raw())
    mac = hmac.new(secret, jcs([recipient, subject]), hashlib.sha256).digest()[:KEY_BYTES]
    return base64.urlsafe_b64encode(mac).rstrip(b"=")
