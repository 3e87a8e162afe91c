"""The Merkle frontier (sandbox/audit/merkle.py) against RFC 6962's MTH, computed the
textbook way: leaves added one at a time, in batches (the fold of whole aligned
subtrees), through checkpoints' `from_list`, must all give the root MTH gives."""

from __future__ import annotations

import hashlib
import random

from sandbox.audit.merkle import EMPTY_ROOT, Frontier


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1, with the trail's leaves (already digests) as the leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)  # the largest power of 2 below n
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_empty_frontier() -> None:
    assert Frontier().root() == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()


def test_every_count_one_at_a_time() -> None:
    rng = random.Random(1)
    f = Frontier()
    leaves: list[bytes] = []
    for _ in range(700):
        leaves.append(rng.randbytes(32))
        f.add(leaves[-1])
        assert f.count == len(leaves)
        assert f.root() == _mth(leaves).hex()


def test_batches_of_every_shape_give_the_same_root() -> None:
    """Random batch sizes from random starting counts (aligned or not), and batches
    larger than the fold threshold: the same root and frontier as one leaf at a time."""
    rng = random.Random(2)
    for _ in range(60):
        leaves = [rng.randbytes(32) for _ in range(rng.randrange(1, 9000))]
        one, batched = Frontier(), Frontier()
        for leaf in leaves:
            one.add(leaf)
        pos = 0
        while pos < len(leaves):
            step = rng.choice([1, 2, 3, 7, 64, 1000, 5000])
            batched.extend(leaves[pos : pos + step])
            if rng.random() < 0.3:  # a checkpoint in between folds what is pending
                batched = Frontier.from_list(batched.to_list(), batched.count)
            pos += step
        assert batched.count == one.count == len(leaves)
        assert batched.to_list() == one.to_list()
        assert batched.root() == one.root() == _mth(leaves).hex()


def test_leaves_appended_to_pending_directly_count() -> None:
    """verify's walk appends to `pending` itself: count and root see those leaves."""
    rng = random.Random(3)
    leaves = [rng.randbytes(32) for _ in range(1234)]
    f = Frontier()
    for leaf in leaves:
        f.pending.append(leaf)
    assert f.count == 1234
    assert f.root() == _mth(leaves).hex()
    assert f.pending == []
