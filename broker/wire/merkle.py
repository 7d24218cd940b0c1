"""Merkle tree hashes and inclusion proofs, exactly as RFC 9162 (Certificate Transparency 2.0)
section 2.1 defines them, over SHA-256.

Used to sign a batch of statements once (:func:`broker.envelope.seal.sign_batch`): the origin signs
the tree head ``(size, root)``; each package carries its statement's index and audit path, from
which the recipient recomputes the root. Leaves and inner nodes are hashed with different prefixes
(0x00, 0x01), so no inner node can pass for a leaf. The size must be signed with the root (as RFC
9162's signed tree head does): one audit path can fit trees of different sizes and give the same
root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_BYTES = 32
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree hash ``MTH`` of a non-empty list of leaf hashes."""
    if not leaves:
        msg = "a Merkle tree needs at least one leaf"
        raise ValueError(msg)
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(root(leaves[:k]), root(leaves[k:]))


def proofs(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """The audit path ``PATH(m, D[n])`` of every leaf ``m``, in one pass over the tree."""
    if not leaves:
        msg = "a Merkle tree needs at least one leaf"
        raise ValueError(msg)
    paths: list[list[bytes]] = [[] for _ in leaves]

    def walk(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        k = lo + _split(hi - lo)
        left, right = walk(lo, k), walk(k, hi)
        for m in range(lo, k):
            paths[m].append(right)
        for m in range(k, hi):
            paths[m].append(left)
        return _node(left, right)

    walk(0, len(leaves))
    return paths


def root_from_proof(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` proves ``leaf`` is at ``index`` in a tree of ``size`` leaves under
    (RFC 9162 section 2.1.3.2). ``ValueError`` if the path does not fit ``index`` and ``size``
    (too short, too long, index out of range); the caller compares the result with the signed
    root."""
    if not 0 <= index < size:
        msg = "leaf index outside the tree"
        raise ValueError(msg)
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            msg = "audit path too long"
            raise ValueError(msg)
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        msg = "audit path too short"
        raise ValueError(msg)
    return r
