"""SHA-256 and the Merkle tree that lets one signature cover many records.

The tree is the Merkle Tree Hash of RFC 6962 (Certificate Transparency) over
the records' SHA-256 hashes, in the order the seal lists them:
leaf = SHA-256(0x00 || record_hash), node = SHA-256(0x01 || left || right),
and a tree of n leaves splits at the largest power of two below n. An
inclusion proof of log2(n) hashes makes every record individually provable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

ZERO_HASH = "0" * 64


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leaf(record_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + record_hash).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(record_hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash of the given 32-byte record hashes (at least one)."""
    if not record_hashes:
        raise ValueError("a Merkle tree needs at least one leaf")
    sha256 = hashlib.sha256  # inlined: verifiers hash two nodes per record, millions of times
    level = [sha256(b"\x00" + h).digest() for h in record_hashes]
    # Pairing left to right and promoting a lone last node builds exactly the
    # RFC 6962 tree (left subtrees are always full); tests check both agree.
    while len(level) > 1:
        pairs = iter(level)
        nxt = [sha256(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_proof(record_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path (RFC 6962 section 2.1.1) for the leaf at ``index``, leaf-side first."""
    if not 0 <= index < len(record_hashes):
        raise IndexError(f"leaf {index} is outside a tree of {len(record_hashes)}")
    if len(record_hashes) == 1:
        return []
    k = _largest_power_of_two_below(len(record_hashes))
    if index < k:
        return [*inclusion_proof(record_hashes[:k], index), merkle_root(record_hashes[k:])]
    return [*inclusion_proof(record_hashes[k:], index - k), merkle_root(record_hashes[:k])]


def root_from_proof(record_hash: bytes, index: int, count: int, proof: Sequence[bytes]) -> bytes:
    """Recompute the root from one record hash and its audit path (RFC 9162 2.1.3.2)."""
    if not 0 <= index < count:
        raise IndexError(f"leaf {index} is outside a tree of {count}")
    fn, sn = index, count - 1
    node = _leaf(record_hash)
    for sibling in proof:
        if sn == 0:
            raise ValueError("proof is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            node = _node(sibling, node)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            node = _node(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof is shorter than the tree is deep")
    return node
