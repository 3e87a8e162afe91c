"""(device, inode) of the files the deny rules name at launch: the open check's identity rows.

A hard link made before the launch under another name is the same inode, so a denied
file is judged by its identity as well as by its path (DESIGN "Carve-outs and protected
paths").  Bounded (IDENTITY_LIMIT) so launch cost does not grow with the granted trees.

Split out of tables.py: this is where the tables read the file system, walk by walk
(tests/supervise/test_identity_walk.py); sessionrows.py calls it every session.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable

from .mountinfo import Mounts

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
