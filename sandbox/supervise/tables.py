"""Compile a policy, once, into the flat tables the C decision loop reads.

Policy semantics live in `sandbox.policy`; this module only lays the rules out
for C (DESIGN §4): exec command globs, network destinations (host names pinned
to addresses at launch), and the carve-out deny set for the open check
(device+inode pairs of the files that exist at launch, plus path globs for
files created later).  Rule indices in the tables point into `Tables.refs`,
so every event names the rule that decided it.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from sandbox._supervise import ffi, lib
from sandbox.errors import LaunchError
from sandbox.policy.baseline import QUIET_UNIX_SOCKETS
from sandbox.policy.compiled import compile_policy, ordered
from sandbox.policy.locate import presets_dir
from sandbox.policy.model import Policy, Rule

from .tabletypes import RuleInfo, Tables

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ACCESS_READ = lib.LG_ACCESS_READ
ACCESS_WRITE = lib.LG_ACCESS_WRITE


def _owner(file: str) -> str:
    """A policy file as its user knows it: `coding-agent preset` for a bundled preset
    (not its path inside site-packages), else the path (relative to the cwd when below it).
    Asked for every rule's denial line (130 of them for a preset): memoised per file and
    working directory, as each answer costs two realpaths (~5 ms a launch otherwise)."""
    try:
        cwd = os.getcwd()
    except OSError:
        return file  # no working directory (removed): the path as the policy names it
    return _owner_in(file, cwd)


@lru_cache(maxsize=64)
def _owner_in(file: str, _cwd: str) -> str:
    path = Path(file)
    try:
        if path.resolve().parent == presets_dir().resolve() and path.suffix == ".yaml":
            return f"{path.stem} preset"
    except OSError:
        pass
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (OSError, ValueError):
        return file


def shown_ref(ri: RuleInfo) -> str:
    """The rule as the sandbox's denial line names it: `rule 1, coding-agent preset:69`,
    `default deny; .landgate.yaml:3`.  The audit entry keeps the full `ri.ref`."""
    if ri.origin == "infrastructure" or ri.source is None:
        if ri.rule is None and ri.ref.startswith("default deny"):
            return "default deny; implied"
        return ri.ref
    file, _, line = ri.source.rpartition(":")
    if not file or not line.isdigit():
        return ri.ref
    if ri.rule is None:
        effect = "deny" if ri.ref.startswith("default deny") else "allow"
        return f"default {effect}; {_owner(file)}:{line}"
    if ri.rule.origin != "policy":
        return ri.ref
    return f"rule {ri.rule.index}, {_owner(file)}:{line}"


def teaches_allow(ri: RuleInfo) -> bool:
    """A policy allow rule can admit what this rule denies: only a block's default deny.
    An explicit deny wins over every allow; a protected path yields only to an exact
    allow and landgate's key directory to none, so their lines carry no `allow` hint."""
    return ri.rule is None and ri.origin is None and ri.ref.startswith("default deny")


def _effect(e: str) -> int:
    return int(lib.LG_EFFECT_ALLOW if e == "allow" else lib.LG_EFFECT_DENY)


def _path_globs(rule: Rule) -> list[str]:
    p = rule.path
    if p is None:
        return []
    base = p.glob if p.anchored else "**/" + p.glob.lstrip("/")
    base = base.rstrip("/") or "/"
    out = [base]
    if (p.directory or base.endswith("/**")) and not base.endswith("/**"):
        out.append(base + "/**")
    return out


IDENTITY_LIMIT = 10_000  # entries looked at per launch for the device+inode set


def _existing_keys(
    globs: Iterable[str], mounts: _Mounts | None = None, limit: int = IDENTITY_LIMIT
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
            key = _file_key(g)
            if key is not None:
                found.append(key)
            budget -= 1
            continue
        if "**" not in g:
            for m in _glob_matches(g):
                key = _file_key(m)
                if key is not None:
                    found.append(key)
                budget -= 1
                if budget <= 0:
                    break
            continue
        base = g[: -len("/**")] if g.endswith("/**") else None
        if base is None or "**" in base or any(c in base for c in "*?["):
            continue
        budget = _walk_keys(base, found, budget, mounts or _Mounts())
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


# File systems whose directory entries carry the inode number stat(2) reports for a regular
# file (d_ino == st_ino): the walk then needs no stat per file.  Not overlayfs (its d_ino of
# a merged directory's entry may be the layer's), nor network or FUSE file systems.
_DINO_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "tmpfs"})


