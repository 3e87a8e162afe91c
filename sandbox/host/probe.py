"""What this host's kernel offers, probed once per process (DESIGN §4).

`HostCapabilities` is plain data so that tests (and `landgate plan` on another
machine's behalf) can pretend a feature is absent: the planner and the
session read only this object, never the kernel directly.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sandbox.host.kaudit import probe_audit_state
from sandbox.record import Record, replace

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# sched.h values (stable UAPI)
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_FILTER_FLAG_NEW_LISTENER = 8
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 32
NOBODY_UID = 65534


class HostCapabilities(Record):
    kernel: str
    landlock_abi: int  # 0: no Landlock (the probe's -errno is in landlock_error)
    landlock_error: str
    seccomp_filter: bool
    seccomp_notify: bool  # SECCOMP_RET_USER_NOTIF
    wait_killable_recv: bool  # SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19)
    sync_wakeup: bool  # SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (6.6)
    # How the supervisor takes a calling thread's socket (connect, sendto) and fds (the open
    # check): pidfd_open(tid, PIDFD_THREAD) (6.9), or before it the leader's pidfd with
    # kcmp(KCMP_FILE) proving it is the caller's file (csrc/supervise_net.c lg_caller_fd).
    pidfd_thread: bool
    kcmp_file: bool
    is_root: bool
    uid: int
    gid: int
    user_ns: bool  # this user can create a user namespace (+ mount ns inside)
    mount_ns: bool  # a mount namespace is reachable (root directly, or via a user ns)
    pid_ns: bool
    net_ns: bool
    memfd_noexec: bool  # vm.memfd_noexec exists (6.3)
    cgroup: str  # "v2" | "hybrid" | "v1" | "none"
    # The host's audit (AUDIT_GET, root only): 0 disabled, 1/2 enabled, -1 unknown (not
    # root).  Landlock's own denials can be recorded only while it is enabled (host.kaudit).
    kernel_audit: int = -1

    # Probed on first use (once per process): only `doctor` and `plan` show them, and
    # running `nft --version` plus ldconfig cost `landgate run` ~5 ms for nothing.
    @property
    def nft(self) -> str | None:
        """`nft --version`, None when absent."""
        return nft_version()

    @property
    def libnftables(self) -> str | None:
        return libnftables_name()

    def without(self, **changes: object) -> HostCapabilities:
        """A copy with some features changed (tests: pretend Landlock is absent)."""
        return replace(self, **changes)

    @property
    def namespaces(self) -> bool:
        return self.mount_ns and self.pid_ns

    def to_dict(self) -> dict[str, object]:
        return {
            "kernel": self.kernel,
            "landlock_abi": self.landlock_abi,
            "landlock_error": self.landlock_error,
            "seccomp_filter": self.seccomp_filter,
            "seccomp_user_notif": self.seccomp_notify,
            "wait_killable_recv": self.wait_killable_recv,
            "sync_wake_up": self.sync_wakeup,
            "pidfd_thread": self.pidfd_thread,
            "kcmp_file": self.kcmp_file,
            "root": self.is_root,
            "uid": self.uid,
            "user_ns": self.user_ns,
            "mount_ns": self.mount_ns,
            "pid_ns": self.pid_ns,
            "net_ns": self.net_ns,
            "memfd_noexec": self.memfd_noexec,
            "nft": self.nft,
            "libnftables": self.libnftables,
            "cgroup": self.cgroup,
            "kernel_audit": self.kernel_audit,
        }

    @property
    def kernel_denials_gap(self) -> str | None:
        """Why Landlock's denials are not recorded on this host (None: they are)."""
        from sandbox.host.kaudit import recording_gap

        return recording_gap(self.landlock_abi, self.kernel_audit)


def _errno_text(rc: int) -> str:
    return os.strerror(-rc) if rc < 0 else ""


def cgroup_kind() -> str:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "unified" / "cgroup.controllers").exists():
        return "hybrid"
    if root.is_dir() and any(root.iterdir()):
        return "v1"
    return "none"


@lru_cache(maxsize=1)
def libnftables_name() -> str | None:
    import ctypes.util

    return ctypes.util.find_library("nftables")


