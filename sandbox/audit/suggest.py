"""`landgate audit suggest`: turn a simulation session into the policy that allows it.

Minimal means exact: one allow rule per distinct path, command line or
destination that the simulated run used (glob characters escaped), every
block `defaultEffect: deny`, exec rules `inherit: false` so a descendant does
not get more than what it ran.  What the built-in `system` baseline already
allowed is left to the baseline (`extends` keeps it).

Review comments, by what the simulated run's policy said:
- allowed by a rule: plain rule;
- denied by default (no rule matched): rule, marked `# review: denied by default`;
- denied by an explicit deny rule (`.env`, `~/.ssh/`): *not* allowed; listed as
  a commented-out rule naming the deny rule, since a deny states intent that a
  suggestion must not quietly undo.

When the policy engine is importable the suggestion is loaded and every
recorded action is decided against it; anything it would still deny (a
protected path, say) is listed as a note, so the output never over-promises.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.audit.reader import SessionInfo, is_default_rule

ACTIONS = ("file_read", "file_write", "shell_exec", "network")
_KEY = {
    "file_read": "path",
    "file_write": "path",
    "shell_exec": "command",
    "network": "destination",
}
_GLOB = "\\*?["


@dataclass(frozen=True, slots=True)
class Item:
    action: str
    target: str
    status: str  # "allowed", "default-deny", "rule-deny", "baseline"
    rule: str
    count: int


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _GLOB else c for c in text)


def _pattern(action: str, target: str, workspace: str | None) -> str:
    if action in ("file_read", "file_write"):
        if workspace and target.startswith(workspace.rstrip("/") + "/"):
            return "./" + _escape(target[len(workspace.rstrip("/")) + 1 :])
        return _escape(target)
    if action == "shell_exec":
        return _escape(target)
    return target  # destinations: host[:port], IP, unix:/path (exact as recorded)


def _yaml_str(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar (ASCII-escaped to be safe).
    return json.dumps(text, ensure_ascii=True)


def collect_items(entries: list[dict[str, Any]]) -> list[Item]:
    seen: dict[tuple[str, str], Item] = {}
    for e in entries:
        if e.get("type") != "decision":
            continue
        action, target = e.get("action"), e.get("target")
        if action not in _KEY or not isinstance(target, str) or not target:
            continue
        rule = str(e.get("rule") or "default")
        if e.get("result") == "allow":
            status = "baseline" if "baseline" in rule else "allowed"
        elif is_default_rule(rule):
            status = "default-deny"
        else:
            status = "rule-deny"
        key = (action, target)
        old = seen.get(key)
        if old is None:
            seen[key] = Item(action, target, status, rule, 1)
        else:
            # The strictest verdict wins the comment; the rule list stays one per target.
            rank = {"rule-deny": 3, "default-deny": 2, "allowed": 1, "baseline": 0}
            st = old.status if rank[old.status] >= rank[status] else status
            rl = old.rule if st == old.status else rule
            seen[key] = Item(action, target, st, rl, old.count + 1)
    return list(seen.values())


def suggest_policy(session: SessionInfo, entries: list[dict[str, Any]]) -> str:
    """Policy YAML (with review comments) allowing what `session` did."""
    items = collect_items(entries)
    start = session.start
    workspace = start.get("workspace") or start.get("cwd")
    workspace = str(workspace) if workspace else None
    policy_ref = start.get("policy")
    if isinstance(policy_ref, dict):
        policy_ref = policy_ref.get("path")
    out = [
        (
            f"# landgate audit suggest: session {session.id} ({session.mode}), "
            f"{session.decisions} decisions"
        ),
        f"# simulated under: {policy_ref or 'unknown policy'}",
        "# Minimal rules: each allows one exact path, command line or destination the run",
        "# used.  Lines marked `review` were denied by default; commented-out rules were",
        "# denied by an explicit deny rule and stay denied unless you uncomment them.",
        "version: 1",
        "mode: enforce",
    ]
    if workspace:
        out.append(f"workspace: {_yaml_str(workspace)}")
    out.append("actions:")
    baseline = 0
    for action in ACTIONS:
        mine = [i for i in items if i.action == action]
        baseline += sum(1 for i in mine if i.status == "baseline")
        rules = [i for i in mine if i.status != "baseline"]
        out.append(f"  - action: {action}")
        out.append("    defaultEffect: deny")
        if not rules:
            out.append("    rules: []")
            continue
        out.append("    rules:")
        key = _KEY[action]
        extra = ", inherit: false" if action == "shell_exec" else ""
        for i in sorted(rules, key=lambda x: (x.status == "rule-deny", x.target)):
            rule = (
                f"- {{ {key}: {_yaml_str(_pattern(action, i.target, workspace))}, "
                f"effect: allow{extra} }}"
            )
            if i.status == "rule-deny":
                out.append(f"      # kept denied (was denied by {i.rule}); uncomment to allow:")
                out.append(f"      # {rule}")
            elif i.status == "default-deny":
                out.append(f"      {rule}  # review: denied by default")
            else:
                out.append(f"      {rule}")
    if baseline:
        out.append(
            f"# {baseline} target(s) allowed by the built-in system baseline are left "
            "to it (extends: system)."
        )
    out.extend(_self_check(items, "\n".join(out) + "\n", workspace))
    return "\n".join(out) + "\n"


def _self_check(items: list[Item], text: str, workspace: str | None) -> list[str]:
    """Decide every recorded action against the suggestion; note any that stays denied."""
    try:
        from sandbox.policy import decide, load_policy_text
    except ImportError:  # the policy engine is not there: nothing to check against
        return []
    try:
        policy = load_policy_text(
            text, source="<suggestion>", cwd=Path(workspace) if workspace else Path(os.getcwd())
        )
    except Exception as exc:  # noqa: BLE001 - report, never crash the suggestion
        return [f"# note: the suggestion does not load as a policy here: {exc}"]
    notes = []
    for i in items:
        if i.status == "rule-deny":
            continue
        try:
            d = decide(policy, i.action, i.target)
        except Exception as exc:  # noqa: BLE001
            notes.append(f"# note: {i.action} {i.target!r} cannot be judged: {exc}")
            continue
        if d.effect != "allow":
            notes.append(f"# note: {i.action} {i.target!r} stays denied ({d.rule_ref()})")
    return notes
