"""Tool-level decisions into the audit trail, tagged with the layer `tool-hook`.

One short audit session per tool call (the hook is one process per call;
the MCP server and the LangChain tools judge before they execute): a
session-start entry saying which integration judged which tool call under which
policy, one decision entry per action, the session end.  Written through the
audit writer's public API into the same trail `landgate run` writes, so
`landgate audit` shows tool-level and kernel-level decisions side by side.
A trail that cannot be written is an error (the caller fails closed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sandbox.errors import LandgateError, LaunchError
from sandbox.integrations.judge import Verdict

LAYER = "tool-hook"


def decision_rows(verdicts: Sequence[Verdict] | None, tool: str) -> list[dict[str, Any]]:
    """What each decision entry of one tool call says, wherever it is recorded (a short
    tool-level session here, a `landgate run` session's trail for the hook inside it):
    one row per action, or, for a tool call not judged (verdicts None), one `tool_call`
    row saying so: every call is a decision in the trail, judged or not."""
    if verdicts is None:
        return [
            {
                "action": "tool_call",
                "target": tool,
                "result": "allow",
                "rule": None,
                "reason": "not judged",
            }
        ]
    return [
        {
            "action": v.action,
            "target": v.target,
            "result": v.effect,
            "rule": v.rule,
            "reason": v.reason,
        }
        for v in verdicts
    ]


def record(
    verdicts: Sequence[Verdict] | None,
    *,
    policy: Any,
    integration: str,  # "claude-code", "mcp", "langchain"
    tool: str,
    cwd: str,
    audit_dir: str | os.PathLike[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write one tool-level session; returns its id.  Raises LaunchError when it cannot.
    `verdicts` None: a tool call not judged (see decision_rows)."""
    from sandbox.audit import AuditWriter, default_audit_dir

    directory = Path(audit_dir) if audit_dir is not None else default_audit_dir()
    failure: list[str] = []
    try:
        writer = AuditWriter(
            directory, durability=policy.enforcement.durability, on_failure=failure.append
        )
    except LandgateError as exc:
        raise LaunchError(f"audit trail {directory}: {exc}") from exc
    try:
        denied = any(v.effect == "deny" for v in verdicts or ())
        sid = writer.start_session(
            {
                "layer": LAYER,
                "integration": integration,
                "tool": tool,
                "policy": str(policy.path),
                "policy_sha256": policy.sha256,
                "mode": policy.mode,
                "cwd": cwd,
                "uid": os.getuid(),
                **dict(extra or {}),
            }
        )
        now = time.time()
        for row in decision_rows(verdicts, tool):
            writer.append({**row, "layer": LAYER, "tool": tool, "ts": now})
        writer.end_session(1 if denied else 0)
    finally:
        writer.close()
    if failure:
        raise LaunchError(f"audit trail {directory} became unwritable: {failure[0]}")
    return sid
