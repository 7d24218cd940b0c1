"""The envelope: seal once, encrypt per recipient, and open with every check (see submodules)."""

from broker.envelope.open import MAX_FRAME_BYTES, VerifiedPackage, open_package
from broker.envelope.seal import Grant, Sealed, seal, sign_batch

__all__ = [
    "MAX_FRAME_BYTES",
    "Grant",
    "Sealed",
    "VerifiedPackage",
    "open_package",
    "seal",
    "sign_batch",
]
