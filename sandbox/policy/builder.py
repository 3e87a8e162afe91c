"""Typed reads of composed YAML nodes that collect located errors (the loader's _Builder)."""

from __future__ import annotations

from collections.abc import Callable

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sandbox.errors import PolicyError
from sandbox.policy.keys import MAX_ERRORS
from sandbox.policy.model import (
    SourceRef,
)

# ---------------------------------------------------------------------------
# node helpers


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag[len("tag:yaml.org,2002:") :] if node.tag.startswith("tag:yaml.org,2002:") else ""
    if tag not in ("str", "int", "float", "bool", "null", "timestamp", "binary"):
        return f"a value tagged {node.tag.replace('tag:yaml.org,2002:', '!!')!r}"
    value = node.value
    shown = value if len(value) <= 40 else value[:37] + "..."
    names = {
        "str": "a string",
        "int": "a number",
        "float": "a number",
        "bool": "a boolean",
        "null": "null",
    }
    return f"{names.get(tag, 'a ' + tag)} ({shown!r})" if tag != "null" else "null"


class _Builder:
    """Walks the node tree, collecting errors with their positions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[PolicyError] = []

    def ref(self, node: Node) -> SourceRef:
        return SourceRef(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node | None, message: str) -> None:
        if len(self.errors) >= MAX_ERRORS:
            return
        if node is None:
            self.errors.append(PolicyError(message, file=self.file, line=1, column=1))
        else:
            self.errors.append(
                PolicyError(
                    message,
                    file=self.file,
                    line=node.start_mark.line + 1,
                    column=node.start_mark.column + 1,
                )
            )

    # -- typed accessors: return None (after recording an error) on a wrong type

    def mapping(
        self, node: Node, what: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping, not {_kind(node)}")
            return None
        out: dict[str, tuple[Node, Node]] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode) or knode.tag != "tag:yaml.org,2002:str":
                self.error(knode, f"{what}: keys must be strings, not {_kind(knode)}")
                continue
            key = knode.value
            if key in out:
                first = out[key][0]
                self.error(
                    knode,
                    f"{what}: duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                )
                continue
            if key not in allowed:
                import difflib  # only for a mistyped key: not on every load

                hint = difflib.get_close_matches(key, allowed, n=1)
                extra = (
                    f"; did you mean {hint[0]!r}?" if hint else f" (allowed: {', '.join(allowed)})"
                )
                self.error(knode, f"{what}: unknown key {key!r}{extra}")
                continue
            out[key] = (knode, vnode)
        return out

    def sequence(self, node: Node, what: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list, not {_kind(node)}")
            return None
        return list(node.value)

    def string(self, node: Node, what: str, *, allow_numbers: bool = False) -> str | None:
        if isinstance(node, ScalarNode):
            if node.tag == "tag:yaml.org,2002:str":
                return str(node.value)
            if allow_numbers and node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
                return str(node.value)
        self.error(node, f"{what} must be a string, not {_kind(node)}")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return node.value.lower() in ("true", "yes", "on", "y")
        self.error(node, f"{what} must be true or false, not {_kind(node)}")
        return None

    def choice(self, node: Node, what: str, choices: tuple[str, ...]) -> str | None:
        value = self.string(node, what)
        if value is None:
            return None
        if value not in choices:
            self.error(node, f"{what} must be one of {', '.join(choices)}, not {value!r}")
            return None
        return value

    def string_list(
        self, node: Node, what: str, check: Callable[[str], str | None] | None = None
    ) -> list[str]:
        items = self.sequence(node, what)
        out: list[str] = []
        for item in items or ():
            value = self.string(item, f"{what} entry")
            if value is None:
                continue
            problem = check(value) if check else None
            if problem:
                self.error(item, f"{what}: {problem}")
                continue
            out.append(value)
        return out
