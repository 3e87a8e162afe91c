"""The session's report channel: tool-level decisions sent from inside the sandbox.

`landgate run` offers the agent a unix datagram socket (in a private 0700 directory,
its path in LANDGATE_SESSION_REPORT).  A PreToolUse hook started by the agent
(`landgate hook claude-code`) decides in its own process and sends its decision here
instead of writing the trail, which it cannot reach (a protected path).  Each report
becomes a decision entry of THIS session, layer `tool-hook`.

The sender is inside the sandbox: the agent can forge any report.  So every entry
carries the flag `reported-from-sandbox` (and `claimed_pid`, the pid the sender says it
has: the supervisor performs a sandboxed sendto itself, so the kernel's SCM_CREDENTIALS
name landgate, not the sender; `reporter_pid` only when they name another process), and is
never landgate's own decision: it says what
a process in the sandbox claimed its hook decided.  Reports are bounded: MAX_REPORT
bytes each, MAX_REPORTS per session (beyond: dropped and counted, one entry says so
at the end); one that is not a well-formed report is recorded as `malformed`.

The sandbox reaches the socket because the plan grants exactly that path (a network
allow `unix:<path>`, origin "baseline", added by `grant`), not the user's policy.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sandbox.audit.entries import REPORTED_FLAG
from sandbox.audit.writer import AuditWriter
from sandbox.errors import AuditError, LaunchError
from sandbox.policy.destinations import parse_destination
from sandbox.policy.model import Policy, Rule, SourceRef
from sandbox.policy.patterns import parse_path_pattern

ENV = "LANDGATE_SESSION_REPORT"
FLAG = REPORTED_FLAG  # "reported-from-sandbox": `landgate audit show` marks these rows
LAYER = "tool-hook"
MAX_REPORT = 64 << 10  # a report is one decision list, not file contents
MAX_REPORTS = 10_000  # per session; beyond that reports are dropped and counted
MAX_VERDICTS = 64  # actions one tool call may carry
_SOURCE = SourceRef(file="<session report channel>", line=0, column=0)
_CRED = struct.Struct("iII")  # struct ucred: pid, uid, gid
_FIELDS = ("action", "target", "result", "rule", "reason")
_EXTRA = ("integration", "agent_session", "tool_use_id")


class ReportChannel:
    """The socket, its reader thread and the entries it writes."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="landgate-report-")  # 0700, ours
        self.path = os.path.join(self.directory, "s")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.bind(self.path)
            # The sender's pid, uid and gid from the kernel with every datagram.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self.sock.settimeout(0.2)  # the reader looks at `_stop` this often
        except OSError as exc:
            self.sock.close()
            shutil.rmtree(self.directory, ignore_errors=True)
            raise LaunchError(f"session report socket {self.path}: {exc.strerror}") from None
        self.received = 0
        self.dropped = 0
        self._writer: AuditWriter | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._entry: str | None = None

    def grant(self, policy: Policy, environ: Mapping[str, str]) -> Policy:
        """The policy with what the hook needs, origin baseline, exactly: a network allow
        for this socket; reading landgate's own install (its package, the virtualenv, the
        interpreter's tree: public code, no user data); executing exactly the `landgate`
        entry point and the interpreter file.  Which command lines run is still
        shell_exec's (the claude-code preset allows `landgate hook claude-code`)."""
        blocks = dict(policy.blocks)
        net = [(f"unix:{self.path}", False, "the session's report channel")]
        reads = [(p, x, "landgate's own install (the hook)") for p, x in _install()]
        # The hook loads the policy in force: its file and the files it extends (only
        # written-protected, but the planner's carve-out leaves them out of the read grant).
        for f in (policy.path, *policy.parents):
            if _plain(str(f)):
                reads.append((str(f), False, "the policy in force (the hook)"))
        self._entry = shutil.which("landgate", path=environ.get("PATH", ""))
        if self._entry is not None and _plain(self._entry):
            reads.append((self._entry, True, "the landgate entry point (the hook)"))
        for action, items in (("network", net), ("file_read", reads)):
            block = blocks[action]
            rules = list(block.rules)
            for pattern, execute, why in items:
                rules.append(_baseline_rule(policy, action, len(rules) + 1, pattern, why, execute))
            blocks[action] = replace(block, rules=tuple(rules))
        return replace(policy, blocks=blocks, cache={})

    def start(self, writer: AuditWriter) -> None:
        """Read reports into `writer`'s session (call once the session has started)."""
        self._writer = writer
        self._thread = threading.Thread(target=self._loop, name="landgate-report", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop reading (reports already queued are read first), remove the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.dropped and self._writer is not None:
            self._append(
                {
                    "action": "tool_call",
                    "target": "(session report channel)",
                    "result": "dropped",
                    "reason": f"{self.dropped} report(s) dropped: more than {MAX_REPORTS} "
                    f"or larger than {MAX_REPORT} bytes",
                    "flags": [FLAG, "dropped"],
                }
            )
        self.sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _loop(self) -> None:
        space = socket.CMSG_SPACE(_CRED.size)
        while True:
            try:
                data, anc, flags, _addr = self.sock.recvmsg(MAX_REPORT + 1, space)
            except TimeoutError:
                if self._stop.is_set():
                    return
                continue
            except OSError:
                return  # the socket was closed under us: nothing more to read
            pid = -1
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _CRED.unpack(payload[: _CRED.size])[0]
            self.received += 1
            if self.received > MAX_REPORTS or len(data) > MAX_REPORT or flags & socket.MSG_TRUNC:
                self.dropped += 1
                continue
            # The supervisor performs a sandboxed sendto on the sender's behalf, so the
            # kernel's credentials are then landgate's own: no sender pid to record.
            for entry in entries_from(data):
                if pid > 0 and pid != os.getpid():
                    entry["reporter_pid"] = pid
                self._append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        assert self._writer is not None
        entry.setdefault("layer", LAYER)
        entry.setdefault("ts", time.time())
        try:
            self._writer.append(entry)
        except AuditError:
            # The writer has told run_session through on_failure: the session fails closed.
            return


def entries_from(data: bytes) -> list[dict[str, Any]]:
    """The decision entries one report becomes: its verdicts, tagged; or one `malformed`."""
    try:
        report = json.loads(data.decode("utf-8"))
        if not isinstance(report, dict) or not isinstance(report.get("verdicts"), list):
            raise ValueError("not a JSON object with a verdicts list")
        verdicts = report["verdicts"]
        if len(verdicts) > MAX_VERDICTS:
            raise ValueError(f"more than {MAX_VERDICTS} verdicts")
        tool = _text(report.get("tool"))
        extra: dict[str, Any] = {k: _text(report.get(k)) for k in _EXTRA}
        claimed = report.get("pid")
        if isinstance(claimed, int) and not isinstance(claimed, bool):
            extra["claimed_pid"] = claimed  # the sender's word, in the sandbox's pid namespace
        out: list[dict[str, Any]] = []
        for v in verdicts:
            if not isinstance(v, dict) or v.get("result") not in ("allow", "deny"):
                raise ValueError("a verdict without result allow/deny")
            entry: dict[str, Any] = {k: _text(v.get(k)) for k in _FIELDS}
            entry.update(tool=tool, flags=[FLAG], **extra)
            out.append(entry)
        if not out:  # a tool call not judged (or with no action): still one entry
            out.append(
                {
                    "action": "tool_call",
                    "target": tool,
                    "result": "allow",
                    "reason": "not judged",
                    "tool": tool,
                    "flags": [FLAG],
                    **extra,
                }
            )
        return out
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return [
            {
                "action": "tool_call",
                "target": "(malformed report)",
                "result": "malformed",
                "reason": f"malformed report ({len(data)} bytes): {str(exc)[:200]}",
                "flags": [FLAG, "malformed"],
            }
        ]


def _baseline_rule(
    policy: Policy, action: str, index: int, pattern: str, why: str, execute: bool
) -> Rule:
    """An allow rule of origin baseline that grant() adds: a network destination for the
    report socket, else a path (exact or a tree) read, and executed when `execute`."""
    network = action == "network"
    return Rule(
        action=action,
        index=index,
        effect="allow",
        pattern=pattern,
        source=_SOURCE,
        origin="baseline",
        path=None
        if network
        else parse_path_pattern(pattern, workspace=str(policy.workspace), home=str(policy.home)),
        destination=parse_destination(pattern) if network else None,
        comment=why,
        execute=execute,
    )


def _install() -> list[tuple[str, bool]]:
    """(path pattern, executable) for landgate's own install, each only when it is a plain
    path (no glob character): its package tree, the virtualenv, the interpreter's tree,
    the interpreter file itself (executable)."""
    import sandbox

    out: list[tuple[str, bool]] = []
    trees = {os.path.dirname(os.path.abspath(sandbox.__file__)), sys.prefix, sys.base_prefix}
    home = os.path.realpath(os.path.expanduser("~"))
    for tree in sorted(trees):
        real = os.path.realpath(tree)
        # Never a tree that holds the home directory (an install with --prefix=~ would
        # otherwise grant reading all of it): the package and interpreter trees then stay
        # what the policy grants.
        if real == home or home.startswith(real.rstrip("/") + "/"):
            continue
        if real not in ("/", "/usr") and _plain(real):
            out.append((real.rstrip("/") + "/", False))
    exe = os.path.realpath(sys.executable)
    if sys.executable and _plain(exe):
        out.append((exe, True))
    return out


def _plain(path: str) -> bool:
    return path.startswith("/") and not any(c in path for c in "*?[]{}\\")


def _text(value: Any) -> str | None:
    """A report's string field, bounded; anything else is dropped."""
    return value[:4096] if isinstance(value, str) else None


def send_report(path: str, report: dict[str, Any]) -> None:
    """Send one report (the hook's side).  Raises OSError when it cannot."""
    data = json.dumps(report).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.settimeout(5.0)
        s.sendto(data, path)
