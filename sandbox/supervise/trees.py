"""Whole trees judged by their directories' identities (csrc/supervise_open_tree.c):
landgate's key directory, and the audit trail's directories.

Which deny rules stand for a whole tree (whole_tree_base, trail_tree_base), and the
rows of such a tree: every directory's (dev, ino, mount id, real path), whatever mount
it is reached through, and the identities of its top level's files.

Split out of tables.py: one job with its own tests (tests/supervise/test_tree_rows.py),
and a walk with its own limit (TREE_DIRS_LIMIT) that refuses the launch.
"""

from __future__ import annotations

import os

from sandbox.errors import LaunchError
from sandbox.policy.model import Rule

from .mountinfo import Mounts

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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
