"""Incremental Merkle tree over entry hashes (RFC 6962 shape).

Leaves are the entries' SHA-256 digests in seq order (already hashes of the
entries' bytes, and a 32-byte leaf can never be confused with a 65-byte
interior node's input); an interior node is SHA-256(0x01 || left || right).
The frontier is a binary counter: `levels[h]` holds the root of the complete
subtree of 2**h leaves still waiting for a right sibling, or None.  Appending
is O(log n) worst case and one node hash on average, and the root is the fold
of the waiting subtrees from the smallest (rightmost) up, which equals RFC
6962's MTH for any leaf count.
"""

from __future__ import annotations

from sandbox.digest import sha256

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

EMPTY_ROOT = sha256(b"").hexdigest()


_FOLD_AT = 4096  # pending leaves folded in at once at most (128 KiB)


def _sha(data: bytes) -> bytes:
    return bytes(sha256(data).digest())


class Frontier:
    """`sha`: the SHA-256 of interior nodes (the writer passes its native one when it has
    it, canonical.native_sha256: the same digests).  `subtree(joined leaves, n)`: the root
    of a complete subtree of n leaves in one call (native.native_subtree), when given."""

    __slots__ = ("_count", "levels", "pending", "sha", "subtree")

    def __init__(
        self,
        sha: Callable[[bytes], bytes] = _sha,
        subtree: Callable[[bytes, int], bytes] | None = None,
    ) -> None:
        self.levels: list[bytes | None] = []  # complete as of `_count` leaves
        self._count = 0
        # Leaves added since, folded in by `fold`.  A hot loop may append to it directly
        # (verify's walk does): `count`, `root` and `to_list` see them all the same.
        self.pending: list[bytes] = []
        self.sha = sha
        self.subtree = subtree

    @property
    def count(self) -> int:
        return self._count + len(self.pending)

    def add(self, leaf: bytes) -> None:
        """Append a leaf.  Kept aside and folded in batches (root, to_list, or every
        _FOLD_AT leaves): one list append per entry on the writer's and verify's path."""
        pending = self.pending
        pending.append(leaf)
        if len(pending) >= _FOLD_AT:
            self.fold()

    def extend(self, leaves: list[bytes]) -> None:
        """`add` of each leaf in order."""
        self.pending.extend(leaves)
        if len(self.pending) >= _FOLD_AT:
            self.fold()

    def fold(self) -> None:
        """Fold the pending leaves in, a whole aligned subtree at a time: while the
        count is a multiple of 2**h, the next 2**h leaves make exactly the complete
        subtree that adding them one by one would carry up to level h, so it is built
        level by level (one comprehension per level, not one loop turn per node; or by
        `subtree` in one call) and then carried in like a single node.  The same nodes,
        the same hashes."""
        leaves, sha, subtree = self.pending, self.sha, self.subtree  # emptied in place
        pos, n = 0, len(leaves)
        while pos < n:
            c = self._count
            size = c & -c if c else 1 << ((n - pos).bit_length() - 1)
            while size > n - pos:
                size >>= 1
            level = leaves[pos : pos + size]
            if subtree is not None and size > 1:
                level = [subtree(b"".join(level), size)]
            while len(level) > 1:
                level = [sha(b"\x01" + a + b) for a, b in zip(level[::2], level[1::2], strict=True)]
            self._carry(level[0], size.bit_length() - 1)
            self._count = c + size
            pos += size
        leaves.clear()

    def _carry(self, node: bytes, h: int) -> None:
        """Put the root of a complete subtree of 2**h leaves at level h, merging with
        the waiting subtrees of its height and up (a binary counter's carry)."""
        levels, sha = self.levels, self.sha
        n = len(levels)
        while len(levels) < h:
            levels.append(None)
            n += 1
        while h < n and levels[h] is not None:
            node = sha(b"\x01" + levels[h] + node)  # type: ignore[operator]
            levels[h] = None
            h += 1
        if h == n:
            levels.append(node)
        else:
            levels[h] = node

    def root(self) -> str:
        self.fold()
        acc: bytes | None = None
        for node in self.levels:
            if node is not None:
                acc = node if acc is None else self.sha(b"\x01" + node + acc)
        return EMPTY_ROOT if acc is None else acc.hex()

    def to_list(self) -> list[str]:
        """Serialised into checkpoints: "height:hex" per waiting subtree, left to right."""
        self.fold()
        return [
            f"{h}:{n.hex()}" for h, n in reversed(list(enumerate(self.levels))) if n is not None
        ]

    @classmethod
    def from_list(
        cls,
        items: list[str],
        count: int,
        sha: Callable[[bytes], bytes] = _sha,
        subtree: Callable[[bytes, int], bytes] | None = None,
    ) -> Frontier:
        f = cls(sha, subtree)
        for item in items:
            h_s, _, hexd = item.partition(":")
            h = int(h_s)
            while len(f.levels) <= h:
                f.levels.append(None)
            f.levels[h] = bytes.fromhex(hexd)
        if sum(1 << h for h, n in enumerate(f.levels) if n is not None) != count:
            raise ValueError("frontier does not match its leaf count")
        f._count = count
        return f
