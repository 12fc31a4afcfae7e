import hashlib

import pytest

from mrv_core.hashing import inclusion_proof, merkle_root, root_from_proof


def _rfc6962(leaves: list[bytes]) -> bytes:
    """The recursive definition of RFC 6962 section 2.1, as written there."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _rfc6962(leaves[:k]) + _rfc6962(leaves[k:])).digest()


LEAVES = [hashlib.sha256(str(i).encode()).digest() for i in range(40)]


@pytest.mark.parametrize("n", range(1, 40))
def test_root_matches_rfc6962(n: int) -> None:
    assert merkle_root(LEAVES[:n]) == _rfc6962(LEAVES[:n])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 33])
def test_every_leaf_is_provable(n: int) -> None:
    root = merkle_root(LEAVES[:n])
    for index in range(n):
        proof = inclusion_proof(LEAVES[:n], index)
        assert root_from_proof(LEAVES[index], index, n, proof) == root
        # the proof is specific to its leaf and position
        other = (index + 1) % n
        if n > 1:
            assert root_from_proof(LEAVES[other], index, n, proof) != root


def test_empty_tree_and_bad_index() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merkle_root([])
    with pytest.raises(IndexError):
        inclusion_proof(LEAVES[:3], 3)


def test_rfc6962_known_answer() -> None:
    # MTH of the empty string as the only leaf: SHA-256(0x00).
    assert merkle_root([b""]).hex() == hashlib.sha256(b"\x00").hexdigest()
