"""What `path: "$PATH"` means: the real directories behind the user's PATH (issue 15).

A developer's `python3`, `cargo` or `node` is often not in /usr: pyenv puts a shim
directory first on PATH whose scripts exec `~/.pyenv/versions/X/bin/python3`;
`~/.local/bin/aider` is a symlink into a venv under `~/.local/share/pipx/`; nvm's
node lives in `~/.nvm/versions/node/vX/bin`.  A file_read allow written as
`path: "$PATH"` (usually with `exec: true`) expands, when the policy is loaded, to:

- every absolute PATH entry, symlinks resolved;
- a directory named `bin` widened to its prefix (`/opt/node/bin` -> `/opt/node/`):
  the program there reads its own `lib/` and `share/` beside it;
- a directory named `shims` (pyenv, rbenv, asdf) widened to the manager's root
  (`~/.pyenv/shims` -> `~/.pyenv/`): the shim execs the real program in
  `versions/` under that root;
- for every symlink in a PATH directory outside the system trees, the prefix of the
  file it resolves to (`~/.local/bin/aider` -> the venv it points into).

Never widened to, and never granted: `/`, the home directory, or a directory that
contains the home directory, nor `~/.local` itself (its `share/` holds keyrings);
relative entries (`.`, empty) are skipped because they would follow the working
directory.  Deny rules still apply beneath every directory granted here (deny wins).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sandbox.policy.fsdeps import path_expanded
from sandbox.policy.model import Rule
from sandbox.policy.patterns import normalize_path, parse_path_pattern
from sandbox.record import replace

if TYPE_CHECKING:
    # annotations only: checking a cached policy's $PATH expansion must not load PyYAML
    from yaml.nodes import Node

    from sandbox.policy.builder import _Builder

# Trees the system baseline already covers; their symlinks are not followed (cost).
SYSTEM_TREES: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
MAX_DIRS = 64  # directories one `$PATH` rule may expand to
MAX_SCAN = 4096  # entries looked at per PATH directory for symlinks
_GLOB_CHARS = frozenset("*?[]{}\\")


def _beneath(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _too_wide(path: str, home: str) -> bool:
    """Would granting `path` expose the home directory (or everything)?"""
    if path == "/" or _beneath(home, path):
        return True
    return path == home.rstrip("/") + "/.local"


def _prefix(directory: str, home: str) -> str:
    """`directory`, widened from a `bin`/`shims` directory to its parent when that is safe."""
    name = os.path.basename(directory)
    if name in ("bin", "shims"):
        parent = os.path.dirname(directory)
        if not _too_wide(parent, home):
            return parent
    return directory


def toolchain_dirs(path_env: str, home: str) -> list[str]:
    """The directories `$PATH` grants (module docstring), outermost first, de-duplicated."""
    home = normalize_path(home)
    found: list[str] = []

    def add(d: str) -> None:
        d = normalize_path(d)
        if _too_wide(d, home) or any(c in _GLOB_CHARS for c in d):
            return
        if d not in found and len(found) < MAX_DIRS:
            found.append(d)

    scanned: set[str] = set()
    for entry in path_env.split(":"):
        if not entry.startswith("/"):
            continue
        real = os.path.realpath(entry)
        if real in scanned or not os.path.isdir(real):
            # A directory twice on PATH (a shell profile run twice: ~/.cargo/bin here) adds
            # nothing the first time did not: scanned once (issue 19: every launch from
            # the policy cache runs this again to check the expansion still holds).
            continue
        scanned.add(real)
        add(_prefix(real, home))
        if any(_beneath(real, t) for t in SYSTEM_TREES):
            continue
        try:
            with os.scandir(real) as it:
                for n, e in enumerate(it):
                    if n >= MAX_SCAN:
                        break
                    if not e.is_symlink():
                        continue
                    target = os.path.realpath(e.path)
                    if os.path.isfile(target) and not any(
                        _beneath(target, t) for t in SYSTEM_TREES
                    ):
                        add(_prefix(os.path.dirname(target), home))
        except OSError:
            continue  # unreadable PATH directory: nothing to follow
    # Drop directories beneath another one found (one grant per tree).
    out = [d for d in found if not any(o != d and _beneath(d, o) for o in found)]
    return out


def expand_path_rule(b: _Builder, rule: Rule, node: Node, workspace: str, home: str) -> list[Rule]:
    """`path: "$PATH"`: one rule per directory `toolchain_dirs` finds behind PATH now, each
    with the written rule's index, source, effect and exec flag; an error (at `node`)
    anywhere but in a file_read allow."""
    if rule.action != "file_read" or rule.effect != "allow":
        b.error(
            node,
            f"{rule.action} rule {rule.index}: '$PATH' is meaningful only in a "
            "file_read allow (usually with exec: true)",
        )
        return []
    out: list[Rule] = []
    path_env = os.environ.get("PATH", "")
    dirs = toolchain_dirs(path_env, home)
    path_expanded(path_env, home, dirs)
    for d in dirs:
        pattern = d.rstrip("/") + "/"
        out.append(
            replace(
                rule,
                pattern=pattern,
                path=parse_path_pattern(pattern, workspace=workspace, home=home),
                comment=rule.comment or "a directory behind $PATH at launch",
            )
        )
    return out
