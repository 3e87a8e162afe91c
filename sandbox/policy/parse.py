"""From a composed policy document to the model: rules, blocks, environment, enforcement."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sandbox.digest import sha256 as _sha256
from sandbox.errors import PolicyError, PolicyErrors
from sandbox.policy import baseline as _baseline
from sandbox.policy.builder import _Builder, _kind
from sandbox.policy.destinations import parse_destination
from sandbox.policy.extends import (
    chain_sha256,
    extends_entries,
    has_baseline,
    load_parents,
    merge_blocks,
    merge_enforcement,
    merge_environment,
    parent_files,
)
from sandbox.policy.fsdeps import file_read, resolve_dir
from sandbox.policy.keys import (
    BLOCK_KEYS,
    DOC_KEYS,
    EFFECTS,
    MODES,
    PATH_ENV_PATTERN,
    PATTERN_KEYS,
    RULE_KEY_FOR_ACTION,
    TOP_KEYS,
)
from sandbox.policy.model import (
    ACTIONS,
    ActionBlock,
    AuditSettings,
    Enforcement,
    Environment,
    Policy,
    Rule,
    SourceRef,
)
from sandbox.policy.patterns import (
    normalize_path,
    parse_command_pattern,
    parse_path_pattern,
)
from sandbox.policy.sections import (
    _all_keys,
    _parse_audit,
    _parse_enforcement,
    _parse_environment,
)
from sandbox.policy.toolchains import expand_path_rule
from sandbox.policy.yamlread import _compose, _decode, _read_capped

# ---------------------------------------------------------------------------
# policy construction


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


def _build(
    text: str,
    *,
    file: str,
    policy_path: Path | None,
    sha256: str,
    cwd: Path | None,
    home: Path | None,
    audit_dir: Path | None,
    chain: tuple[str, ...] = (),
    workspace_override: Path | None = None,
) -> Policy:
    """Build a Policy from text.  `chain`: the real paths of the policies extending this
    one (cycle detection); `workspace_override`: the extending policy's workspace."""
    # JSON allows tabs between tokens; PyYAML does not.  Outside strings a tab is
    # only whitespace, and JSON forbids raw tabs inside strings, so swapping them
    # for spaces changes neither meaning nor columns.
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) and "\t" in text:
        text = text.replace("\t", " ")
    root = _compose(text, file)
    b = _Builder(file)
    if root is None:
        raise PolicyError(
            "empty policy (expected a mapping with version and actions, or SafeClaw action blocks)",
            file=file,
            line=1,
            column=1,
        )
    cwd_p = Path(os.path.realpath(cwd if cwd is not None else Path.cwd()))
    home_s = normalize_path(os.path.realpath(home if home is not None else Path.home()))

    safeclaw = isinstance(root, SequenceNode) or (
        isinstance(root, MappingNode) and "action" in set(_all_keys(root))
    )
    version = 1
    mode = "enforce"
    workspace = cwd_p
    extends: tuple[str, ...] = (_baseline.BASELINE_NAME,)
    parents: list[Policy] = []
    environment = Environment()
    enforcement = Enforcement()
    audit = AuditSettings()
    block_nodes: list[Node] = []
    if safeclaw:
        block_nodes = list(root.value) if isinstance(root, SequenceNode) else [root]
    elif not isinstance(root, MappingNode):
        raise PolicyError(
            f"a policy must be a mapping (version, actions, ...) or SafeClaw action "
            f"blocks, not {_kind(root)}",
            file=file,
            line=root.start_mark.line + 1,
            column=root.start_mark.column + 1,
        )
    else:
        fields = b.mapping(root, "policy", TOP_KEYS) or {}
        if "version" not in fields:
            b.error(
                root, "missing 'version: 1' (a native policy) or 'action' (a SafeClaw action block)"
            )
        else:
            vnode = fields["version"][1]
            if not (
                isinstance(vnode, ScalarNode)
                and vnode.tag == "tag:yaml.org,2002:int"
                and vnode.value.strip() == "1"
            ):
                b.error(vnode, f"version must be 1, not {_kind(vnode)}")
        if "mode" in fields:
            mode = b.choice(fields["mode"][1], "mode", MODES) or mode
        if "workspace" in fields:
            ws = b.string(fields["workspace"][1], "workspace")
            if ws is not None:
                if not ws.strip() or "\x00" in ws:
                    b.error(
                        fields["workspace"][1], f"workspace must be a directory path, not {ws!r}"
                    )
                elif any(c in ws for c in "*?["):
                    b.error(
                        fields["workspace"][1],
                        f"workspace must be a plain path, not a glob: {ws!r}",
                    )
                else:
                    workspace = resolve_dir(ws, cwd_p, home_s)
        if workspace_override is not None:
            workspace = workspace_override
        if "extends" in fields:
            named = extends_entries(b, fields["extends"][1])
            extends = tuple(n for _, n in named)
            here = (os.path.realpath(policy_path),) if policy_path is not None else ()
            parents = load_parents(
                b,
                named,
                base_dir=policy_path.parent if policy_path is not None else cwd_p,
                chain=chain or here,
                build=lambda path, name, ch: _build_file(
                    path,
                    name,
                    cwd=cwd_p,
                    home=home,
                    audit_dir=audit_dir,
                    chain=ch,
                    workspace_override=workspace if "workspace" in fields else workspace_override,
                ),
                known_profiles=_baseline.KNOWN_PROFILES,
            )
            if parents and "workspace" not in fields and workspace_override is None:
                workspace = parents[0].workspace
            if parents and "mode" not in fields:
                mode = parents[0].mode
        if "actions" in fields:
            items = b.sequence(fields["actions"][1], "actions")
            block_nodes = items or []
        if "environment" in fields:
            environment = _parse_environment(b, fields["environment"][1])
        if "enforcement" in fields:
            enforcement = _parse_enforcement(b, fields["enforcement"][1])
        if "audit" in fields:
            audit = _parse_audit(b, fields["audit"][1])
        for key in (*DOC_KEYS, "$schema"):
            if key in fields:
                b.string(fields[key][1], key)

    ctx = _Context(file, str(workspace), home_s, safeclaw)
    declared = _parse_blocks(b, ctx, block_nodes)
    if b.errors:
        raise b.errors[0] if len(b.errors) == 1 else PolicyErrors(b.errors)

    if parents:
        declared = merge_blocks(declared, parents)
        environment = merge_environment(environment, parents)
        enforcement = merge_enforcement(enforcement, parents)
    with_baseline = _baseline.BASELINE_NAME in extends or any(has_baseline(p) for p in parents)
    base_rules = _baseline.baseline_rules() if with_baseline else []
    chain_files = parent_files(parents)
    prot_rules = _baseline.protected_paths(policy_path, home_s, audit_dir, workspace=str(workspace))
    prot_rules += _baseline.extended_policy_files(
        chain_files,
        home_s,
        workspace=str(workspace),
        after=sum(r.action == "file_write" for r in prot_rules),
    )
    sha256 = chain_sha256(sha256, parents)
    blocks: dict[str, ActionBlock] = {}
    for action in ACTIONS:
        block = declared.get(action)
        extra = tuple(r for r in (*base_rules, *prot_rules) if r.action == action)
        if block is None:
            blocks[action] = ActionBlock(
                action=action,
                default_effect="deny",
                rules=extra,
                source=SourceRef(file, 0, 0),
                default_source=None,
            )
        else:
            blocks[action] = ActionBlock(
                action=action,
                default_effect=block.default_effect,
                rules=block.rules + extra,
                source=block.source,
                default_source=block.default_source,
            )
    return Policy(
        path=policy_path if policy_path is not None else Path(file),
        sha256=sha256,
        version=version,
        mode=mode,  # type: ignore[arg-type]
        workspace=workspace,
        home=Path(home_s),
        extends=extends,
        blocks=blocks,
        environment=environment,
        enforcement=enforcement,
        declared_actions=tuple(a for a in ACTIONS if a in declared),
        format="safeclaw" if safeclaw else "native",
        parents=chain_files,
        audit=audit,
    )


def _build_file(
    path: Path,
    file: str,
    *,
    cwd: Path,
    home: Path | None,
    audit_dir: Path | None,
    chain: tuple[str, ...],
    workspace_override: Path | None,
) -> Policy:
    """Load one parent policy file named by `extends`."""
    data = _read_capped(path, file)
    file_read(os.path.abspath(path), data)
    return _build(
        _decode(data, file),
        file=file,
        policy_path=Path(os.path.abspath(path)),
        sha256=_sha256(data).hexdigest(),
        cwd=cwd,
        home=home,
        audit_dir=audit_dir,
        chain=chain,
        workspace_override=workspace_override,
    )