def _walk_keys(base: str, found: list[tuple[int, int]], budget: int, mounts: _Mounts) -> int:
    """Every entry beneath `base` (not base itself) into `found`; returns what is left of
    the budget.  A symlinked directory is listed, not entered (os.walk's followlinks=False);
    an unreadable directory is skipped, as os.walk does.

    A regular file on a file system of _DINO_FS is keyed by its directory's device and
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


def _whole_tree_base(rule: Rule, globs: tuple[str, ...]) -> str | None:
    """The directory a deny rule covers as a whole tree judged by identity: landgate's key
    directory (the one protected path no allow overrides: `dir`, `dir/**`), else None."""
    if rule.origin != "protected" or rule.overridable or len(globs) != 2:
        return None
    base, tree = globs
    if tree != base + "/**" or not base.startswith("/") or any(c in base for c in "*?["):
        return None
    return base


# File systems whose directories' link count is 2 + their subdirectories, exactly: a
# directory with st_nlink 2 there has none, and is not listed.  Not btrfs or overlayfs
# (a directory's count is 1 there), nor network or FUSE file systems (whatever the
# server says); ext4 counts 1 past 65,000 subdirectories, which is listed.
_NLINK_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "tmpfs"})
TREE_DIRS_LIMIT = 10_000  # directories of one whole tree (the key directory holds 2)


def _trail_tree_base(rule: Rule, globs: tuple[str, ...], comp: Any) -> str | None:
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


def _whole_tree(
    base: str, mounts: _Mounts | None = None, what: str = "key directory"
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
    count cannot say it has none (_NLINK_FS): the launch's cost stays the same however
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
    mounts = mounts or _Mounts()  # mountinfo read once, if a subdirectory asks
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


def _subdirs(fd: int, dev: int, mounts: _Mounts) -> list[str]:
    """The names of the subdirectories of the directory fd (O_PATH, on device dev): none
    without a listing where its link count says so (_NLINK_FS), else read from its
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


class _Mounts:
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
        return bool(self.points()) and self._fstype.get(dev) in _NLINK_FS

    def dino_exact(self, dev: int, path: str) -> bool:
        """A directory on device `dev` (at `path`) whose entries' d_ino are their st_ino.
        Unknown (mountinfo unreadable, the device not listed): no, stat each entry."""
        return bool(self.points()) and self._fstype.get(dev) in _DINO_FS


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


