"""`extends:` beyond the `system` baseline: a policy built on a bundled preset or a file.

    extends: [coding-agent]            # a bundled preset (also `coding-agent.yaml`)
    extends: [../team/base.yaml]       # a file, relative to the extending file

Parents may extend others (chains); a file met twice on one chain is a cycle and an
error at the `extends` entry that closes it (`file:line:column`).  Merging follows
DESIGN §3's one semantics, so the result means "the parent, plus the child":

- rules: the child's, then each parent's, each keeping the file and line it was
  written at (denial lines and `explain` name that file); a deny anywhere wins over
  any allow, so a child cannot lift a parent's deny by allowing;
- defaultEffect: the child's where it writes one; else `deny` if any parent's block
  says deny, else the parents' allow;
- mode and workspace: the child's where written, else the first parent's; the
  workspace is the base of every `./` rule in the chain;
- environment: pass/deny lists and secret patterns united (a parent's deny stays),
  `set` values overridden by the child, `pass_by_default` only if all say so;
- enforcement: required layers united, `strict` durability if any says so;
- the `system` baseline is included when any policy in the chain includes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from yaml.nodes import Node

from sandbox.digest import sha256
from sandbox.errors import LandgateError
from sandbox.policy.builder import _Builder
from sandbox.policy.fsdeps import resolve_parent
from sandbox.policy.keys import _PRESETS_DIR
from sandbox.policy.model import (
    ACTIONS,
    ActionBlock,
    Enforcement,
    Environment,
    Policy,
    SourceRef,
)

MAX_CHAIN = 8  # extends nesting deeper than this is an error, not a stack overflow


def extends_entries(b: _Builder, node: Node) -> list[tuple[Node, str]]:
    """The `extends` list as (node, name), each name once (a repeat is an error)."""
    named: list[tuple[Node, str]] = []
    for item in b.sequence(node, "extends") or ():
        name = b.string(item, "extends entry")
        if name is None:
            continue
        if name in (n for _, n in named):
            b.error(item, f"extends: {name!r} is listed twice")
            continue
        named.append((item, name))
    return named


def parent_files(parents: Sequence[Policy]) -> tuple[Path, ...]:
    """Every policy file the parents come from, nearest first, each once."""
    return tuple(dict.fromkeys(f for p in parents for f in (p.path, *p.parents)))


def chain_sha256(own: str, parents: Sequence[Policy]) -> str:
    """The policy's hash for the trail: its file's own, or (with parents) a hash over its
    file's and every parent's, so that an edit anywhere in the chain changes it."""
    if not parents:
        return own
    return sha256((own + "".join(p.sha256 for p in parents)).encode()).hexdigest()


def preset_names() -> list[str]:
    try:
        return sorted(p.stem for p in _PRESETS_DIR.glob("*.yaml"))
    except OSError:
        return []


def load_parents(
    b: _Builder,
    items: Sequence[tuple[Node, str]],
    *,
    base_dir: Path,
    chain: tuple[str, ...],
    build: Callable[[Path, str, tuple[str, ...]], Policy],
    known_profiles: tuple[str, ...],
) -> list[Policy]:
    """Load every non-profile `extends` entry; errors go to `b` at the entry's node.
    `build(path, display_name, chain)` loads one parent file with the chain so far."""
    parents: list[Policy] = []
    for node, name in items:
        if name in known_profiles:
            continue
        path = resolve_parent(name, base_dir)
        if path is None:
            presets = ", ".join(preset_names()) or "none installed"
            b.error(
                node,
                f"extends: unknown profile {name!r} (known: {', '.join(known_profiles)}; "
                f"bundled presets: {presets}; or a policy file's path)",
            )
            continue
        real = os.path.realpath(path)
        if real in chain:
            cycle = " -> ".join([*chain[chain.index(real) :], real])
            b.error(node, f"extends: cycle: {cycle}")
            continue
        if len(chain) >= MAX_CHAIN:
            b.error(node, f"extends: chain deeper than {MAX_CHAIN} policies")
            continue
        try:
            parents.append(build(path, os.fspath(path), (*chain, real)))
        except LandgateError as exc:
            if getattr(exc, "file", None):
                raise  # a policy error inside the parent names its own file:line
            b.error(node, f"extends: {name!r}: {exc}")
    return parents


def _uniq(*groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x for g in groups for x in g))


def merge_blocks(own: dict[str, ActionBlock], parents: Sequence[Policy]) -> dict[str, ActionBlock]:
    """The declared blocks of the child merged with its parents' (module docstring)."""
    out: dict[str, ActionBlock] = {}
    for action in ACTIONS:
        mine = own.get(action)
        theirs = [p.blocks[action] for p in parents if action in p.declared_actions]
        if mine is None and not theirs:
            continue
        rules = list(mine.rules) if mine is not None else []
        for block in theirs:
            rules.extend(r for r in block.rules if r.origin == "policy")
        dsrc: SourceRef | None
        if mine is not None and mine.default_source is not None:
            default, dsrc = mine.default_effect, mine.default_source
        else:
            written = [blk for blk in theirs if blk.default_source is not None]
            deny = [blk for blk in written if blk.default_effect == "deny"]
            pick = deny[0] if deny else (written[0] if written else None)
            default = pick.default_effect if pick is not None else "deny"
            dsrc = pick.default_source if pick is not None else None
        source = mine.source if mine is not None else theirs[0].source
        out[action] = ActionBlock(
            action=action,
            default_effect=default,
            rules=tuple(rules),
            source=source,
            default_source=dsrc,
        )
    return out


def merge_environment(own: Environment, parents: Sequence[Policy]) -> Environment:
    envs = [p.environment for p in parents]
    values: dict[str, str] = {}
    for e in envs:
        values.update(e.set)
    values.update(own.set)
    return Environment(
        allow=_uniq(*(e.allow for e in envs), own.allow),
        deny=_uniq(*(e.deny for e in envs), own.deny),
        set=values,
        pass_by_default=own.pass_by_default and all(e.pass_by_default for e in envs),
        secret_patterns=_uniq(own.secret_patterns, *(e.secret_patterns for e in envs)),
    )


def merge_enforcement(own: Enforcement, parents: Sequence[Policy]) -> Enforcement:
    all_ = [own, *(p.enforcement for p in parents)]
    require = frozenset().union(*(e.require for e in all_))
    strict = any(e.durability == "strict" for e in all_)
    return Enforcement(require=require, durability="strict" if strict else "batch")


def has_baseline(policy: Policy) -> bool:
    return any(r.origin == "baseline" for blk in policy.blocks.values() for r in blk.rules)
