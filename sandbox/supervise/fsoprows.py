"""The rows of the file-system-operation check (csrc/supervise_fsop.c): the directories
above what each deny rule covers, and git's config files.

Split out of tables.py: these rows follow from the policy alone, as the rest of
tables.py does, but are their own check's (on only with fsop_check).
"""

from __future__ import annotations

from collections.abc import Iterable

from sandbox._supervise import ffi, lib
from sandbox.policy.model import Rule

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# Git config files: a rename onto one (git's CONFIG.lock -> CONFIG) that only protected-path
# rules deny is judged on its content (csrc/gitcfg.c).  "~" is the policy's home.
GITCFG_GLOBS: tuple[str, ...] = (
    "**/.git/config",
    "**/.git/config.worktree",
    "**/.git/modules/**/config",
    "**/.git/worktrees/*/config.worktree",
    "~/.gitconfig",
    "~/.config/git/config",
)


def ancestor_globs(rule: Rule) -> list[str]:
    """Directories above what `rule` covers by position: renaming a prepared tree onto one
    (or a directory away from one) would put names under (or take them out of) the rule.
    `.git/hooks/` -> `**/.git`; `~/.config/autostart/` -> /home/u/.config, /home/u, /home.
    A rule of one unanchored name (`**/.env`) has none: it matches at any depth."""
    p = rule.path
    if p is None:
        return []
    parts = p.glob.rstrip("/").split("/")
    out: list[str] = []
    for k in range(1, len(parts)):
        prefix = parts[:k]
        if prefix[-1] in ("**", "") or prefix == [""]:
            continue
        g = "/".join(prefix)
        out.append(g if p.anchored else "**/" + g)
    return out


def fsop_rows(
    t: Any, comp: Any, on: bool, gitcfg: Iterable[str], home: str, keep: list[Any]
) -> None:
    """The ancestor and git config rows of csrc/supervise_fsop.c (none when it is off)."""
    from sandbox.policy.globs import compile_glob
    from sandbox.policy.patterns import parse_path_pattern

    rows: list[tuple[str, bool, int, int]] = []  # (glob, anchored, kind, rule index)
    if on:
        seen: set[str] = set()
        for i in range(comp.path_start, comp.unix_start):
            r = comp.rules[i]
            if r.effect != "deny":
                continue
            for g in ancestor_globs(r):
                if g not in seen:
                    seen.add(g)
                    anchored = not g.startswith("**/")
                    rows.append((g if anchored else g[3:], anchored, lib.LG_FSOP_ANCESTOR, i))
        for g in gitcfg:
            pp = parse_path_pattern(g, workspace="/", home=home)
            rows.append((pp.glob, pp.anchored, lib.LG_FSOP_GITCFG, -1))
    arr = ffi.new("struct lg_fsop_rule[]", max(1, len(rows)))
    keep.append(arr)
    for k, (g, anchored, kind, idx) in enumerate(rows):
        prog = ffi.new("unsigned[]", list(compile_glob(g, path=True, anchored=anchored)))
        keep.append(prog)
        arr[k].glob = prog
        arr[k].kind = kind
        arr[k].rule = idx
    t.fsop = arr
    t.n_fsop = len(rows)
