"""Merkle tree hashes and inclusion proofs against RFC 9162 section 2.1, written out again here
from the RFC's recursive definitions (MTH, PATH) so that the iterative code is checked against
the text, not against itself."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.envelope.seal import tree_head
from broker.wire import merkle


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(data: list[bytes]) -> bytes:
    """RFC 9162 2.1.1: MTH(D[n]) over the leaf *inputs*."""
    if len(data) == 1:
        return _h(b"\x00" + data[0])
    k = 1
    while k * 2 < len(data):
        k *= 2
    return _h(b"\x01" + mth(data[:k]) + mth(data[k:]))


def path(m: int, data: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1: PATH(m, D[n])."""
    if len(data) == 1:
        return []
    k = 1
    while k * 2 < len(data):
        k *= 2
    if m < k:
        return [*path(m, data[:k]), mth(data[k:])]
    return [*path(m - k, data[k:]), mth(data[:k])]


def _data(n: int) -> list[bytes]:
    return [f"statement {i}".encode() for i in range(n)]


@pytest.mark.parametrize("n", [*range(1, 34), 63, 64, 65, 100, 256])
def test_root_and_every_proof_match_the_rfc_definitions(n: int) -> None:
    """For every size and index: root == MTH, proof == PATH, and the proof leads to the root."""
    data = _data(n)
    leaves = [merkle.leaf_hash(d) for d in data]
    assert merkle.root(leaves) == mth(data)
    proofs = merkle.proofs(leaves)
    for m in range(n):
        assert proofs[m] == path(m, data)
        assert merkle.root_from_proof(leaves[m], m, n, proofs[m]) == mth(data)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    """A leaf is SHA-256(0x00 || data); a two-leaf root is SHA-256(0x01 || l0 || l1)."""
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert a == _h(b"\x00a")
    assert merkle.root([a, b]) == _h(b"\x01" + a + b)
    # the root of two leaves is not the leaf hash of their concatenation
    assert merkle.root([a, b]) != merkle.leaf_hash(a + b)


def test_the_size_must_be_signed_with_the_root() -> None:
    """Leaf 0 of a 3-leaf tree and of a 4-leaf tree have proofs of the same shape, so one proof
    gives the same root under both sizes: that is why the signed tree head holds the size."""
    leaves = [merkle.leaf_hash(d) for d in _data(3)]
    proof = merkle.proofs(leaves)[0]
    root3 = merkle.root_from_proof(leaves[0], 0, 3, proof)
    assert merkle.root_from_proof(leaves[0], 0, 4, proof) == root3
    assert tree_head(4, root3) != tree_head(3, root3)


@given(n=st.integers(2, 80), data=st.data())
def test_a_proof_checked_at_another_place_gives_another_tree_head(
    n: int, data: st.DataObject
) -> None:
    """Moving a leaf (index or size) or changing a path hash never reproduces the signed tree
    head ``(size, root)``."""
    leaves = [merkle.leaf_hash(d) for d in _data(n)]
    good = tree_head(n, merkle.root(leaves))
    proofs = merkle.proofs(leaves)
    m = data.draw(st.integers(0, n - 1))
    other = data.draw(st.integers(0, n - 1).filter(lambda i: i != m))
    for index, size, p in (
        (other, n, proofs[m]),  # claimed at another index
        (m, n + 1, proofs[m]),  # claimed in a bigger tree
        (m, n, [bytes(32), *proofs[m][1:]]),  # a path hash replaced
        (m, n, [*proofs[m], bytes(32)]),  # a path hash added
        (m, n, proofs[m][:-1]),  # a path hash dropped
    ):
        try:
            got = tree_head(size, merkle.root_from_proof(leaves[m], index, size, p))
        except ValueError:
            continue  # the path does not even fit: rejected
        assert got != good
    # another leaf with this leaf's proof does not lead to the tree head either
    assert tree_head(n, merkle.root_from_proof(leaves[other], m, n, proofs[m])) != good


@pytest.mark.parametrize(
    ("index", "size", "length", "error"),
    [
        (0, 0, 0, "outside"),
        (3, 3, 2, "outside"),
        (-1, 4, 2, "outside"),
        (0, 4, 3, "too long"),
        (0, 4, 1, "too short"),
        (0, 1, 1, "too long"),
    ],
)
def test_a_path_that_does_not_fit_its_tree_raises(
    index: int, size: int, length: int, error: str
) -> None:
    """Index outside the tree, or a path longer or shorter than the tree allows: ValueError."""
    with pytest.raises(ValueError, match=error):
        merkle.root_from_proof(bytes(32), index, size, [bytes(32)] * length)


def test_empty_tree_is_refused() -> None:
    """There is no batch of nothing."""
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle.root([])
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle.proofs([])