def compile_tables(policy: Policy, plan_info: Mapping[str, Any] | None = None) -> Tables:
    """Lay the policy out for C.

    plan_info (from the planner, all optional):
      open_check: bool         install the carve-out open check (no mount namespace)
      carve_outs: [(path, access)]  files to deny by device+inode (default: globbed here)
      landlock_ruleset_fd: int the sandbox's Landlock ruleset (the opener thread restricts
                               itself with it)
      uid, gid: int            credentials the opener thread takes (the sandbox's)
      write_trees: [path]      every tree the sandbox can write (Landlock write rights beneath
                               it); absent or None = not known.  An exec through a symlink or
                               of a #! script outside all of them skips the verified path
                               (supervise_exec_stable.c); only the planner may say so
      resolve_hosts: bool      pin host-name rules with getaddrinfo now (default True)
      path_env: str            $PATH to look the deny rules' programs up in (default:
                               landgate's own), besides the standard program directories
      private_netns: (dev, ino) the sandbox's own network namespace (its nsfs file): a
                               loopback destination on a socket of that namespace is the
                               sandbox's private loopback, always allowed (DESIGN §3)
      infrastructure: [(ip, port, reason)]  landgate's own services the sandbox must reach
                               (the DNS view): always allowed, judged before the policy's
                               rules, recorded with rule `reason` ("landgate DNS view")
      bind_later: bool         leave landlock_ruleset_fd, write_trees and private_netns to
                               Tables.bind (the child is still being built); the tables
                               cannot start a supervisor before that
      infrastructure_deny: [(cidr, port, reason)]  landgate's own services the sandbox must
                               never reach (a `landgate ui` dashboard): always denied,
                               judged before the policy's rules (its localhost allows too)
    """
    info = _plan_info(plan_info)
    keep: list[Any] = []
    rules: list[RuleInfo] = []

    def cstr(s: str) -> Any:
        b = ffi.new("char[]", s.encode("utf-8", "surrogateescape"))
        keep.append(b)
        return b

    def add_rule(r: Rule) -> int:
        rules.append(RuleInfo(ref=r.ref(), action=r.action, rule=r, source=str(r.source)))
        return len(rules) - 1

    def add_default(action: str) -> tuple[int, int]:
        blk = policy.block(action)
        where = f" ({blk.default_source})" if blk.default_source else " (implied)"
        ref = f"default {blk.default_effect} of {action}{where}"
        rules.append(
            RuleInfo(
                ref=ref,
                action=action,
                rule=None,
                source=str(blk.default_source) if blk.default_source else None,
            )
        )
        return len(rules) - 1, _effect(blk.default_effect)

    t = ffi.new("struct lg_tables *")
    keep.append(t)
    t.open_ruleset_fd = -1  # never fd 0 (the zeroed struct's) until bound

    # exec, path and unix-socket globs: the policy's compiled tables (sandbox.policy.compiled),
    # the very arrays `explain` judges with; their rule indices come first in `rules`.
    comp = compile_policy(policy)
    keep.append(comp)
    for r in comp.rules:
        rules.append(RuleInfo(ref=r.ref(), action=r.action, rule=r, source=str(r.source)))
    t.exec, t.n_exec, t.syntax = comp.c.exec, comp.c.n_exec, comp.c.syntax
    t.paths, t.n_paths = comp.c.paths, comp.c.n_paths
    t.exec_default_rule, t.exec_default_effect = add_default("shell_exec")
    unix_globs = {
        id(comp.rules[comp.c.net[k].rule]): comp.c.net[k].glob for k in range(comp.c.n_net)
    }

    # network
    pinned: list[tuple[str, str]] = []
    net_rows: list[tuple[int, int, int, int, int, bytes, str | None, int]] = []
    resolve = info.get("resolve_hosts", True)
    for r in ordered(policy.block("network").rules):
        d = r.destination
        if d is None:
            continue
        idx = comp.rules.index(r) if d.kind == "unix" else add_rule(r)
        eff = _effect(r.effect)
        port = -1 if d.port is None else int(d.port)
        if d.kind == "any":
            net_rows.append((lib.LG_NET_ANY, eff, 0, 0, port, b"", None, idx))
        elif d.kind in ("ip", "cidr") and d.network is not None:
            n = d.network
            fam = socket.AF_INET if n.version == 4 else socket.AF_INET6
            net_rows.append(
                (lib.LG_NET_IP, eff, fam, n.prefixlen, port, n.network_address.packed, None, idx)
            )
        elif d.kind == "localhost":
            net_rows.append(
                (
                    lib.LG_NET_IP,
                    eff,
                    socket.AF_INET,
                    8,
                    port,
                    ipaddress.ip_address("127.0.0.0").packed,
                    None,
                    idx,
                )
            )
            net_rows.append(
                (
                    lib.LG_NET_IP,
                    eff,
                    socket.AF_INET6,
                    128,
                    port,
                    ipaddress.ip_address("::1").packed,
                    None,
                    idx,
                )
            )
        elif d.kind == "host" and d.host:
            net_rows.append((lib.LG_NET_HOST, eff, 0, 0, port, b"", d.host.lower(), idx))
            if resolve:
                pinned.extend((ip, d.host.lower()) for ip in _resolve(d.host))
        elif d.kind == "wildcard" and d.host:
            net_rows.append((lib.LG_NET_WILDCARD, eff, 0, 0, port, b"", d.host.lower(), idx))
        elif d.kind == "unix":
            net_rows.append((lib.LG_NET_UNIX, eff, 0, 0, -1, b"", None, idx))
    # Denies first: the C check takes the first infrastructure row that matches, and a
    # dashboard's port must stay denied even if an allowed service ever shared it.
    infra = [
        (ipaddress.ip_network(net), port, reason, lib.LG_EFFECT_DENY)
        for net, port, reason in info.get("infrastructure_deny", ())
    ] + [
        (ipaddress.ip_network(ip), port, reason, lib.LG_EFFECT_ALLOW)
        for ip, port, reason in info.get("infrastructure", ())
    ]
    inf = ffi.new("struct lg_net_rule[]", max(1, len(infra)))
    keep.append(inf)
    for i, (net, port, reason, effect) in enumerate(infra):
        if not 0 < int(port) < 65536:
            raise LaunchError(f"infrastructure destination {net}:{port}: not a port")
        rules.append(
            RuleInfo(
                ref=str(reason), action="network", rule=None, source=None, origin="infrastructure"
            )
        )
        inf[i].kind = lib.LG_NET_IP
        inf[i].effect = effect
        inf[i].family = socket.AF_INET if net.version == 4 else socket.AF_INET6
        inf[i].prefix = net.prefixlen
        inf[i].port = int(port)
        for k, b in enumerate(net.network_address.packed):
            inf[i].addr[k] = b
        inf[i].pattern = ffi.NULL
        inf[i].rule = len(rules) - 1
    t.infra = inf
    t.n_infra = len(infra)

    nr = ffi.new("struct lg_net_rule[]", max(1, len(net_rows)))
    keep.append(nr)
    for i, (kind, eff, family, prefix, port, addr, pattern, idx) in enumerate(net_rows):
        nr[i].kind = kind
        nr[i].effect = eff
        nr[i].family = family
        nr[i].prefix = prefix
        nr[i].port = port
        for k, b in enumerate(addr):
            nr[i].addr[k] = b
        nr[i].pattern = cstr(pattern) if pattern is not None else ffi.NULL
        if kind == lib.LG_NET_UNIX:
            nr[i].glob = unix_globs[id(comp.rules[idx])]
        nr[i].rule = idx
    t.net = nr
    t.n_net = len(net_rows)
    t.net_default_rule, t.net_default_effect = add_default("network")

    # the open check: device+inode of the files the deny rules name at launch (the path
    # rules themselves are comp's, judged by csrc/judge_path.c)
    open_check = bool(info.get("open_check", False))
    id_rows: dict[tuple[int, int], tuple[int, int]] = {}
    tree_rows: dict[tuple[int, int, int], tuple[int, str, int]] = {}
    if open_check and "carve_outs" not in info:
        # Each tree is walked and each file stat'ed once, however many deny rules name it
        # (the key directory is denied for reading and for writing: two rules, one walk).
        walked: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        whole: dict[str, tuple[list[tuple[int, int, int, str]], list[tuple[int, int]]]] = {}
        mounts = _Mounts()  # read once per compile, when a walk first needs it
        for i in range(comp.path_start, comp.unix_start):
            r = comp.rules[i]
            if r.effect == "deny":
                access = ACCESS_READ if r.action == "file_read" else ACCESS_WRITE
                globs = tuple(_path_globs(r))
                base = _whole_tree_base(r, globs)
                if base is not None:
                    # landgate's key directory: denied as a tree by the directories'
                    # identities (csrc/supervise_open_tree.c), its files not listed.
                    got = whole.get(base)
                    if got is None:
                        got = whole[base] = _whole_tree(base, mounts)
                    for dev, ino, mnt, real in got[0]:
                        tree_rows.setdefault((dev, ino, access), (mnt, real, i))
                    for fid in got[1]:
                        old = id_rows.get(fid)
                        id_rows[fid] = (access if old is None else old[0] | access, i)
                    continue
                trail = _trail_tree_base(r, globs, comp)
                if trail is not None:
                    # the audit trail: its directories as a tree too; its files are still
                    # listed by identity below (a hard link made before the session)
                    got = whole.get(trail)
                    if got is None:
                        got = whole[trail] = _whole_tree(trail, mounts, "audit directory")
                    for dev, ino, mnt, real in got[0]:
                        tree_rows.setdefault((dev, ino, access), (mnt, real, i))
                keys = walked.get(globs)
                if keys is None:
                    keys = walked[globs] = _existing_keys(globs, mounts)
                for fid in keys:  # _add_key inlined: thousands of keys for a key directory
                    old = id_rows.get(fid)
                    id_rows[fid] = (access if old is None else old[0] | access, i)
    if open_check and "carve_outs" in info:
        for path, access in info["carve_outs"]:
            _add_id(id_rows, path, int(access), -1)
    # One initialiser list, filled by cffi in C (thousands of rows: 4x faster than setting
    # each field from Python); the fields after `rule` (btime) stay 0, unknown.
    ids = ffi.new(
        "struct lg_file_id[]",
        [(dev, ino, access, idx) for (dev, ino), (access, idx) in id_rows.items()] or 1,
    )
    keep.append(ids)
    t.deny_ids = ids
    t.n_deny_ids = len(id_rows)
    trees = ffi.new("struct lg_tree_id[]", max(1, len(tree_rows)))
    keep.append(trees)
    for k, ((dev, ino, access), (mnt, real, idx)) in enumerate(tree_rows.items()):
        trees[k].dev, trees[k].ino, trees[k].mnt_id = dev, ino, mnt
        trees[k].path = cstr(real)
        trees[k].access, trees[k].rule = access, idx
    t.deny_trees = trees
    t.n_deny_trees = len(tree_rows)

    fsop_check = bool(info.get("fsop_check", False))
    t.fsop_check = 1 if fsop_check else 0
    _fsop_rows(t, comp, fsop_check, info.get("gitcfg_globs", GITCFG_GLOBS), str(policy.home), keep)
    t.open_check = 1 if open_check else 0
    # An open the supervisor performed and Landlock refused is recorded under the
    # file_read / file_write default when that default denies (Landlock grants nothing
    # more than the allow rules): "default deny of file_read (policy.yaml:3)".
    for action, field_name in (
        ("file_read", "read_default_rule"),
        ("file_write", "write_default_rule"),
    ):
        rule_idx = -1
        if open_check and policy.block(action).default_effect == "deny":
            rule_idx = add_default(action)[0]
        setattr(t, field_name, rule_idx)
    t.file_access_all = 1 if policy.audit.file_access == "all" else 0
    t.open_uid = int(info.get("uid", -1))
    t.open_gid = int(info.get("gid", -1))
    quiet = ffi.new("char *[]", max(1, len(QUIET_UNIX_SOCKETS)))
    keep.append(quiet)
    for i, (path, _why) in enumerate(QUIET_UNIX_SOCKETS):
        quiet[i] = cstr(path)
    t.quiet_unix = quiet
    t.n_quiet_unix = len(QUIET_UNIX_SOCKETS)
    _deny_programs(t, policy, info, cstr, keep)
    # After add_default: the default rules it appended need their refs too.
    refs = ffi.new("char *[]", max(1, len(rules)))
    keep.append(refs)
    hints = ffi.new("unsigned char[]", max(1, len(rules)))
    keep.append(hints)
    for i, ri in enumerate(rules):
        refs[i] = cstr(shown_ref(ri))
        hints[i] = 1 if teaches_allow(ri) else 0
    t.refs = refs
    t.n_refs = len(rules)
    t.hints = hints
    tables = Tables(
        t,
        rules,
        pinned,
        open_check,
        fsop_check,
        landlock=str(info.get("landlock", "present")),
        keep=keep,
    )
    if not info.get("bind_later"):
        ruleset_fd = info.get("landlock_ruleset_fd")
        tables.bind(
            ruleset_fd=int(ruleset_fd) if ruleset_fd is not None else None,
            write_trees=info.get("write_trees"),
            private_netns=info.get("private_netns"),
        )
    return tables


