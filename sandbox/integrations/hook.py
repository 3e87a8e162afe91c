"""`landgate hook claude-code`: Claude Code's PreToolUse hook.

Claude Code runs the hook command before every tool call it is configured for,
with one JSON object on stdin (hook_event_name, session_id, cwd, tool_name,
tool_input, tool_use_id, ...).  The contract we answer with (Claude Code's
hooks reference):

  exit 0, stdout {"hookSpecificOutput": {"hookEventName": "PreToolUse",
      "permissionDecision": "deny", "permissionDecisionReason": "..."}}
      the call is cancelled and the reason is shown to Claude;
  exit 0, no output: landgate does not object; Claude Code's own permission
      rules and prompts decide as usual (landgate's "allow" means "not
      forbidden by the policy", not "approved without asking");
  exit 2, a one-line message on stderr: the call is blocked and the message
      shown.  Used when landgate cannot decide (malformed input, an invalid
      policy, an unwritable audit trail): failing closed and saying why,
      rather than exit 1, which Claude Code treats as a non-blocking error
      and would let the tool call through undecided.

Tools judged (sandbox.integrations.judge): Bash, Read, Write, Edit, MultiEdit,
NotebookEdit, WebFetch, WebSearch, Glob, Grep, LS.  Any other tool (MCP tools,
Task, TodoWrite, ...) is let through and recorded as not judged.  Every call,
judged or not, lands in the audit trail with the layer `tool-hook`.
The policy: --policy, else ./.landgate.yaml in the hook input's cwd, else the
bundled claude-code preset.

The command (sandbox.integrations.hookclient) usually has this module's `run_hook`
run in the resident hook server (sandbox.integrations.hookserver), which returns what
it returns here; whenever that is not possible it calls `run_hook` in its own process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.errors import LandgateError, LaunchError, UsageError

EVENT = "PreToolUse"
PRESET = "claude-code"
MAX_INPUT = 16 << 20  # a tool_input carries file contents (Write): generous, but bounded
EXIT_BLOCK = 2  # Claude Code: blocking error, stderr shown to Claude


@dataclass(frozen=True)
class HookAnswer:
    """What the hook prints and exits with."""

    stdout: str  # "" or one JSON object
    exit_code: int
    denied: bool
    session: str | None  # the audit trail's session id


def parse_input(raw: bytes) -> dict[str, Any]:
    """The hook input, checked.  UsageError names what is wrong."""
    if len(raw) > MAX_INPUT:
        raise UsageError(f"hook input is larger than {MAX_INPUT} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"hook input is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"hook input must be a JSON object, got {type(data).__name__}")
    event = data.get("hook_event_name", EVENT)
    if event != EVENT:
        raise UsageError(f"hook input is a {event!r} event; configure landgate under {EVENT}")
    if not isinstance(data.get("tool_name"), str) or not data["tool_name"]:
        raise UsageError("hook input has no tool_name")
    if not isinstance(data.get("tool_input", {}), dict):
        raise UsageError("hook input's tool_input must be a JSON object")
    cwd = data.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/")):
        raise UsageError(f"hook input's cwd must be an absolute path, got {cwd!r}")
    return data


def hook_policy(
    policy_arg: str | None, cwd: str, audit_dir: str | None, *, cached: bool = False
) -> Any:
    """The policy in effect; `cached`: through the persistent cache (the CLI's hook is
    one process per tool call, so loading would otherwise be paid on every call)."""
    from sandbox.policy.locate import resolve_policy_path

    if policy_arg is None:
        local = Path(cwd) / ".landgate.yaml"
        policy_arg = str(local) if local.is_file() else PRESET
    path = resolve_policy_path(policy_arg, cwd=Path(cwd))
    audit = Path(audit_dir) if audit_dir is not None else None
    if cached:
        from sandbox.policy.diskcache import load_policy_cached

        # memo: the hook server loads the same policy for every call it answers
        return load_policy_cached(path, cwd=Path(cwd), audit_dir=audit, memo=True)
    from sandbox.policy.loader import load_policy

    return load_policy(path, cwd=Path(cwd), audit_dir=audit)


def decide_hook(
    data: Mapping[str, Any],
    *,
    policy_arg: str | None = None,
    audit_dir: str | None = None,
    policy_cache: bool = False,
    default_cwd: str | None = None,
    report: str | None = None,
) -> HookAnswer:
    """Judge one PreToolUse input, record it, and say what to answer.  `default_cwd`:
    the hook process's directory, for an input without `cwd` (default: ours).
    `report`: the running session's report socket (inside `landgate run`): the decision
    is sent there, to land in that session's trail, instead of written here."""
    from sandbox.integrations import toolaudit
    from sandbox.integrations.judge import judge

    cwd = data.get("cwd") or default_cwd or os.getcwd()
    tool = str(data["tool_name"])
    tool_input = data.get("tool_input") or {}
    policy = hook_policy(policy_arg, cwd, audit_dir, cached=policy_cache)
    verdicts = judge(policy, tool, tool_input, cwd)
    extra = {
        "agent": "claude-code",
        "agent_session": data.get("session_id"),
        "tool_use_id": data.get("tool_use_id"),
        "judged": verdicts is not None,
    }
    denials = [v for v in verdicts or [] if v.effect == "deny"]
    if report is not None:
        sent = _send_report(report, verdicts or [], tool, extra)
        if sent is not None and not denials:
            # Not recorded: fail closed as for an unwritable trail (a deny is answered below).
            raise LaunchError(f"session report channel {report}: {sent}")
        return _answer(denials, policy, None)
    sid = toolaudit.record(
        verdicts or [],
        policy=policy,
        integration="claude-code",
        tool=tool,
        cwd=cwd,
        audit_dir=audit_dir,
        extra=extra,
    )
    return _answer(denials, policy, sid)


