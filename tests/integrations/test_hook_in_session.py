"""`landgate run -- claude` with its PreToolUse hook inside the sandbox: one trail.

A real `landgate run` session (claude-code preset) whose agent runs `landgate hook
claude-code` on recorded hook inputs, as Claude Code would.  The hook decides in its own
process (the same answer Claude Code gets outside a sandbox) and sends the decision
over the session's report channel (LANDGATE_SESSION_REPORT); the session writes it into
its own trail, tagged `reported-from-sandbox` (the pid it claims, `claimed_pid`, is only its word).
Twins: a report forged by another process of the sandbox is recorded the same way
(tagged, never as landgate's own); a malformed report is recorded as malformed; the
channel reaches exactly its socket (another unix socket stays denied); without the
channel the hook cannot record and fails closed, as before.
Needs the kernel layers: run under the test lock.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.trail import trail_and_reports

from sandbox.session.report import FLAG

AUDIT = "state/landgate/audit"  # the default trail under the test's XDG_STATE_HOME
BIN = os.path.dirname(sys.executable)  # the virtualenv's bin: `landgate` is there

FORGE = """
import os, socket
path = os.environ["LANDGATE_SESSION_REPORT"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
forged = {"integration": "claude-code", "tool": "Bash", "pid": os.getpid(), "verdicts": [
    {"action": "shell_exec", "target": "rm -rf /", "result": "allow", "rule": "forged",
     "reason": "the agent says so"}]}
import json
s.sendto(json.dumps(forged).encode(), path)
s.sendto(b"\\xff not json", path)
open("forger.pid", "w").write(str(os.getpid()))
try:
    s.sendto(b"{}", os.environ["OTHER_SOCKET"])
    open("other.txt", "w").write("sent")
except OSError as exc:
    open("other.txt", "w").write(f"refused {exc.errno}")
"""


def _input(ws: Path, tool: str, tool_input: dict[str, Any], use_id: str) -> str:
    return json.dumps(
        {
            "session_id": "cc-session-1",
            "cwd": str(ws),
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": tool_input,
            "tool_use_id": use_id,
        }
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "project"
    w.mkdir()
    (w / ".env").write_text("API_KEY=secret\n")
    (w / "read_env.json").write_text(_input(w, "Read", {"file_path": str(w / ".env")}, "t1"))
    (w / "bash_ls.json").write_text(_input(w, "Bash", {"command": "ls"}, "t2"))
    (w / "forge.py").write_text(FORGE)
    return w


def _run(ws: Path, tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    other.bind(str(tmp_path / "other.sock"))
    env = dict(
        os.environ,
        PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        OTHER_SOCKET=str(tmp_path / "other.sock"),
        LANDGATE_HOOK_SERVER="0",
    )
    try:
        return subprocess.run(
            [
                f"{BIN}/landgate",
                "run",
                "--policy",
                "claude-code",
                "--",
                "sh",
                "-c",
                script,
            ],
            cwd=ws,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        other.close()


HOOKS = (
    "landgate hook claude-code < read_env.json > out_read.json; echo $? > rc_read; "
    "landgate hook claude-code < bash_ls.json > out_ls.json; echo $? > rc_ls; "
)


def test_hook_inside_run_lands_in_the_session_trail(ws: Path, tmp_path: Path) -> None:
    proc = _run(ws, tmp_path, HOOKS + "python3 forge.py")
    assert proc.returncode == 0, proc.stderr
    # Claude Code's answers, as outside a sandbox: Read .env denied with the reason, ls not.
    assert (ws / "rc_read").read_text().strip() == "0", proc.stderr
    answer = json.loads((ws / "out_read.json").read_text())["hookSpecificOutput"]
    assert answer["permissionDecision"] == "deny"
    assert ".env" in answer["permissionDecisionReason"]
    assert (ws / "rc_ls").read_text().strip() == "0"
    assert (ws / "out_ls.json").read_text() == ""

    entries, hook = trail_and_reports(tmp_path / AUDIT)
    starts = [e for e in entries if e.get("type") == "session_start"]
    assert len(starts) == 1  # one session: the hook wrote no session of its own
    sid = starts[0]["session"]
    assert hook and all(e["session"] == sid for e in hook)
    assert all(FLAG in e["flags"] for e in hook)
    read = [e for e in hook if e.get("tool_use_id") == "t1"]
    assert [(e["action"], e["target"], e["result"]) for e in read] == [
        ("file_read", str(ws / ".env"), "deny")
    ]
    assert read[0]["agent_session"] == "cc-session-1" and read[0]["rule"]
    ls = [e for e in hook if e.get("tool_use_id") == "t2"]
    assert [(e["action"], e["result"]) for e in ls] == [("shell_exec", "allow")]

    # The forged report: recorded, tagged as reported from the sandbox by the forger.
    # Its pid is its own word (claimed_pid), as the hooks' are: nothing vouches for either.
    forger = int((ws / "forger.pid").read_text())
    forged = [e for e in hook if e.get("rule") == "forged"]
    assert len(forged) == 1 and forged[0]["claimed_pid"] == forger
    assert forger not in {e["claimed_pid"] for e in read + ls}
    assert forged[0]["flags"] == [FLAG]
    malformed = [e for e in hook if "malformed" in e["flags"]]
    assert len(malformed) == 1 and malformed[0]["result"] == "malformed"
    # landgate's own decisions (the supervisor's) are never flagged as reported.
    own = [e for e in entries if e.get("type") == "decision" and e.get("layer") != "tool-hook"]
    assert own and not any(FLAG in (e.get("flags") or ()) for e in own)
    # The grant is exactly the channel's socket: another unix socket stays denied.
    assert (ws / "other.txt").read_text().startswith("refused"), proc.stderr
    assert any(e.get("target") == f"unix:{tmp_path / 'other.sock'}" for e in own)

    verify = subprocess.run(
        [f"{BIN}/landgate", "audit", "verify", str(tmp_path / AUDIT)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config")),  # the trail's key
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_without_the_channel_the_hook_fails_closed(ws: Path, tmp_path: Path) -> None:
    # The twin: the same hook, the channel's variable removed: it cannot write the trail
    # (a protected path) and blocks (exit 2) the call it would have let through.
    proc = _run(ws, tmp_path, "unset LANDGATE_SESSION_REPORT; " + HOOKS)
    assert proc.returncode == 0, proc.stderr
    assert (ws / "rc_ls").read_text().strip() == "2"
    _entries, hook = trail_and_reports(tmp_path / AUDIT)
    assert not hook
