"""What a tool call does, as the policy's actions: the tool level's one decision.

`tool_actions(tool_name, tool_input, cwd)` maps an agent tool call onto
(action, target) pairs; `judge(policy, ...)` decides each with the one
evaluator (`sandbox.policy.decide`, the same decision `landgate explain` and
the supervisor's slow path make).  A tool call is denied when any of its
actions is.  Tools this module does not know are not judged (None): the caller
says so (the hook lets them through and records that it did).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sandbox.errors import UsageError

# Claude Code's file tools: the input key holding the path, and the action.
_PATH_TOOLS: dict[str, tuple[str, str]] = {
    "Read": ("file_path", "file_read"),
    "Write": ("file_path", "file_write"),
    "Edit": ("file_path", "file_write"),
    "MultiEdit": ("file_path", "file_write"),
    "NotebookEdit": ("notebook_path", "file_write"),
    "NotebookRead": ("notebook_path", "file_read"),
}
# The shell Claude Code runs a Bash tool call with: judging `bash -c COMMAND` is
# exactly what the supervisor decides when that process starts (the shell's own
# rule, and no command of the -c string matching a deny rule, DESIGN §3).
SHELL = "bash"
# WebSearch runs on Anthropic's side: the destination this machine reaches.
SEARCH_DESTINATION = "api.anthropic.com:443"
_GLOB_CHARS = frozenset("*?[{")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One action of a tool call, decided."""

    action: str
    target: str  # as shown to the model and recorded
    effect: str  # allow / deny
    rule: str  # "rule 4, FILE:LINE", "protected rule 22 (.git/hooks/)", "default deny of ..."
    reason: str


def _text(inp: Mapping[str, Any], key: str, tool: str, *, required: bool = True) -> str | None:
    v = inp.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v or "\x00" in v:
        raise UsageError(f"{tool}: tool_input.{key} must be a non-empty string, got {v!r}")
    return v


def _abs(path: str, cwd: str) -> str:
    return (
        posixpath.normpath(posixpath.join(cwd, path)) if not path.startswith(("/", "~")) else path
    )


def _glob_root(pattern: str, base: str) -> str:
    """The directory a glob searches: its leading components without glob characters."""
    parts = pattern.split("/")
    fixed: list[str] = []
    for p in parts:
        if any(c in _GLOB_CHARS for c in p):
            break
        fixed.append(p)
    else:
        fixed = fixed[:-1]  # no glob at all: the last component is a name, not a directory
    root = "/".join(fixed)
    if pattern.startswith("/"):
        return root or "/"
    return _abs(root, base) if root else base


def _destination(url: str, tool: str) -> str:
    try:
        parts = urlsplit(url if "://" in url else "https://" + url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UsageError(f"{tool}: malformed url {url!r}: {exc}") from None
    if not host:
        raise UsageError(f"{tool}: url {url!r} names no host")
    if port is None:
        port = 80 if parts.scheme == "http" else 443
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tool_actions(
    tool_name: str, tool_input: Mapping[str, Any], cwd: str
) -> list[tuple[str, Any, str]] | None:
    """[(action, target for decide, target as shown)], or None for a tool not judged here.

    Raises UsageError when a known tool's input is malformed."""
    if tool_name == "Bash":
        command = _text(tool_input, "command", tool_name)
        assert command is not None
        return [("shell_exec", [SHELL, "-c", command], command)]
    if tool_name in _PATH_TOOLS:
        key, action = _PATH_TOOLS[tool_name]
        path = _text(tool_input, key, tool_name)
        assert path is not None
        p = _abs(path, cwd)
        return [(action, p, p)]
    if tool_name == "WebFetch":
        url = _text(tool_input, "url", tool_name)
        assert url is not None
        dest = _destination(url, tool_name)
        return [("network", dest, dest)]
    if tool_name == "WebSearch":
        out = [("network", SEARCH_DESTINATION, SEARCH_DESTINATION)]
        for domain in tool_input.get("allowed_domains") or []:
            if isinstance(domain, str) and domain:
                dest = _destination(domain, tool_name)
                out.append(("network", dest, dest))
        return out
    if tool_name in ("Glob", "Grep", "LS"):
        base = _text(tool_input, "path", tool_name, required=False) or cwd
        base = _abs(base, cwd)
        if tool_name == "Glob":
            pattern = _text(tool_input, "pattern", tool_name)
            assert pattern is not None
            base = _glob_root(pattern, base)
        return [("file_read", base, base)]
    return None


def judge(
    policy: Any, tool_name: str, tool_input: Mapping[str, Any], cwd: str
) -> list[Verdict] | None:
    """Each action of the tool call decided by the one evaluator; None for an unknown tool."""
    from pathlib import Path

    from sandbox.policy import decide
    from sandbox.policy.model import DecisionContext

    actions = tool_actions(tool_name, tool_input, cwd)
    if actions is None:
        return None
    ctx = DecisionContext(cwd=Path(cwd))
    out: list[Verdict] = []
    for action, target, shown in actions:
        d = decide(policy, action, target, ctx)
        out.append(Verdict(action, shown, d.effect, d.rule_ref(), d.reason))
    return out
