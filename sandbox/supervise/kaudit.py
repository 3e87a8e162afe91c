"""Landlock's own denials, recorded: the kernel's audit records turned into decision events.

Landlock decides in the kernel; nothing in user space is asked.  From ABI 7 (6.15) the
agent's domain logs its denials after the execve (the launcher passes
LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON) to the kernel's audit subsystem, which hands a
copy of every record to the read-only multicast group AUDIT_NLGRP_READLOG
(sandbox.host.kaudit).  This is recording after the kernel decided, so Python is fine.

Which domain is the session's: an AUDIT_LANDLOCK_DOMAIN record (sent with a domain's
first denial) names the process that created the domain (pid, exe).  The agent created
its domain itself, before its execve, as a fork of the init program (sandbox/_lginit):
pid == the agent's pid (landgate sees it in the initial pid namespace, which is where the
audit pid lives, since reading audit needs the initial namespace anyway) and exe == the
init program (`agent_exe`).  The stop fence (csrc/audit_fence.c) is a clone of landgate:
its exe is landgate's own interpreter (`creator_exe`).
A domain the agent's programs create later (a tool that sandboxes itself) has the
program's exe, and other sessions' domains other pids: neither is recorded here.  The
access record of a domain's first denial precedes its domain record, so records of a
domain not yet known wait (bounded) until the domain record says whose it is.

Not recorded: denials of a domain this session did not create (see above), records the
kernel drops (audit rate and backlog limits, `auditctl -s` counts them as lost) and any
this reader loses (netlink ENOBUFS: told once on stderr).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections.abc import Callable

from sandbox.audit.escape import printable
from sandbox.audit.event import DecisionEvent
from sandbox.host.kaudit import LandlockAccess, LandlockDomain, parse_record, split_messages
from sandbox.policy.model import Policy

_PENDING_DOMAINS = 64  # domains whose owner is not known yet
_PENDING_RECORDS = 256  # records kept per such domain
_FOREIGN_CAP = 4096
_TOLD_CAP = 4096  # distinct denials told on stderr
_EXEC = {"fs.execute"}
_READ = {"fs.read_file", "fs.read_dir"}


def blocker_actions(blockers: tuple[str, ...]) -> tuple[str, ...]:
    """The policy actions a record's blockers stand for, in a stable order."""
    out: list[str] = []
    for b in blockers:
        if b in _READ:
            action = "file_read"
        elif b in _EXEC:
            action = "shell_exec"
        elif b.startswith("fs."):
            action = "file_write"  # write_file, truncate, make_*, remove_*, refer, ioctl_dev
        elif b.startswith("net."):
            action = "network"
        else:
            action = b  # scope.signal, scope.abstract_unix_socket: Landlock's own names
        if action not in out:
            out.append(action)
    return tuple(out)


def denial_event(policy: Policy | None, rec: LandlockAccess, action: str) -> DecisionEvent:
    """One decision event for one action of one access record.

    The rule: the policy's own decision for the path when it denies (a deny rule, or the
    default deny, `default deny of file_read (policy.yaml:3)`); when the policy would allow
    it, no rule allowed it in the kernel: the Landlock ruleset did not grant the path (a
    path absent at launch, or a grant Landlock cannot express)."""
    target = rec.path if rec.path is not None else f"dev={rec.dev} ino={rec.ino}"
    detail = f"domain={rec.domain} blockers={','.join(rec.blockers)}"
    if rec.path is not None and rec.ino is not None:
        detail += f" dev={rec.dev} ino={rec.ino}"
    if rec.detail:
        detail += " " + rec.detail
    rule: str | None
    origin, index, source = "default", None, None
    if action in ("file_read", "file_write") and policy is not None and target.startswith("/"):
        from sandbox.policy import decide

        d = decide(policy, action, target)
        if d.effect == "deny":
            rule = d.rule_ref()
            if d.rule is not None:
                origin, index, source = d.rule.origin, d.rule.index, str(d.rule.source)
        else:
            rule = f"not granted by the Landlock ruleset (the policy allows it: {d.rule_ref()})"
            origin = "landlock"
    elif action in ("file_read", "file_write"):
        rule = "not granted by the Landlock ruleset"
    elif action == "shell_exec":
        rule = "not beneath the policy's executable paths (Landlock EXECUTE)"
    elif action == "network":
        rule = "Landlock TCP port rules"
    else:
        rule = f"Landlock {action}"
    return DecisionEvent(
        source="kernel",
        action=action,
        target=target,
        result="deny",
        layer="landlock",
        ts=rec.ts or time.time(),
        rule=rule,
        detail=detail,
        errno=errno.EACCES,
        origin=origin,
        rule_index=index,
        rule_source=source,
    )


