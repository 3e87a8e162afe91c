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
The instructions are built by `sandbox.plan.bpf`; block 4 lives in
`sandbox.plan.seccomp_args`; the records are `sandbox.plan.seccomp_plan`'s.
"""

from __future__ import annotations

import errno as E

from sandbox.plan.bpf import (
    AUDIT_ARCH_X86_64,
    BPF_ABS,
    BPF_JEQ,
    BPF_JMP,
    BPF_JSET,
    BPF_K,
    BPF_LD,
    BPF_W,
    FILTER_FLAG_NEW_LISTENER,
    FILTER_FLAG_WAIT_KILLABLE_RECV,
    LD_NR,
    OFF_ARCH,
    RET_ALLOW,
    RET_KILL_PROCESS,
    RET_USER_NOTIF,
    X32_SYSCALL_BIT,
    Insn,
    errno_action,
    jump,
    ret,
    stmt,
)
from sandbox.plan.seccomp_args import execveat_check, hardening_checks, open_checks
from sandbox.plan.seccomp_plan import FilterAction, SeccompPlan
from sandbox.plan.seccomp_table import (
    NOTIFY_ALWAYS,
    NOTIFY_FSOP,
    NOTIFY_OPEN,
    PLAIN_DENIES,
    SYSCALLS,
)

__all__ = ["TRUNCATE_DENIES", "FilterAction", "SeccompPlan", "compile_seccomp"]

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
    prog: list[Insn] = []

    # 1. A foreign arch (i386 via int 0x80) has other syscall numbers: every
    #    check below would be meaningless, so the process dies.
    prog += [
        stmt(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        ret(RET_KILL_PROCESS),
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
        jump(BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, 0, 1),
        ret(RET_KILL_PROCESS),
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
        prog += [jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1), ret(errno_action(err))]
        actions.append(FilterAction(name, nr, "errno", E.errorcode[err], "", why))

    # 4. argument checks
    notify_set = set(NOTIFY_ALWAYS) | (set(NOTIFY_OPEN) if notify_open else set())
    if notify_fsop:
        notify_set |= set(NOTIFY_FSOP)
    if refuse_truncate:
        notify_set.discard("openat2")  # refused with ENOSYS above, before any notification
        if not notify_fsop:
            notify_set.discard("truncate")  # refused with EACCES above
    by_flags = notify_open and not notify_reads
    for block, described in (
        hardening_checks(),
        open_checks(
            notify_set=notify_set,
            notify_open=notify_open,
            by_flags=by_flags,
            refuse_truncate=refuse_truncate,
        ),
        execveat_check(notify_set=notify_set),
    ):
        prog += block
        actions += described

    # 5. supervised
    notify = tuple(
        (n, SYSCALLS[n]) for n in (*NOTIFY_ALWAYS, *NOTIFY_OPEN, *NOTIFY_FSOP) if n in notify_set
    )
    for name, nr in notify:
        if name == "execveat" or ((refuse_truncate or notify_open) and name in ("open", "openat")):
            continue  # handled in its argument block
        prog += [jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1), ret(RET_USER_NOTIF)]
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
    prog.append(ret(RET_ALLOW))
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