def _deny_programs(
    t: Any, policy: Policy, info: Mapping[str, Any], cstr: Any, keep: list[Any]
) -> None:
    """Identities of the programs the deny rules name (hard links judged as them)."""
    from sandbox.supervise.programs import denied_program_ids

    ids = denied_program_ids(policy, info.get("path_env", os.environ.get("PATH")))
    arr = ffi.new("struct lg_program_id[]", max(1, len(ids)))
    keep.append(arr)
    for i, (dev, ino, path) in enumerate(ids):
        arr[i].dev = dev
        arr[i].ino = ino
        arr[i].path = cstr(path)
    t.deny_programs = arr
    t.n_deny_programs = len(ids)


# Git config files: a rename onto one (git's CONFIG.lock -> CONFIG) that only protected-path
# rules deny is judged on its content (csrc/gitcfg.c).  "~" is the policy's home.
GITCFG_GLOBS: tuple[str, ...] = (
    "**/.git/config",
    "**/.git/config.worktree",
    "**/.git/modules/**/config",
    "**/.git/worktrees/*/config.worktree",
    "~/.gitconfig",
    "~/.config/git/config",
)


def ancestor_globs(rule: Rule) -> list[str]:
    """Directories above what `rule` covers by position: renaming a prepared tree onto one
    (or a directory away from one) would put names under (or take them out of) the rule.
    `.git/hooks/` -> `**/.git`; `~/.config/autostart/` -> /home/u/.config, /home/u, /home.
    A rule of one unanchored name (`**/.env`) has none: it matches at any depth."""
    p = rule.path
    if p is None:
        return []
    parts = p.glob.rstrip("/").split("/")
    out: list[str] = []
    for k in range(1, len(parts)):
        prefix = parts[:k]
        if prefix[-1] in ("**", "") or prefix == [""]:
            continue
        g = "/".join(prefix)
        out.append(g if p.anchored else "**/" + g)
    return out


