"""The seccomp filter: hardening (DESIGN §2, last row) and the supervised syscalls.

`compile_seccomp(notify_open=...)` returns a `SeccompPlan`: every action the
filter takes (for `landgate plan`), the syscalls it hands to the supervisor
(`notify_syscalls`, names and x86_64 numbers, for the supervisor's tables), and
the BPF program as (code, jt, jf, k) tuples that the launcher installs with
SECCOMP_FILTER_FLAG_NEW_LISTENER | WAIT_KILLABLE_RECV.

Program shape (every block ends in a RET, so no jump is longer than 3):
  1. arch != AUDIT_ARCH_X86_64            -> KILL_PROCESS
  2. nr & 0x40000000 (x32 ABI)            -> KILL_PROCESS
  3. plain ERRNO entries                  -> RET ERRNO(e)
  4. argument-checked entries             -> ERRNO when the argument matches, else ALLOW
                                             (or NOTIFY for execveat)
  5. notify list                          -> RET USER_NOTIF
  6. everything else                      -> ALLOW
Only the low 32 bits of an argument are compared: every argument checked
here is an int/unsigned int in the kernel (flags, domain, ioctl cmd).
"""

from __future__ import annotations

import errno as E
from dataclasses import dataclass
from typing import Any

# linux/filter.h
BPF_LD, BPF_W, BPF_ABS = 0x00, 0x00, 0x20
BPF_JMP, BPF_JEQ, BPF_JSET, BPF_K = 0x05, 0x10, 0x40, 0x00
BPF_RET = 0x06
BPF_ALU, BPF_AND = 0x04, 0x50

# linux/seccomp.h
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_ALLOW = 0x7FFF0000
FILTER_FLAG_NEW_LISTENER = 1 << 3
FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
OFF_NR, OFF_ARCH = 0, 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i  # seccomp_data.args[i], low word (little-endian)


# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
SYSCALLS: dict[str, int] = {
    "open": 2,
    "ioctl": 16,
    "socket": 41,
    "connect": 42,
    "sendto": 44,
    "sendmsg": 46,
    "clone": 56,
    "execve": 59,
    "creat": 85,
    "ptrace": 101,
    "personality": 135,
    "pivot_root": 155,
    "chroot": 161,
    "acct": 163,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "init_module": 175,
    "delete_module": 176,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "openat": 257,
    "unshare": 272,
    "perf_event_open": 298,
    "open_by_handle_at": 304,
    "sendmmsg": 307,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "execveat": 322,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "openat2": 437,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
    "open_tree_attr": 467,
}

# (syscall, errno, attack it stops).  EPERM where a program should see "not
# allowed"; ENOSYS where libraries probe and fall back (io_uring, clone3).
PLAIN_DENIES: tuple[tuple[str, int, str], ...] = (
    ("io_uring_setup", E.ENOSYS, "io_uring performs opens/connects/sends the filter never sees"),
    ("io_uring_enter", E.ENOSYS, "io_uring: submits operations that bypass the filter"),
    ("io_uring_register", E.ENOSYS, "io_uring: registers files/buffers for filter-blind I/O"),
    ("ptrace", E.EPERM, "tracing another process rewrites its syscalls after the check"),
    ("process_vm_readv", E.EPERM, "reads another process's memory (keys, tokens)"),
    ("process_vm_writev", E.EPERM, "writes another process's memory (the supervisor's argv race)"),
    ("pidfd_getfd", E.EPERM, "steals open file descriptors from another process"),
    ("bpf", E.EPERM, "loads kernel programs; kernel attack surface"),
    ("userfaultfd", E.EPERM, "stalls kernel copies to win races (TOCTOU amplifier)"),
    ("perf_event_open", E.EACCES, "kernel attack surface, side channels"),
    ("kexec_load", E.EPERM, "replaces the running kernel (root agents)"),
    ("kexec_file_load", E.EPERM, "replaces the running kernel (root agents)"),
    ("init_module", E.EPERM, "loads kernel code (root agents)"),
    ("finit_module", E.EPERM, "loads kernel code (root agents)"),
    ("delete_module", E.EPERM, "unloads kernel modules (root agents)"),
    ("keyctl", E.ENOSYS, "reads the session keyring's secrets (kernel keys are not files)"),
    ("add_key", E.ENOSYS, "kernel keyring attack surface"),
    ("request_key", E.ENOSYS, "kernel keyring: upcalls run programs outside the sandbox"),
    ("mount", E.EPERM, "mounting over a mask, or a new view that hides a carve-out"),
    ("umount2", E.EPERM, "unmounting a carve-out mask reveals the secret beneath"),
    ("pivot_root", E.EPERM, "replaces the root the Landlock rules were resolved in"),
    ("chroot", E.EPERM, "path games against the supervisor's path resolution (root agents)"),
    ("open_tree", E.EPERM, "new mount API: clones the tree beneath a mask"),
    ("open_tree_attr", E.EPERM, "new mount API (6.15): clones the tree beneath a mask"),
    ("move_mount", E.EPERM, "new mount API: moves a mask away"),
    ("fsopen", E.EPERM, "new mount API: mounts a fresh filesystem"),
    ("fsconfig", E.EPERM, "new mount API"),
    ("fsmount", E.EPERM, "new mount API"),
    ("fspick", E.EPERM, "new mount API: reconfigures an existing mount"),
    ("mount_setattr", E.EPERM, "makes a read-only protection mount writable"),
    ("setns", E.EPERM, "joins another namespace (the host's network, mounts without masks)"),
    (
        "open_by_handle_at",
        E.EPERM,
        "opens an inode by file handle, bypassing mount masks (CAP_DAC_READ_SEARCH: root agents)",
    ),
    ("clone3", E.ENOSYS, "its flags live in memory BPF cannot read: libc falls back to clone"),
    ("swapon", E.EPERM, "root agents: host storage"),
    ("swapoff", E.EPERM, "root agents: host storage"),
    ("reboot", E.EPERM, "root agents: host availability"),
    ("acct", E.EPERM, "root agents: writes process accounting to any file"),
)

