"""The typed decision event: one record per decision, from the supervisor's ring or the
DNS view to the audit writer, the API's `decisions` and the simulation summary.

Built in two places (sandbox.supervise from the C ring, sandbox.net's DNS view),
never rewritten in place (`dataclasses.replace` makes a judged copy).  The audit
trail's on-disk format is `to_entry()`: exactly the keys each source wrote
before the event was typed, so existing trails and readers are unchanged.
"""

from __future__ import annotations

from collections import deque
from itertools import repeat

from sandbox.record import Record

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
# (`from __future__ import annotations`): the checker sees the Literal aliases, run time `str`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    Source = Literal["supervisor", "dns", "kernel"]  # kernel: Landlock, from the audit records
    Result = Literal["allow", "deny", "error"]
else:
    Source = Result = str
JsonValue = str | int | float | bool | None | list[str]


class DecisionEvent(Record):
    source: Source  # who decided: the seccomp supervisor, the DNS view or the kernel
    action: str  # file_read, file_write, shell_exec, network
    target: str  # the command line, the path, the destination, the name asked
    result: Result
    layer: str  # exec, connect, carve-outs, filesystem, dns
    ts: float  # wall clock, seconds
    rule: str | None = None  # "FILE:LINE" of the deciding rule, or a built-in's name
    mode: str = "enforce"  # or "simulate" (nothing was blocked)
    # the supervisor's record (csrc/supervise_api.h struct lg_event)
    seq: int = 0  # the ring's own counter (the trail keeps it as event_seq)
    ts_decided: float = 0.0
    pid: int = 0
    tid: int = 0
    argv: tuple[str, ...] | None = None
    detail: str | None = None
    errno: int = 0
    rule_source: str | None = None
    rule_index: int | None = None
    origin: str | None = None  # policy, baseline, protected, default, ...
    flags: tuple[str, ...] = ()
    exec_race: bool = False
    syscall: int = -1
    # the DNS view's record
    qtype: str | None = None
    reason: str | None = None
    addresses: tuple[str, ...] | None = None
    note: str | None = None

    @property
    def denied(self) -> bool:
        """Denied, or (under simulation) would have been."""
        return self.result == "deny"

    def to_entry(self) -> dict[str, JsonValue]:
        """The audit entry's fields (the writer adds type, session, seq, prev, hash)."""
        if self.source == "dns":
            out: dict[str, JsonValue] = {
                "action": self.action,
                "target": self.target,
                "layer": self.layer,
                "rule": self.rule,
                "qtype": self.qtype,
                "result": self.result,
            }
            if self.reason is not None:
                out["reason"] = self.reason
            if self.addresses is not None:
                out["addresses"] = list(self.addresses)
            if self.note is not None:
                out["note"] = self.note
            out["ts"] = self.ts
            return out
        return {
            "seq": self.seq,
            "ts": self.ts,
            "ts_decided": self.ts_decided,
            "pid": self.pid,
            "tid": self.tid,
            "action": self.action,
            "target": self.target,
            "argv": None if self.argv is None else list(self.argv),
            "detail": self.detail,
            "result": self.result,
            "errno": self.errno,
            "rule": self.rule,
            "rule_source": self.rule_source,
            "rule_index": self.rule_index,
            "origin": self.origin,
            "layer": self.layer,
            "mode": self.mode,
            "flags": list(self.flags),
            "exec_race": self.exec_race,
            "syscall": self.syscall,
        }


_FIELDS: tuple[str, ...] = DecisionEvent.__slots__
_set = object.__setattr__
_new = object.__new__


def event_from_values(values: tuple[Any, ...]) -> DecisionEvent:
    """A DecisionEvent from every field's value in declaration order (the supervisor's
    drainer, once per record: the keyword constructor's per-field Python loop was a third
    of a record's cost).  The fields are set by a loop in C (map, drained by deque)."""
    if len(values) != len(_FIELDS):
        raise TypeError(f"DecisionEvent takes {len(_FIELDS)} values, {len(values)} given")
    ev: DecisionEvent = _new(DecisionEvent)
    deque(map(_set, repeat(ev), _FIELDS, values), 0)
    return ev
