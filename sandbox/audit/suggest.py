"""`landgate audit suggest`: turn a simulation session into the policy that allows it.

The suggestion is the simulated policy plus a delta: `extends: [<that policy>]` (a
bundled preset by name, a file by path) keeps every rule it had, its denies included
(deny wins across the chain), and the delta adds only what the run needed and was
denied by default.  The delta is generalised the way a person would write it:

- files under a cache, state or temp tree (`~/.npm/`, `~/.cache/pip/`, `/tmp/`, ...)
  become one directory rule per tree, so 764 `~/.npm/_cacache` files and gcc's random
  `/tmp/ccXXXX.s` names are one rule each; three or more files of one other directory
  become that directory; the rest stay exact;
- commands become program prefixes (`od *`, or `od` when it ran bare);
- a program that ran from a directory the policy does not let execute (Landlock
  EXECUTE) gets `exec: true` on a read rule for that directory;
- destinations stay as recorded (host:port, IP:port, unix:/path).

Actions an explicit deny rule refused are *not* allowed: they are listed as
commented-out rules naming the deny, since a deny states intent a suggestion must not
quietly undo.  Every rule is loaded on its own before it is emitted (a target the
policy language cannot express, such as `family 16`, becomes a comment, never an
unloadable rule), and the whole suggestion is loaded and every recorded action
decided against it: anything it would still deny is listed as a note.

When the simulated policy is not known (an old trail) there is no `extends`: the
suggestion then lists everything the run did, generalised the same way.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.audit.entries import REPORTED_FLAG
from sandbox.audit.escape import printable
from sandbox.audit.reader import SessionInfo, is_default_rule

ACTIONS = ("file_read", "file_write", "shell_exec", "network")
_KEY = {
    "file_read": "path",
    "file_write": "path",
    "shell_exec": "command",
    "network": "destination",
}
_GLOB = "\\*?["
_TEMP_TREES = ("/tmp", "/var/tmp", "/dev/shm")
# Home trees whose second component is the tool (~/.cache/pip/), and the third for ~/.local.
_TOOL_TREES = (".cache", ".config")
_LOCAL_TREES = ("share", "state", "lib")
_SAME_DIR = 3  # this many files of one directory become the directory


@dataclass(frozen=True, slots=True)
class Item:
    action: str
    target: str
    status: str  # "allowed", "default-deny", "rule-deny", "baseline"
    rule: str
    count: int
    exe: str | None = None  # shell_exec: the executable that ran


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _GLOB else c for c in text)


def _yaml_str(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar (ASCII-escaped to be safe).
    return json.dumps(text, ensure_ascii=True)


def collect_items(entries: list[dict[str, Any]]) -> list[Item]:
    seen: dict[tuple[str, str], Item] = {}
    rank = {"rule-deny": 3, "default-deny": 2, "allowed": 1, "baseline": 0}
    for e in entries:
        if e.get("type") != "decision":
            continue
        flags = e.get("flags")
        if isinstance(flags, list) and REPORTED_FLAG in flags:
            # A process in the sandbox wrote it through the report channel: forged at will,
            # it must not turn into an allow rule.  What the process did is judged by
            # landgate itself and recorded in its own entries, which count here.
            continue
        action, target = e.get("action"), e.get("target")
        if action not in _KEY or not isinstance(target, str) or not target:
            continue
        rule = str(e.get("rule") or "default")
        own_loopback = action == "network" and "own loopback" in str(e.get("detail") or "")
        if own_loopback:
            # A loopback connect inside the sandbox's own network namespace: the trail cannot
            # tell the agent's own server from a host service it wanted (the host's loopback
            # appears in the namespace only through an allow rule's forwarder), so the port is
            # suggested for the user to review.
            status = "default-deny"
        elif e.get("result") == "allow":
            status = "baseline" if "baseline" in rule else "allowed"
        elif is_default_rule(rule):
            status = "default-deny"
        else:
            status = "rule-deny"
        detail = e.get("detail")
        exe = detail if action == "shell_exec" and isinstance(detail, str) else None
        exe = exe if exe and exe.startswith("/") else None
        key = (action, target)
        old = seen.get(key)
        if old is None:
            seen[key] = Item(action, target, status, rule, 1, exe)
        else:
            # The strictest verdict wins the comment; the rule list stays one per target.
            st = old.status if rank[old.status] >= rank[status] else status
            rl = old.rule if st == old.status else rule
            seen[key] = Item(action, target, st, rl, old.count + 1, old.exe or exe)
    return list(seen.values())


def _beneath(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _tree(path: str, home: str, workspace: str | None) -> str | None:
    """The cache/state/temp directory `path` belongs to, as a rule (`~/.npm/`), or None."""
    if workspace and (path == workspace or _beneath(path, workspace)):
        return None  # the workspace's own layout is the user's: no widening there
    # home first: a home may itself live under /tmp (a test's, a CI job's)
    mine = _home_tree(path, home) if _beneath(path, home) else None
    if mine is not None:
        return mine
    for t in _TEMP_TREES:
        if _beneath(path, t):
            return t + "/"
    return None


def _home_tree(path: str, home: str) -> str | None:
    parts = path[len(home.rstrip("/")) + 1 :].split("/")
    if not parts[0].startswith(".") or len(parts) < 2:
        return None  # ~/file, ~/project/...: not a tool's tree
    take = 1
    if parts[0] in _TOOL_TREES:
        take = 2
    elif parts[0] == ".local" and len(parts) > 1 and parts[1] in _LOCAL_TREES:
        take = 3
    if len(parts) <= take:
        return None  # the file is the tree's own name (~/.cache/x): exact
    return "~/" + "/".join(parts[:take]) + "/"


def _short(path: str, home: str, workspace: str | None) -> str:
    if workspace and _beneath(path, workspace):
        return "./" + path[len(workspace.rstrip("/")) + 1 :]
    if _beneath(path, home):
        return "~/" + path[len(home.rstrip("/")) + 1 :]
    return path


def generalise_paths(paths: list[str], home: str, workspace: str | None) -> dict[str, list[str]]:
    """Rule pattern -> the recorded paths it covers: trees, crowded directories, files."""
    out: dict[str, list[str]] = defaultdict(list)
    rest: list[str] = []
    for p in paths:
        tree = _tree(p, home, workspace)
        if tree is not None:
            out[tree].append(p)
        else:
            rest.append(p)
    by_dir: dict[str, list[str]] = defaultdict(list)
    for p in rest:
        by_dir[os.path.dirname(p) or "/"].append(p)
    for d, files in by_dir.items():
        if len(files) >= _SAME_DIR and d != "/" and not (workspace and d == workspace):
            out[_escape(_short(d, home, workspace)).rstrip("/") + "/"].extend(files)
        else:
            for f in files:
                out[_escape(_short(f, home, workspace))].append(f)
    # a rule beneath a directory rule adds nothing
    dirs = [k for k in out if k.endswith("/")]
    for k in list(out):
        for d in dirs:
            if k != d and k.startswith(d):
                out[d].extend(out.pop(k))
                break
    return dict(out)


def _program(command: str) -> str:
    prog, sep, _ = command.partition(" ")
    return _escape(prog) + (" *" if sep else "")


def _rule_loads(action: str, body: str) -> str | None:
    """None when a policy holding this one rule loads, else the loader's message."""
    try:
        from sandbox.policy import load_policy_text
    except ImportError:  # pragma: no cover - the policy engine ships with landgate
        return None
    text = f"version: 1\nextends: []\nactions:\n  - action: {action}\n    rules:\n      - {body}\n"
    try:
        load_policy_text(text, source="<rule>", cwd=Path("/"))
    except Exception as exc:  # noqa: BLE001 - any failure means: do not emit it
        return str(exc).split(": ", 1)[-1]
    return None


