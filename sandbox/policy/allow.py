"""`landgate allow ACTION TARGET`: add one allow rule to the policy file the user owns.

The file is edited as text, never dumped back from a parsed tree: comments, order and
spacing stay as the user wrote them.  The YAML reader's marks say where the action's
`rules:` list ends; the new rule goes on the line after its last item, indented like
it (a flow list `[...]` gets the rule before its `]`).  A missing block or list is
appended in the same way.  The result is loaded by the one loader before anything is
written, and refused when it does not load or when the action would still be denied
(an explicit deny wins over every allow, so adding the allow would change nothing).

Nothing here prints or asks: `plan_allow` returns the change (old text, new text,
diff) and `write_allow` writes it; the CLI shows the diff and decides whether to write.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sandbox.errors import LandgateError, PolicyError
from sandbox.policy.keys import _PRESETS_DIR
from sandbox.policy.model import ACTIONS, Decision, Policy
from sandbox.policy.yamlread import _compose

LOCAL_POLICY = ".landgate.yaml"
_KEY = {
    "file_read": "path",
    "file_write": "path",
    "shell_exec": "command",
    "network": "destination",
}
_DASH = re.compile(r"[ \t]*-[ \t]+")


@dataclass(frozen=True, slots=True)
class AllowChange:
    path: Path  # the file written
    old: str | None  # None: the file is created
    new: str
    rule: str  # the rule's YAML text
    note: str  # one line: what was done and why


def bundled_preset(arg: str) -> str | None:
    """`coding-agent` (or `coding-agent.yaml`) when `arg` names a bundled preset, else None."""
    name = arg[:-5] if arg.endswith(".yaml") else arg
    if "/" in name or not name or not (_PRESETS_DIR / f"{name}.yaml").is_file():
        return None
    return name


def target_file(policy_arg: str | None, cwd: Path) -> tuple[Path, str | None]:
    """The file `allow` edits and, when it must be created, what it extends.

    --policy FILE (an existing file that is not a bundled preset): that file.  Else
    ./.landgate.yaml; created with `extends: [PRESET]` (the --policy preset, else
    coding-agent) when it does not exist yet."""
    local = cwd / LOCAL_POLICY
    if policy_arg is not None:
        p = Path(policy_arg)
        p = p if p.is_absolute() else cwd / p
        if p.is_file() and p.resolve().parent != _PRESETS_DIR.resolve():
            return p, None
        preset = bundled_preset(policy_arg)
        if preset is None:
            raise LandgateError(
                f"allow: --policy {policy_arg}: no such file or bundled preset", exit_code=1
            )
        if local.is_file():
            return local, None
        return local, preset
    return local, (None if local.is_file() else "coding-agent")


def rule_text(action: str, target: str, execute: bool = False) -> str:
    if action not in _KEY:
        raise LandgateError(f"allow: unknown action {action!r} (one of: {', '.join(ACTIONS)})")
    if not target or "\n" in target:
        raise LandgateError(f"allow: {action}: an empty or multi-line target {target!r}")
    if execute and action != "file_read":
        raise LandgateError("allow: --exec is a file_read right (programs beneath the path run)")
    extra = ", exec: true" if execute else ""
    # A JSON string is a YAML double-quoted scalar: any target is written exactly.
    return f"{{ {_KEY[action]}: {json.dumps(target)}, effect: allow{extra} }}"


def _get(m: MappingNode, key: str) -> Node | None:
    for k, v in m.value:
        if isinstance(k, ScalarNode) and k.value == key and isinstance(v, Node):
            return v
    return None


def _last(node: Node) -> Node:
    """The node whose end mark is the last character `node` spans in block style."""
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        return _last(node.value[-1][1])
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return _last(node.value[-1])
    return node


def _after_line(text: str, index: int) -> int:
    """Offset of the start of the line after the one holding `index`."""
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


def _line_prefix(text: str, node: Node) -> str:
    start = node.start_mark.index
    return text[text.rfind("\n", 0, start) + 1 : start]


def _insert(text: str, at: int, chunk: str) -> str:
    if at == len(text) and text and not text.endswith("\n"):
        chunk = "\n" + chunk
    return text[:at] + chunk + text[at:]


def insert_rule_text(text: str, file: str, action: str, rule: str, stamp: str = "") -> str:
    """`text` with `rule` (a flow-style rule) added as the last rule of `action`'s block,
    found in the YAML node tree (a new block or `actions:` when there is none); `stamp` is
    a trailing comment.  A layout it cannot edit safely raises PolicyError (file:line:col).
    The one rule editor: `landgate allow`, the dashboard and `landgate init` use it."""
    root = _compose(text, file)
    if root is None:
        return text + f"actions:\n  - action: {action}\n    rules:\n      - {rule}{stamp}\n"
    if not isinstance(root, MappingNode):
        raise PolicyError(f"{file}:1:1: allow: the policy is not a mapping; add the rule by hand")
    actions = _get(root, "actions")
    if actions is None:
        at = _after_line(text, _last(root).end_mark.index)
        return _insert(
            text, at, f"actions:\n  - action: {action}\n    rules:\n      - {rule}{stamp}\n"
        )
    if not isinstance(actions, SequenceNode) or actions.flow_style or not actions.value:
        raise _by_hand(file, actions, "the actions list is not a block list")
    for block in actions.value:
        if not isinstance(block, MappingNode) or block.flow_style:
            continue
        name = _get(block, "action")
        if not isinstance(name, ScalarNode) or name.value != action:
            continue
        rules = _get(block, "rules")
        key_indent = " " * block.start_mark.column
        if rules is None:
            at = _after_line(text, _last(block).end_mark.index)
            return _insert(text, at, f"{key_indent}rules:\n{key_indent}  - {rule}{stamp}\n")
        if not isinstance(rules, SequenceNode):
            raise _by_hand(file, rules, "rules is not a list")
        if rules.flow_style:
            close = rules.end_mark.index - 1
            if text[close : close + 1] != "]":
                raise _by_hand(file, rules, "a flow list that does not end in ]")
            sep = ", " if rules.value else " "
            return text[:close].rstrip() + f"{sep}{rule} " + text[close:]
        first = rules.value[0]
        dash = _line_prefix(text, first)
        if not _DASH.fullmatch(dash):
            raise _by_hand(file, first, "a rule that does not start its own line")
        at = _after_line(text, _last(rules).end_mark.index)
        return _insert(text, at, f"{dash}{rule}{stamp}\n")
    first = actions.value[0]
    dash = _line_prefix(text, first)
    if not _DASH.fullmatch(dash):
        raise _by_hand(file, first, "an action block that does not start its own line")
    inner = " " * len(dash)
    at = _after_line(text, _last(actions).end_mark.index)
    chunk = f"{dash}action: {action}\n{inner}rules:\n{inner}  - {rule}{stamp}\n"
    return _insert(text, at, ("\n" if text[:at].strip() else "") + chunk)


def _by_hand(file: str, node: Node, why: str) -> PolicyError:
    m = node.start_mark
    return PolicyError(f"{file}:{m.line + 1}:{m.column + 1}: allow: {why}; add the rule by hand")


def _sample(action: str, target: str) -> str | None:
    """A concrete action the new rule admits (to decide it), None when it is a glob."""
    if action == "shell_exec":
        sample = target[:-2] + " x" if target.endswith(" *") else target
        return None if any(c in sample for c in "*?[") else sample
    return None if any(c in target for c in "*?[") else target


def _decide(policy: Policy, action: str, target: str) -> Decision:
    from sandbox.policy import decide

    try:
        return decide(policy, action, target)
    except LandgateError as exc:
        raise LandgateError(
            f"allow: not written: {action} {target!r}: {exc}", exit_code=1
        ) from None


def plan_allow(
    action: str,
    target: str,
    *,
    policy_arg: str | None = None,
    cwd: Path | None = None,
    execute: bool = False,
) -> AllowChange:
    """The change adding `allow` for ACTION TARGET, checked by loading the result."""
    from sandbox.policy import load_policy_text
    from sandbox.policy.execgrant import execute_grant

    cwd = Path(cwd or os.getcwd())
    path, extends = target_file(policy_arg, cwd)
    rule = rule_text(action, target, execute)
    stamp = "  # added by landgate allow"
    if extends is not None:
        old = None
        new = (
            f"# landgate policy for this directory: the {extends} preset plus the rules\n"
            "# below (a deny in either file wins).  `landgate allow` adds rules here;\n"
            "# `landgate check --policy .landgate.yaml` shows the result.\n"
            "version: 1\n"
            f"extends: [{extends}]\n"
            "actions:\n"
            f"  - action: {action}\n"
            "    rules:\n"
            f"      - {rule}{stamp}\n"
        )
    else:
        try:
            old = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LandgateError(f"allow: read {path}: {exc}", exit_code=1) from None
        sample = _sample(action, target)
        if sample is not None:
            try:
                now = load_policy_text(old, source=str(path), cwd=path.parent)
            except PolicyError as exc:
                raise LandgateError(
                    f"allow: {path} does not load now: {exc}", exit_code=1
                ) from None
            current = _decide(now, action, sample)
            runs = not execute or execute_grant(now, sample) is not None
            if current.effect == "allow" and current.rule is not None and runs:
                note = f"{path}: already allowed by {current.rule_ref()}; unchanged"
                return AllowChange(path, old, old, rule, note)
        new = insert_rule_text(old, str(path), action, rule, stamp)
    try:
        policy = load_policy_text(new, source=str(path), cwd=path.parent)
    except PolicyError as exc:
        raise LandgateError(
            f"allow: not written: {path} would not load with the rule: {exc}", exit_code=1
        ) from None
    sample = _sample(action, target)
    if sample is not None:
        d = _decide(policy, action, sample)
        if execute and d.effect == "allow" and execute_grant(policy, sample) is None:
            raise LandgateError(
                f"allow: not written: programs beneath {sample!r} would still not run", exit_code=1
            )
        if d.effect != "allow":
            raise LandgateError(
                f"allow: not written: {action} {sample!r} would still be denied by "
                f"{d.rule_ref()} (a deny wins over every allow; edit that rule instead)",
                exit_code=1,
            )
    verb = "creates" if old is None else "adds to"
    return AllowChange(path, old, new, rule, f"{verb} {path}: {rule}")


def unified_diff(change: AllowChange) -> str:
    old = [] if change.old is None else change.old.splitlines(keepends=True)
    name = str(change.path)
    return "".join(
        difflib.unified_diff(
            old,
            change.new.splitlines(keepends=True),
            fromfile="/dev/null" if change.old is None else name,
            tofile=name,
        )
    )


def write_allow(change: AllowChange) -> None:
    """Write the new text atomically (a crash leaves the old file or the new one)."""
    d = change.path.parent
    fd, tmp = tempfile.mkstemp(prefix=".landgate-allow-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(change.new)
            f.flush()
            os.fsync(f.fileno())
        if change.old is not None:
            os.chmod(tmp, change.path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        if change.old is not None:
            # The file changed since the plan was made: do not overwrite someone's edit.
            if change.path.read_text(encoding="utf-8") != change.old:
                raise LandgateError(f"allow: {change.path} changed meanwhile; run it again")
        elif change.path.exists():
            raise LandgateError(f"allow: {change.path} appeared meanwhile; run it again")
        os.replace(tmp, change.path)
    except OSError as exc:
        _unlink(tmp)
        raise LandgateError(f"allow: write {change.path}: {exc}") from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # already renamed into place or never created
