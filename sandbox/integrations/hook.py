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
Inside `landgate run` it asks the session instead, which runs `run_hook` too
(`session_hook`: the session's policy, the session's trail).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.errors import LandgateError, UsageError

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
    policy: Any = None,
    sink: Callable[[dict[str, Any]], None] | None = None,
) -> HookAnswer:
    """Judge one PreToolUse input, record it, and say what to answer.  `default_cwd`:
    the hook process's directory, for an input without `cwd` (default: ours).

    The one decision of the hook, wherever it runs: in the hook's own process, in the
    resident hook server, and in a `landgate run` session answering the hook inside its
    sandbox (sandbox.session.report).  The session passes `policy` (the policy in force,
    already loaded: --policy and ./.landgate.yaml are then not consulted) and `sink` (its
    own trail's append: the entries are the session's decisions, written by its writer);
    otherwise the policy is located and one short tool-level session is written."""
    from sandbox.integrations import toolaudit
    from sandbox.integrations.judge import judge

    cwd = data.get("cwd") or default_cwd or os.getcwd()
    tool = str(data["tool_name"])
    tool_input = data.get("tool_input") or {}
    if policy is None:
        policy = hook_policy(policy_arg, cwd, audit_dir, cached=policy_cache)
    verdicts = judge(policy, tool, tool_input, cwd)
    extra = {
        "agent": "claude-code",
        "agent_session": data.get("session_id"),
        "tool_use_id": data.get("tool_use_id"),
        "judged": verdicts is not None,
    }
    denials = [v for v in verdicts or [] if v.effect == "deny"]
    if sink is not None:
        _record_in_session(sink, verdicts, tool, extra)
        return _answer(denials, policy, None)
    sid = toolaudit.record(
        verdicts,
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


def _record_in_session(
    sink: Callable[[dict[str, Any]], None],
    verdicts: list[Any] | None,
    tool: str,
    extra: Mapping[str, Any],
) -> None:
    """One decision entry per action into a running session's trail (layer tool-hook);
    a tool call not judged is still one entry.  The sink raises (a LandgateError) when
    it cannot record: the hook then fails closed."""
    import time

    from sandbox.integrations.toolaudit import decision_rows

    common: dict[str, Any] = {
        "layer": "tool-hook",
        "integration": "claude-code",
        "tool": tool,
        "agent_session": _bounded(extra.get("agent_session")),
        "tool_use_id": _bounded(extra.get("tool_use_id")),
        "ts": time.time(),
    }
    for row in decision_rows(verdicts, tool):
        sink({**row, **common})


def _bounded(value: Any) -> str | None:
    """An input's identifier for the trail: a string, at most 256 characters."""
    return value[:256] if isinstance(value, str) else None


class SessionDecider:
    """What a `landgate run` session answers its sandbox's hook with (handed to the
    session by the CLI: the session layer may not import this one).  The request and
    the reply are the resident server's (hookproto); the decision is `run_hook`'s with
    the session's policy, recorded through the session's writer."""

    def answer(
        self, request: bytes, policy: Any, sink: Callable[[dict[str, Any]], None]
    ) -> tuple[bytes, str | None]:
        """(the reply, why nothing was decided or None).  The request's `facts` are
        ignored: inside a session, its policy and its trail are the ones in force."""
        from sandbox.integrations import hookproto as proto

        parsed = proto.parse_request(request)
        if parsed is None:
            return self.refuse("malformed request"), "not a hook request (framing)"
        _facts, cwd, raw = parsed
        written: list[int] = []

        def counted(entry: dict[str, Any]) -> None:
            sink(entry)
            written.append(1)

        out, err, code = run_hook(raw, default_cwd=cwd, policy=policy, sink=counted)
        # run_hook fails closed (exit 2) without a decision when the input is not a
        # PreToolUse call (or the trail refused it): the session still records the request.
        problem = None if written else (err.strip() or "not decided")
        return proto.reply(code, out, err), problem

    def warm(self, policy: Any) -> None:
        """Compile what a first decision would (the shell's exec rules among them) on
        the deciding thread, recording nothing; a failure here is the first call's."""
        from sandbox.integrations.judge import judge

        try:
            judge(policy, "Bash", {"command": "true"}, str(policy.workspace))
        except LandgateError:
            pass

    def refuse(self, reason: str) -> bytes:
        from sandbox.integrations import hookproto as proto

        return proto.reply(
            EXIT_BLOCK, "", f"landgate hook: the session refused: {reason} (tool call blocked)\n"
        )


def run_hook(
    raw: bytes,
    *,
    policy_arg: str | None = None,
    audit_dir: str | None = None,
    policy_cache: bool = False,
    default_cwd: str | None = None,
    policy: Any = None,
    sink: Callable[[dict[str, Any]], None] | None = None,
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
            policy=policy,
            sink=sink,
        )
    except LandgateError as exc:
        # Fail closed: exit 2 blocks the tool call and shows Claude the message.
        return "", f"landgate hook: {exc} (tool call blocked)\n", EXIT_BLOCK
    return answer.stdout, "", answer.exit_code
