"""Load and validate policy files: native YAML (or JSON) and SafeClaw action blocks.

Two formats, told apart by the document's shape, not by the file's suffix:

- native: a mapping with `version`, `mode`, `workspace`, `extends`,
  `actions`, `environment`, `enforcement` (DESIGN §3);
- SafeClaw: one action block (a mapping with `action`, `defaultEffect`,
  `rules`) or a list of them, exactly as SafeClaw documents its JSON.

The formats differ in one meaning.  In SafeClaw files a pattern of one
dot-component between slashes (`/.ssh/`, `/.aws/`) means "a directory of that
name at any depth and everything beneath it" (SafeClaw's README); in native
files a leading `/` always means an absolute path.  Everything else means the
same in both.  The workspace (base of `./` patterns) is `.` resolved against
the `cwd` given to `load_policy` (the directory landgate runs in), unless a
native policy names another.

Both formats are parsed by one YAML loader (JSON is YAML) that keeps every
node's line and column, so every error reads `file:line:column: message` and
names the offending value.  Hostile input is refused cleanly: files over
`MAX_BYTES`, non-UTF-8 bytes, YAML anchors and aliases (the "billion laughs"
expansion), nesting deeper than `MAX_DEPTH`, duplicate keys, custom tags.
Nothing here prints, exits, or lets a traceback escape for a malformed file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sandbox.errors import LandgateError, PolicyError, PolicyErrors
from sandbox.policy import baseline as _baseline
from sandbox.policy.layers import known_layer_names
from sandbox.policy.model import (
    ACTIONS,
    ActionBlock,
    Enforcement,
    Environment,
    Policy,
    Rule,
    SourceRef,
)
from sandbox.policy.patterns import (
    normalize_path,
    parse_command_pattern,
    parse_destination,
    parse_path_pattern,
)

MAX_BYTES = 1 << 20  # 1 MiB: a policy is a page of rules, not a data set
MAX_DEPTH = 32  # the deepest legitimate policy nests 5 levels
MAX_ERRORS = 20  # stop collecting after this many; the first ones are what matter

EFFECTS = ("allow", "deny")
MODES = ("enforce", "simulate")
DURABILITIES = ("batch", "strict")
# Layer names `enforcement.require` accepts: the one vocabulary (sandbox.policy.layers).
ENFORCEMENT_LAYERS = known_layer_names()

RULE_KEY_FOR_ACTION = {
    "file_read": "path",
    "file_write": "path",
    "shell_exec": "command",
    "network": "destination",
}
PATTERN_KEYS = ("path", "command", "destination")
DOC_KEYS = ("comment", "description")

# `$schema` lets a JSON policy name policy.schema.json for editors; it is not interpreted.
TOP_KEYS = (
    "version",
    "mode",
    "workspace",
    "extends",
    "actions",
    "environment",
    "enforcement",
    "$schema",
    *DOC_KEYS,
)
BLOCK_KEYS = ("action", "defaultEffect", "rules", *DOC_KEYS)
ENV_KEYS = ("pass", "allow", "deny", "set", "pass_by_default", "secret_patterns")
ENFORCEMENT_KEYS = ("require", "durability")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_GLOB = re.compile(r"^[A-Za-z0-9_*?\[\]!]+$")

_PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


# ---------------------------------------------------------------------------
# the YAML layer: compose a node tree with marks, refusing hostile constructs


class _Refused(Exception):
    """A construct the composer refuses (alias, anchor, depth); carries the mark."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _MarkedLoader(yaml.SafeLoader):
    """SafeLoader that only composes (no Python objects) and refuses aliases, anchors, depth."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML is untyped
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                f"YAML aliases are not allowed in a policy (*{event.anchor})", event.start_mark
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(
                f"YAML anchors are not allowed in a policy (&{anchor}); "
                "write the value out instead",
                event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"document nested deeper than {MAX_DEPTH} levels", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


# Composed node trees by exact text: composing is pure-Python PyYAML (~13 ms for the
# coding-agent preset) and the same text always composes to the same tree, which the
# builder only reads.  Failures are not cached (they raise every time).
_COMPOSED: dict[str, Node | None] = {}
_COMPOSED_MAX = 16


def _compose(text: str, file: str) -> Node | None:
    try:
        return _COMPOSED[text]
    except KeyError:
        pass
    node = _compose_uncached(text, file)
    if len(_COMPOSED) >= _COMPOSED_MAX:
        _COMPOSED.pop(next(iter(_COMPOSED)))
    _COMPOSED[text] = node
    return node


_NEST_OPEN = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_NEST_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _compose_with_libyaml(text: str) -> Node | None:
    """Compose with libyaml (about 10x faster than the pure-Python composer: ~40 ms
    of every `landgate run` with the coding-agent preset).

    libyaml's composer cannot be hooked, so the refusals _MarkedLoader makes while
    composing are made first, on the token stream (libyaml's scanner is iterative):
    any alias or anchor, and nesting deeper than MAX_DEPTH.  Only then does the
    (recursive) composer run, on a document known to be shallow and alias-free."""
    scanner = yaml.CSafeLoader(text)
    try:
        depth = 0
        while scanner.check_token():
            token = scanner.get_token()
            if isinstance(token, yaml.AliasToken):
                raise _Refused(
                    f"YAML aliases are not allowed in a policy (*{token.value})", token.start_mark
                )
            if isinstance(token, yaml.AnchorToken):
                raise _Refused(
                    f"YAML anchors are not allowed in a policy (&{token.value}); "
                    "write the value out instead",
                    token.start_mark,
                )
            if isinstance(token, _NEST_OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Refused(
                        f"document nested deeper than {MAX_DEPTH} levels", token.start_mark
                    )
            elif isinstance(token, _NEST_CLOSE):
                depth -= 1
    finally:
        scanner.dispose()
    loader = yaml.CSafeLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _flow_opens_per_line(text: str) -> int:
    """The most `[` and `{` on one line (quoted or not: an over-count only costs speed).

    Why: libyaml's scanner looks ahead up to the end of a line (a flow collection
    may be a simple key) before it hands out a token, and recent libyaml versions
    refuse flow nesting beyond their own limit (1000) while doing so; landgate's
    depth check on the token stream would then never see the 33rd `[`, and the
    message and position would be libyaml's.  With at most MAX_DEPTH openers per
    line the lookahead stays far below any libyaml limit, so landgate's check fires
    first; a line with more goes to the pure-Python composer, which has no limit of
    its own and refuses at MAX_DEPTH with the exact position."""
    return max((line.count("[") + line.count("{") for line in text.split("\n")), default=0)


def _compose_uncached(text: str, file: str) -> Node | None:
    loader: _MarkedLoader | None = None
    try:
        # The pure-Python reader checks for unprintable characters in its constructor;
        # libyaml is only trusted with text that check passed.
        yaml.reader.Reader(text)
        if yaml.__with_libyaml__ and _flow_opens_per_line(text) <= MAX_DEPTH:
            return _compose_with_libyaml(text)
        loader = _MarkedLoader(text)
        return loader.get_single_node()
    except _Refused as exc:
        raise PolicyError(
            exc.message, file=file, line=exc.mark.line + 1, column=exc.mark.column + 1
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join((exc.problem or "syntax error").split())
        context = " ".join((exc.context or "").split())
        msg = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        line = mark.line + 1 if mark else 1
        col = mark.column + 1 if mark else 1
        raise PolicyError(msg, file=file, line=line, column=col) from None
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        raise PolicyError(
            f"invalid character {exc.character!r} (code point {ord(str(exc.character)):#x}); "
            "a policy is a YAML or JSON text file",
            file=file,
            line=line,
            column=col,
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(
            f"invalid YAML: {' '.join(str(exc).split())}", file=file, line=1, column=1
        ) from None
    except RecursionError:
        raise PolicyError(
            f"document nested too deeply (limit {MAX_DEPTH})", file=file, line=1, column=1
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _decode(data: bytes, file: str) -> str:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        off = data.index(b"\x00")
        line = data.count(b"\n", 0, off) + 1
        col = off - (data.rfind(b"\n", 0, off) + 1) + 1
        raise PolicyError(
            "binary data (NUL byte); a policy is a YAML or JSON text file",
            file=file,
            line=line,
            column=col,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PolicyError(
            f"not UTF-8 text (byte {data[exc.start]:#04x}); a policy is a YAML or "
            "JSON text file in UTF-8",
            file=file,
            line=line,
            column=col,
        ) from None


def _read_capped(path: Path, file: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise LandgateError(f"policy file not found: {file}", exit_code=1) from None
    except IsADirectoryError:
        raise LandgateError(
            f"policy path is a directory, not a file: {file}", exit_code=1
        ) from None
    except OSError as exc:
        raise LandgateError(
            f"cannot read policy file {file}: {exc.strerror}", exit_code=1
        ) from None
    if len(data) > MAX_BYTES:
        try:
            size = f"{path.stat().st_size / (1 << 20):.1f} MiB"
        except OSError:
            size = "too large"
        raise PolicyError(
            f"file is {size}; a policy is limited to {MAX_BYTES >> 20} MiB",
            file=file,
            line=1,
            column=1,
        )
    return data


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
    fields = b.mapping(node, what, ("effect", "inherit", *PATTERN_KEYS, *DOC_KEYS))
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
            if rule is not None:
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


def _check_env_glob(value: str) -> str | None:
    return None if _ENV_GLOB.match(value) else f"not a variable name or glob: {value!r}"


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
            if not _ENV_NAME.match(name):
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


def _resolve_dir(value: str, cwd: Path, home: str) -> Path:
    if value == "~" or value.startswith("~/"):
        value = home + value[1:]
    p = Path(value)
    if not p.is_absolute():
        p = cwd / p
    return Path(os.path.realpath(p))


def _build(
    text: str,
    *,
    file: str,
    policy_path: Path | None,
    sha256: str,
    cwd: Path | None,
    home: Path | None,
    audit_dir: Path | None,
) -> Policy:
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
    environment = Environment()
    enforcement = Enforcement()
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
                    workspace = _resolve_dir(ws, cwd_p, home_s)
        if "extends" in fields:

            def check(v: str) -> str | None:
                if v in _baseline.KNOWN_PROFILES:
                    return None
                return f"unknown profile {v!r} (known: {', '.join(_baseline.KNOWN_PROFILES)})"

            names = b.string_list(fields["extends"][1], "extends", check)
            if len(set(names)) != len(names):
                b.error(fields["extends"][1], "extends: a profile is listed twice")
            extends = tuple(dict.fromkeys(names))
        if "actions" in fields:
            items = b.sequence(fields["actions"][1], "actions")
            block_nodes = items or []
        if "environment" in fields:
            environment = _parse_environment(b, fields["environment"][1])
        if "enforcement" in fields:
            enforcement = _parse_enforcement(b, fields["enforcement"][1])
        for key in (*DOC_KEYS, "$schema"):
            if key in fields:
                b.string(fields[key][1], key)

    ctx = _Context(file, str(workspace), home_s, safeclaw)
    declared = _parse_blocks(b, ctx, block_nodes)
    if b.errors:
        raise b.errors[0] if len(b.errors) == 1 else PolicyErrors(b.errors)

    base_rules = _baseline.baseline_rules() if _baseline.BASELINE_NAME in extends else []
    prot_rules = _baseline.protected_paths(policy_path, home_s, audit_dir, workspace=str(workspace))
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
    )


# ---------------------------------------------------------------------------
# public entry points


def load_policy(
    path: str | os.PathLike[str],
    *,
    cwd: Path | None = None,
    home: Path | None = None,
    audit_dir: Path | None = None,
) -> Policy:
    """Load and validate a policy file (native YAML/JSON or SafeClaw JSON).

    `cwd` is where landgate runs: the base of a relative `workspace` (default
    `.`, i.e. `cwd` itself) and of a relative `path`.  `home` expands `~/`
    (default: $HOME).  `audit_dir` is the session's real audit directory, added
    to the protected paths.  SafeClaw files: `/.name/` means a directory
    `.name` at any depth (see the module docstring).
    Raises PolicyError / PolicyErrors (exit 1) for an invalid file, and
    LandgateError (exit 1) for a missing or unreadable one.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    file = os.fspath(path)
    data = _read_capped(p, file)
    # The file is read (and hashed) every time: the cache below is keyed by its exact
    # bytes, never by a timestamp, so an edit is seen even within the same clock tick.
    sha256 = hashlib.sha256(data).hexdigest()
    policy_path = Path(os.path.abspath(p))
    key = _cache_key(sha256, file, policy_path, base, home, audit_dir)
    text = _decode(data, file)
    cached = _LOADED.get(key)
    if cached is not None and _still_valid(cached, text, base, home):
        return cached
    policy = _build(
        text,
        file=file,
        policy_path=policy_path,
        sha256=sha256,
        cwd=base,
        home=home,
        audit_dir=audit_dir,
    )
    if len(_LOADED) >= _LOADED_MAX:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = policy
    return policy


