"""The seccomp filter's argument-checked entries (block 4 of the program, see
`sandbox.plan.seccomp`): syscalls refused or handed on by the value of one argument.

Each function returns the BPF blocks and the `FilterAction`s that describe them; every
block answers every call of its syscall (ERRNO, ALLOW or USER_NOTIF), so a syscall
checked here never reaches the plain notify list after it.
"""

from __future__ import annotations

import errno as E

from sandbox.plan.bpf import (
    RET_ALLOW,
    RET_USER_NOTIF,
    Insn,
    arg_block,
    errno_action,
)
from sandbox.plan.seccomp_plan import FilterAction
from sandbox.plan.seccomp_table import (
    ALLOWED_FAMILIES,
    AT_EMPTY_PATH,
    CLONE_NS_FLAGS,
    CLONE_PARENT,
    CLONE_THREAD,
    CLONE_VFORK,
    CLONE_VM,
    O_ACCMODE,
    O_PATH,
    O_RDONLY,
    O_TRUNC,
    OPEN_WRITE_FLAGS,
    PERSONALITY_QUERY,
    SYSCALLS,
    TIOCLINUX,
    TIOCSTI,
    UNSHARE_NS_FLAGS,
)

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["execveat_check", "hardening_checks", "open_checks"]

Blocks = tuple[list[Insn], list[FilterAction]]


def hardening_checks() -> Blocks:
    """clone, unshare, ioctl, personality, socket: the same in every filter."""
    eperm = errno_action(E.EPERM)
    prog: list[Insn] = []
    actions: list[FilterAction] = []
    prog += arg_block(
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
    prog += arg_block(SYSCALLS["unshare"], 0, [("set", UNSHARE_NS_FLAGS, eperm)], RET_ALLOW)
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
    prog += arg_block(
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
    prog += arg_block(
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
    prog += arg_block(SYSCALLS["socket"], 0, family_tests, errno_action(E.EAFNOSUPPORT))
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
    return prog, actions


def open_checks(
    *, notify_set: set[str], notify_open: bool, by_flags: bool, refuse_truncate: bool
) -> Blocks:
    """open and openat by their flags: O_PATH stays in the kernel, O_RDONLY|O_TRUNC is
    refused below Landlock ABI 3, and with by_flags only opens that can write or create
    go to the supervisor.  No block when neither the open check nor the refusal is on."""
    prog: list[Insn] = []
    actions: list[FilterAction] = []
    for name, arg in (("open", 1), ("openat", 2)) if refuse_truncate or notify_open else ():
        # An arg block answers every call of its syscall: a supervised open goes on
        # to the supervisor from here, the notify list (block 5) never sees it.
        tests: list[tuple[str, Any, int]] = []
        if refuse_truncate:
            tests.append(
                ("masked", (O_ACCMODE | O_TRUNC, O_RDONLY | O_TRUNC), errno_action(E.EACCES))
            )
        if notify_open:
            tests.append(("set", O_PATH, RET_ALLOW))
        if by_flags:
            tests.append(("set", OPEN_WRITE_FLAGS, RET_USER_NOTIF))
        otherwise = RET_USER_NOTIF if name in notify_set and not by_flags else RET_ALLOW
        prog += arg_block(SYSCALLS[name], arg, tests, otherwise)
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
    return prog, actions


def execveat_check(*, notify_set: set[str]) -> Blocks:
    """execveat with AT_EMPTY_PATH is refused; any other goes on as execve does."""
    execveat_ret = RET_USER_NOTIF if "execveat" in notify_set else RET_ALLOW
    prog = arg_block(
        SYSCALLS["execveat"], 4, [("set", AT_EMPTY_PATH, errno_action(E.EACCES))], execveat_ret
    )
    action = FilterAction(
        "execveat",
        SYSCALLS["execveat"],
        "errno",
        "EACCES",
        "flags has AT_EMPTY_PATH",
        "fexecve of a memfd or an O_PATH fd: Landlock never sees a path (memfd exec)",
    )
    return prog, [action]
