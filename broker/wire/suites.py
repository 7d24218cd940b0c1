"""HPKE suites an envelope frame may name (crypto agility), and the key types that select them.

=====  ===========================================  ====================================
 id    HPKE (RFC 9180) KEM / KDF / AEAD              recipient key
=====  ===========================================  ====================================
 1     DHKEM(X25519) / HKDF-SHA256 / AES-256-GCM      :class:`x25519.X25519PublicKey`
 2     ML-KEM-768 + X25519 hybrid (X-Wing style) /    :class:`hpke.MLKEM768X25519PublicKey`
       HKDF-SHA256 / AES-256-GCM
=====  ===========================================  ====================================

Suite 2 protects confidentiality against a future quantum computer recording traffic today
("harvest now, decrypt later"): an attacker must break both ML-KEM-768 and X25519. Signatures stay
Ed25519 (authenticity cannot be broken retroactively). A recipient chooses suite 2 by publishing an
``MLKEM768-X25519`` encryption key in the directory.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519

SUITE_X25519 = 1
SUITE_MLKEM768_X25519 = 2

RecipientPublicKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
RecipientPrivateKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey

HPKE_SUITES: dict[int, hpke.Suite] = {
    SUITE_X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    SUITE_MLKEM768_X25519: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
}


def suite_for_public(key: RecipientPublicKey) -> int:
    """The suite id that encrypts to ``key``."""
    if isinstance(key, x25519.X25519PublicKey):
        return SUITE_X25519
    if isinstance(key, hpke.MLKEM768X25519PublicKey):
        return SUITE_MLKEM768_X25519
    msg = f"no envelope suite for a {type(key).__name__}"
    raise TypeError(msg)


def suite_for_private(key: RecipientPrivateKey) -> int:
    """The suite id that decrypts with ``key``."""
    if isinstance(key, x25519.X25519PrivateKey):
        return SUITE_X25519
    if isinstance(key, hpke.MLKEM768X25519PrivateKey):
        return SUITE_MLKEM768_X25519
    msg = f"no envelope suite for a {type(key).__name__}"
    raise TypeError(msg)
