"""A policy's matchers as the flat tables the C core executes (DESIGN §3, §4).

Python decides what a policy means; C runs it.  This module lays out, once
per policy, the tables csrc/judge_exec.c, csrc/judge_path.c and the unix
rows of csrc/supervise_net_dest.c read:

- exec: every shell_exec rule's command glob, plus the command-line syntax
  (which programs are wrappers and how their options read, which are shells,
  the shell keywords, how deep `sh -c` strings nest) as data;
- paths: every file_read / file_write rule's glob, with the exact allows
  that may override a protected path;
- unix: every `unix:` destination's glob.

`explain` and simulation (sandbox.policy.evaluate) call the C decision on
these tables (sandbox.policy.judge); the supervisor's tables
(sandbox.supervise.tables) embed the very same arrays.  The command-line
syntax is sandbox.policy.cmdsyntax's data.  Rule indices: exec rules first,
then path rules, then unix rules, each in the evaluator's order (`ordered`).
"""

from __future__ import annotations

from sandbox.policy.baseline import HOOK_DIRS, hook_globs
from sandbox.policy.cmdsyntax import (
    COMPOUND,
    KEYWORDS,
    SHELL_ARG_OPTS,
    SHELL_DEPTH,
    SHELLS,
    WRAPPERS,
)
from sandbox.policy.globs import compile_glob, literal
from sandbox.policy.judge import c_core
from sandbox.policy.model import Policy, Rule

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Compiled", "ProgramKey", "compile_policy", "ordered", "program_words", "protected_base"]

_ORIGIN_ORDER = {"policy": 0, "protected": 1, "baseline": 2}


