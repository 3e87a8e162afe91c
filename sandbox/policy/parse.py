"""From a composed policy document to the model: rules, blocks, environment, enforcement.

This module reads the document (its top-level keys, `extends` and the parents it loads,
the baseline and the protected paths appended to every block); each action block and
its rules are read by `blocks.py`, the other sections by `sections.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sandbox.digest import sha256 as _sha256
from sandbox.errors import PolicyError, PolicyErrors
from sandbox.policy import baseline as _baseline
from sandbox.policy import protected as _protected
from sandbox.policy.blocks import _Context, _parse_blocks
from sandbox.policy.builder import _Builder, _kind
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
from sandbox.policy.keys import DOC_KEYS, MODES, TOP_KEYS
from sandbox.policy.model import (
    ACTIONS,
    ActionBlock,
    AuditSettings,
    Enforcement,
    Environment,
    Policy,
    SourceRef,
)
from sandbox.policy.patterns import normalize_path
from sandbox.policy.sections import (
    _all_keys,
    _parse_audit,
    _parse_enforcement,
    _parse_environment,
)
from sandbox.policy.yamlread import _compose, _decode, _read_capped


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
    prot_rules = _protected.protected_paths(
        policy_path, home_s, audit_dir, workspace=str(workspace)
    )
    prot_rules += _protected.extended_policy_files(
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
