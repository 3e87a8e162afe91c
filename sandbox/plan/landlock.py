"""Compile the filesystem policy into Landlock path-beneath rules (DESIGN §2).

Rights per grant, for the ABI the kernel reports:
  file_read allow  -> READ_FILE | READ_DIR, plus EXECUTE when the rule says
                      `exec: true`, beneath the baseline's executable trees and
                      beneath the workspace (which program may run is the
                      supervisor's shell_exec decision, not Landlock's)
  file_write allow -> WRITE_FILE | REMOVE_* | MAKE_REG/DIR/SOCK/FIFO/SYM
                      | REFER (ABI 2) | TRUNCATE (ABI 3)
  grants under /dev also get IOCTL_DEV (ABI 5): terminals need TCGETS & co.
Never granted: MAKE_CHAR, MAKE_BLOCK.

A deny that covers a whole grant removes the grant (deny wins); a deny inside a
grant is a carve-out (see carveouts.py).  Landlock cannot grant "a name at
any depth", so an unanchored allow grants nothing (stated in the plan); an
anchored allow narrower than its literal base (`./src/**/*.ts`) grants the
matching files that exist at launch, one rule each, never the whole base.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator

from sandbox.policy.model import PathPattern, Policy, Rule
from sandbox.record import Record

# linux/landlock.h
FS_RIGHTS: dict[str, int] = {
    "execute": 1 << 0,
    "write_file": 1 << 1,
    "read_file": 1 << 2,
    "read_dir": 1 << 3,
    "remove_dir": 1 << 4,
    "remove_file": 1 << 5,
    "make_char": 1 << 6,
    "make_dir": 1 << 7,
    "make_reg": 1 << 8,
    "make_sock": 1 << 9,
    "make_fifo": 1 << 10,
    "make_block": 1 << 11,
    "make_sym": 1 << 12,
    "refer": 1 << 13,
    "truncate": 1 << 14,
    "ioctl_dev": 1 << 15,
}
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX = 1 << 0
SCOPE_SIGNAL = 1 << 1

R = FS_RIGHTS
READ = R["read_file"] | R["read_dir"]
EXEC = R["execute"]
WRITE = (
    R["write_file"]
    | R["remove_dir"]
    | R["remove_file"]
    | R["make_dir"]
    | R["make_reg"]
    | R["make_sock"]
    | R["make_fifo"]
    | R["make_sym"]
    | R["refer"]
    | R["truncate"]
)
FILE_RIGHTS = R["execute"] | R["write_file"] | R["read_file"] | R["truncate"] | R["ioctl_dev"]

try:  # the policy engineer's list; kept in one place
    from sandbox.policy.baseline import EXECUTABLE_TREES
except ImportError:  # pragma: no cover - before the baseline lands
    EXECUTABLE_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")

WALK_LIMIT = 200_000  # entries per walk; beyond that the plan says "truncated"


def handled_fs_for_abi(abi: int) -> int:
    """Every filesystem right the kernel of this ABI can restrict."""
    if abi <= 0:
        return 0
    mask = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        mask |= R["refer"]
    if abi >= 3:
        mask |= R["truncate"]
    if abi >= 5:
        mask |= R["ioctl_dev"]
    return mask


def rights_names(access: int) -> tuple[str, ...]:
    return tuple(n for n, bit in FS_RIGHTS.items() if access & bit)


def is_beneath(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def match(pattern: PathPattern, path: str) -> bool:
    from sandbox.policy.patterns import match_path

    return match_path(pattern, path)


def walk(root: str, limit: int = WALK_LIMIT) -> Iterator[tuple[str, bool]]:
    """(path, is_dir) beneath root, root excluded; does not follow symlinks or
    cross into /proc, /sys, /dev.  Stops after `limit` entries (the caller
    compares the count with the limit to know it was truncated)."""
    stack = [root]
    seen = 0
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError:
            continue
        for e in entries:
            seen += 1
            if seen > limit:
                return
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                continue
            yield e.path, is_dir
            if is_dir and e.path not in ("/proc", "/sys", "/dev"):
                stack.append(e.path)


class LandlockRule(Record):
    path: str
    access: int
    reasons: tuple[str, ...]  # rule refs that asked for it

    @property
    def rights(self) -> tuple[str, ...]:
        return rights_names(self.access)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "rights": list(self.rights),
            "access": self.access,
            "from": list(self.reasons),
        }


class LandlockPlan(Record):
    abi: int
    handled_fs: int
    handled_net: int
    scoped: int
    rules: tuple[LandlockRule, ...]
    ports: tuple[tuple[int, int], ...]  # (port, access) for CONNECT_TCP
    notes: tuple[str, ...]  # grants not made, and why
    rule_grants: dict[str, tuple[str, ...]]  # rule ref -> paths granted for it

    def writable_trees(self) -> tuple[str, ...] | None:
        """Every path beneath which the sandbox may change the file system (any right but
        read, execute and device ioctl), or None when that is not known: below ABI 3 Landlock
        does not handle truncate, so a file's bytes can change outside these trees."""
        if self.abi < 3:
            return None
        keep = READ | EXEC | R["ioctl_dev"]
        return tuple(sorted({r.path for r in self.rules if r.access & ~keep}))

    def to_dict(self) -> dict[str, object]:
        return {
            "abi": self.abi,
            "handled_fs": list(rights_names(self.handled_fs)),
            "handled_net": ["connect_tcp"] if self.handled_net else [],
            "scoped": [
                n
                for n, b in (
                    ("abstract_unix_socket", SCOPE_ABSTRACT_UNIX),
                    ("signal", SCOPE_SIGNAL),
                )
                if self.scoped & b
            ],
            "rules": [r.to_dict() for r in self.rules],
            "tcp_connect_ports": [p for p, _ in self.ports],
            "notes": list(self.notes),
        }


