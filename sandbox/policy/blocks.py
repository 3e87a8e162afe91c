"""The action blocks of a policy file and their rules: composed nodes to `ActionBlock`s.

The loader's parse step in two parts: `parse.py` reads the document (its top-level keys,
`extends`, the baseline and protected paths appended) and hands each item of `actions`
(or each SafeClaw action block) here.  Apart because a block and its rules are their own
grammar (one pattern key per action, `effect`, `inherit`, `exec`), with its own errors.
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import Node

from sandbox.policy.builder import _Builder
from sandbox.policy.destinations import parse_destination
from sandbox.policy.keys import (
    BLOCK_KEYS,
    DOC_KEYS,
    EFFECTS,
    PATH_ENV_PATTERN,
    PATTERN_KEYS,
    RULE_KEY_FOR_ACTION,
)
from sandbox.policy.model import ACTIONS, ActionBlock, Rule
from sandbox.policy.patterns import parse_command_pattern, parse_path_pattern
from sandbox.policy.toolchains import expand_path_rule


class _Context:
    def __init__(self, file: str, workspace: str, home: str, safeclaw: bool) -> None:
        self.file = file
        self.workspace = workspace
        self.home = home
        self.safeclaw = safeclaw


def _parse_rule(b: _Builder, ctx: _Context, action: str, index: int, node: Node) -> Rule | None:
    what = f"{action} rule {index}"
    fields = b.mapping(node, what, ("effect", "inherit", "exec", *PATTERN_KEYS, *DOC_KEYS))
    if fields is None:
        return None
    want = RULE_KEY_FOR_ACTION[action]
    present = [k for k in PATTERN_KEYS if k in fields]
    ok = True
    for key in present:
        if key != want:
            b.error(fields[key][0], f"{what}: {key!r} does not fit action {action} (use {want!r})")
            ok = False
    if want not in fields:
        if not present:
            b.error(node, f"{what}: missing {want!r}")
        return None
    if "effect" not in fields:
        b.error(node, f"{what}: missing 'effect' (allow or deny)")
        ok = False
        effect = None
    else:
        effect = b.choice(fields["effect"][1], f"{what}: effect", EFFECTS)
    inherit = True
    if "inherit" in fields:
        if action != "shell_exec":
            b.error(fields["inherit"][0], f"{what}: 'inherit' applies only to shell_exec rules")
            ok = False
        else:
            value = b.boolean(fields["inherit"][1], f"{what}: inherit")
            inherit = True if value is None else value
            if effect == "deny" and value is False:
                b.error(
                    fields["inherit"][0],
                    f"{what}: 'inherit: false' has no meaning on a deny "
                    "rule (a deny always applies to every exec)",
                )
    execute = False
    if "exec" in fields:
        value = b.boolean(fields["exec"][1], f"{what}: exec")
        if action != "file_read":
            b.error(
                fields["exec"][0],
                f"{what}: 'exec' applies only to file_read rules (execution needs read)",
            )
            ok = False
        elif value and effect == "deny":
            b.error(
                fields["exec"][0],
                f"{what}: 'exec: true' has no meaning on a deny rule (a read deny "
                "already refuses execution)",
            )
            ok = False
        execute = bool(value)
    comment = None
    for key in DOC_KEYS:
        if key in fields:
            comment = b.string(fields[key][1], f"{what}: {key}")
    vnode = fields[want][1]
    raw = b.string(vnode, f"{what}: {want}")
    if raw is None or effect is None or not ok:
        return None
    kwargs: dict[str, Any] = {}
    try:
        if want == "path":
            kwargs["path"] = parse_path_pattern(
                raw, workspace=ctx.workspace, home=ctx.home, safeclaw=ctx.safeclaw
            )
        elif want == "command":
            kwargs["command"] = parse_command_pattern(raw)
        else:
            kwargs["destination"] = parse_destination(raw)
    except ValueError as exc:
        b.error(vnode, f"{what}: {exc}")
        return None
    return Rule(
        action=action,
        index=index,
        effect=effect,  # type: ignore[arg-type]
        pattern=raw,
        source=b.ref(node),
        inherit=inherit,
        comment=comment,
        execute=execute,
        **kwargs,
    )


def _parse_block(b: _Builder, ctx: _Context, node: Node, what: str) -> ActionBlock | None:
    fields = b.mapping(node, what, BLOCK_KEYS)
    if fields is None:
        return None
    if "action" not in fields:
        b.error(node, f"{what}: missing 'action' (one of {', '.join(ACTIONS)})")
        return None
    action = b.choice(fields["action"][1], f"{what}: action", ACTIONS)
    if action is None:
        return None
    default = "deny"
    default_source = None
    if "defaultEffect" in fields:
        value = b.choice(fields["defaultEffect"][1], f"{action}: defaultEffect", EFFECTS)
        if value is not None:
            default = value
            default_source = b.ref(fields["defaultEffect"][1])
    rules: list[Rule] = []
    if "rules" in fields:
        items = b.sequence(fields["rules"][1], f"{action}: rules")
        for i, item in enumerate(items or (), start=1):
            rule = _parse_rule(b, ctx, action, i, item)
            if rule is None:
                continue
            if rule.path is not None and rule.pattern == PATH_ENV_PATTERN:
                rules.extend(expand_path_rule(b, rule, item, ctx.workspace, ctx.home))
            else:
                rules.append(rule)
    return ActionBlock(
        action=action,
        default_effect=default,  # type: ignore[arg-type]
        rules=tuple(rules),
        source=b.ref(node),
        default_source=default_source,
    )


def _parse_blocks(b: _Builder, ctx: _Context, items: list[Node]) -> dict[str, ActionBlock]:
    blocks: dict[str, ActionBlock] = {}
    for i, item in enumerate(items, start=1):
        block = _parse_block(b, ctx, item, f"action block {i}")
        if block is None:
            continue
        if block.action in blocks:
            first = blocks[block.action].source
            b.error(
                item,
                f"a second {block.action} block (the first is at {first.file}:"
                f"{first.line}:{first.column}); merge their rules into one block",
            )
            continue
        blocks[block.action] = block
    return blocks