def _answer(denials: list[Any], policy: Any, sid: str | None) -> HookAnswer:
    """What Claude Code is told: nothing (not forbidden), or the first denial's reason."""
    if not denials or policy.mode == "simulate":
        # simulate: decided and recorded (the trail says deny), nothing blocked.
        return HookAnswer("", 0, False, sid)
    first = denials[0]
    reason = (
        f"landgate denied {first.action} {first.target!r}: {first.reason} "
        f"({first.rule}; policy {policy.path})"
    )
    if len(denials) > 1:
        reason += f"; and {len(denials) - 1} more denied action(s)"
    out = {
        "hookSpecificOutput": {
            "hookEventName": EVENT,
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }
    return HookAnswer(json.dumps(out), 0, True, sid)


def _send_report(path: str, verdicts: list[Any], tool: str, extra: Mapping[str, Any]) -> str | None:
    """Send the decision to the session (one datagram); None, or why it was not sent."""
    import socket

    report = {
        "integration": "claude-code",
        "pid": os.getpid(),
        "tool": tool,
        "agent_session": extra.get("agent_session"),
        "tool_use_id": extra.get("tool_use_id"),
        "verdicts": [
            {
                "action": v.action,
                "target": v.target,
                "result": v.effect,
                "rule": v.rule,
                "reason": v.reason,
            }
            for v in verdicts
        ],
    }
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.settimeout(5.0)
            s.sendto(json.dumps(report).encode(), path)
    except (OSError, ValueError) as exc:
        return str(exc)
    return None


def run_hook(
    raw: bytes,
    *,
    policy_arg: str | None = None,
    audit_dir: str | None = None,
    policy_cache: bool = False,
    default_cwd: str | None = None,
    report: str | None = None,
) -> tuple[str, str, int]:
    """The whole hook: (stdout, stderr, exit code).  Never raises for a landgate error."""
    try:
        data = parse_input(raw)
        answer = decide_hook(
            data,
            policy_arg=policy_arg,
            audit_dir=audit_dir,
            policy_cache=policy_cache,
            default_cwd=default_cwd,
            report=report,
        )
    except LandgateError as exc:
        # Fail closed: exit 2 blocks the tool call and shows Claude the message.
        return "", f"landgate hook: {exc} (tool call blocked)\n", EXIT_BLOCK
    return answer.stdout, "", answer.exit_code
