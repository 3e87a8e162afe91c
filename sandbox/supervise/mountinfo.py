"""This mount namespace's mounts (/proc/self/mountinfo), read once, and which file
systems' directory entries and link counts the launch-time walks may trust.

Split out of tables.py: the identity walk (identities.py) and the whole-tree rows
(trees.py) both ask it, and it knows nothing of the policy.
"""

from __future__ import annotations

import os

# File systems whose directory entries carry the inode number stat(2) reports for a regular
# file (d_ino == st_ino): the walk then needs no stat per file.  Not overlayfs (its d_ino of
# a merged directory's entry may be the layer's), nor network or FUSE file systems.
DINO_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "tmpfs"})


# File systems whose directories' link count is 2 + their subdirectories, exactly: a
# directory with st_nlink 2 there has none, and is not listed.  Not btrfs or overlayfs
# (a directory's count is 1 there), nor network or FUSE file systems (whatever the
# server says); ext4 counts 1 past 65,000 subdirectories, which is listed.
NLINK_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "tmpfs"})


class Mounts:
    """This mount namespace's mounts (/proc/self/mountinfo), read once, when first asked."""

    def __init__(self) -> None:
        self._points: set[str] | None = None
        self._fstype: dict[int, str] = {}

    def points(self) -> set[str]:
        """Every mount point (its path as mountinfo names it)."""
        if self._points is None:
            points: set[str] = set()
            try:
                with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
                self._fstype = {}
            for line in lines:
                left, sep, right = line.partition(" - ")
                fields = left.split()
                if not sep or len(fields) < 5 or not right:
                    continue
                points.add(_unescape(fields[4]))
                major, _, minor = fields[2].partition(":")
                if major.isdigit() and minor.isdigit():
                    # Stacked mounts share a device only if they are one file system.
                    self._fstype[os.makedev(int(major), int(minor))] = right.split()[0]
            self._points = points
        return self._points

    def nlink_exact(self, dev: int) -> bool:
        """A directory on device `dev` whose link count is 2 + its subdirectories."""
        return bool(self.points()) and self._fstype.get(dev) in NLINK_FS

    def dino_exact(self, dev: int, path: str) -> bool:
        """A directory on device `dev` (at `path`) whose entries' d_ino are their st_ino.
        Unknown (mountinfo unreadable, the device not listed): no, stat each entry."""
        return bool(self.points()) and self._fstype.get(dev) in DINO_FS


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (\\040 for a space, \\011, \\012, \\134)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(c)
            i += 1
    return "".join(out)
