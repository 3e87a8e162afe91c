"""Repeated spanning ops in a glob program are collapsed (sandbox/policy/globs.py).

`a/**/**/b` means `a/**/b`; the interpreter backtracks at every spanning op, so a run of
them made judging one deep path take a power of its length (an agent could buy supervisor
CPU with deep paths when a policy had such a glob).  The collapsed program must mean the
same: checked against the program compiled without collapsing, on paths built to hit every
way the ops can split them.
"""

from __future__ import annotations

import itertools

import pytest

from sandbox.policy import globs
from sandbox.policy.globs import compile_glob
from sandbox.policy.judge import glob_match

REPEATED = [
    ("/w/**/**/**/.env", "/w/**/.env", {}),
    ("**/**/.env", None, {"anchored": False}),  # PARENTS (unanchored) + `**/**`
    ("/w/**/**", "/w/**", {}),
    ("/w/**/**/", "/w/**/", {"directory": True}),
    ("/w/a*b/**/**/c*", "/w/a*b/**/c*", {}),
]


@pytest.mark.parametrize(("repeated", "single", "kw"), REPEATED)
def test_a_run_of_spanning_ops_compiles_to_one(repeated, single, kw):
    prog = compile_glob(repeated, path=True, **kw)
    if single is not None:
        assert prog == compile_glob(single, path=True, **kw)
    spanning = {
        globs._op(c) for c in (globs.OP_STAR, globs.OP_ANY, globs.OP_SUBDIRS, globs.OP_PARENTS)
    }
    assert not any(a == b and a in spanning for a, b in itertools.pairwise(prog))


def _paths() -> list[str]:
    comps = ["w", "a", "ab", "axb", ".env", "c", "cc", "x.env", "é", "\udcff"]
    out = {"", "/", "/w", "/w/", ".env", "w/.env"}
    for n in range(1, 5):
        for combo in itertools.product(comps, repeat=n):
            out.add("/" + "/".join(combo))
            out.add("/".join(combo))
    return sorted(out)


@pytest.mark.parametrize(("repeated", "single", "kw"), REPEATED)
def test_the_collapsed_program_means_what_the_repeated_one_did(monkeypatch, repeated, single, kw):
    monkeypatch.setattr(globs, "_SEEDED", {})  # no program from a policy cache entry
    collapsed = compile_glob(repeated, path=True, **kw)
    globs._compile_glob.cache_clear()
    monkeypatch.setattr(globs, "_collapse", list)
    raw = compile_glob(repeated, path=True, **kw)
    globs._compile_glob.cache_clear()
    assert raw != collapsed  # the corpus compares two different programs
    for p in _paths():
        assert glob_match(collapsed, p, path=True) == glob_match(raw, p, path=True), p