# Namespace bits of clone(2)/unshare(2) flags (sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080  # unshare only: in clone(2) the low byte is the exit signal
CLONE_NS_FLAGS = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
)
UNSHARE_NS_FLAGS = CLONE_NS_FLAGS | CLONE_NEWTIME
# Memory-sharing bits (sched.h): which processes can write an exec's argv.
CLONE_VM = 0x00000100
CLONE_VFORK = 0x00004000
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000

TIOCSTI = 0x5412
TIOCLINUX = 0x541C
AT_EMPTY_PATH = 0x1000
PERSONALITY_QUERY = 0xFFFFFFFF

AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
ALLOWED_FAMILIES = (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK)

# Always supervised: program executions and outbound connections / sends.
NOTIFY_ALWAYS = ("execve", "execveat", "connect", "sendto", "sendmsg", "sendmmsg")
# Supervised when the open check is needed (carve-outs without a mount ns, simulation).
NOTIFY_OPEN = ("open", "openat", "openat2", "creat")


@dataclass(frozen=True, slots=True)
class FilterAction:
    syscall: str
    nr: int
    action: str  # "kill" | "errno" | "notify" | "allow"
    errno: str | None  # "EPERM" ...
    condition: str  # "" for always, else when the action applies
    why: str

    def to_dict(self) -> dict[str, object]:
        return {
            "syscall": self.syscall,
            "nr": self.nr,
            "action": self.action,
            "errno": self.errno,
            "when": self.condition,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class SeccompPlan:
    actions: tuple[FilterAction, ...]
    notify_syscalls: tuple[tuple[str, int], ...]  # (name, x86_64 nr), for the supervisor
    program: tuple[tuple[int, int, int, int], ...]  # (code, jt, jf, k)
    flags: int
    open_check: bool

    @property
    def notify_numbers(self) -> frozenset[int]:
        return frozenset(nr for _, nr in self.notify_syscalls)

    def to_dict(self) -> dict[str, object]:
        return {
            "actions": [a.to_dict() for a in self.actions],
            "notify_syscalls": [{"name": n, "nr": nr} for n, nr in self.notify_syscalls],
            "instructions": len(self.program),
            "flags": ["NEW_LISTENER", "WAIT_KILLABLE_RECV"],
            "open_check": self.open_check,
        }


def _stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k & 0xFFFFFFFF)


def _jump(code: int, k: int, jt: int, jf: int) -> tuple[int, int, int, int]:
    return (code, jt, jf, k & 0xFFFFFFFF)


LD_NR = _stmt(BPF_LD | BPF_W | BPF_ABS, OFF_NR)


