"""The YAML layer of the policy loader: compose a node tree with marks, refusing hostile input.

JSON is YAML, so both formats come through here.  Refused cleanly (PolicyError
with file:line:column): files over MAX_BYTES, non-UTF-8 bytes, anchors and
aliases, nesting deeper than MAX_DEPTH, duplicate keys, custom tags.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node

from sandbox.errors import LandgateError, PolicyError
from sandbox.policy.keys import MAX_BYTES, MAX_DEPTH

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
_COMPOSED_LOCK = threading.Lock()


def _compose(text: str, file: str) -> Node | None:
    try:
        return _COMPOSED[text]
    except KeyError:
        pass
    node = _compose_uncached(text, file)
    with _COMPOSED_LOCK:  # eviction from several threads at once: see loader._LOADED_LOCK
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
