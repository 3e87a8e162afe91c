"""What compile_tables returns: the C tables and what their rule indices mean.

`Tables.bind` sets what only the sandbox's ready child can say (its Landlock ruleset, the
trees it can write, its network namespace), once, before a supervisor starts on them:
so the rest is compiled while the child is still building its sandbox (issue 19).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from sandbox._supervise import ffi
from sandbox.errors import LaunchError
from sandbox.policy.model import Rule

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class RuleInfo:
    """What an event's rule index stands for."""

    __slots__ = ("action", "origin", "ref", "rule", "source")

    def __init__(
        self,
        ref: str,  # "rule 4, policy.yaml:21" / "default deny of shell_exec (policy.yaml:3)"
        action: str,
        rule: Rule | None,  # None for a block's default
        source: str | None,  # "policy.yaml:21"
        origin: str | None = None,  # "infrastructure": landgate's own service, not a rule
    ) -> None:
        self.ref = ref
        self.action = action
        self.rule = rule
        self.source = source
        self.origin = origin

    def __repr__(self) -> str:
        return f"RuleInfo({self.ref!r}, {self.action!r})"


class Tables:
    """The compiled tables plus the cffi memory that backs them (kept alive here).

    What only the sandbox's ready child can say (its Landlock ruleset, its network
    namespace) is set by `bind`, once, before the supervisor starts on the tables: so
    the rest can be compiled while the child is still building its sandbox."""

    __slots__ = ("_landlock", "bound", "c", "fsop_check", "keep", "open_check", "pinned", "rules")

    def __init__(
        self,
        c: Any,  # struct lg_tables *
        rules: list[RuleInfo],
        pinned: list[tuple[str, str]],  # (ip, host name) resolved at launch
        open_check: bool,
        fsop_check: bool = False,
        landlock: str = "present",  # "absent": the no-Landlock rung (--best-effort)
        keep: list[Any] | None = None,
    ) -> None:
        self.c = c
        self.rules = rules
        self.pinned = pinned
        self.open_check = open_check
        self.fsop_check = fsop_check
        self._landlock = landlock
        self.keep = keep if keep is not None else []  # the cffi memory c points into
        self.bound = False  # Supervisor.start refuses tables the child's facts are not in

    def unbound_copy(self) -> Tables:
        """Another Tables on a copy of this struct: its own scalars (what bind and the
        session's rows set), the same read-only row arrays (the C side never writes
        them; lg_sup_new copies the struct), kept alive through `keep`."""
        if self.bound or self.pinned:
            raise LaunchError("supervisor tables: only unbound rows without session facts copy")
        c = ffi.new("struct lg_tables *")
        ffi.memmove(c, self.c, ffi.sizeof("struct lg_tables"))
        return Tables(
            c,
            list(self.rules),
            [],
            self.open_check,
            self.fsop_check,
            landlock=self._landlock,
            keep=[self.keep, c],
        )

    def add_pinned(self, add: Any) -> None:
        for ip, name in self.pinned:
            add(ip, (name,))

    def bind(
        self,
        *,
        ruleset_fd: int | None,
        write_trees: Iterable[str] | None,
        private_netns: tuple[int, int] | None,
        session_pid: int | None = None,
    ) -> None:
        """The child's facts (compile_tables' plan_info keys of the same names).

        session_pid: a process of the sandbox (its root and mounts are the session's):
        each tree denied as a whole (the key directory) is looked up through its root, so
        that the mount it is on is the one the sandbox's opens report (its own mount
        namespace numbers mounts apart).  Otherwise, or where the sandbox does not see
        it there, objects on its device are judged by walking their directories up.

        Refuses an open check or name-changing check without the sandbox's Landlock
        ruleset where Landlock is in force: the supervisor opens, renames and creates
        for the sandbox, and without the sandbox's ruleset on its opener threads it
        would do what Landlock denies the sandbox."""
        absent = self._landlock == "absent"
        if self.open_check and ruleset_fd is None and not absent:
            raise LaunchError(
                "open check: the plan must pass landlock_ruleset_fd "
                "(the supervisor opens files for the sandbox under its ruleset)"
            )
        if self.fsop_check and ruleset_fd is None and not absent:
            raise LaunchError(
                "name-changing syscalls: the plan must pass landlock_ruleset_fd "
                "(the supervisor renames and creates for the sandbox under its ruleset)"
            )
        if self.bound:
            raise LaunchError("supervisor tables: bound twice")
        t = self.c
        t.open_ruleset_fd = int(ruleset_fd) if ruleset_fd is not None else -1
        _write_trees(t, write_trees, self._cstr, self.keep)
        if session_pid is not None:
            _session_mounts(t, int(session_pid))
        t.private_netns = 0
        if private_netns is not None:
            t.private_netns = 1
            t.private_netns_dev, t.private_netns_ino = (int(v) for v in private_netns)
        self.bound = True

    def _cstr(self, s: str) -> Any:
        b = ffi.new("char[]", s.encode("utf-8", "surrogateescape"))
        self.keep.append(b)
        return b


def _write_trees(t: Any, trees: Any, cstr: Any, keep: list[Any]) -> None:
    """The sandbox's writable trees for C, canonical as the kernel names them (a Landlock rule
    given a symlinked path applies to its target); None leaves write_known 0 (fail safe)."""
    t.write_known = 0
    t.n_write_trees = 0
    if trees is None:
        return
    for p in trees:
        if not os.path.isabs(str(p)):
            raise LaunchError(f"write_trees: {p}: not an absolute path")
    paths = sorted({os.path.realpath(str(p)) for p in trees})
    arr = ffi.new("char *[]", max(1, len(paths)))
    keep.append(arr)
    for i, p in enumerate(paths):
        arr[i] = cstr(p)
    t.write_trees = arr
    t.n_write_trees = len(paths)
    t.write_known = 1


def _session_mounts(t: Any, pid: int) -> None:
    """Each tree row's mount id as the sandbox (process pid) sees that directory."""
    for k in range(t.n_deny_trees):
        row = t.deny_trees[k]
        path = ffi.string(row.path).decode("utf-8", "surrogateescape")
        try:
            fd = os.open(f"/proc/{pid}/root{path}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue  # not there for the sandbox (masked, gone): judged by the walk
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (row.dev, row.ino):
                continue  # another directory at that path (a mask): the walk judges
            mnt_id = _fdinfo_mnt_id(fd)
            if mnt_id is not None:
                row.mnt_id = mnt_id
        except OSError:
            continue
        finally:
            os.close(fd)


def _fdinfo_mnt_id(fd: int) -> int | None:
    """The `mnt_id:` of /proc/self/fdinfo/FD, read raw (one read of a few hundred bytes; a
    text-mode open and its line iterator cost ~4x as much, once per denied tree and
    session: issue 19)."""
    info = os.open(f"/proc/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(info, 4096)
    finally:
        os.close(info)
    for line in data.split(b"\n"):
        if line.startswith(b"mnt_id:"):
            return int(line.split()[1])
    return None
