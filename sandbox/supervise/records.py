"""A drained batch of ring records, rendered straight into sealed trail lines (issue 19).

The Python path turns each record into a DecisionEvent, an entry dict, canonical
JSON and a chain link: ~17 us of CPU per record, spent on the CPU the agent's exec
loop runs on.  `csrc/render_event.c` writes the same bytes from the record and the
fields that depend only on its rule (rendered here with the trail's own `canonical`,
once per supervisor, when a record first names the rule).
tests/audit/test_render_contract.py compares the two paths byte for byte over
generated records; whatever C cannot render (a clock outside the range it formats)
makes the writer take the Python path for the batch.

The writer asks for the lines under its lock, because only it knows the chain's
head: `AuditWriter.append_records(batch)` calls `batch.render(...)`.  DecisionEvents
are built only when someone asks for them (`events()`: the API's `on_event`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from sandbox._supervise import ffi, lib
from sandbox.audit.canonical import canonical

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sandbox.audit.event import DecisionEvent

    from .supervisor import Supervisor

_EV_SIZE = ffi.sizeof("struct lg_event")
_SEQ = struct.Struct("=Q")  # struct lg_event's first field
if ffi.offsetof("struct lg_event", "seq") != 0:
    raise ImportError("sandbox.supervise: struct lg_event does not start with its seq")
_OUT_CAP = 64 << 10  # bytes of lines per C call; the batch's rest goes in the next call
_BATCH_MAX = 256  # records per C call: the digests and codes buffers hold this many
# Action codes (csrc/supervise_api.h LG_RENDER_*): the names, in code order; the rules'
# own actions for an open are appended per supervisor.
_FIXED_ACTIONS = ("shell_exec", "network", "unknown", "file_read", "file_write")
if (
    lib.LG_RENDER_SHELL_EXEC,
    lib.LG_RENDER_NETWORK,
    lib.LG_RENDER_UNKNOWN,
    lib.LG_RENDER_FILE_READ,
    lib.LG_RENDER_FILE_WRITE,
) != (0, 1, 2, 3, 4):
    raise ImportError("sandbox.supervise: LG_RENDER_* codes differ from the names read here")


class Renderer:
    """The per-supervisor C view of its rules (built at the first batch), and buffers."""

    def __init__(
        self, nrules: int, rule_fields: Callable[[int], tuple[Any, ...]], mode: str
    ) -> None:
        """`rule_fields(i)`: Supervisor._rule_fields of rule index i (info, ref, source,
        index, origin).  A rule's slot is filled when a record first names it (C says
        which): a policy has hundreds of rules (~3.5 us each), a session uses a few."""
        self._keep: list[Any] = []  # every char[] the structs point into
        self._rule_fields = rule_fields
        self.actions: list[str] = list(_FIXED_ACTIONS)
        self.rules = ffi.new("struct lg_render_rule[]", max(1, nrules))  # zeroed: not filled
        self.none = ffi.new("struct lg_render_rule *")
        self._fill(self.none, (None, None, None, None, None))
        self.nrules = nrules
        self.missing = ffi.new("int *")
        self.mode = self._text(canonical(mode))
        self._ctx: Any = None
        self._ctx_keep: tuple[Any, ...] = ()
        self._ctx_for: tuple[str, bytes] | None = None
        self.out = ffi.new("char[]", _OUT_CAP)
        self.digests = ffi.new("unsigned char[]", 32 * _BATCH_MAX)
        self.codes = ffi.new("unsigned char[]", _BATCH_MAX)
        self.used = ffi.new("size_t *")

    def _text(self, data: bytes) -> Any:
        buf = ffi.new("char[]", data)
        self._keep.append(buf)
        return buf

    def fill(self, rule: int) -> None:
        """Fill rule `rule`'s slot (C stopped before a record naming it)."""
        if not 0 <= rule < self.nrules or self.rules[rule].refs != ffi.NULL:
            raise RuntimeError(f"render: rule {rule} asked for, not an empty slot")
        self._fill(self.rules[rule], self._rule_fields(rule))

    def _fill(self, slot: Any, fields: tuple[Any, ...]) -> None:
        info, ref, source, index, origin = fields
        refs = canonical({"rule": ref, "rule_index": index, "rule_source": source})
        slot.refs = self._text(refs[1:-1])
        slot.origin = self._text(canonical(origin))
        if info is None:
            slot.open_action = ffi.NULL  # the record's detail says read or write
            slot.open_code = 0
        else:
            name = info.action
            if name not in self.actions:
                self.actions.append(name)
            code = self.actions.index(name)
            if code > 127:
                raise ValueError("more than 127 distinct rule actions")  # not in any policy
            slot.open_action = self._text(canonical(name))
            slot.open_code = code

    def ctx(self, session: str, key: bytes) -> Any:
        if self._ctx_for != (session, key):
            c = ffi.new("struct lg_render *")
            kbuf = ffi.new("unsigned char[]", key)
            sbuf = ffi.new("char[]", canonical(session))
            c.key, c.key_len, c.session, c.mode = kbuf, len(key), sbuf, self.mode
            c.rules, c.nrules, c.none = self.rules, self.nrules, self.none
            self._ctx, self._ctx_keep, self._ctx_for = c, (kbuf, sbuf), (session, key)
        return self._ctx


