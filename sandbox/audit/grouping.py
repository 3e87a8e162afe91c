"""Denials grouped for people: by rule, by directory, by program, the ones that matter first.

Shared by the static `audit report --html` and the `landgate ui` dashboard, so
both group and rank the same way.  Works on decision entries as the trail
stores them (any action, any layer): a new kind of decision is grouped too.

Rank: a denial by an explicit rule of the policy, a protected path or the
baseline (a secret, an exfiltration tool: something the agent tried that the
policy meant to stop) comes before a denial that only fell to a block's
default (usually a missing allow: noise to tune away); within a rank, the most
frequent first.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from typing import Any

from sandbox.audit.reader import is_default_rule

MAX_GROUPS = 200


def _program(e: dict[str, Any]) -> str:
    for key in ("program", "exe", "comm"):
        v = e.get(key)
        if isinstance(v, str) and v:
            return os.path.basename(v)
    argv = e.get("argv")
    if isinstance(argv, list) and argv and isinstance(argv[0], str):
        return os.path.basename(argv[0])
    if e.get("action") == "shell_exec":
        target = str(e.get("target") or "")
        try:
            words = shlex.split(target)
        except ValueError:
            words = target.split()
        return os.path.basename(words[0]) if words else "?"
    return "(not recorded)"


def _directory(e: dict[str, Any]) -> str:
    target = str(e.get("target") or "")
    if e.get("action") in ("file_read", "file_write") and target.startswith("/"):
        return os.path.dirname(target.rstrip("/")) + "/"
    if e.get("action") == "network":
        return "(network)"
    return "(command)"


def _matters(rule: Any) -> int:
    """1 for an explicit deny (policy rule, protected path, baseline), 0 for a default."""
    return 0 if is_default_rule(rule) else 1


def group_denials(decisions: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """{"items", "by_rule", "by_directory", "by_program"}: each a list, ranked."""
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for e in decisions:
        if e.get("type", "decision") != "decision" or e.get("result") != "deny":
            continue
        action, target = str(e.get("action", "?")), str(e.get("target", ""))
        rule = e.get("rule")
        key = (action, target)
        it = items.get(key)
        if it is None:
            it = items[key] = {
                "action": action,
                "target": target,
                "rule": rule if isinstance(rule, str) else "default",
                "origin": e.get("origin"),
                "layer": e.get("layer"),
                "reason": e.get("reason") or e.get("detail"),
                "mode": e.get("mode", "enforce"),
                "program": _program(e),
                "directory": _directory(e),
                "matters": _matters(rule),
                "count": 0,
                "sessions": [],
                "last_seq": 0,
            }
        it["count"] += 1
        sid = e.get("session")
        if isinstance(sid, str) and sid not in it["sessions"]:
            it["sessions"].append(sid)
        seq = e.get("seq")
        if isinstance(seq, int):
            it["last_seq"] = seq
    ranked = sorted(items.values(), key=lambda i: (-i["matters"], -i["count"], i["target"]))
    return {
        "items": ranked[:MAX_GROUPS],
        "by_rule": _group(ranked, "rule"),
        "by_directory": _group(ranked, "directory"),
        "by_program": _group(ranked, "program"),
    }


def _group(ranked: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for it in ranked:
        g = groups.get(it[key])
        if g is None:
            g = groups[it[key]] = {"key": it[key], "matters": 0, "count": 0, "items": []}
        g["matters"] = max(g["matters"], it["matters"])
        g["count"] += it["count"]
        if len(g["items"]) < 50:
            g["items"].append({"action": it["action"], "target": it["target"], "n": it["count"]})
    out = sorted(groups.values(), key=lambda g: (-g["matters"], -g["count"], g["key"]))
    return out[:MAX_GROUPS]


def durability_text(d: Any) -> str:
    """The trail's durability promise in words (not a dict)."""
    if not isinstance(d, dict):
        return "not recorded"
    mode = d.get("mode")
    window = d.get("fsync_window_ms")
    if mode == "strict":
        return "strict: every entry is on disk (fsync) before the action it records goes on"
    if mode == "batch":
        ms = f"{window} ms" if isinstance(window, int) else "a short window"
        return (
            f"batched: entries reach the disk (fsync) at least every {ms}; a machine crash "
            f"can lose the entries of the last {ms}"
        )
    return f"{mode} (unknown durability mode)"
