"""Classic BPF for seccomp: the instruction encodings, the return actions, and the
argument-check block every checked syscall in the filter is built from.

Instructions are (code, jt, jf, k) tuples, as the launcher installs them.  Only the low
32 bits of an argument are loaded: every argument the filter checks is an int/unsigned
int in the kernel (flags, domain, ioctl cmd).
"""

from __future__ import annotations

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = [
    "AUDIT_ARCH_X86_64",
    "BPF_ABS",
    "BPF_ALU",
    "BPF_AND",
    "BPF_JEQ",
    "BPF_JMP",
    "BPF_JSET",
    "BPF_K",
    "BPF_LD",
    "BPF_RET",
    "BPF_W",
    "FILTER_FLAG_NEW_LISTENER",
    "FILTER_FLAG_WAIT_KILLABLE_RECV",
    "LD_NR",
    "OFF_ARCH",
    "OFF_NR",
    "RET_ALLOW",
    "RET_ERRNO",
    "RET_KILL_PROCESS",
    "RET_USER_NOTIF",
    "X32_SYSCALL_BIT",
    "Insn",
    "arg_block",
    "errno_action",
    "jump",
    "ret",
    "stmt",
]

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

Insn = tuple[int, int, int, int]  # (code, jt, jf, k)


def _arg_lo(i: int) -> int:
    return 16 + 8 * i  # seccomp_data.args[i], low word (little-endian)


def stmt(code: int, k: int) -> Insn:
    return (code, 0, 0, k & 0xFFFFFFFF)


def jump(code: int, k: int, jt: int, jf: int) -> Insn:
    return (code, jt, jf, k & 0xFFFFFFFF)


LD_NR = stmt(BPF_LD | BPF_W | BPF_ABS, OFF_NR)


def ret(k: int) -> Insn:
    return stmt(BPF_RET | BPF_K, k)


def errno_action(e: int) -> int:
    """SECCOMP_RET_ERRNO with errno e: the syscall fails with -e, never runs."""
    return RET_ERRNO | (e & 0xFFFF)


def arg_block(nr: int, arg: int, tests: list[tuple[str, Any, int]], otherwise: int) -> list[Insn]:
    """if nr matches: load arg's low word; for each (kind, value, ret) test in order:
    kind "set" (arg & value), "eq" (arg == value), "ne" (arg != value),
    "masked" with value (mask, expected): (arg & mask) == expected -> ret;
    none matched -> otherwise.  Another syscall jumps over the block with its number
    still in the accumulator, so the next block compares it directly."""
    load_arg = stmt(BPF_LD | BPF_W | BPF_ABS, _arg_lo(arg))
    body: list[Insn] = [load_arg]
    for kind, value, action in tests:
        if kind == "masked":
            mask, expected = value
            # AND clobbers the accumulator: reload the argument for the next test.
            body += [
                stmt(BPF_ALU | BPF_AND | BPF_K, mask),
                jump(BPF_JMP | BPF_JEQ | BPF_K, expected, 0, 1),
                ret(action),
                load_arg,
            ]
        elif kind == "set":
            body += [jump(BPF_JMP | BPF_JSET | BPF_K, value, 0, 1), ret(action)]
        elif kind == "eq":
            body += [jump(BPF_JMP | BPF_JEQ | BPF_K, value, 0, 1), ret(action)]
        elif kind == "ne":
            body += [jump(BPF_JMP | BPF_JEQ | BPF_K, value, 1, 0), ret(action)]
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
    body.append(ret(otherwise))
    if len(body) > 255:  # pragma: no cover
        raise ValueError("argument block too long for a BPF jump")
    return [jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, len(body)), *body]
