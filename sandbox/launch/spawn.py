"""Thin Python wrapper over the restricted child: csrc/launch.c (landgate's side) and the
init program it execs, csrc/lginit.c (the sandbox's init and agent).

`SpawnSpec` is everything the C side needs, as plain data; `spec_from_plan`
fills it from a Plan.  Other layers add to it:
  netns_fd   a prepared network namespace (fd) the sandbox joins (-1: none)
  binds      (source, target) file binds, e.g. the DNS view's /etc/resolv.conf
  LG_NS_NET  a new network namespace inside the user namespace (unprivileged rung)
  LG_NS_NET_INIT  a new network namespace init makes itself, `lo` up (the root rung's
             loopback-only layer; landgate joins it through init's pidfd)
Both need a mount namespace for binds; setns needs the right to join.

`spawn(spec)` returns a `Child` whose agent is restricted and blocked before
its execve; `Child.listener_fd` is the seccomp listener (in landgate).  The
caller starts the supervisor on it, then `release()`s the agent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from sandbox.errors import LaunchError
from sandbox.plan.devices import dev_paths
from sandbox.record import Record, field

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sandbox.plan import Plan

LG_NS_USER, LG_NS_MOUNT, LG_NS_PID, LG_NS_NET, LG_NS_NET_INIT = 1, 2, 4, 8, 16
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3


class SpawnSpec(Record):
    path: str  # resolved executable
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cwd: str
    ns_flags: int = 0
    map_uid: int = -1
    map_gid: int = -1
    mount_proc: bool = False
    memfd_noexec: bool = False
    netns_fd: int = -1
    stdio_fds: tuple[int, int, int] = (-1, -1, -1)  # the agent's 0, 1, 2; -1 inherits landgate's
    binds: tuple[tuple[str, str], ...] = ()
    minimal_dev: bool = False  # the sandbox's own /dev (mount + pid namespace)
    dev_paths: tuple[str, ...] = ()  # host nodes bound into it
    landlock_abi: int = 0
    ll_handled_fs: int = 0
    ll_handled_net: int = 0
    ll_scoped: int = 0
    ll_rules: tuple[tuple[str, int], ...] = ()
    ll_ports: tuple[tuple[int, int], ...] = ()
    filter: tuple[tuple[int, int, int, int], ...] = ()
    filter_flags: int = 0

    @property
    def has_listener(self) -> bool:
        """The child will hand over a seccomp listener (its filter asks for NEW_LISTENER)."""
        return bool(self.filter) and bool(self.filter_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)


class AppliedStatus(Record):
    """What the child actually applied before it was released (rust-landlock's
    RestrictionStatus): the plan predicts, this reports.  Every step the C child
    runs either succeeds or fails the spawn, so a field here is a fact, not a hope."""

    namespaces: int  # LG_NS_* flags the child unshared
    landlock_abi: int  # 0: no Landlock ruleset was applied
    landlock_rules: int  # path rules requested
    landlock_skipped: int  # of those, paths that did not exist (or were unreachable)
    seccomp_filter: bool  # the BPF filter is installed
    listener: bool  # ... with a user-notification listener (the supervisor's)

    def to_dict(self) -> dict[str, int | bool]:
        return {
            "namespaces": self.namespaces,
            "landlock_abi": self.landlock_abi,
            "landlock_rules": self.landlock_rules,
            "landlock_skipped": self.landlock_skipped,
            "seccomp_filter": self.seccomp_filter,
            "listener": self.listener,
        }


def spec_from_plan(
    plan: Plan,
    *,
    path: str,
    argv: Sequence[str],
    env: dict[str, str],
    cwd: str,
    netns_fd: int = -1,
    binds: Sequence[tuple[str, str]] = (),
    stdio_fds: tuple[int, int, int] = (-1, -1, -1),
    new_netns: bool = False,
    init_netns: bool = False,
) -> SpawnSpec:
    """`new_netns`: init also unshares a network namespace inside its user namespace
    (the network layer's unprivileged rung configures it after the spawn).
    `init_netns`: init unshares a network namespace of its own after its execve, `lo`
    up (the root rung's loopback-only layer: the kernel's set-up of the namespace runs
    in the child, alongside landgate's, issue 19); no user namespace, so it belongs to
    landgate's as one landgate made would."""
    host = plan.host
    ns = 0
    if plan.use_namespaces:
        ns = LG_NS_MOUNT | LG_NS_PID | (0 if host.is_root else LG_NS_USER)
    if new_netns:
        if not ns & LG_NS_USER:
            raise LaunchError(
                "a new network namespace needs the sandbox's user namespace (this plan has none)"
            )
        ns |= LG_NS_NET
    if init_netns:
        if ns & (LG_NS_USER | LG_NS_NET) or netns_fd >= 0:
            raise LaunchError(
                "init's own network namespace is for the root rung alone (this plan has a "
                "user namespace or another network namespace)"
            )
        ns |= LG_NS_NET_INIT
    enforce_fs = not plan.simulate and plan.landlock.abi > 0
    ll = plan.landlock
    return SpawnSpec(
        path=path,
        argv=tuple(argv),
        env=tuple(env.items()),
        cwd=cwd,
        ns_flags=ns,
        map_uid=os.getuid(),
        map_gid=os.getgid(),
        mount_proc=bool(ns & LG_NS_PID),
        # vm.memfd_noexec is writable by root only (EACCES inside a user namespace).
        memfd_noexec=bool(ns & LG_NS_PID) and host.memfd_noexec and host.is_root,
        netns_fd=netns_fd,
        stdio_fds=stdio_fds,
        binds=tuple(binds),
        # Its own /dev needs the fresh /proc (the host's nodes are bound from /proc/self/fd).
        minimal_dev=bool(ns & LG_NS_MOUNT) and bool(ns & LG_NS_PID),
        dev_paths=dev_paths([r.path for r in ll.rules]),
        landlock_abi=ll.abi if enforce_fs else 0,
        ll_handled_fs=ll.handled_fs,
        ll_handled_net=ll.handled_net,
        ll_scoped=ll.scoped,
        ll_rules=tuple((r.path, r.access) for r in ll.rules),
        ll_ports=ll.ports,
        filter=plan.seccomp.program if host.seccomp_filter else (),
        filter_flags=plan.seccomp.flags
        if host.wait_killable_recv
        else plan.seccomp.flags & ~(1 << 5),
    )


class Child(Record, frozen=False):
    """A spawned sandbox: init (reaped by the caller) and the agent (its pid as landgate
    sees it)."""

    init_pid: int
    agent_pid: int
    listener_fd: int
    ll_skipped: int
    ruleset_fd: int  # the agent's Landlock ruleset (-1 none): the open check's opener uses it
    applied: AppliedStatus
    _handle: Any = field(repr=False)
    _keep: Any = field(repr=False)
    # init's pidfd (landgate's, closed with the handle): joins init's namespaces without
    # a pid that could be reused (init is landgate's unreaped child)
    init_pidfd: int = -1

    def release(self) -> None:
        from sandbox._launch import ffi, lib

        err = ffi.new("char[]", 256)
        if lib.lg_release(self._handle, err, 256) < 0:
            raise LaunchError(ffi.string(err).decode(errors="replace"))

    def collect(self) -> tuple[int | None, int]:
        """(raw wait status of the agent or None, execve errno or 0) once init is reaped."""
        from sandbox._launch import ffi, lib

        status = ffi.new("int *")
        exec_errno = ffi.new("int *")
        rc = lib.lg_collect(self._handle, status, exec_errno)
        return (status[0] if rc == 1 else None), exec_errno[0]

    def close(self) -> None:
        from sandbox._launch import lib

        lib.lg_child_close(self._handle)


def _cstrings(ffi: Any, items: Sequence[str], keep: list[Any]) -> Any:
    ptrs = [ffi.new("char[]", os.fsencode(s)) for s in items]
    keep.extend(ptrs)
    arr = ffi.new("char *[]", [*ptrs, ffi.NULL])
    keep.append(arr)
    return arr


def spawn(spec: SpawnSpec) -> Child:
    """Start the sandbox; returns when the agent is restricted and waiting for release()."""
    return spawn_start(spec).wait()


class PendingChild:
    """A sandbox being built: forked, and still setting itself up (namespaces, Landlock,
    the seccomp filter) in its own process.  `wait()` returns the `Child` once the agent
    is restricted and blocked before its execve; until then the caller may do work of
    its own that does not need the child (the supervisor's tables), on another CPU than
    the child's.  `abort()` (when that work failed) kills and reaps it: a child is never
    left behind, and none was released."""

    def __init__(self, spec: SpawnSpec, handle: Any, keep: list[Any]) -> None:
        self._spec = spec
        self._handle = handle
        self._keep = keep
        self._done = False

    @property
    def init_pid(self) -> int:
        """The sandbox's init, as landgate sees it (ours to reap)."""
        return int(self._handle.init_pid)

    def wait(self) -> Child:
        from sandbox._launch import ffi, lib

        if self._done:
            raise LaunchError("spawn: the child was already collected or aborted")
        self._done = True
        handle, spec = self._handle, self._spec
        err = ffi.new("char[]", 256)
        rc = lib.lg_wait_ready(handle, err, 256)
        if rc < 0:
            msg = ffi.string(err).decode(errors="replace")
            lib.lg_child_close(handle)
            _reap(handle.init_pid)
            raise LaunchError(msg)
        return Child(
            init_pid=handle.init_pid,
            agent_pid=handle.agent_pid,
            listener_fd=handle.listener_fd,
            ll_skipped=handle.ll_skipped,
            ruleset_fd=handle.ruleset_fd,
            applied=AppliedStatus(
                namespaces=spec.ns_flags,
                # The child sends its ruleset fd only after landlock_restrict_self succeeded.
                landlock_abi=spec.landlock_abi if handle.ruleset_fd >= 0 else 0,
                landlock_rules=len(spec.ll_rules),
                landlock_skipped=int(handle.ll_skipped),
                seccomp_filter=bool(spec.filter),
                listener=handle.listener_fd >= 0,
            ),
            _handle=handle,
            _keep=self._keep,
            init_pidfd=handle.init_pidfd,
        )

    def abort(self) -> None:
        """Kill and reap the child that was never waited for (idempotent)."""
        from sandbox._launch import lib

        if self._done:
            return
        self._done = True
        # Killed before closing our ends: the agent, blocked on the go pipe, must never
        # see it close and run (lg_release is the only go; init kills its tree at exit).
        _reap(self._handle.init_pid)
        lib.lg_child_close(self._handle)


def spawn_start(spec: SpawnSpec) -> PendingChild:
    """Fork the sandbox and return at once, while it sets itself up (see PendingChild)."""
    from sandbox._launch import ffi, lib

    keep: list[Any] = []
    s = c_spec(spec, keep)
    handle = ffi.new("struct lg_child *")
    keep.append(handle)
    err = ffi.new("char[]", 256)
    if lib.lg_spawn(s, handle, err, 256) < 0:
        msg = ffi.string(err).decode(errors="replace")
        # A failure after the clone (closing the child's fds): init exists, blocked
        # before its agent's release; never left behind unreaped.
        if handle.init_pid > 0:
            _reap(handle.init_pid)
        lib.lg_child_close(handle)
        raise LaunchError(msg)
    return PendingChild(spec, handle, keep)


def c_spec(spec: SpawnSpec, keep: list[Any]) -> Any:
    """The C `struct lg_spawn_spec *` for spec; every buffer it points to is appended to
    `keep`, which must outlive its use."""
    from sandbox._launch import ffi

    s = ffi.new("struct lg_spawn_spec *")
    keep.append(s)

    def cstr(text: str) -> Any:
        p = ffi.new("char[]", os.fsencode(text))
        keep.append(p)
        return p

    s.path = cstr(spec.path)
    s.argv = _cstrings(ffi, spec.argv, keep)
    s.envp = _cstrings(ffi, [f"{k}={v}" for k, v in spec.env], keep)
    s.cwd = cstr(spec.cwd)
    s.ns_flags = spec.ns_flags
    s.map_uid = spec.map_uid
    s.map_gid = spec.map_gid
    s.mount_proc = int(spec.mount_proc)
    s.memfd_noexec = int(spec.memfd_noexec)
    s.netns_fd = spec.netns_fd
    for i, fd in enumerate(spec.stdio_fds):
        s.stdio_fds[i] = fd
    s.bind_src = _cstrings(ffi, [a for a, _ in spec.binds], keep)
    s.bind_dst = _cstrings(ffi, [b for _, b in spec.binds], keep)
    s.n_binds = len(spec.binds)
    s.minimal_dev = int(spec.minimal_dev)
    s.dev_paths = _cstrings(ffi, spec.dev_paths, keep)
    s.n_dev_paths = len(spec.dev_paths)
    s.landlock_abi = spec.landlock_abi
    s.ll_handled_fs = spec.ll_handled_fs
    s.ll_handled_net = spec.ll_handled_net
    s.ll_scoped = spec.ll_scoped
    s.ll_paths = _cstrings(ffi, [p for p, _ in spec.ll_rules], keep)
    access = ffi.new("unsigned long long[]", [a for _, a in spec.ll_rules] or [0])
    keep.append(access)
    s.ll_access = access
    s.n_ll_paths = len(spec.ll_rules)
    ports = ffi.new("unsigned long long[]", [p for p, _ in spec.ll_ports] or [0])
    port_access = ffi.new("unsigned long long[]", [a for _, a in spec.ll_ports] or [0])
    keep += [ports, port_access]
    s.ll_ports = ports
    s.ll_port_access = port_access
    s.n_ll_ports = len(spec.ll_ports)
    # (code, jt, jf, k) rows, filled by cffi in C: 4x faster than a field at a time.
    prog = ffi.new("struct lg_bpf_insn[]", list(spec.filter) or 1)
    keep.append(prog)
    s.filter = prog
    s.filter_len = len(spec.filter)
    s.filter_flags = spec.filter_flags
    s.init_helper = cstr(init_helper())
    return s


INIT_HELPER = "_lginit"


def init_helper() -> str:
    """The init program (csrc/lginit.c), installed next to sandbox._launch.

    lg_spawn's clone execs it before anything else: the sandbox's init and its agent
    run as this small program from the start, never as a copy of landgate's Python
    heap (no page-table copy, no copy-on-write faults while the sandbox sets itself
    up).  Missing or not executable: a broken install, refused before anything is
    spawned."""
    import sandbox._launch as launch_module

    path = os.path.join(os.path.dirname(os.path.abspath(launch_module.__file__)), INIT_HELPER)
    if not os.access(path, os.X_OK):
        raise LaunchError(
            f"the launcher's init helper {path} is missing or not executable: "
            "reinstall landgate (make install)"
        )
    return path


def _reap(pid: int) -> None:
    if pid <= 0:
        return  # no child: kill(0) or kill(-1) would reach far more than ours
    try:
        os.kill(pid, 9)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
