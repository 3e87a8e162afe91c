"""Compile a glob into the program the C glob interpreter runs (csrc/glob.c).

This is the only place that parses a glob.  The program is a list of 32-bit
words, one op each (op << 24 | argument), ended by OP_END; the op numbers are
the LG_OP_* constants of csrc/supervise_api.h (checked against them by
tests/contract).  `explain`, simulation and the supervisor all run the same
program through the same C function, so a glob means the same everywhere.

Command lines (path=False): `*` any run of characters, `?` one character,
`[...]` / `[!...]` a class, `\\` quotes the next character.
Paths (path=True): `*`, `?` and classes stay within one component; a `**`
component crosses any number of them, also none (`a/**/b` matches `a/b`,
`a/**` matches `a` itself and everything beneath).  `directory` adds "and
everything beneath"; `anchored=False` matches the trailing components at
any depth.  A character is a Unicode code point (for a path or argument that
is not UTF-8: one per undecodable byte, as os.fsdecode gives them).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OP_END, OP_LIT, OP_ONE, OP_STAR, OP_CLASS, OP_ANY, OP_SUBDIRS, OP_PARENTS = range(8)
CLASS_NEG = 0x800000
_MAX_RANGES = 0x7FFFFF


def _op(code: int, arg: int = 0) -> int:
    return (code << 24) | arg


def _class(glob: str, i: int, *, path: bool) -> tuple[list[int], int]:
    """The class starting at glob[i] == '['; returns (words, next index)."""
    j = i + 1
    negate = j < len(glob) and glob[j] in "!^"
    if negate:
        j += 1
    start = j
    if j < len(glob) and glob[j] == "]":  # a ']' first is a member, as in fnmatch
        j += 1
    while j < len(glob) and glob[j] != "]":
        j += 1
    if j >= len(glob):
        raise ValueError(f"unclosed character class '[' at offset {i} in {glob!r}")
    body = glob[start:j]
    if not body:
        raise ValueError(f"empty character class at offset {i} in {glob!r}")
    if path and "/" in body:
        raise ValueError(f"a character class cannot contain '/' in {glob!r}")
    ranges: list[tuple[int, int]] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            lo, hi = ord(body[k]), ord(body[k + 2])
            if lo > hi:
                raise ValueError(f"bad range {body[k : k + 3]!r} in {glob!r}")
            ranges.append((lo, hi))
            k += 3
        else:
            ranges.append((ord(body[k]), ord(body[k])))
            k += 1
    words = [_op(OP_CLASS, len(ranges) | (CLASS_NEG if negate else 0))]
    for lo, hi in ranges:
        words += [lo, hi]
    return words, j + 1


def _fragment(glob: str, *, path: bool) -> list[int]:
    """A glob without `**` components (one path component, or a command line)."""
    out: list[int] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError(f"trailing backslash in {glob!r}")
            out.append(_op(OP_LIT, ord(glob[i + 1])))
            i += 2
        elif c == "*":
            if path and i + 1 < n and glob[i + 1] == "*":
                raise ValueError(
                    f"'**' must be a whole path component (as in 'a/**/b') in {glob!r}"
                )
            while i < n and glob[i] == "*":  # `**` in a command pattern is just `*`
                i += 1
            out.append(_op(OP_STAR))
        elif c == "?":
            out.append(_op(OP_ONE))
            i += 1
        elif c == "[":
            words, i = _class(glob, i, path=path)
            out += words
        else:
            out.append(_op(OP_LIT, ord(c)))
            i += 1
    return out


# Programs an authenticated policy cache entry carries (sandbox.policy.diskcache), by their
# exact inputs (glob, path, directory, anchored): compile_glob's answer for those inputs,
# computed by this very code (the entry's key holds the policy package's code).
_SEEDED: dict[tuple[str, bool, bool, bool], tuple[int, ...]] = {}
_SEEDED_MAX = 8192


def seed(programs: Mapping[Any, Any]) -> None:
    """Take the glob programs of a policy cache entry (other keys, literals, are skipped)."""
    if len(_SEEDED) + len(programs) > _SEEDED_MAX:
        _SEEDED.clear()
    for key, words in programs.items():
        if (
            isinstance(key, tuple)
            and len(key) == 4
            and isinstance(key[0], str)
            and all(isinstance(k, bool) for k in key[1:])
            and isinstance(words, tuple)
        ):
            _SEEDED[key] = words


def compile_glob(
    glob: str, *, path: bool, directory: bool = False, anchored: bool = True
) -> tuple[int, ...]:
    """The program for `glob` (see the module doc).  Raises ValueError for a malformed glob."""
    got = _SEEDED.get((glob, path, directory, anchored))
    if got is not None:
        return got
    return _compile_glob(glob, path=path, directory=directory, anchored=anchored)


@lru_cache(maxsize=8192)
def _compile_glob(
    glob: str, *, path: bool, directory: bool = False, anchored: bool = True
) -> tuple[int, ...]:
    if "\x00" in glob:
        raise ValueError(f"NUL character in {glob!r}")
    if not path:
        return (*_fragment(glob, path=False), OP_END)  # `**` is already one `*` there
    lit_slash = _op(OP_LIT, ord("/"))
    if glob == "/" and anchored:
        return (lit_slash, _op(OP_ANY), OP_END) if directory else (lit_slash, OP_END)
    out: list[int] = [] if anchored else [_op(OP_PARENTS)]
    parts = glob.split("/")
    last = len(parts) - 1
    for i, comp in enumerate(parts):
        if comp == "**":
            if i == 0:  # only an unanchored glob: `**/x` is x at any depth
                out.append(_op(OP_PARENTS if i != last else OP_ANY))
            else:  # `a/**/b`, `a/**`: nothing, or '/' and anything
                out.append(_op(OP_SUBDIRS))
            continue
        if i > 0 and not (i == 1 and parts[0] == "**"):
            out.append(lit_slash)
        out += _fragment(comp, path=True)
    if directory:
        out.append(_op(OP_SUBDIRS))
    return (*_collapse(out), OP_END)


# An op that spans any number of characters, repeated back to back, means what it means
# once (`a/**/**/b` is `a/**/b`: SUBDIRS SUBDIRS matches exactly what SUBDIRS does, and so
# for PARENTS, ANY and STAR).  The C interpreter backtracks at each of them, so a run of k
# costs a power k of the path's length: `/w/**/**/**/.env` took 379 ms to judge one
# 500-component path.  An agent must not be able to buy supervisor CPU with deep paths.
_REPEATABLE = frozenset(_op(code) for code in (OP_STAR, OP_ANY, OP_SUBDIRS, OP_PARENTS))


def _collapse(ops: list[int]) -> list[int]:
    out: list[int] = []
    for op in ops:
        if op in _REPEATABLE and out and out[-1] == op:
            continue
        out.append(op)
    return out


def literal(word: str) -> tuple[int, ...]:
    """The program matching exactly `word` (names and options of the command syntax)."""
    return (*(_op(OP_LIT, ord(c)) for c in word), OP_END)
