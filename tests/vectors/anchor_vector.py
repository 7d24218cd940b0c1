"""The anchor rotation known-answer vector (docs/security/anchor-rotation.md).

``python -m tests.vectors.anchor_vector`` rewrites ``anchor-chain-v1.json``: the vector directory
of :mod:`tests.vectors.vectors` (serial 3, anchor = seed 9) announced to a successor (seed 10,
serial 4), then taken over by it (serial 5): both signed directories, and the anchor link alone
with the exact bytes its outgoing anchor signs. Ed25519 is deterministic, so every byte is fixed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.keys import sign_directory
from broker.keys.anchor import make_link
from broker.keys.directory_edit import announce_successor, take_over

from .vectors import T0, directory_vector, fixed_anchor

ANCHOR_CHAIN = Path(__file__).parent / "anchor-chain-v1.json"


def fixed_successor() -> ed25519.Ed25519PrivateKey:
    """Deterministic successor anchor key (seed 0x0a repeated)."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes([10]) * 32)


def anchor_chain() -> dict[str, Any]:
    """The vector document."""
    old, new = fixed_anchor(), fixed_successor()
    at = T0 + timedelta(days=1)
    link = make_link(old, new.public_key(), at)
    announced = announce_successor(directory_vector(), link, now=at)
    taken = take_over(announced, new.public_key(), now=at + timedelta(hours=1))
    return {
        "comment": "NBX anchor rotation known-answer vector; see tests/vectors/anchor_vector.py",
        "anchor_seed": (bytes([9]) * 32).hex(),
        "successor_seed": (bytes([10]) * 32).hex(),
        "link": link.model_dump(mode="json"),
        "link_signed_bytes": link.signed_content().hex(),
        "announced": sign_directory(announced, old).decode(),
        "taken_over": sign_directory(taken, new).decode(),
    }


def main() -> None:
    """Rewrite the vector file."""
    ANCHOR_CHAIN.write_text(json.dumps(anchor_chain(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