def _base_ref(policy_ref: Any) -> str | None:
    """What `extends` names for the simulated policy: a preset's name, else its path."""
    if isinstance(policy_ref, dict):
        policy_ref = policy_ref.get("path")
    if not isinstance(policy_ref, str) or not policy_ref:
        return None
    p = Path(policy_ref)
    try:
        from sandbox.policy.locate import presets_dir

        if p.resolve().parent == presets_dir().resolve() and p.suffix == ".yaml":
            return p.stem
    except (ImportError, OSError):
        pass
    return str(p) if p.is_file() else None


def _load_base(ref: str | None, workspace: str | None) -> Any:
    if ref is None:
        return None
    try:
        from sandbox.policy import load_policy, resolve_policy_path

        cwd = Path(workspace) if workspace else Path(os.getcwd())
        return load_policy(resolve_policy_path(ref, cwd=cwd), cwd=cwd)
    except Exception:  # noqa: BLE001 - a base that no longer loads: suggest without extends
        return None


def _exec_dirs(items: list[Item], base: Any) -> dict[str, list[str]]:
    """Directories of executables the base policy does not let run -> the programs."""
    out: dict[str, list[str]] = defaultdict(list)
    if base is None:
        return out
    from sandbox.policy.execgrant import execute_grant

    for i in items:
        if i.action != "shell_exec" or i.exe is None or i.status == "rule-deny":
            continue
        real = os.path.realpath(i.exe)
        if execute_grant(base, real) is None:
            out[os.path.dirname(real).rstrip("/") + "/"].append(real)
    return out


