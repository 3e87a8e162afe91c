"""A reference model of the glob semantics of DESIGN §3, independent of the code
under test: each glob translated into a Python regex (this is how sandbox.policy
matched before it compiled globs for C).  The generated tests run the C glob
interpreter against it, so a change of meaning in csrc/glob.c (say, '?' matching
one byte instead of one character) fails them, even though explain and the
supervisor would still agree with each other."""

from __future__ import annotations

import re


def _translate_class(glob: str, i: int, *, path: bool) -> tuple[str, int]:
    """Translate the character class starting at glob[i] == '['; return (regex, next index)."""
    j = i + 1
    negate = False
    if j < len(glob) and glob[j] in "!^":
        negate = True
        j += 1
    start = j
    # A ']' right after '[' or '[!' is a literal member, as in fnmatch.
    if j < len(glob) and glob[j] == "]":
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
    # Escape regex metacharacters inside the class except the range dash.
    members = "".join("\\" + ch if ch in "\\^[]" else ch for ch in body)
    if negate:
        # Never let a negated class match the path separator.
        members += "/" if path else ""
        return f"[^{members}]", j + 1
    return f"[{members}]", j + 1


def _translate_fragment(glob: str, *, path: bool) -> str:
    """Translate a glob without `**` components into a regex fragment.

    In paths `*` and `?` stay within one component; in command lines they match
    anything (a command pattern `curl*` must cover `curl -s https://x/y`).
    """
    star = "[^/]*" if path else ".*"
    one = "[^/]" if path else "."
    out: list[str] = []
    i = 0
    n = len(glob)
    while i < n:
        c = glob[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError(f"trailing backslash in {glob!r}")
            out.append(re.escape(glob[i + 1]))
            i += 2
        elif c == "*":
            if path and i + 1 < n and glob[i + 1] == "*":
                raise ValueError(
                    f"'**' must be a whole path component (as in 'a/**/b') in {glob!r}"
                )
            while i < n and glob[i] == "*":  # `**` in a command pattern is just `*`
                i += 1
            out.append(star)
        elif c == "?":
            out.append(one)
            i += 1
        elif c == "[":
            frag, i = _translate_class(glob, i, path=path)
            out.append(frag)
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def glob_to_regex(
    glob: str, *, path: bool = True, directory: bool = False, anchored: bool = True
) -> str:
    """Translate a glob into a regex for `re.fullmatch`.

    path=True: `*`, `?` and classes stay within one component, a `**`
    component crosses any number of them (also zero: `a/**/b` matches `a/b`,
    `a/**` matches `a` itself and everything beneath).  `directory` adds "and
    everything beneath".  `anchored=False` lets the glob match the trailing
    components of a path at any depth.
    path=False (command lines): `*` matches anything, spaces and slashes too.
    Raises ValueError for a malformed glob.
    """
    if not path:
        return _translate_fragment(glob, path=False)
    if glob == "/" and anchored:
        return "/.*" if directory else "/"
    parts = glob.split("/")
    out: list[str] = []
    last = len(parts) - 1
    for i, comp in enumerate(parts):
        if comp == "**":
            if i == 0:
                # Only reachable for an unanchored glob after stripping; `**/x` = x at any depth.
                out.append("(?:[^/]*/)*" if i != last else ".*")
                continue
            out.append("(?:/.*)?" if i == last else "(?:/[^/]*)*")
            continue
        frag = _translate_fragment(comp, path=True)
        if i == 0:
            out.append(frag)
        elif i > 0 and parts[i - 1] == "**" and i - 1 == 0:
            out.append(frag)  # the leading `(?:[^/]*/)*` already ends with '/'
        else:
            out.append("/" + frag)
    body = "".join(out)
    if directory:
        body += "(?:/.*)?"
    if not anchored:
        body = "(?:.*/)?" + body
    return body


def matches(
    glob: str, text: str, *, path: bool, directory: bool = False, anchored: bool = True
) -> bool:
    rx = glob_to_regex(glob, path=path, directory=directory, anchored=anchored)
    return re.fullmatch(rx, text, re.DOTALL) is not None


def normalise(path: str) -> str:
    """The lexical normalisation of DESIGN §3: `.` and `//` dropped, `..` takes one
    component away, never above `/` (Linux reads a leading `//` as `/`)."""
    import posixpath

    norm = posixpath.normpath(path)
    return "/" + norm.lstrip("/") if norm.startswith("//") else norm