def _make_fence() -> int:
    """A denial of a child of landgate's now (csrc/audit_fence.c): its pid, or -errno."""
    from sandbox._supervise import lib

    return int(lib.lg_audit_fence())


def _reap_fence(pid: int) -> None:
    from sandbox._supervise import lib

    lib.lg_audit_fence_reap(pid)


class KernelDenials:
    """Reads the audit multicast group on a thread; events for this session's domain only.

    `sock` is the subscription made before the agent was released (so its first denial
    cannot be missed); this object owns it from here."""

    def __init__(
        self,
        sock: socket.socket,
        agent_pid: int,
        policy: Policy | None,
        on_event: Callable[[DecisionEvent], None],
        stderr_fd: int = 2,
        creator_exe: str | None = None,
        agent_exe: str | None = None,
    ) -> None:
        self.sock = sock
        self.agent_pid = agent_pid
        self.policy = policy
        self.on_event = on_event
        self.stderr_fd = stderr_fd
        self.creator_exe = creator_exe if creator_exe is not None else os.readlink("/proc/self/exe")
        # The exe of the agent's domain's creator (default: the same as the fence's).
        self.agent_exe = agent_exe if agent_exe is not None else self.creator_exe
        self.ours: set[str] = set()
        self.ended: set[str] = set()  # our domains whose deallocation record arrived
        self.foreign: set[str] = set()
        self.pending: dict[str, list[LandlockAccess]] = {}
        self.lost = 0  # ENOBUFS: the socket overflowed
        self.recorded = 0
        self._told: set[tuple[str, str]] = set()
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        # pids of the creators (our exe) of domains whose first record arrived: where
        # stop() sees its fence arrive (bounded: the fence is looked for only in the last)
        self._creators: set[int] = set()
        self._seen = threading.Condition()

    # --- the records --------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """One recv()'s worth of netlink messages (tests call this with recorded bytes)."""
        for typ, payload in split_messages(data):
            rec = parse_record(typ, payload)
            if isinstance(rec, LandlockDomain):
                self._domain(rec)
            elif isinstance(rec, LandlockAccess):
                self._access(rec)

    def _domain(self, rec: LandlockDomain) -> None:
        if rec.status == "deallocated":
            if rec.domain in self.ours:
                self.ended.add(rec.domain)
            return
        if rec.status != "allocated":
            return
        held = self.pending.pop(rec.domain, [])
        if rec.exe == self.creator_exe and rec.pid != self.agent_pid:
            with self._seen:
                if len(self._creators) >= _FOREIGN_CAP:
                    self._creators.clear()
                self._creators.add(rec.pid)
                self._seen.notify_all()
        if rec.pid == self.agent_pid and rec.exe == self.agent_exe:
            self.ours.add(rec.domain)
            for access in held:
                self._record(access)
        else:
            if len(self.foreign) >= _FOREIGN_CAP:
                self.foreign.clear()  # forgetting only means holding their records again
            self.foreign.add(rec.domain)

    def _access(self, rec: LandlockAccess) -> None:
        if rec.domain in self.ours:
            self._record(rec)
        elif rec.domain not in self.foreign:
            held = self.pending.setdefault(rec.domain, [])
            if len(held) < _PENDING_RECORDS:
                held.append(rec)
            if len(self.pending) > _PENDING_DOMAINS:
                # the oldest unknown domain: another process's, whose domain record we missed
                self.pending.pop(next(iter(self.pending)))

    def _record(self, rec: LandlockAccess) -> None:
        for action in blocker_actions(rec.blockers):
            ev = denial_event(self.policy, rec, action)
            self.recorded += 1
            self._tell(ev)
            self.on_event(ev)

    def _tell(self, ev: DecisionEvent) -> None:
        """`landgate: denied file_read "/etc/x" (default deny of file_read (...), Landlock)`,
        once per distinct denial, like the supervisor's lines."""
        key = (ev.action, ev.target)
        if key in self._told or self.stderr_fd < 0:
            return
        if len(self._told) >= _TOLD_CAP:
            self._told.clear()  # a full set tells again: better repeated than silent
        self._told.add(key)
        shown = printable(ev.target).replace('"', '\\"')
        line = f'landgate: denied {ev.action} "{shown}" ({ev.rule}, Landlock)\n'
        try:
            os.write(self.stderr_fd, line.encode("utf-8", "replace"))
        except OSError:
            pass  # the sandbox's stderr is closed: the trail still has the entry

    # --- the thread ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="landgate-kaudit", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self.sock.fileno(), self._stop_r], [], [])
                if self.sock.fileno() in ready:
                    self._drain()
                if self._stop_r in ready:
                    return
        except OSError as exc:  # the socket failed: say so once, never a traceback
            self._error = f"audit netlink recv: {exc.strerror or exc}"
            self._say(f"landgate: kernel denials are no longer recorded ({self._error})\n")
        finally:
            with self._seen:
                self._seen.notify_all()  # a stop() waiting for its fence: no more records

    def _drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                if not self.lost:
                    self._say(
                        "landgate: some kernel (Landlock) denials were not recorded: "
                        "the audit netlink buffer overflowed\n"
                    )
                self.lost += 1
                continue
            self.feed(data)

    def _fenced(self, deadline: float) -> bool:
        """Make the fence and wait (until `deadline`) for its domain record; True when it
        arrived.  The fence's child stays unreaped until then, so no other process can
        hold its pid and pass for it."""
        if self._thread is None or not self._thread.is_alive():
            return False
        pid = _make_fence()
        if pid < 0:
            return False
        try:
            with self._seen:
                return (
                    self._seen.wait_for(
                        lambda: pid in self._creators or not self._alive(),
                        timeout=max(0.0, deadline - time.monotonic()),
                    )
                    and pid in self._creators
                )
        finally:
            _reap_fence(pid)

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _say(self, line: str) -> None:
        if self.stderr_fd >= 0:
            try:
                os.write(self.stderr_fd, line.encode())
            except OSError:
                pass

    def stop(self, grace: float = 1.0) -> None:
        """After the agent's tree ended: wait for the records still in flight, then close.

        kauditd delivers asynchronously, in the order the records were queued, and a
        denial's record is queued in the denied syscall itself.  So once the tree is dead,
        a denial made now by a child of landgate's (the fence, csrc/audit_fence.c) is
        delivered after every record of the agent's domains: its domain record's arrival
        is the end of theirs (typically well under a millisecond).

        Without a fence (it could not be made, or its record did not come within `grace`:
        audit's own limits drop records), the old bound: every domain that logged a
        denial logs its end too (status=deallocated, once its last task is gone), and a
        domain that logged nothing leaves no end record, so a short wait (0.1 s) covers
        a first denial still queued at exit."""
        deadline = time.monotonic() + grace
        if not self._fenced(deadline):
            short = time.monotonic() + min(grace, 0.1)
            while self._thread is not None and self._thread.is_alive():
                now = time.monotonic()
                if now >= deadline or (now >= short and self.ours <= self.ended):
                    break
                time.sleep(0.01)
        os.write(self._stop_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)
        self.sock.close()
