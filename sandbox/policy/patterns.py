"""Pattern parsing and matching: paths, command lines, network destinations.

Everything here is pure string/ipaddress work, shared by the evaluator, the
planner (which compiles the same patterns into kernel rules) and the
supervisor's table builder, so that every layer agrees on what a pattern
means (DESIGN §3).

Parsing (`parse_*`) raises `ValueError` with a one-line message; the loader
attaches the file, line and column.  Matching never raises on odd input.

Regexes are compiled once per distinct glob and cached (`_compiled`), so a
policy with 1,000 rules costs 1,000 regex compilations at load time and none
per decision.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence

from sandbox.policy.globs import compile_glob
from sandbox.policy.model import CommandPattern, PathPattern

GLOB_CHARS = frozenset("*?[")


# ---------------------------------------------------------------------------
# glob -> regex


def has_glob(text: str) -> bool:
    """True when `text` contains an unescaped glob character (* ? [)."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in GLOB_CHARS:
            return True
        i += 1
    return False


def _glob_match(
    glob: str, text: str, *, path: bool, directory: bool = False, anchored: bool = True
) -> bool:
    """Run the glob through the C interpreter (csrc/glob.c): the one implementation."""
    from sandbox.policy.judge import glob_match

    words = compile_glob(glob, path=path, directory=directory, anchored=anchored)
    return glob_match(words, text, path=path)


# ---------------------------------------------------------------------------
# paths


def normalize_path(path: str, *, base: str | None = None, home: str | None = None) -> str:
    """Make `path` absolute and collapse `.`, `..` and repeated slashes lexically.

    `~` / `~/x` expand against `home`; a relative path joins `base`.  `..` at
    the root stays at the root (as the kernel does), so a normalised path can
    never climb above `/`.  Symlinks are not resolved here: the caller passes
    the kernel-resolved path when it has one.  Idempotent.
    """
    if home is not None and (path == "~" or path.startswith("~/")):
        path = home + path[1:]
    if not path.startswith("/"):
        path = (base or "/").rstrip("/") + "/" + path
    from sandbox.policy.judge import normalise

    return normalise(path)  # the supervisor's own normaliser (csrc/supervise_mem.c)


# A SafeClaw pattern like `/.ssh/`: one dot-component between slashes.  In SafeClaw
# JSON this means "a directory of that name at any depth" (their README), while in
# native YAML a leading `/` always means an absolute path.
# A pattern, compiled (and cached by re) at its first use: not at import on every launch.
_SAFECLAW_ANY_DEPTH_DIR = r"^/\.[^/*?\[\]\\]+/$"


def parse_path_pattern(
    raw: str, *, workspace: str, home: str, safeclaw: bool = False
) -> PathPattern:
    """Parse a path pattern (DESIGN §3).

    `/abs`, `~/home-relative`, `./workspace-relative` are anchored; a pattern
    with no `/`, one starting with `**/`, or any other relative pattern
    (`node_modules/**`, SafeClaw's `*/.env`) matches trailing components at any
    depth.  A trailing `/` means the directory and everything beneath it.
    With `safeclaw=True`, `/.name/` means a directory `.name` at any depth
    (SafeClaw's meaning of `/.ssh/`, `/.aws/`).
    Raises ValueError for an empty or malformed pattern.
    """
    if not isinstance(raw, str):
        raise ValueError(f"a path pattern must be a string, not {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise ValueError("empty path pattern")
    if "\x00" in text:
        raise ValueError(f"NUL character in path pattern {raw!r}")
    if safeclaw and re.match(_SAFECLAW_ANY_DEPTH_DIR, text):
        text = text[1:]  # "/.ssh/" -> ".ssh/", unanchored below
    directory = text.endswith("/")
    if text == "~" or text == ".":
        directory = True
        text += "/"
    if text.startswith("~") and not text.startswith("~/"):
        raise ValueError(f"'~user' paths are not supported, use '~/' or an absolute path: {raw!r}")
    anchored = True
    if text.startswith("/"):
        absolute = text
    elif text.startswith("~/"):
        absolute = home.rstrip("/") + text[1:]
    elif text.startswith(("./", "../")):
        absolute = workspace.rstrip("/") + "/" + text
    else:
        anchored = False
        absolute = text
    if anchored:
        # Collapse `..` and `.` lexically; keep glob characters as they are.
        glob = posixpath.normpath(absolute)
        if glob.startswith("//"):
            glob = "/" + glob.lstrip("/")
    else:
        glob = absolute.rstrip("/") if directory else absolute
        while glob.startswith("**/"):
            glob = glob[3:]
        glob = posixpath.normpath(glob) if glob not in ("", "**") else glob
        if glob.startswith(".."):
            raise ValueError(
                "a relative pattern cannot start with '..' (use './..' or an absolute path): "
                f"{raw!r}"
            )
        if glob in ("", "."):
            raise ValueError(f"path pattern matches nothing: {raw!r}")
    # Compile now so that a bad glob is a load-time error.
    compile_glob(glob, path=True, directory=directory, anchored=anchored)
    base = None
    if anchored:
        comps = glob.split("/")
        lit: list[str] = []
        for comp in comps:
            if has_glob(comp):
                break
            lit.append(comp)
        base = "/".join(lit) or "/"
    return PathPattern(raw=raw, glob=glob, anchored=anchored, directory=directory, base=base)


def component_matcher(glob: str) -> Callable[[str], bool]:
    """A matcher for one path component's glob (no `/`, no `**`)."""
    words = compile_glob(glob, path=True)

    def match(name: str) -> bool:
        from sandbox.policy.judge import glob_match

        return glob_match(words, name, path=True)

    return match


def match_path(pattern: PathPattern, path: str) -> bool:
    """Does `path` (absolute, normalised) match `pattern`?"""
    return _glob_match(
        pattern.glob, path, path=True, directory=pattern.directory, anchored=pattern.anchored
    )


# ---------------------------------------------------------------------------
# commands


def parse_command_pattern(raw: str) -> CommandPattern:
    """Parse a command pattern: a glob over the command line (argv joined by spaces).

    Runs of whitespace collapse to one space, as they do when argv is joined.
    Raises ValueError for an empty or malformed pattern.
    """
    if not isinstance(raw, str):
        raise ValueError(f"a command pattern must be a string, not {type(raw).__name__}")
    glob = " ".join(raw.split())
    if not glob:
        raise ValueError("empty command pattern")
    if "\x00" in glob:
        raise ValueError(f"NUL character in command pattern {raw!r}")
    compile_glob(glob, path=False)
    program = glob.split(" ", 1)[0]
    return CommandPattern(raw=raw, glob=glob, program=program)


def split_command(target: str | Sequence[str]) -> list[str]:
    """argv from a command line string (shell-like quoting) or an argv list."""
    if isinstance(target, str):
        import shlex  # a command line given as text (explain, the API): not on every launch

        try:
            return shlex.split(target)
        except ValueError:
            # Unbalanced quotes: judge the words as written rather than fail.
            return target.split()
    return [str(a) for a in target]


def command_line(argv: Sequence[str]) -> str:
    """The line commands are matched against: argv joined by single spaces, argv[0] its basename."""
    if not argv:
        return ""
    first = posixpath.basename(argv[0]) or argv[0]
    return " ".join([first, *argv[1:]])


def match_command(
    pattern: CommandPattern, argv_or_line: str | Sequence[str], resolved_exe: str | None = None
) -> bool:
    """Does the command match `pattern`?

    A pattern whose first word contains `/` names the executable by path: it is
    matched against the line with argv[0] replaced by `resolved_exe` (or by
    argv[0] itself when that is a path).  Otherwise argv[0] is reduced to its
    basename.
    """
    argv = split_command(argv_or_line)
    if not argv:
        return False
    if "/" in pattern.program:
        exe = resolved_exe or (argv[0] if "/" in argv[0] else None)
        if exe is None:
            return False
        return _glob_match(pattern.glob, " ".join([exe, *argv[1:]]), path=False)
    return _glob_match(pattern.glob, command_line(argv), path=False)