# Loaded policies (frozen, shared) by everything `_build` reads besides the text: the
# file's name and path, the working directory and home as the kernel resolves them now,
# the audit directory, and the environment variables the protected paths depend on.
# What depends on the file system beyond that (the workspace's symlinks) is re-checked
# on every hit by `_still_valid`.
_LOADED: dict[tuple[object, ...], Policy] = {}
_LOADED_MAX = 16


def _cache_key(
    sha256: str, file: str, policy_path: Path, cwd: Path, home: Path | None, audit_dir: Path | None
) -> tuple[object, ...]:
    home_real = os.path.realpath(home if home is not None else Path.home())
    return (
        sha256,
        file,
        str(policy_path),
        os.path.realpath(cwd),
        home_real,
        None if audit_dir is None else os.fspath(audit_dir),
        os.environ.get("XDG_STATE_HOME", ""),
        os.environ.get("XDG_CONFIG_HOME", ""),
    )


def _still_valid(policy: Policy, text: str, cwd: Path, home: Path | None) -> bool:
    """The workspace a cached policy resolved is what its text resolves to now
    (a symlink on the way may have changed since)."""
    root = _COMPOSED.get(text)
    raw: str | None = None
    if isinstance(root, MappingNode):
        for k, v in root.value:
            if isinstance(k, ScalarNode) and k.value == "workspace":
                if not isinstance(v, ScalarNode):
                    return False
                raw = v.value
    elif root is None:
        return False
    cwd_p = Path(os.path.realpath(cwd))
    if raw is None:
        return cwd_p == policy.workspace
    home_s = normalize_path(os.path.realpath(home if home is not None else Path.home()))
    return _resolve_dir(raw, cwd_p, home_s) == policy.workspace


