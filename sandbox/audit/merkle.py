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


def _sha(data: bytes) -> bytes:
    return bytes(sha256(data).digest())


class Frontier:
    """`sha`: the SHA-256 of interior nodes (the writer passes its native one when it has
    it, canonical.native_sha256: the same digests)."""

    __slots__ = ("count", "levels", "sha")

    def __init__(self, sha: Callable[[bytes], bytes] = _sha) -> None:
        self.levels: list[bytes | None] = []
        self.count = 0
        self.sha = sha

    def add(self, leaf: bytes) -> None:
        levels, sha = self.levels, self.sha
        node = leaf
        h = 0
        n = len(levels)
        while h < n and levels[h] is not None:
            node = sha(b"\x01" + levels[h] + node)  # type: ignore[operator]
            levels[h] = None
            h += 1
        if h == n:
            levels.append(node)
        else:
            levels[h] = node
        self.count += 1

    def root(self) -> str:
        acc: bytes | None = None
        for node in self.levels:
            if node is not None:
                acc = node if acc is None else self.sha(b"\x01" + node + acc)
        return EMPTY_ROOT if acc is None else acc.hex()

    def to_list(self) -> list[str]:
        """Serialised into checkpoints: "height:hex" per waiting subtree, left to right."""
        return [
            f"{h}:{n.hex()}" for h, n in reversed(list(enumerate(self.levels))) if n is not None
        ]

    @classmethod
    def from_list(
        cls, items: list[str], count: int, sha: Callable[[bytes], bytes] = _sha
    ) -> Frontier:
        f = cls(sha)
        for item in items:
            h_s, _, hexd = item.partition(":")
            h = int(h_s)
            while len(f.levels) <= h:
                f.levels.append(None)
            f.levels[h] = bytes.fromhex(hexd)
        if sum(1 << h for h, n in enumerate(f.levels) if n is not None) != count:
            raise ValueError("frontier does not match its leaf count")
        f.count = count
        return f
