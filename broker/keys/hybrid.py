"""Post-quantum hybrid encryption keys: ML-KEM-768 + X25519 (envelope suite 2).

The installed ``cryptography`` generates and serialises ML-KEM-768 keys
(:mod:`cryptography.hazmat.primitives.asymmetric.mlkem`) and its HPKE module offers the hybrid KEM,
so a bureau may publish an ``MLKEM768-X25519`` encryption key in the directory. Its public encoding
(and key id input) is ``ML-KEM-768 public key (1184 bytes) || X25519 public key (32 bytes)``; the
private halves are stored as two PKCS#8 PEM blocks in ``<CC>.hybrid.key`` (:mod:`broker.keys.files`,
written by ``nbx keys new-bureau CC --pq``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from broker.errors import KeyDirectoryError
from broker.keys.key_ids import key_id, raw_public

MLKEM768_PUBLIC_BYTES = 1184


@dataclass(frozen=True)
class HybridEncryptionKey:
    """A bureau's ML-KEM-768 + X25519 private encryption key (never logged)."""

    mlkem_key: mlkem.MLKEM768PrivateKey = field(repr=False)
    x25519_key: x25519.X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> HybridEncryptionKey:
        """A fresh hybrid key."""
        return cls(mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())

    def public_bytes(self) -> bytes:
        """``ML-KEM-768 public || X25519 public``: the directory's encoding."""
        return self.mlkem_key.public_key().public_bytes_raw() + raw_public(
            self.x25519_key.public_key()
        )

    @property
    def key_id(self) -> str:
        """Key id of the combined public key."""
        return key_id(self.public_bytes())

    def hpke_private_key(self) -> hpke.MLKEM768X25519PrivateKey:
        """The private key for :func:`broker.envelope.open_package` (``decryption_keys``)."""
        return hpke.MLKEM768X25519PrivateKey(self.mlkem_key, self.x25519_key)

    def hpke_public_key(self) -> hpke.MLKEM768X25519PublicKey:
        """The public key for :meth:`broker.envelope.Sealed.package_for`."""
        return hybrid_public_key(self.public_bytes())


def hybrid_public_key(public: bytes) -> hpke.MLKEM768X25519PublicKey:
    """Decode the directory's ``ML-KEM-768 public || X25519 public`` encoding."""
    if len(public) != MLKEM768_PUBLIC_BYTES + 32:
        msg = "an ML-KEM-768+X25519 public key is 1216 bytes"
        raise KeyDirectoryError(msg)
    return hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(public[:MLKEM768_PUBLIC_BYTES]),
        x25519.X25519PublicKey.from_public_bytes(public[MLKEM768_PUBLIC_BYTES:]),
    )