def _fsop_rows(
    t: Any, comp: Any, on: bool, gitcfg: Iterable[str], home: str, keep: list[Any]
) -> None:
    """The ancestor and git config rows of csrc/supervise_fsop.c (none when it is off)."""
    from sandbox.policy.globs import compile_glob
    from sandbox.policy.patterns import parse_path_pattern

    rows: list[tuple[str, bool, int, int]] = []  # (glob, anchored, kind, rule index)
    if on:
        seen: set[str] = set()
        for i in range(comp.path_start, comp.unix_start):
            r = comp.rules[i]
            if r.effect != "deny":
                continue
            for g in ancestor_globs(r):
                if g not in seen:
                    seen.add(g)
                    anchored = not g.startswith("**/")
                    rows.append((g if anchored else g[3:], anchored, lib.LG_FSOP_ANCESTOR, i))
        for g in gitcfg:
            pp = parse_path_pattern(g, workspace="/", home=home)
            rows.append((pp.glob, pp.anchored, lib.LG_FSOP_GITCFG, -1))
    arr = ffi.new("struct lg_fsop_rule[]", max(1, len(rows)))
    keep.append(arr)
    for k, (g, anchored, kind, idx) in enumerate(rows):
        prog = ffi.new("unsigned[]", list(compile_glob(g, path=True, anchored=anchored)))
        keep.append(prog)
        arr[k].glob = prog
        arr[k].kind = kind
        arr[k].rule = idx
    t.fsop = arr
    t.n_fsop = len(rows)


