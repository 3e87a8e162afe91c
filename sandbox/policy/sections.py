"""The `environment` and `enforcement` sections of a policy file (the loader's parse step)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from sandbox.policy.builder import _Builder
from sandbox.policy.keys import (
    _ENV_GLOB,
    _ENV_NAME,
    AUDIT_KEYS,
    DURABILITIES,
    ENFORCEMENT_KEYS,
    ENFORCEMENT_LAYERS,
    ENV_KEYS,
    FILE_ACCESS_RECORDS,
)
from sandbox.policy.model import (
    AuditSettings,
    Enforcement,
    Environment,
)

# ---------------------------------------------------------------------------
# policy construction


def _check_env_glob(value: str) -> str | None:
    return None if re.match(_ENV_GLOB, value) else f"not a variable name or glob: {value!r}"


def _parse_environment(b: _Builder, node: Node) -> Environment:
    fields = b.mapping(node, "environment", ENV_KEYS)
    if fields is None:
        return Environment()
    kwargs: dict[str, Any] = {}
    if "pass" in fields and "allow" in fields:
        b.error(
            fields["allow"][0],
            "environment: 'pass' and 'allow' are the same list; use one "
            f"(pass is at line {fields['pass'][0].start_mark.line + 1})",
        )
    for key in ("pass", "allow"):
        if key in fields:
            kwargs["allow"] = tuple(
                b.string_list(fields[key][1], f"environment.{key}", _check_env_glob)
            )
    if "deny" in fields:
        kwargs["deny"] = tuple(
            b.string_list(fields["deny"][1], "environment.deny", _check_env_glob)
        )
    if "secret_patterns" in fields:
        kwargs["secret_patterns"] = tuple(
            b.string_list(
                fields["secret_patterns"][1], "environment.secret_patterns", _check_env_glob
            )
        )
    if "pass_by_default" in fields:
        value = b.boolean(fields["pass_by_default"][1], "environment.pass_by_default")
        if value is not None:
            kwargs["pass_by_default"] = value
    if "set" in fields:
        setmap = b.mapping(
            fields["set"][1], "environment.set", allowed=tuple(_all_keys(fields["set"][1]))
        )
        values: dict[str, str] = {}
        for name, (knode, vnode) in (setmap or {}).items():
            if not re.match(_ENV_NAME, name):
                b.error(knode, f"environment.set: not a variable name: {name!r}")
                continue
            text = b.string(vnode, f"environment.set.{name}", allow_numbers=True)
            if text is not None:
                if "\x00" in text:
                    b.error(vnode, f"environment.set.{name}: NUL character in value")
                    continue
                values[name] = text
        kwargs["set"] = values
        denied = set(kwargs.get("deny", ()))
        for name in values:
            if name in denied:
                b.error(
                    setmap[name][0] if setmap else node,
                    f"environment: {name!r} is both set and denied",
                )
    both = set(kwargs.get("allow", ())) & set(kwargs.get("deny", ()))
    for name in sorted(both):
        b.error(node, f"environment: {name!r} is both passed and denied")
    return Environment(**kwargs)


def _all_keys(node: Node) -> Iterator[str]:
    if isinstance(node, MappingNode):
        for knode, _ in node.value:
            if isinstance(knode, ScalarNode):
                yield str(knode.value)


def _parse_enforcement(b: _Builder, node: Node) -> Enforcement:
    fields = b.mapping(node, "enforcement", ENFORCEMENT_KEYS)
    if fields is None:
        return Enforcement()
    kwargs: dict[str, Any] = {}
    if "require" in fields:

        def check(v: str) -> str | None:
            if v in ENFORCEMENT_LAYERS:
                return None
            return f"unknown layer {v!r} (known: {', '.join(ENFORCEMENT_LAYERS)})"

        kwargs["require"] = frozenset(
            b.string_list(fields["require"][1], "enforcement.require", check)
        )
    if "durability" in fields:
        value = b.choice(fields["durability"][1], "enforcement.durability", DURABILITIES)
        if value is not None:
            kwargs["durability"] = value
    return Enforcement(**kwargs)


def _parse_audit(b: _Builder, node: Node) -> AuditSettings:
    fields = b.mapping(node, "audit", AUDIT_KEYS)
    if fields is None:
        return AuditSettings()
    kwargs: dict[str, Any] = {}
    if "file_access" in fields:
        value = b.choice(fields["file_access"][1], "audit.file_access", FILE_ACCESS_RECORDS)
        if value is not None:
            kwargs["file_access"] = value
    return AuditSettings(**kwargs)