def suggest_policy(session: SessionInfo, entries: list[dict[str, Any]]) -> str:
    """Policy YAML (with review comments) allowing what `session` did."""
    items = collect_items(entries)
    start = session.start
    workspace = start.get("workspace") or start.get("cwd")
    workspace = str(workspace) if workspace else None
    home = os.path.expanduser("~")
    base_ref = _base_ref(start.get("policy"))
    base = _load_base(base_ref, workspace)
    if base is None:
        base_ref = None
    out = [
        (
            f"# landgate audit suggest: session {session.id} ({session.mode}), "
            f"{session.decisions} decisions"
        ),
        f"# simulated under: {printable(start.get('policy') or 'unknown policy')}",
    ]
    if base_ref is not None:
        out += [
            "# This file extends that policy (its rules, denies included, stay) and adds what",
            "# the run needed and was denied by default, one rule per tree or program.",
            "# Commented-out rules were denied by an explicit deny and stay denied.",
            "version: 1",
            "mode: enforce",
            f"extends: [{_yaml_str(base_ref)}]",
        ]
    else:
        out += [
            "# The simulated policy is not known: these rules allow everything the run did,",
            "# one rule per tree or program.  Lines marked `review` were denied by default;",
            "# commented-out rules were denied by an explicit deny and stay denied.",
            "version: 1",
            "mode: enforce",
        ]
    if workspace:
        out.append(f"workspace: {_yaml_str(workspace)}")
    wanted = ("default-deny",) if base_ref is not None else ("default-deny", "allowed")
    blocks: dict[str, list[str]] = {a: [] for a in ACTIONS}
    for action in ACTIONS:
        mine = [i for i in items if i.action == action]
        body = blocks[action]
        emitted: dict[str, int] = {}
        review: set[str] = set()  # patterns covering a default denial (no-base mode)
        status = {i.target: i.status for i in mine}
        if action in ("file_read", "file_write"):
            want = [i.target for i in mine if i.status in wanted and i.target.startswith("/")]
            for pattern, covered in sorted(generalise_paths(want, home, workspace).items()):
                emitted[pattern] = len(covered)
                if any(status.get(c) == "default-deny" for c in covered):
                    review.add(pattern)
        else:
            for i in mine:
                if i.status in wanted:
                    p = _program(i.target) if action == "shell_exec" else i.target
                    emitted[p] = emitted.get(p, 0) + i.count
                    if i.status == "default-deny":
                        review.add(p)
        key = _KEY[action]
        for pattern, n in sorted(emitted.items()):
            rule = f"{{ {key}: {_yaml_str(pattern)}, effect: allow }}"
            why = _rule_loads(action, rule)
            if why is not None:
                body.append(f"      # not expressible as a rule ({printable(why)}): {rule}")
                continue
            mark = ", review: denied by default" if base_ref is None and pattern in review else ""
            body.append(f"      - {rule}  # {n} recorded{mark}")
        if action == "file_read":
            for d, progs in sorted(_exec_dirs(items, base).items()):
                shown = _escape(_short(d.rstrip("/"), home, workspace)) + "/"
                rule = f"{{ path: {_yaml_str(shown)}, effect: allow, exec: true }}"
                if _rule_loads(action, rule) is None:
                    names = ", ".join(sorted({os.path.basename(p) for p in progs})[:3])
                    body.append(f"      - {rule}  # programs ran from here: {names}")
        for i in sorted(mine, key=lambda x: x.target):
            if i.status == "rule-deny":
                shown = _escape(i.target) if action != "network" else i.target
                if action in ("file_read", "file_write"):
                    shown = _escape(_short(i.target, home, workspace))
                rule = f"{{ {key}: {_yaml_str(shown)}, effect: allow }}"
                body.append(f"      # kept denied (was denied by {printable(i.rule)}): # - {rule}")
    if any(blocks.values()):
        out.append("actions:")
        for action in ACTIONS:
            if not blocks[action]:
                continue
            out.append(f"  - action: {action}")
            if base_ref is None:
                out.append("    defaultEffect: deny")
            rules = [x for x in blocks[action] if x.lstrip().startswith("- ")]
            out.append("    rules:" if rules else "    rules: []")
            out.extend(blocks[action])
    out.extend(_self_check(items, "\n".join(out) + "\n", workspace, base_ref is not None))
    return "\n".join(out) + "\n"


def _self_check(items: list[Item], text: str, workspace: str | None, delta: bool) -> list[str]:
    """Decide every recorded action against the suggestion; note any that stays denied."""
    try:
        from sandbox.policy import decide, load_policy_text
    except ImportError:  # pragma: no cover
        return []
    try:
        policy = load_policy_text(
            text, source="<suggestion>", cwd=Path(workspace) if workspace else Path(os.getcwd())
        )
    except Exception as exc:  # noqa: BLE001 - report, never crash the suggestion
        return [f"# note: the suggestion does not load as a policy here: {printable(exc)}"]
    notes = []
    for i in items:
        if i.status == "rule-deny" or (delta and i.status == "baseline"):
            continue
        try:
            d = decide(policy, i.action, i.target)
        except Exception as exc:  # noqa: BLE001
            notes.append(f"# note: {i.action} {i.target!r} cannot be judged: {printable(exc)}")
            continue
        if d.effect != "allow":
            notes.append(f"# note: {i.action} {i.target!r} stays denied ({d.rule_ref()})")
    return notes
