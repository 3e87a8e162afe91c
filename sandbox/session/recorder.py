"""Every decision of a session goes to the audit trail (and to RunOptions.on_event)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

from sandbox.audit.event import DecisionEvent
from sandbox.audit.writer import AuditWriter
from sandbox.errors import AuditError
from sandbox.policy.model import Policy
from sandbox.record import replace

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from sandbox.supervise import Supervisor
    from sandbox.supervise.records import RecordBatch


class EventSink:
    """An `on_event` callback that can also ask for the session's records up to now.

    `sandbox.Session` passes one as RunOptions.on_event: the Recorder binds its `flush`
    to it when the supervisor starts, so the Session can fence each command (every
    record of the command delivered before `run` returns) without a sleep."""

    def __init__(self, deliver: Callable[[DecisionEvent], None]) -> None:
        self._deliver = deliver
        self._flush: Callable[[float | None], bool] | None = None

    def __call__(self, ev: DecisionEvent) -> None:
        self._deliver(ev)

    def bind(self, flush: Callable[[float | None], bool]) -> None:
        self._flush = flush

    def flush(self, timeout: float | None = None) -> bool:
        """True once every record decided before this call has reached `deliver`
        (False after `timeout` seconds, or when no supervisor was attached)."""
        return self._flush is not None and self._flush(timeout)


class _Events:
    """Recorder.event: a callable for one event that also takes a batch, which the
    supervisor's drainer looks for: one trail write for all the records it drained,
    as the records themselves (`records`: C renders the lines) or as events (`many`)."""

    __slots__ = ("many", "one", "records")

    def __init__(
        self,
        one: Callable[[DecisionEvent], None],
        many: Callable[[list[DecisionEvent]], None],
        records: Callable[[RecordBatch], None],
    ) -> None:
        self.one = one
        self.many = many
        self.records = records

    def __call__(self, ev: DecisionEvent) -> None:
        self.one(ev)


class Recorder:
    """Every decision goes to the audit trail (and to options.on_event, for the API).

    The network layer may report decisions (DNS denials) before the supervisor
    exists, and names for IPs before it can take them: both are buffered."""

    def __init__(
        self,
        writer: AuditWriter | None,
        extra: Callable[[DecisionEvent], None] | None,
        policy: Policy | None = None,
        stderr_fd: int = 2,
    ) -> None:
        self.writer = writer
        self.policy = policy
        self.stderr_fd = stderr_fd
        self._told: set[str] = set()  # DNS denials already explained on stderr
        self.extra = extra
        self.exec_denied = False  # the supervisor refused an exec (it said why on stderr)
        self._lock = threading.Lock()
        self._names: list[tuple[str, tuple[str, ...]]] = []
        self._supervisor: Supervisor | None = None
        # Every decision, one (the DNS view, a test) or a drained batch (`event.many`).
        self.event = _Events(self._one, self._many, self._records)

    def _trail(self) -> AuditWriter:
        """The session's writer.  None only before the session's start entry (the trail is
        opened while the child is forked: sandbox/session/trailopen.py), when nothing of the
        agent's has run; a decision then would have nowhere to go, so it fails closed."""
        writer = self.writer
        if writer is None:
            raise AuditError("a decision before the audit trail was opened")
        return writer

    def _one(self, ev: DecisionEvent) -> None:
        ev = self._judged(ev)
        # The trail's on-disk format is the event's entry form (sandbox.audit.event).
        self._trail().append(ev.to_entry())
        self._after(ev)

    def _many(self, events: list[DecisionEvent]) -> None:
        """A drained batch: recorded in order with one trail write, then told and handed
        on (each event is in the trail before anyone hears of it, as with `_one`)."""
        if any(ev.mode == "simulate" for ev in events):
            events = [self._judged(ev) for ev in events]
        self._trail().append_many([ev.to_entry() for ev in events])
        extra = self.extra
        for ev in events:
            if ev.result == "deny":
                self._after(ev)
            elif extra is not None:  # _after for an allowed event
                extra(ev)

    def _records(self, batch: RecordBatch) -> None:
        """A drained batch of supervisor records (never simulated: those come as events,
        judged here first): into the trail as C renders them, then told and handed on
        as `_many` does.  DecisionEvents are built only for an `extra` to hand them to."""
        self._trail().append_records(batch)
        if batch.exec_denied():
            self.exec_denied = True
        extra = self.extra
        if extra is not None:
            for ev in batch.events():
                extra(ev)

    def _judged(self, ev: DecisionEvent) -> DecisionEvent:
        if ev.mode == "simulate" and ev.action in ("file_read", "file_write", "open"):
            return self._judge_simulated_open(ev)
        return ev

    def _after(self, ev: DecisionEvent) -> None:
        if ev.result == "deny":
            if ev.action == "shell_exec":
                self.exec_denied = True
            if ev.layer == "dns":
                self._tell_dns_denial(ev)
        if self.extra is not None:
            self.extra(ev)

    def _tell_dns_denial(self, ev: DecisionEvent) -> None:
        """The DNS view's refusal, told once per name on the sandbox's stderr (DESIGN §4),
        like the supervisor's denials: the agent sees only NXDOMAIN otherwise."""
        from sandbox.audit.escape import printable

        name = ev.target
        with self._lock:
            if name in self._told:
                return
            self._told.add(name)
        # The name is the agent's choice: escaped like the supervisor's lines (issue 14).
        shown = printable(name).replace('"', '\\"')
        line = f'landgate: denied network "{shown}" ({ev.rule or "DNS view"}, DNS view)\n'
        try:
            os.write(self.stderr_fd, line.encode("utf-8", "replace"))
        except OSError:
            pass  # the sandbox's stderr is closed: the trail still has the entry

    def _judge_simulated_open(self, ev: DecisionEvent) -> DecisionEvent:
        """An open observed in simulation, judged by the one evaluator.

        The C loop matched only the carve-out denies; in simulation Python may sit
        between question and answer (nothing is blocked), so the open gets the full
        decision: allow rules, the baseline, protected paths and the default."""
        if self.policy is None or not ev.target.startswith("/"):
            return ev
        from sandbox.policy import decide

        actions = ["file_read"] if ev.detail != "write" else ["file_write"]
        if ev.detail == "read-write":
            actions = ["file_read", "file_write"]
        # Judged like enforcement (csrc/supervise_open.c): the name as spelled AND the
        # object it reaches, deny winning.  A denied name stays denied whatever it points
        # to (`.env -> ../shared/env.local`, `~/.bashrc -> dotfiles/bashrc`), and a denied
        # object is denied under any name (`notes.txt -> .env`).  The trail names the
        # object (`detail` keeps the spelling) unless the spelling is what was denied.  A
        # name that does not exist yet resolves as far as it exists.
        target, detail = ev.target, ev.detail
        try:
            real = os.path.realpath(ev.target)
        except (OSError, ValueError):
            real = ev.target
        # /proc's magic links (/proc/self, /dev/fd -> /proc/self/fd) would resolve to
        # landgate's own process here, not the sandbox's: those keep their spelling.
        if real.startswith("/proc/") or ev.target.startswith("/proc/"):
            real = ev.target
        spelled = [decide(self.policy, a, ev.target) for a in actions]
        d = next((x for x in spelled if x.effect == "deny"), None)
        if real != ev.target:
            if d is None:
                decisions = [decide(self.policy, a, real) for a in actions]
                d = next((x for x in decisions if x.effect == "deny"), decisions[-1])
                target, detail = real, f"{ev.detail or 'read'} via {ev.target}"
            else:
                detail = f"{ev.detail or 'read'} {real}"  # as the C check names the object
        if d is None:
            d = spelled[-1]
        if d.effect != "deny" and ev.result == "deny" and ev.rule is not None:
            # The C loop judged the object by identity as enforcement does (a hard link
            # of a denied file, under a name no rule denies): its deny stands.
            return ev
        return replace(
            ev,
            target=target,
            detail=detail,
            action=d.action,
            result=d.effect,
            rule=d.rule_ref(),
            layer="filesystem",
            origin="default" if d.rule is None else d.rule.origin,
            rule_index=None if d.rule is None else d.rule.index,
            rule_source=None if d.rule is None else str(d.rule.source),
        )

    def names(self, ip: str, names: Sequence[str]) -> None:
        with self._lock:
            sup = self._supervisor
            if sup is None:
                self._names.append((ip, tuple(names)))
                return
        sup.add_names(ip, tuple(names))

    def flush(self, timeout: float | None = None) -> bool:
        """Every supervisor record decided before this call recorded and handed on.

        The network layer's DNS view records before it answers (nothing to wait for);
        the kernel's Landlock records come through kauditd asynchronously and are not
        covered: they reach `denied` by their timestamp when they arrive in time."""
        with self._lock:
            sup = self._supervisor
        if sup is None:
            return True  # no supervisor: its records cannot be pending
        flush = getattr(sup, "flush", None)
        return bool(flush(timeout)) if flush is not None else False

    def attach(self, supervisor: Supervisor | None) -> None:
        if isinstance(self.extra, EventSink):
            self.extra.bind(self.flush)
        with self._lock:
            self._supervisor = supervisor
            pending, self._names = self._names, []
        if supervisor is not None and hasattr(supervisor, "add_names"):
            for ip, names in pending:
                supervisor.add_names(ip, names)