@lru_cache(maxsize=1)
def nft_version() -> str | None:
    import shutil
    import subprocess

    exe = shutil.which("nft") or ("/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else None)
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


TUN_DEVICE = "/dev/net/tun"


def tun_device_problem(path: str = TUN_DEVICE) -> str | None:
    """Why pasta, running as this process's user, cannot open the tun device; None if it can.

    The unprivileged network rung's pasta opens /dev/net/tun read/write inside the
    sandbox's user namespace.  Capabilities there do not override the mode of a
    device owned by the host's root, so this user's own access is what counts: a
    fresh Debian machine ships the node 0600 root until udev makes it 0666, and
    containers often leave it out.  Opening it (no TUNSETIFF) creates nothing.
    Not cached: a test or an administrator may change the mode between runs.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return f"pasta needs read/write on {path}; it does not exist here"
    except PermissionError:
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"pasta needs read/write on {path}; stat: {exc.strerror}"
        return (
            f"pasta needs read/write on {path}; it is {st.st_mode & 0o7777:04o} "
            f"{_user_name(st.st_uid)} here"
        )
    except OSError as exc:
        return f"pasta needs read/write on {path}; open: {exc.strerror}"
    os.close(fd)
    return None


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def probe_unshare(flags: int, uid: int = -1) -> bool:
    from sandbox._probe import lib

    return bool(lib.lg_probe_unshare(flags, uid) == 0)


# The facts a boot cannot change: the kernel's features (Landlock's ABI, seccomp's flags and
# actions, pidfd and kcmp, the memfd_noexec sysctl's existence).  sandbox.host.probecache
# keeps these per boot; everything else is asked again on every launch.
KERNEL_FACTS = (
    "landlock_abi",
    "landlock_error",
    "seccomp_filter",
    "seccomp_notify",
    "wait_killable_recv",
    "sync_wakeup",
    "pidfd_thread",
    "kcmp_file",
    "memfd_noexec",
)
# What this user may unshare: a sysctl or an LSM may change it within a boot.
NAMESPACE_FACTS = ("user_ns", "mount_ns", "pid_ns", "net_ns")


def kernel_facts() -> dict[str, object]:
    """Probe KERNEL_FACTS (one short-lived child, for SYNC_WAKE_UP)."""
    from sandbox._probe import lib

    abi = int(lib.lg_probe_landlock_abi())
    notify = lib.lg_probe_seccomp_action(SECCOMP_RET_USER_NOTIF) == 0
    return {
        "landlock_abi": max(abi, 0),
        "landlock_error": _errno_text(abi),
        "seccomp_filter": lib.lg_probe_seccomp_filter_flag(0) == 1,
        "seccomp_notify": notify,
        # WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER (EINVAL alone).
        "wait_killable_recv": lib.lg_probe_seccomp_filter_flag(
            SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        )
        == 1,
        "sync_wakeup": notify and lib.lg_probe_notif_sync_wakeup() == 0,
        "pidfd_thread": lib.lg_probe_pidfd_thread() == 1,
        "kcmp_file": lib.lg_probe_kcmp_file() == 0,
        "memfd_noexec": os.path.exists("/proc/sys/vm/memfd_noexec"),
    }


def namespace_facts(is_root: bool) -> dict[str, bool]:
    """Probe NAMESPACE_FACTS (a short-lived child each, ~1.5 ms apiece)."""
    if is_root:
        return {
            "mount_ns": probe_unshare(CLONE_NEWNS),
            "pid_ns": probe_unshare(CLONE_NEWNS | CLONE_NEWPID),
            "net_ns": probe_unshare(CLONE_NEWNET),
            "user_ns": probe_unshare(CLONE_NEWUSER),
        }
    user_ns = probe_unshare(CLONE_NEWUSER | CLONE_NEWNS)
    return {
        "user_ns": user_ns,
        "mount_ns": user_ns,
        "pid_ns": user_ns and probe_unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID),
        "net_ns": user_ns and probe_unshare(CLONE_NEWUSER | CLONE_NEWNET),
    }


def assemble(kernel: dict[str, object], namespaces: dict[str, bool]) -> HostCapabilities:
    """HostCapabilities from the two probes above and what is asked fresh every time
    (identity, cgroup layout, the host audit's state)."""
    is_root = os.geteuid() == 0
    fields: dict[str, Any] = {**kernel, **namespaces}
    return HostCapabilities(
        kernel=os.uname().release,
        is_root=is_root,
        uid=os.getuid(),
        gid=os.getgid(),
        cgroup=cgroup_kind(),
        kernel_audit=probe_audit_state(is_root),
        **fields,
    )


@lru_cache(maxsize=1)
def probe_host() -> HostCapabilities:
    """Probe the kernel, once per process: the boot's kernel facts from the per-boot cache
    when it holds (sandbox.host.probecache), the rest asked now."""
    from sandbox.host.probecache import cached_probe

    return cached_probe()


def probe_host_uncached() -> HostCapabilities:
    """Everything asked of the kernel now (a few short-lived children; about 6 ms)."""
    return assemble(kernel_facts(), namespace_facts(os.geteuid() == 0))