def _ret(k: int) -> tuple[int, int, int, int]:
    return _stmt(BPF_RET | BPF_K, k)


def _errno(e: int) -> int:
    return RET_ERRNO | (e & 0xFFFF)


def _arg_block(
    nr: int, arg: int, tests: list[tuple[str, Any, int]], otherwise: int
) -> list[tuple[int, int, int, int]]:
    """if nr matches: load arg's low word; for each (kind, value, ret) test in order:
    kind "set" (arg & value), "eq" (arg == value), "ne" (arg != value),
    "masked" with value (mask, expected): (arg & mask) == expected -> ret;
    none matched -> otherwise.  Ends by reloading nr for the next block."""
    load_arg = _stmt(BPF_LD | BPF_W | BPF_ABS, _arg_lo(arg))
    body: list[tuple[int, int, int, int]] = [load_arg]
    for kind, value, ret in tests:
        if kind == "masked":
            mask, expected = value
            # AND clobbers the accumulator: reload the argument for the next test.
            body += [
                _stmt(BPF_ALU | BPF_AND | BPF_K, mask),
                _jump(BPF_JMP | BPF_JEQ | BPF_K, expected, 0, 1),
                _ret(ret),
                load_arg,
            ]
        elif kind == "set":
            body += [_jump(BPF_JMP | BPF_JSET | BPF_K, value, 0, 1), _ret(ret)]
        elif kind == "eq":
            body += [_jump(BPF_JMP | BPF_JEQ | BPF_K, value, 0, 1), _ret(ret)]
        elif kind == "ne":
            body += [_jump(BPF_JMP | BPF_JEQ | BPF_K, value, 1, 0), _ret(ret)]
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
    body.append(_ret(otherwise))
    if len(body) > 255:  # pragma: no cover
        raise ValueError("argument block too long for a BPF jump")
    return [_jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, len(body)), *body]


