"""The shared corpus through `explain` and through the supervisor's C tables: the
same decision and the same deciding rule, and the one the corpus expects."""

from __future__ import annotations

import pytest
from sandbox._supervise import lib

from sandbox.policy import globs

from . import harness
from .corpus import CASES, POLICY


def _pattern(rule):
    return None if rule is None else rule.pattern


@pytest.mark.parametrize(("action", "target", "effect", "pattern"), CASES, ids=repr)
def test_corpus_case(action, target, effect, pattern):
    pol = harness.policy(POLICY)
    a = harness.explain(pol, action, target)
    b = harness.supervisor(pol, action, target)
    assert a == b, f"explain: {harness.show(a)}; supervisor: {harness.show(b)}"
    assert (a[0], _pattern(a[1])) == (effect, pattern)


def test_glob_ops_are_the_c_ones():
    for name in ("END", "LIT", "ONE", "STAR", "CLASS", "ANY", "SUBDIRS", "PARENTS"):
        assert getattr(globs, f"OP_{name}") == getattr(lib, f"LG_OP_{name}"), name
    assert globs.CLASS_NEG == lib.LG_CLASS_NEG


def test_corpus_has_a_twin_for_every_denial():
    denied = sum(1 for c in CASES if c[2] == "deny")
    allowed = sum(1 for c in CASES if c[2] != "deny")
    assert denied and allowed >= denied * 0.8
