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

from sandbox.plan.seccomp_table import (
    ALLOWED_FAMILIES,
    AT_EMPTY_PATH,
    CLONE_NS_FLAGS,
    CLONE_PARENT,
    CLONE_THREAD,
    CLONE_VFORK,
    CLONE_VM,
    NOTIFY_ALWAYS,
    NOTIFY_FSOP,
    NOTIFY_OPEN,
    O_ACCMODE,
    O_PATH,
    O_RDONLY,
    O_TRUNC,
    OPEN_WRITE_FLAGS,
    PERSONALITY_QUERY,
    PLAIN_DENIES,
    SYSCALLS,
    TIOCLINUX,
    TIOCSTI,
    UNSHARE_NS_FLAGS,
)
from sandbox.record import Record

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
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


class FilterAction(Record):
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


class SeccompPlan(Record):
    actions: tuple[FilterAction, ...]
    notify_syscalls: tuple[tuple[str, int], ...]  # (name, x86_64 nr), for the supervisor
    program: tuple[tuple[int, int, int, int], ...]  # (code, jt, jf, k)
    flags: int
    open_check: bool
    fsop_check: bool = False
    notify_reads: bool = True  # read-only opens too (else only opens that can write/create)

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
            "fsop_check": self.fsop_check,
            "open_check_reads": self.notify_reads,
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


# Landlock ABI < 3 cannot judge truncation: truncate(2) by path, and an O_RDONLY|O_TRUNC
# open (the kernel truncates a file opened read-only when its modes allow writing, and
# Landlock < 3 checks only the read).  ftruncate needs a descriptor opened for writing,
# which Landlock's WRITE_FILE right already judges.  So below ABI 3 these are refused --
# except truncate(2) where the supervisor performs the name-changing syscalls
# (notify_fsop): it judges file_write of the object and truncates by reopening the object
# for writing on a thread under the sandbox's ruleset (csrc/supervise_fsop_do.c), an open
# whose WRITE_FILE right every Landlock ABI judges.  That is what "open it for writing and
# ftruncate" does, so the refusal would only break programs (issue 17, Debian 12's 6.1).
TRUNCATE_DENIES: tuple[tuple[str, int, str], ...] = (
    (
        "truncate",
        E.EACCES,
        (
            "Landlock ABI < 3 cannot judge it: a file the policy denies writing would be emptied "
            "(open it for writing and ftruncate instead)"
        ),
    ),
    (
        "openat2",
        E.ENOSYS,
        "Landlock ABI < 3: its O_TRUNC lives in memory BPF cannot read: libc falls back to openat",
    ),
)


def compile_seccomp(
    *,
    notify_open: bool,
    notify_reads: bool = True,
    refuse_truncate: bool = False,
    notify_fsop: bool = False,
) -> SeccompPlan:
    """The hardening filter plus USER_NOTIF for the supervised syscalls.

    notify_open: opens go to the supervisor's open check; with notify_reads False only
    open/openat whose flags can write or create (OPEN_WRITE_FLAGS), creat and every
    openat2 do: read-only opens stay in the kernel (Landlock decides them).
    notify_fsop: the name-changing syscalls (NOTIFY_FSOP) go to the supervisor, which
    judges the real resulting name and performs them (protected paths, file_write denies).
    refuse_truncate: Landlock ABI < 3 (TRUNCATE_DENIES): openat2 and opens with O_TRUNC but
    no write access are refused, and truncate(2) unless notify_fsop hands it to the
    supervisor (which judges and performs it under the ruleset's WRITE_FILE check)."""
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
    truncate_denies = tuple(
        d
        for d in (TRUNCATE_DENIES if refuse_truncate else ())
        if not (notify_fsop and d[0] == "truncate")
    )
    for name, err, why in PLAIN_DENIES + truncate_denies:
        nr = SYSCALLS[name]
        prog += [_jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1), _ret(_errno(err))]
        actions.append(FilterAction(name, nr, "errno", E.errorcode[err], "", why))

    # 4. argument checks
    eperm = _errno(E.EPERM)
    notify_set = set(NOTIFY_ALWAYS) | (set(NOTIFY_OPEN) if notify_open else set())
    if notify_fsop:
        notify_set |= set(NOTIFY_FSOP)
    if refuse_truncate:
        notify_set.discard("openat2")  # refused with ENOSYS above, before any notification
        if not notify_fsop:
            notify_set.discard("truncate")  # refused with EACCES above
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
            "(mounts over protected paths, kernel attack surface); other namespaces hide from "
            "the supervisor",
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
            "unshare(CLONE_NEWUSER): capabilities in a new namespace, then mounts over "
            "protected paths",
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
    by_flags = notify_open and not notify_reads
    for name, arg in (("open", 1), ("openat", 2)) if refuse_truncate or notify_open else ():
        # An arg block answers every call of its syscall: a supervised open goes on
        # to the supervisor from here, the notify block below never sees it.
        tests: list[tuple[str, Any, int]] = []
        if refuse_truncate:
            tests.append(("masked", (O_ACCMODE | O_TRUNC, O_RDONLY | O_TRUNC), _errno(E.EACCES)))
        if notify_open:
            tests.append(("set", O_PATH, RET_ALLOW))
        if by_flags:
            tests.append(("set", OPEN_WRITE_FLAGS, RET_USER_NOTIF))
        otherwise = RET_USER_NOTIF if name in notify_set and not by_flags else RET_ALLOW
        prog += _arg_block(SYSCALLS[name], arg, tests, otherwise)
        if notify_open:
            actions.append(
                FilterAction(
                    name,
                    SYSCALLS[name],
                    "allow",
                    None,
                    "flags has O_PATH",
                    "an O_PATH fd reads and writes nothing; reopening it is an open that is "
                    "judged (ADDFD cannot inject an O_PATH file)",
                )
            )
        if by_flags:
            actions.append(
                FilterAction(
                    name,
                    SYSCALLS[name],
                    "notify",
                    None,
                    "flags has O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/O_APPEND/O_TMPFILE",
                    "the open check: a write deny or protected path reaches a writable grant; "
                    "read-only opens stay in the kernel (no read deny reaches a readable grant)",
                )
            )
        if refuse_truncate:
            actions.append(
                FilterAction(
                    name,
                    SYSCALLS[name],
                    "errno",
                    "EACCES",
                    "flags has O_TRUNC with O_RDONLY",
                    "Landlock ABI < 3 checks only the read: the open would empty a file the "
                    "policy denies writing",
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
    notify = tuple(
        (n, SYSCALLS[n]) for n in (*NOTIFY_ALWAYS, *NOTIFY_OPEN, *NOTIFY_FSOP) if n in notify_set
    )
    for name, nr in notify:
        if name == "execveat" or ((refuse_truncate or notify_open) and name in ("open", "openat")):
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
        }.get(name) or NOTIFY_FSOP.get(
            name,
            "the open check: deny rules and protected paths decided at access time "
            "(simulation: every open observed)",
        )
        if by_flags and name in ("open", "openat"):
            continue  # listed with its flag condition above
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
        fsop_check=notify_fsop,
        notify_reads=notify_open and notify_reads,
    )