def _non_directory(path: str) -> bool:
    """`os.path.exists(path) and not os.path.isdir(path)` in one stat (once per grant)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    return not stat.S_ISDIR(st.st_mode)


def _path_rules(rules: Iterable[Rule], effect: str) -> list[Rule]:
    return [r for r in rules if r.effect == effect and r.path is not None]


def _exact_tree(pp: PathPattern) -> bool:
    """Does the pattern mean exactly its literal base (a file, or a tree)?"""
    assert pp.base is not None
    return pp.glob == pp.base or pp.glob == pp.base.rstrip("/") + "/**"


def _outside(path: str, pp: PathPattern) -> bool:
    """Is `path` certainly outside the anchored pattern's reach?  Every match of an anchored
    glob lies at or beneath its base (its leading components with no glob character:
    literals compare character by character), and a directory pattern reaches only beneath
    its glob.  So a path not beneath the base can neither match nor be covered, and the
    glob is not run for it: most grants lie outside most denies (issue 19: the coding-agent
    preset ran ~1,600 glob matches per launch here, nearly all of them no).  A base with a
    backslash is not literal text (the glob reads `\\*` as `*`): never skipped."""
    base = pp.base
    return base is not None and "\\" not in base and not is_beneath(path, base)


def _denied_whole(path: str, denies: list[Rule]) -> Rule | None:
    """A deny rule that covers `path` and everything beneath it."""
    for d in denies:
        pp = d.path
        assert pp is not None
        if not pp.anchored or _outside(path, pp):
            continue
        if match(pp, path) and (pp.directory or pp.glob.endswith("/**") or not os.path.isdir(path)):
            return d
        if (
            pp.directory
            and pp.base is not None
            and pp.glob == pp.base
            and is_beneath(path, pp.base)
        ):
            return d
    return None


def compile_landlock_rules(policy: Policy, abi: int, *, pid_ns: bool) -> LandlockPlan:
    """Landlock rules for the policy's file_read / file_write blocks (see module doc)."""
    handled = handled_fs_for_abi(abi)
    grants: dict[str, int] = {}
    reasons: dict[str, list[str]] = {}
    rule_grants: dict[str, list[str]] = {}
    notes: list[str] = []
    ws = str(policy.workspace)

    def rights_for(action: str, path: str, execute: bool) -> int:
        if action == "file_read":
            acc = READ
            # EXECUTE: a rule that says `exec: true` (the baseline's program trees say
            # it), a default allow of reading, and the workspace (programs the agent
            # builds).  Which command lines run is still shell_exec's decision.
            if (
                execute
                or path == "/"
                or any(is_beneath(path, t) for t in EXECUTABLE_TREES)
                or is_beneath(path, ws)
            ):
                acc |= EXEC
        else:
            acc = WRITE
        if is_beneath(path, "/dev"):
            acc |= R["ioctl_dev"]
        return acc

    def grant(action: str, path: str, ref: str, denies: list[Rule], execute: bool = False) -> None:
        d = _denied_whole(path, denies)
        if d is not None:
            notes.append(
                f"{path}: not granted for {action}: {d.ref()} ({d.pattern}) denies all of it"
            )
            return
        acc = rights_for(action, path, execute) & handled
        if _non_directory(path):
            acc &= FILE_RIGHTS  # the kernel accepts only these on a non-directory
        grants[path] = grants.get(path, 0) | acc
        reasons.setdefault(path, []).append(ref)
        rule_grants.setdefault(ref, []).append(path)

    for action in ("file_read", "file_write"):
        block = policy.block(action)
        denies = _path_rules(block.rules, "deny")
        if block.default_effect == "allow":
            grant(action, "/", f"default allow of {action}", denies)
        for rule in _path_rules(block.rules, "allow"):
            pp = rule.path
            assert pp is not None
            ref = rule.ref()
            if not pp.anchored or pp.base is None:
                notes.append(
                    f"{rule.pattern} ({ref}): Landlock cannot grant a name at any depth; "
                    f"nothing granted for {action}"
                )
                continue
            base = pp.base
            if base in ("/proc/self", "/proc/thread-self") or base.startswith(
                ("/proc/self/", "/proc/thread-self/")
            ):
                if pid_ns:
                    # A fresh /proc in the sandbox's pid namespace lists only its own processes.
                    grant(action, "/proc", ref, denies)
                    notes.append(
                        f"{rule.pattern}: granted as /proc (the sandbox's own procfs, "
                        f"pid namespace)"
                    )
                else:
                    notes.append(
                        f"{rule.pattern}: resolved at launch to the agent's own /proc/<pid>; "
                        f"its descendants do not get theirs (no pid namespace)"
                    )
                    grant(action, base, ref, denies)
                continue
            if _exact_tree(pp):
                grant(action, base, ref, denies, rule.execute)
                continue
            # Narrower than its base: grant the matches that exist now, one by one.
            n = 0
            if os.path.isdir(base):
                for path, _ in walk(base):
                    if match(pp, path):
                        grant(action, path, ref, denies, rule.execute)
                        n += 1
            notes.append(
                f"{rule.pattern} ({ref}): {n} existing match(es) granted one by one; "
                f"files created later are not granted"
            )

    if not pid_ns and any(p in ("/", "/dev") for p in grants):
        # No mount namespace, so no sandbox /dev of its own: never grant the host's /dev
        # wholesale (kvm, userfaultfd, block devices, with device ioctls), node by node.
        from sandbox.plan.devices import split_dev_grants

        split_from = [reasons.get("/dev", []) + reasons.get("/", [])]
        grants, dev_notes = split_dev_grants(grants)
        notes.extend(dev_notes)
        for p in grants:
            if p not in reasons:
                reasons[p] = list(split_from[0])
                if _non_directory(p):
                    grants[p] &= FILE_RIGHTS  # the kernel accepts only these on a non-directory
    scoped = (SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL) if abi >= 6 else 0
    handled_net, ports = _port_rules(policy, abi)
    rules = tuple(
        LandlockRule(p, grants[p], tuple(reasons[p])) for p in sorted(grants) if grants[p]
    )
    return LandlockPlan(
        abi=abi,
        handled_fs=handled,
        handled_net=handled_net,
        scoped=scoped,
        rules=rules,
        ports=ports,
        notes=tuple(notes),
        rule_grants={k: tuple(v) for k, v in rule_grants.items()},
    )


def _port_rules(policy: Policy, abi: int) -> tuple[int, tuple[tuple[int, int], ...]]:
    """ABI 4 TCP connect rules when the network policy is port-only (every allow
    is `*:port`, nothing else decides by host)."""
    if abi < 4:
        return 0, ()
    block = policy.block("network")
    if block.default_effect != "deny":
        return 0, ()
    allows = [r for r in block.rules if r.effect == "allow"]
    if not allows or any(
        r.destination is None or r.destination.kind != "any" or r.destination.port is None
        for r in allows
    ):
        return 0, ()
    if any(r.effect == "deny" for r in block.rules):
        return 0, ()
    ports = sorted({r.destination.port for r in allows if r.destination and r.destination.port})
    return NET_CONNECT_TCP, tuple((p, NET_CONNECT_TCP) for p in ports)