def ordered(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """The order rules are judged in: the user's own first, then protected paths, then the
    baseline (so a decision names the user's rule when several decide the same way)."""
    return tuple(sorted(rules, key=lambda r: (_ORIGIN_ORDER.get(r.origin, 3), r.index)))


# ---------------------------------------------------------------------------
# the tables


# A glob program's inputs: (text, path, directory, anchored); path None = a literal word.
ProgramKey = tuple[str, "bool | None", bool, bool]


def program_words(key: ProgramKey) -> tuple[int, ...]:
    """The program for `key`, computed (never looked up: see Compiled.words)."""
    text, path, directory, anchored = key
    if path is None:
        return literal(text)
    return compile_glob(text, path=path, directory=directory, anchored=anchored)


class Compiled:
    """A policy's C tables (`c`: struct lg_tables *) and what their rule indices mean.

    A plain mutable class (compile_policy fills path_ranges after the tables): nothing
    compares, hashes or prints one."""

    __slots__ = (
        "_keep",
        "c",
        "n_exec",
        "path_ranges",
        "path_start",
        "programs",
        "rules",
        "unix_start",
    )

    def __init__(
        self,
        c: Any,
        rules: list[Rule],
        n_exec: int,
        path_start: int,
        unix_start: int,
        programs: dict[ProgramKey, tuple[int, ...]] | None = None,
    ) -> None:
        self.c = c
        self.rules = rules  # index -> rule (exec, then paths, then unix)
        self.n_exec = n_exec
        self.path_start = path_start
        self.unix_start = unix_start
        self.path_ranges: dict[str, tuple[int, int]] = {}  # action -> [start, end)
        self._keep: list[Any] = []  # cffi allocations the tables point into
        # Every program these tables hold, by its inputs.  Seeded from the policy's disk
        # cache entry (sandbox.policy.diskcache: authenticated, keyed by the policy package's
        # code, so by globs.py's too); a key not in it is compiled here.
        self.programs: dict[ProgramKey, tuple[int, ...]] = programs if programs is not None else {}

    def words(self, key: ProgramKey) -> tuple[int, ...]:
        got = self.programs.get(key)
        if got is None:
            got = self.programs[key] = program_words(key)
        return got

    def glob(self, text: str, *, path: bool, directory: bool = False, anchored: bool = True) -> Any:
        return self.program(self.words((text, path, directory, anchored)))

    def program(self, words: tuple[int, ...]) -> Any:
        ffi, _ = c_core()
        p = ffi.new("unsigned[]", list(words))
        self._keep.append(p)
        return p


def _program_list(comp: Compiled, globs: tuple[str, ...], *, exact: bool) -> tuple[Any, int]:
    ffi, _ = c_core()
    arr = ffi.new("unsigned *[]", max(1, len(globs)))
    comp._keep.append(arr)
    for i, g in enumerate(globs):
        arr[i] = comp.program(comp.words((g, None if exact else False, False, True)))
    return arr, len(globs)


def _syntax(comp: Compiled) -> Any:
    ffi, _ = c_core()
    sx = ffi.new("struct lg_syntax *")
    comp._keep.append(sx)
    wr = ffi.new("struct lg_wrapper[]", len(WRAPPERS))
    comp._keep.append(wr)
    for i, w in enumerate(WRAPPERS):
        wr[i].name = comp.glob(w.name, path=False)
        wr[i].arg_opts, wr[i].n_arg_opts = _program_list(comp, w.arg_opts, exact=True)
        wr[i].stop_opts, wr[i].n_stop_opts = _program_list(comp, w.stop_opts, exact=False)
        wr[i].options = int(w.options)
        wr[i].assignments = int(w.assignments)
        wr[i].operands = w.operands
    sx.wrappers, sx.n_wrappers = wr, len(WRAPPERS)
    sx.shells, sx.n_shells = _program_list(comp, SHELLS, exact=True)
    sx.shell_arg_opts, sx.n_shell_arg_opts = _program_list(comp, SHELL_ARG_OPTS, exact=True)
    sx.keywords, sx.n_keywords = _program_list(comp, KEYWORDS, exact=True)
    sx.compound, sx.n_compound = _program_list(comp, COMPOUND, exact=True)
    sx.depth = SHELL_DEPTH
    return sx


_HOOK_BASE: dict[str, str] = {}  # each hook directory's protected glob -> the directory


def protected_base(rule: Rule) -> str | None:
    """The hook directory of one of its protected globs (`.git/hooks/*[!e]` ->
    `.git/hooks`, compiled unanchored): a policy allow of exactly that directory opens
    them all."""
    if not _HOOK_BASE:
        for base in reversed(HOOK_DIRS):  # the first directory naming a glob wins
            _HOOK_BASE.update(dict.fromkeys(hook_globs(base), base))
    return _HOOK_BASE.get(rule.pattern)


def compile_policy(policy: Policy) -> Compiled:
    """Build (once; cached in policy.cache) the policy's C tables."""
    got = policy.cache.get("compiled")
    if isinstance(got, Compiled):
        return got
    seeded = policy.cache.get("programs")
    ffi, lib = c_core()
    exec_rules = [r for r in ordered(policy.block("shell_exec").rules) if r.command]
    path_rules = [
        (r, access)
        for action, access in (
            ("file_read", lib.LG_ACCESS_READ),
            ("file_write", lib.LG_ACCESS_WRITE),
        )
        for r in ordered(policy.block(action).rules)
        if r.path is not None
    ]
    unix_rules = [
        r
        for r in ordered(policy.block("network").rules)
        if r.destination is not None and r.destination.kind == "unix"
    ]
    rules = exec_rules + [r for r, _ in path_rules] + unix_rules
    t = ffi.new("struct lg_tables *")
    comp = Compiled(
        t,
        rules,
        len(exec_rules),
        len(exec_rules),
        len(rules) - len(unix_rules),
        dict(seeded) if isinstance(seeded, dict) else None,
    )
    comp._keep.append(t)
    ex = ffi.new("struct lg_exec_rule[]", max(1, len(exec_rules)))
    comp._keep.append(ex)
    for i, r in enumerate(exec_rules):
        assert r.command is not None
        ex[i].glob = comp.glob(r.command.glob, path=False)
        ex[i].effect = lib.LG_EFFECT_ALLOW if r.effect == "allow" else lib.LG_EFFECT_DENY
        ex[i].inherit = int(r.inherit)
        ex[i].by_path = int("/" in r.command.program)
        ex[i].rule = i
    t.exec, t.n_exec = ex, len(exec_rules)
    t.exec_default_rule, t.exec_default_effect = -1, 0
    t.syntax = _syntax(comp)
    pr = ffi.new("struct lg_path_rule[]", max(1, len(path_rules)))
    comp._keep.append(pr)
    for i, (r, access) in enumerate(path_rules):
        assert r.path is not None
        p = r.path
        pr[i].glob = comp.glob(p.glob, path=True, directory=p.directory, anchored=p.anchored)
        pr[i].access = access
        pr[i].effect = lib.LG_EFFECT_ALLOW if r.effect == "allow" else lib.LG_EFFECT_DENY
        pr[i].overridable = int(r.origin == "protected" and r.overridable)
        pr[i].rule = comp.path_start + i
        base = protected_base(r) if r.origin == "protected" else None
        pr[i].base = comp.glob(base, path=True, anchored=False) if base is not None else ffi.NULL
        if _exact_allow(r):
            b = ffi.new("char[]", r.path.glob.encode("utf-8", "surrogateescape"))
            comp._keep.append(b)
            pr[i].exact, pr[i].exact_dir = b, int(r.path.directory)
    t.paths, t.n_paths = pr, len(path_rules)
    n_read = sum(1 for _, access in path_rules if access == lib.LG_ACCESS_READ)
    comp.path_ranges = {
        "file_read": (comp.path_start, comp.path_start + n_read),
        "file_write": (comp.path_start + n_read, comp.unix_start),
    }
    nr = ffi.new("struct lg_net_rule[]", max(1, len(unix_rules)))
    comp._keep.append(nr)
    for i, r in enumerate(unix_rules):
        assert r.destination is not None and r.destination.unix_glob is not None
        nr[i].kind, nr[i].port, nr[i].rule = lib.LG_NET_UNIX, -1, comp.unix_start + i
        nr[i].effect = lib.LG_EFFECT_ALLOW if r.effect == "allow" else lib.LG_EFFECT_DENY
        nr[i].glob = comp.glob(r.destination.unix_glob, path=True)
    t.net, t.n_net = nr, len(unix_rules)
    t.net_default_rule, t.net_default_effect = -1, 0
    _check_glob_bounds(comp)
    policy.cache["compiled"] = comp
    return comp


def _check_glob_bounds(comp: Compiled) -> None:
    """Refuse a path glob whose program the matcher would run without its step bound
    (csrc/glob.c: over lg_glob_path_limit() words it backtracks unbounded, a power of the
    path's length, and the path is the agent's choice).  Only a policy's author writes
    one (thousands of `[...]` classes or components); PolicyError at the rule's place.

    Here, where the policy compiles, so `check`, `explain`, `plan` and a launch refuse the
    same policy with the same message (one semantics), not only the supervisor's tables."""
    from sandbox.errors import PolicyError

    ffi, lib = c_core()
    limit = int(lib.lg_glob_path_limit())
    t = comp.c
    rows = [(t.paths[i], t.paths[i].rule) for i in range(t.n_paths)]
    rows += [(t.net[k], t.net[k].rule) for k in range(t.n_net)]
    for row, idx in rows:
        for prog in (row.glob, getattr(row, "base", ffi.NULL)):
            if prog == ffi.NULL:
                continue
            words = int(lib.lg_glob_words(prog, limit + 1))
            if words > limit:
                src = comp.rules[idx].source
                raise PolicyError(
                    f"path pattern too long for the supervisor's matcher ({words - 1}+ "
                    f"steps; at most {limit - 1}): split it into several rules",
                    file=str(src.file),
                    line=int(src.line),
                    column=int(src.column),
                )


def _exact_allow(r: Rule) -> bool:
    """A policy allow naming one path without a glob: may override a protected path."""
    from sandbox.policy.patterns import has_glob

    p = r.path
    return (
        r.origin == "policy"
        and r.effect == "allow"
        and p is not None
        and p.anchored
        and not has_glob(p.glob)
    )
