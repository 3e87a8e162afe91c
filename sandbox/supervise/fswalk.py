"""What the file system holds, at launch, for the open check's deny rules: walked once
per session (sessionrows.py lays the answers out for C; nothing here is memoized).

- identities: (device, inode) of the files the deny rules name.  A hard link made
  before the launch under another name is the same inode, so a denied file is judged by
  its identity as well as by its path (DESIGN "Carve-outs and protected paths").
  Bounded (IDENTITY_LIMIT) so launch cost does not grow with the granted trees
  (tests/supervise/test_identity_walk.py).
- whole trees judged by their directories' identities (csrc/supervise_open_tree.c):
  landgate's key directory and the audit trail's directories; which deny rules stand
  for one, and the rows of each directory, whatever mount it is reached through
  (TREE_DIRS_LIMIT refuses the launch; tests/supervise/test_tree_rows.py).
- the mount table (/proc/self/mountinfo, read once) both walks consult: which file
  systems' directory entries and link counts can be trusted.

Split out of tables.py: the walks are the only part of the tables that reads the file
system.  One module, not three: `landgate run` imports every module it uses on each
launch (~0.1 ms each, issue 19), and these are always used together.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable

from sandbox.errors import LaunchError
from sandbox.policy.model import Rule

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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


IDENTITY_LIMIT = 10_000  # entries looked at per launch for the device+inode set


def existing_keys(
    globs: Iterable[str], mounts: Mounts | None = None, limit: int = IDENTITY_LIMIT
) -> list[tuple[int, int]]:
    """(device, inode) of the files matching anchored deny globs at launch, for the
    device+inode set (a hard link made before launch under another name is the same inode).

    Bounded so launch cost does not grow with the granted trees: a literal path, a glob
    with no `**`, or a literal directory's whole tree (`~/.ssh/**`), at most `limit`
    entries looked at in all.  Unanchored and mid-pattern `**` globs are judged by name
    on each open only (the plan says so).  What a name points to is what is denied
    (stat follows a symlink), as the open check judges the file it opens."""
    found: list[tuple[int, int]] = []
    budget = limit
    for g in globs:
        if budget <= 0:
            break
        if not g.startswith("/") or g.startswith("/**"):
            continue  # unanchored: judged by path glob on each open
        if not any(c in g for c in "*?["):
            # A literal path (most deny rules): one stat, not glob's lstat and then ours.
            key = file_key(g)
            if key is not None:
                found.append(key)
            budget -= 1
            continue
        if "**" not in g:
            for m in _glob_matches(g):
                key = file_key(m)
                if key is not None:
                    found.append(key)
                budget -= 1
                if budget <= 0:
                    break
            continue
        base = g[: -len("/**")] if g.endswith("/**") else None
        if base is None or "**" in base or any(c in base for c in "*?["):
            continue
        budget = _walk_keys(base, found, budget, mounts or Mounts())
    return found


def _glob_matches(g: str) -> Iterable[str]:
    """glob.iglob(g) for an absolute glob: the same paths.  A glob in the last component
    only (`/etc/ssh/ssh_host_*_key`, in every preset) is one directory listing filtered
    as glob filters it (fnmatch, and a leading `.` matched only by a pattern that has
    one); anything else goes to the glob module (~1 ms to import on this machine)."""
    d, pat = os.path.split(g)
    if not pat or not d.startswith("/") or any(c in d for c in "*?["):
        import glob as _glob

        return _glob.iglob(g)
    try:
        with os.scandir(d) as it:
            names = [e.name for e in it]
    except OSError:
        return []  # glob: an unreadable or missing directory matches nothing
    hidden = pat.startswith(".")
    return [
        os.path.join(d, n)
        for n in names
        if (hidden or not n.startswith(".")) and fnmatch.fnmatchcase(n, pat)
    ]


def _walk_keys(base: str, found: list[tuple[int, int]], budget: int, mounts: Mounts) -> int:
    """Every entry beneath `base` (not base itself) into `found`; returns what is left of
    the budget.  A symlinked directory is listed, not entered (os.walk's followlinks=False);
    an unreadable directory is skipped, as os.walk does.

    A regular file on a file system of DINO_FS is keyed by its directory's device and
    the entry's d_ino, without a stat: the walk of a key directory holding thousands of
    witness files was most of the launch's table cost (4,300 files: 12 ms of stat, 2.5 ms
    without).  Exactly what stat would say unless something is mounted on the entry
    (the mount's root is then what an open reaches), so a mount point beneath `base` is
    stat'ed, as are symlinks (what they point to is denied), directories, and every entry
    of a directory on another device or file system."""
    try:
        top = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return budget
    points = mounts.points()
    # Names as mountinfo spells them: the real path (base may pass through a symlink).
    todo = [(top, os.path.realpath(base))]
    try:
        while todo and budget > 0:
            dfd, dpath = todo.pop()
            try:
                dev = os.fstat(dfd).st_dev
                with os.scandir(dfd) as it:
                    entries = list(it)
            except OSError:
                os.close(dfd)
                continue
            budget -= 1 + len(entries)
            fast = mounts.dino_exact(dev, dpath)
            for e in entries:
                path = f"{dpath}/{e.name}" if dpath != "/" else "/" + e.name
                try:
                    if fast and e.is_file(follow_symlinks=False) and path not in points:
                        found.append((dev, e.inode()))
                        continue
                    st = os.stat(e.name, dir_fd=dfd)
                    found.append((st.st_dev, st.st_ino))
                except OSError:
                    pass  # gone, or a dangling link: nothing to deny by identity
                try:
                    if e.is_dir(follow_symlinks=False):
                        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                        todo.append((os.open(e.name, flags, dir_fd=dfd), path))
                except OSError:
                    pass
            os.close(dfd)
    finally:
        for fd, _ in todo:
            os.close(fd)
    return budget


def file_key(path: str) -> tuple[int, int] | None:
    """(device, inode) of what `path` names now; None when it is gone (nothing to deny)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def whole_tree_base(rule: Rule, globs: tuple[str, ...]) -> str | None:
    """The directory a deny rule covers as a whole tree judged by identity: landgate's key
    directory (the one protected path no allow overrides: `dir`, `dir/**`), else None."""
    if rule.origin != "protected" or rule.overridable or len(globs) != 2:
        return None
    base, tree = globs
    if tree != base + "/**" or not base.startswith("/") or any(c in base for c in "*?["):
        return None
    return base


TREE_DIRS_LIMIT = 10_000  # directories of one whole tree (the key directory holds 2)


def trail_tree_base(rule: Rule, globs: tuple[str, ...], comp: Any) -> str | None:
    """The directory of a protected write deny of a whole directory that no policy allow
    overrides anywhere beneath it (the audit trail's directories), else None.

    Such a tree is judged as the key directory is (csrc/supervise_open_tree.c: by its
    directories' identities through another mount, a creation by its parent's, no link
    or rename out of it) on top of its files' identities, which stay listed: a hard
    link to a trail file made before the session is judged by nothing else.  Without
    the tree, a file created after the launch (the next segment), or created by the
    agent through a bind mount of the directory, was judged by its name alone.  Where
    an exact allow overrides the deny beneath the directory (lg_judge_path), that path
    must stay writable, which a tree's rows would not know: no rows then."""
    if rule.origin != "protected" or not rule.overridable or rule.action != "file_write":
        return None
    if len(globs) != 2:
        return None
    base, tree = globs
    if tree != base + "/**" or not base.startswith("/") or any(c in base for c in "*?["):
        return None
    for a in comp.rules:
        p = a.path
        if (
            a.origin == "policy"
            and a.effect == "allow"
            and a.action == "file_write"
            and p is not None
            and p.anchored
            and not any(c in p.glob for c in "*?[")
        ):
            exact = p.glob.rstrip("/") or "/"
            if exact == base or exact.startswith(base + "/"):
                return None  # overridden beneath: judged by name and identity only
    return base


def whole_tree(
    base: str, mounts: Mounts | None = None, what: str = "key directory"
) -> tuple[list[tuple[int, int, int, str]], list[tuple[int, int]]]:
    """The key directory as csrc/supervise_open_tree.c judges it: (dev, ino, mount id, real
    path) of the directory and of every directory beneath it, at any depth, and (dev, ino)
    of each other entry of its top level (the keys; what a symlink there points to), still
    denied by identity for a hard link made elsewhere before the session (the sandbox
    cannot make one: the fsop check refuses a link or rename out of a tree).

    Every directory, not only the top level's: another mount of any one of them (a bind
    of `<keydir>/sub/deeper` elsewhere) has that directory as its root, and the open
    check's walk of `..` stops at a mount's root, so the root itself must be a row.  The
    files of the subdirectories (one witness per audit directory ever used) are not
    listed, and a subdirectory is listed for its own subdirectories only where its link
    count cannot say it has none (NLINK_FS): the launch's cost stays the same however
    many witness files there are.  Nothing when it does not exist; more than
    TREE_DIRS_LIMIT directories refuse the launch (a directory without its row would
    not be judged through another mount)."""
    dirs: list[tuple[int, int, int, str]] = []
    files: list[tuple[int, int]] = []
    flags = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        top = os.open(base, flags)
    except OSError:
        return dirs, files
    try:
        _tree_row(top, dirs)
    except OSError as exc:
        os.close(top)
        # Without the directory's identity another mount's name for it is not judged.
        raise LaunchError(f"{what} {base}: {exc.strerror or exc}") from None
    mounts = mounts or Mounts()  # mountinfo read once, if a subdirectory asks
    sub: list[str] = []  # the top level's subdirectories, by name
    try:
        with os.scandir(base) as it:
            entries = list(it)
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    sub.append(e.name)
                    continue
                st = os.stat(e.name, dir_fd=top)
                files.append((st.st_dev, st.st_ino))
            except OSError:
                pass  # gone, or a dangling link: nothing to deny by identity
    except OSError:
        pass  # unreadable: its path rules still deny everything beneath it
    todo: list[int] = []
    try:
        for name in sub:
            try:
                todo.append(os.open(name, flags | os.O_NOFOLLOW, dir_fd=top))
            except OSError:
                pass  # gone meanwhile
        while todo:
            fd = todo.pop()
            try:
                _tree_row(fd, dirs)
                if len(dirs) > TREE_DIRS_LIMIT:
                    raise LaunchError(f"{what} {base}: more than {TREE_DIRS_LIMIT} directories")
                for name in _subdirs(fd, dirs[-1][0], mounts):
                    try:
                        todo.append(os.open(name, flags | os.O_NOFOLLOW, dir_fd=fd))
                    except OSError:
                        pass  # gone meanwhile
            except OSError:
                pass  # gone, or unreadable: its path rules still deny what lies beneath
            finally:
                os.close(fd)
    finally:
        for fd in todo:
            os.close(fd)
        os.close(top)
    return dirs, files


def _subdirs(fd: int, dev: int, mounts: Mounts) -> list[str]:
    """The names of the subdirectories of the directory fd (O_PATH, on device dev): none
    without a listing where its link count says so (NLINK_FS), else read from its
    entries (through /proc/self/fd: an O_PATH fd is not listed itself)."""
    if os.fstat(fd).st_nlink == 2 and mounts.nlink_exact(dev):
        return []
    with os.scandir(f"/proc/self/fd/{fd}") as it:
        return [e.name for e in it if e.is_dir(follow_symlinks=False)]


def _tree_row(fd: int, out: list[tuple[int, int, int, str]]) -> None:
    """(dev, ino, mount id, real path) of the directory fd into out."""
    st = os.fstat(fd)
    real = os.readlink(f"/proc/self/fd/{fd}")
    mnt = 0
    # utf-8, the codec the interpreter has loaded (the text is ASCII): "ascii" imports
    # encodings.ascii (~0.3 ms of every launch, issue 19).
    with open(f"/proc/self/fdinfo/{fd}", encoding="utf-8") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                mnt = int(line.split()[1])
                break
    out.append((st.st_dev, st.st_ino, mnt, real))