class RecordBatch:
    """`n` records copied out of the ring (`data`), as the session's Recorder takes them."""

    __slots__ = ("_events", "_sup", "codes", "data", "n")

    def __init__(self, sup: Supervisor, data: bytes, n: int) -> None:
        self._sup = sup
        self.data = data
        self.n = n
        self._events: list[DecisionEvent] | None = None
        self.codes = b""  # each rendered record's action code (action << 1 | denied)

    @property
    def last_seq(self) -> int:
        return int(_SEQ.unpack_from(self.data, (self.n - 1) * _EV_SIZE)[0]) if self.n else 0

    @property
    def actions(self) -> list[str]:
        """The action name of each code's `action` part."""
        return self._sup.renderer().actions

    def events(self) -> list[DecisionEvent]:
        """The records as DecisionEvents (built once, on the first call)."""
        if self._events is None:
            at = self._sup._event_at
            self._events = [at(self.data, i * _EV_SIZE) for i in range(self.n)]
        return self._events

    def entries(self) -> list[dict[str, Any]]:
        """The records' trail entries as the Python path makes them (fresh dicts)."""
        return [ev.to_entry() for ev in self.events()]

    def exec_denied(self) -> bool:
        """Some record of the batch is a refused exec."""
        if len(self.codes) == self.n:
            return (lib.LG_RENDER_SHELL_EXEC << 1 | 1).to_bytes(1, "little") in self.codes
        return any(ev.result == "deny" and ev.action == "shell_exec" for ev in self.events())

    def render(
        self, start: int, count: int, seq: int, prev: str, session: str, key: bytes
    ) -> tuple[bytes, list[bytes]] | None:
        """Records [start, start + count) as trail lines, the first with seq `seq` + 1
        chained to `prev`: (lines, raw digests); None when C cannot render one (the
        caller takes the Python path for them)."""
        r = self._sup.renderer()
        ctx = r.ctx(session, key)
        src = ffi.from_buffer("struct lg_event[]", self.data)
        parts: list[bytes] = []
        digests: list[bytes] = []
        codes: list[bytes] = []
        link = prev.encode()
        i, end = start, start + count
        while i < end:
            got = lib.lg_render_events(
                ctx,
                src + i,
                min(end - i, _BATCH_MAX),  # what r.digests and r.codes have room for
                seq,
                link,
                r.out,
                _OUT_CAP,
                r.used,
                r.digests,
                r.codes,
                r.missing,
            )
            if got < 0:  # not renderable here: the Python path takes the run
                return None
            if r.missing[0] >= 0:
                r.fill(r.missing[0])
            elif got == 0:
                return None  # cannot happen: one record always fits an empty buffer
            if got == 0:
                continue
            parts.append(ffi.buffer(r.out, r.used[0])[:])
            raw = ffi.buffer(r.digests, 32 * got)[:]
            digests.extend(raw[j : j + 32] for j in range(0, 32 * got, 32))
            codes.append(ffi.buffer(r.codes, got)[:])
            link = raw[-32:].hex().encode()
            seq += got
            i += got
        self.codes += b"".join(codes)
        return b"".join(parts), digests