def _plan_info(plan_info: Any) -> dict[str, Any]:
    """A mapping as is; a sandbox.plan.Plan read for the keys above."""
    if plan_info is None:
        return {}
    if isinstance(plan_info, Mapping):
        return dict(plan_info)
    info: dict[str, Any] = {}
    sup = getattr(plan_info, "supervisor", None)
    info["open_check"] = bool(getattr(sup, "open_check", False)) and not getattr(
        plan_info, "use_namespaces", False
    )
    for key in ("landlock_ruleset_fd", "uid", "gid"):
        if hasattr(plan_info, key):
            info[key] = getattr(plan_info, key)
    return info


def _file_key(path: str) -> tuple[int, int] | None:
    """(device, inode) of what `path` names now; None when it is gone (nothing to deny)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _add_key(
    rows: dict[tuple[int, int], tuple[int, int]], key: tuple[int, int], access: int, idx: int
) -> None:
    old = rows.get(key)
    rows[key] = ((old[0] if old else 0) | access, idx if idx >= 0 or not old else old[1])


def _add_id(rows: dict[tuple[int, int], tuple[int, int]], path: str, access: int, idx: int) -> None:
    key = _file_key(path)
    if key is not None:
        _add_key(rows, key, access, idx)


def _resolve(host: str) -> list[str]:
    """Pin a policy host name at launch (DESIGN §4 rung 2: hostnames pinned)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    out: list[str] = []
    for _f, _t, _p, _c, sa in infos:
        ip = str(sa[0])
        if ip not in out:
            out.append(ip)
    return out
