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

EMPTY_ROOT = sha256(b"").hexdigest()


class Frontier:
    __slots__ = ("count", "levels")

    def __init__(self) -> None:
        self.levels: list[bytes | None] = []
        self.count = 0

    def add(self, leaf: bytes) -> None:
        levels = self.levels
        node = leaf
        h = 0
        n = len(levels)
        while h < n and levels[h] is not None:
            node = sha256(b"\x01" + levels[h] + node).digest()  # type: ignore[operator]
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
                acc = node if acc is None else sha256(b"\x01" + node + acc).digest()
        return EMPTY_ROOT if acc is None else acc.hex()

    def to_list(self) -> list[str]:
        """Serialised into checkpoints: "height:hex" per waiting subtree, left to right."""
        return [
            f"{h}:{n.hex()}" for h, n in reversed(list(enumerate(self.levels))) if n is not None
        ]

    @classmethod
    def from_list(cls, items: list[str], count: int) -> Frontier:
        f = cls()
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
