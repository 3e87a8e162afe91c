"""What the seccomp filter does, as records: one `FilterAction` per rule (for `landgate
plan`), and the `SeccompPlan` the launcher installs and the supervisor's tables read."""

from __future__ import annotations

from sandbox.record import Record

__all__ = ["FilterAction", "SeccompPlan"]


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
