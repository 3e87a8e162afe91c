"""A supervisor's ring records (csrc/supervise_api.h struct lg_event) as typed
`sandbox.audit.event.DecisionEvent`s, for `on_event` and the trail's Python path.

Split out of supervisor.py: the supervisor runs the loop and its drainer and owns the
C context's lifetime; turning the bytes of a drained record into an event is a job of
its own, with the record layout it relies on checked here once, at import.  The
fields that depend only on a record's rule or flag bits are derived once per
supervisor (the tables do not change under it).
"""

from __future__ import annotations

import struct

from sandbox._supervise import ffi, lib
from sandbox.audit.event import event_from_values

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from sandbox.audit.event import DecisionEvent

_ACTION = {
    lib.LG_ACT_EXEC: "shell_exec",
    lib.LG_ACT_CONNECT: "network",
    lib.LG_ACT_SEND: "network",
    lib.LG_ACT_OPEN: "file_read",
}
_LAYER = {
    lib.LG_ACT_EXEC: "exec",
    lib.LG_ACT_CONNECT: "connect",
    lib.LG_ACT_SEND: "connect",
    lib.LG_ACT_OPEN: "carve-outs",
}
_FLAGS = [
    (lib.LG_EV_SIMULATED, "simulated"),
    (lib.LG_EV_ROOT, "root"),
    (lib.LG_EV_INHERITED, "inherited"),
    (lib.LG_EV_EXEC_RACE, "exec-race"),
    (lib.LG_EV_VERIFIED, "verified"),
    (lib.LG_EV_TRUNCATED, "truncated"),
    (lib.LG_EV_FAILCLOSED, "fail-closed"),
    (lib.LG_EV_SHELL, "shell-string"),
    (lib.LG_EV_WRAPPER, "unwrapped"),
    (lib.LG_EV_FORWARDED, "forwarded"),
    (lib.LG_EV_MISSING, "missing"),
    (lib.LG_EV_EXECUTED, "executed-object"),
]
# struct lg_event read in one go (csrc/supervise_api.h): each cffi field access is a
# Python call, ~20 per record; the batch is copied out once and unpacked with this.
_HEAD = struct.Struct("=QQQiiiiiiIiii")  # seq .. target_len, in declaration order
_TARGET_OFF = ffi.offsetof("struct lg_event", "target")
_DETAIL_OFF = ffi.offsetof("struct lg_event", "detail")
if _HEAD.size != _TARGET_OFF or _DETAIL_OFF != _TARGET_OFF + lib.LG_TARGET_MAX:
    # A changed struct would be misread silently: refuse to load instead.
    raise ImportError("sandbox.supervise: struct lg_event does not have the layout read here")
_TARGET_MAX = lib.LG_TARGET_MAX
_DETAIL_MAX = lib.LG_DETAIL_MAX
_EXEC, _OPEN, _ALLOW = lib.LG_ACT_EXEC, lib.LG_ACT_OPEN, lib.LG_EFFECT_ALLOW
_EXEC_RACE = lib.LG_EV_EXEC_RACE


class EventDecoder:
    """One supervisor's records as DecisionEvents (`mode`: "enforce" or "simulate").

    `rule_cache` and `rule_fields` are the supervisor's (Supervisor._rule_fields: the
    fields of a rule index, derived once per supervisor, shared with the C renderer)."""

    __slots__ = ("_flag_cache", "_mode", "_rule_cache", "_rule_fields")

    def __init__(
        self,
        mode: str,
        rule_cache: dict[int, tuple[Any, ...]],
        rule_fields: Callable[[int], tuple[Any, ...]],
    ) -> None:
        self._mode = mode
        self._rule_cache = rule_cache
        self._rule_fields = rule_fields
        self._flag_cache: dict[int, tuple[tuple[str, ...], bool]] = {}

    def _flag_fields(self, bits: int) -> tuple[tuple[str, ...], bool]:
        got = self._flag_cache.get(bits)
        if got is None:
            got = (tuple(name for bit, name in _FLAGS if bits & bit), bool(bits & _EXEC_RACE))
            self._flag_cache[bits] = got
        return got

    def event_at(self, data: bytes, off: int) -> DecisionEvent:
        """The record at byte `off` of a copied batch (csrc/supervise_api.h struct lg_event)."""
        (seq, t_recv, t_resp, pid, tid, act, result, rule, err, bits, nr, argc, tlen) = (
            _HEAD.unpack_from(data, off)
        )
        info, ref, source, index, origin = self._rule_cache.get(rule) or self._rule_fields(rule)
        flags, exec_race = self._flag_cache.get(bits) or self._flag_fields(bits)
        t0 = off + _TARGET_OFF
        argv: tuple[str, ...] | None = None
        if act == _EXEC and argc > 0:
            raw = data[t0 : t0 + max(0, min(tlen, _TARGET_MAX))]
            # Decoded whole, then split: the same strings as decoding each one (a NUL
            # is never inside a UTF-8 sequence, valid or not).
            argv = tuple(raw.decode("utf-8", "surrogateescape").split("\0")[:argc])
            # os.path.basename of the program, shown with its arguments
            target = " ".join([argv[0].rpartition("/")[2], *argv[1:]])
        else:
            end = data.find(b"\0", t0, t0 + _TARGET_MAX)  # ffi.string of the char array
            target = data[t0 : end if end >= 0 else t0 + _TARGET_MAX].decode(
                "utf-8", "surrogateescape"
            )
        d0 = off + _DETAIL_OFF
        end = data.find(b"\0", d0, d0 + _DETAIL_MAX)
        detail = data[d0 : end if end >= 0 else d0 + _DETAIL_MAX]
        action = _ACTION.get(act, "unknown")
        if act == _OPEN:
            # detail: "read" / "write", then the object's real path when it differs
            action = (
                info.action
                if info is not None
                else ("file_write" if detail.split(b" ", 1)[0] == b"write" else "file_read")
            )
        # DecisionEvent's fields in declaration order (sandbox.audit.event)
        return event_from_values(
            (
                "supervisor",
                action,
                target,
                "allow" if result == _ALLOW else "deny",
                _LAYER.get(act, "seccomp"),
                t_recv / 1e9,
                ref,
                self._mode,
                seq,
                t_resp / 1e9,
                pid,
                tid,
                argv,
                detail.decode("utf-8", "surrogateescape") or None,
                err,
                source,
                index,
                origin,
                flags,
                exec_race,
                nr,
                None,
                None,
                None,
                None,
            )
        )
