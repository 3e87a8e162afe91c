"""`landgate run` starts the hook channel's accepting thread once the agent runs, so that
the thread's start overlaps the agent's instead of delaying it (issue 19).  That is sound
only because the socket listens from the channel's creation: a hook that connects before
the thread exists waits in the listen backlog and is answered, and recorded, like any."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sandbox.audit import AuditWriter
from sandbox.audit.reader import iter_entries
from sandbox.integrations import hookclient
from sandbox.integrations.hook import SessionDecider, hook_policy
from sandbox.session import report as rep


def _input(ws: Path, tool: str, tool_input: dict, use_id: str) -> bytes:
    data = {
        "hook_event_name": "PreToolUse",
        "cwd": str(ws),
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": use_id,
    }
    return json.dumps(data).encode()


def test_a_hook_that_connects_before_the_thread_starts_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    ws = tmp_path / "ws"
    ws.mkdir()
    writer = AuditWriter(tmp_path / "audit")
    writer.start_session({"layer": "test"})
    channel = rep.ReportChannel(SessionDecider())
    channel.grant(hook_policy("claude-code", str(ws), None), {"PATH": ""})
    got: list[tuple[str, str, int]] = []
    early = threading.Thread(
        target=lambda: got.append(
            hookclient.ask_session(
                _input(ws, "Read", {"file_path": str(ws / ".env")}, "early"), channel.path
            )
        ),
        daemon=True,
    )
    try:
        early.start()  # connects and sends while nobody accepts yet
        early.join(0.3)
        assert early.is_alive() and got == []  # waiting in the backlog, not refused
        channel.start(writer)  # what run_session's on_released does once the agent runs
        early.join(10)
        assert not early.is_alive()
        out, err, code = got[0]
        assert (code, err) == (0, "")
        assert json.loads(out)["hookSpecificOutput"]["permissionDecision"] == "deny"
        # the twin: a request after the start, allowed
        assert hookclient.ask_session(
            _input(ws, "Bash", {"command": "ls"}, "later"), channel.path
        ) == ("", "", 0)
    finally:
        channel.close()
        writer.end_session(0)
        writer.close()
    rows = [e for e in iter_entries(tmp_path / "audit") if e.get("type") == "decision"]
    assert [(e["tool_use_id"], e["result"]) for e in rows] == [
        ("early", "deny"),
        ("later", "allow"),
    ]