def compile_seccomp(*, notify_open: bool) -> SeccompPlan:
    """The hardening filter plus USER_NOTIF for the supervised syscalls."""
    actions: list[FilterAction] = []
    prog: list[tuple[int, int, int, int]] = []

    # 1. A foreign arch (i386 via int 0x80) has other syscall numbers: every
    #    check below would be meaningless, so the process dies.
    prog += [
        _stmt(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH),
        _jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        _ret(RET_KILL_PROCESS),
    ]
    actions.append(
        FilterAction(
            "*",
            -1,
            "kill",
            None,
            "arch != x86_64",
            "i386 syscalls (int 0x80) have different numbers: a filter bypass",
        )
    )
    # 2. x32 numbers (bit 30) reach the same kernel functions under other numbers.
    prog += [
        LD_NR,
        _jump(BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, 0, 1),
        _ret(RET_KILL_PROCESS),
    ]
    actions.append(
        FilterAction(
            "*",
            -1,
            "kill",
            None,
            "nr & 0x40000000 (x32)",
            "x32 syscall numbers alias the x86_64 ones the filter checks",
        )
    )

    # 3. plain ERRNO
    for name, err, why in PLAIN_DENIES:
        nr = SYSCALLS[name]
        prog += [_jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1), _ret(_errno(err))]
        actions.append(FilterAction(name, nr, "errno", E.errorcode[err], "", why))

    # 4. argument checks
    eperm = _errno(E.EPERM)
    notify_set = set(NOTIFY_ALWAYS) | (set(NOTIFY_OPEN) if notify_open else set())
    prog += _arg_block(
        SYSCALLS["clone"],
        0,
        [
            ("set", CLONE_NS_FLAGS, eperm),
            ("masked", (CLONE_VM | CLONE_THREAD | CLONE_VFORK, CLONE_VM), eperm),
            ("masked", (CLONE_VM | CLONE_PARENT, CLONE_VM | CLONE_PARENT), eperm),
        ],
        RET_ALLOW,
    )
    actions.append(
        FilterAction(
            "clone",
            SYSCALLS["clone"],
            "errno",
            "EPERM",
            "flags has CLONE_NEW*",
            "a new user namespace grants capabilities "
            "(mount over masks, kernel attack surface); other namespaces hide from the supervisor",
        )
    )
    actions.append(
        FilterAction(
            "clone",
            SYSCALLS["clone"],
            "errno",
            "EPERM",
            "CLONE_VM without CLONE_THREAD or CLONE_VFORK, or with CLONE_PARENT",
            "a second process sharing the caller's memory could rewrite an exec's "
            "argv after the supervisor read it; the supervisor's race check knows "
            "only threads and a parent blocked in vfork",
        )
    )
    prog += _arg_block(SYSCALLS["unshare"], 0, [("set", UNSHARE_NS_FLAGS, eperm)], RET_ALLOW)
    actions.append(
        FilterAction(
            "unshare",
            SYSCALLS["unshare"],
            "errno",
            "EPERM",
            "flags has CLONE_NEW*",
            "unshare(CLONE_NEWUSER): capabilities in a new namespace, then mount over the masks",
        )
    )
    prog += _arg_block(
        SYSCALLS["ioctl"], 1, [("eq", TIOCSTI, eperm), ("eq", TIOCLINUX, eperm)], RET_ALLOW
    )
    actions.append(
        FilterAction(
            "ioctl",
            SYSCALLS["ioctl"],
            "errno",
            "EPERM",
            "cmd TIOCSTI or TIOCLINUX",
            "pushes keystrokes into the terminal: commands run in the user's "
            "shell after the agent exits",
        )
    )
    prog += _arg_block(
        SYSCALLS["personality"],
        0,
        [("eq", 0, RET_ALLOW), ("eq", PERSONALITY_QUERY, RET_ALLOW)],
        eperm,
    )
    actions.append(
        FilterAction(
            "personality",
            SYSCALLS["personality"],
            "errno",
            "EPERM",
            "persona not 0 / query",
            "READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE: weakens exploit mitigations",
        )
    )
    family_tests = [("eq", f, RET_ALLOW) for f in ALLOWED_FAMILIES]
    prog += _arg_block(SYSCALLS["socket"], 0, family_tests, _errno(E.EAFNOSUPPORT))
    actions.append(
        FilterAction(
            "socket",
            SYSCALLS["socket"],
            "errno",
            "EAFNOSUPPORT",
            "domain not AF_UNIX/AF_INET/AF_INET6/AF_NETLINK",
            "AF_PACKET (raw frames past nftables), AF_VSOCK (to the hypervisor), "
            "AF_ALG/AF_KEY/AF_BLUETOOTH...: kernel attack surface and unfiltered egress",
        )
    )
    execveat_ret = RET_USER_NOTIF if "execveat" in notify_set else RET_ALLOW
    prog += _arg_block(
        SYSCALLS["execveat"], 4, [("set", AT_EMPTY_PATH, _errno(E.EACCES))], execveat_ret
    )
    actions.append(
        FilterAction(
            "execveat",
            SYSCALLS["execveat"],
            "errno",
            "EACCES",
            "flags has AT_EMPTY_PATH",
            "fexecve of a memfd or an O_PATH fd: Landlock never sees a path (memfd exec)",
        )
    )

    # 5. supervised
    notify = tuple((n, SYSCALLS[n]) for n in (*NOTIFY_ALWAYS, *NOTIFY_OPEN) if n in notify_set)
    for name, nr in notify:
        if name == "execveat":
            continue  # handled in its argument block
        prog += [_jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1), _ret(RET_USER_NOTIF)]
    for name, nr in notify:
        why = {
            "execve": "which programs, with which arguments (shell_exec)",
            "execveat": "which programs, with which arguments (shell_exec)",
            "connect": "destinations (network)",
            "sendto": "UDP destinations (network)",
            "sendmsg": "destinations of unconnected sockets (network)",
            "sendmmsg": "destinations of unconnected sockets (network)",
        }.get(name, "the open check: carve-outs without a mount namespace, simulation")
        actions.append(FilterAction(name, nr, "notify", None, "", why))

    # 6. everything else
    prog.append(_ret(RET_ALLOW))
    actions.append(
        FilterAction("*", -1, "allow", None, "otherwise", "Landlock and the supervisor decide")
    )
    if len(prog) > 4096:  # pragma: no cover - BPF_MAXINSNS
        raise ValueError("seccomp program too long")
    return SeccompPlan(
        actions=tuple(actions),
        notify_syscalls=notify,
        program=tuple(prog),
        flags=FILTER_FLAG_NEW_LISTENER | FILTER_FLAG_WAIT_KILLABLE_RECV,
        open_check=notify_open,
    )