def load_policy_text(
    text: str,
    *,
    source: str = "<string>",
    cwd: Path | None = None,
    home: Path | None = None,
    audit_dir: Path | None = None,
) -> Policy:
    """Validate a policy given as text (errors name `source`)."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BYTES:
        raise PolicyError(
            f"policy text is {len(data) / (1 << 20):.1f} MiB; a policy is limited to "
            f"{MAX_BYTES >> 20} MiB",
            file=source,
            line=1,
            column=1,
        )
    return _build(
        text,
        file=source,
        policy_path=None,
        sha256=hashlib.sha256(data).hexdigest(),
        cwd=cwd,
        home=home,
        audit_dir=audit_dir,
    )


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a shared list twice instead of as an anchor + alias (which the loader refuses)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def policy_from_dict(
    data: object, *, source: str = "<dict>", cwd: Path | None = None, home: Path | None = None
) -> Policy:
    """Validate a policy given as Python data, by the same rules as a file.

    The data is rendered as YAML first, so errors carry line:column within that
    rendering (and name `source`).
    """
    try:
        text = yaml.dump(
            data,
            Dumper=_NoAliasDumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
        )
    except yaml.YAMLError as exc:
        raise PolicyError(
            f"policy data is not plain data (dicts, lists, strings, numbers): "
            f"{' '.join(str(exc).split())}",
            file=source,
            line=1,
            column=1,
        ) from None
    return load_policy_text(text, source=source, cwd=cwd, home=home)


def presets_dir() -> Path:
    """The bundled presets (`sandbox/presets`, a link to the repository's `policies/`)."""
    return _PRESETS_DIR


def preset_names() -> list[str]:
    try:
        return sorted(p.stem for p in _PRESETS_DIR.glob("*.yaml"))
    except OSError:
        return []


def resolve_policy_path(arg: str | None, cwd: Path) -> Path:
    """Which file `--policy ARG` means.

    None: ./.landgate.yaml when present, else the bundled coding-agent preset.
    An existing file: that file.  A bare name (no `/`, no suffix) that is not a
    file: the bundled preset `<name>.yaml`.  Otherwise a LandgateError (exit 1)
    naming the path.
    """
    cwd = Path(cwd)
    if arg is None:
        local = cwd / ".landgate.yaml"
        if local.is_file():
            return local
        return _PRESETS_DIR / "coding-agent.yaml"
    if not arg:
        raise LandgateError("--policy needs a file or a preset name", exit_code=1)
    candidate = Path(arg).expanduser()
    if not candidate.is_absolute():
        candidate = cwd / candidate
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        raise LandgateError(f"policy path is a directory, not a file: {arg}", exit_code=1)
    if "/" not in arg and "." not in arg:
        preset = _PRESETS_DIR / f"{arg}.yaml"
        if preset.is_file():
            return preset
        names = ", ".join(preset_names()) or "none installed"
        raise LandgateError(
            f"no policy file or bundled preset named {arg!r} (presets: {names})", exit_code=1
        )
    raise LandgateError(f"policy file not found: {arg}", exit_code=1)
