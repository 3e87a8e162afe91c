"""The two sides of the contract: what `landgate explain` computes, and what the
supervisor's C tables decide (DESIGN §3: the same in every layer).

(a) `explain`: sandbox.policy.decide, which `landgate explain` prints.
(b) the supervisor: sandbox.supervise.compile_tables (the tables lg_sup_new is
    handed at launch), judged by the C entry points the decision loop itself
    calls (lg_judge_exec for execve, lg_judge_path for the open check,
    lg_judge_unix for a connect to a unix socket), called directly through cffi.

Each side yields (effect, rule): rule is the policy Rule that decided, or None for
the block's default.  The open check only ever denies (Landlock grants), so for
paths both sides are reduced to "denied by rule R" or "not denied by a rule".
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sandbox._supervise import ffi, lib

from sandbox.policy import Policy, decide, load_policy_text
from sandbox.policy.model import Rule
from sandbox.supervise import compile_tables

Outcome = tuple[str, Rule | None]


@lru_cache(maxsize=64)
def policy(text: str) -> Policy:
    return load_policy_text(text, source="contract.yaml")


_TABLES: dict[int, Any] = {}
_JUDGE = ffi.gc(lib.lg_judge_new(), lib.lg_judge_free)


def tables(pol: Policy) -> Any:
    t = _TABLES.get(id(pol))
    if t is None:
        t = compile_tables(pol, {"resolve_hosts": False})
        _TABLES[id(pol)] = (pol, t)
    else:
        t = t[1]
    return t


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def explain(pol: Policy, action: str, target: Any) -> Outcome:
    d = decide(pol, action, target)
    if action in ("file_read", "file_write"):
        return ("deny", d.rule) if d.effect == "deny" and d.rule is not None else ("pass", None)
    return d.effect, d.rule


def supervisor(pol: Policy, action: str, target: Any) -> Outcome:
    t = tables(pol)
    if action == "shell_exec":
        argv = list(target)
        blob = b"".join(_b(a) + b"\0" for a in argv)
        exe = argv[0] if "/" in argv[0] else ffi.NULL
        v = ffi.new("struct lg_verdict *")
        rc = lib.lg_judge_exec(_JUDGE, t.c, blob, len(blob), _b(exe) if exe else ffi.NULL, v)
        assert rc == 0, rc
        if v.effect == 0:  # undecided: no ancestor in a table-only judgement, so the default
            effect = "allow" if t.c.exec_default_effect == lib.LG_EFFECT_ALLOW else "deny"
            return effect, t.rules[t.c.exec_default_rule].rule
        return _effect(v.effect), t.rules[v.rule].rule if v.rule >= 0 else None
    if action in ("file_read", "file_write"):
        access = lib.LG_ACCESS_READ if action == "file_read" else lib.LG_ACCESS_WRITE
        rule = ffi.new("int *")
        raw = _b(target)
        bits = lib.lg_judge_path(t.c, raw, len(raw), access, rule)
        if bits & access:
            return "deny", t.rules[rule[0]].rule
        return "pass", None
    assert action == "network" and target.startswith("unix:")
    rule = ffi.new("int *")
    effect = lib.lg_judge_unix(t.c, _b(target[5:]), rule)
    return _effect(effect), t.rules[rule[0]].rule


def _effect(e: int) -> str:
    return "allow" if e == lib.LG_EFFECT_ALLOW else "deny"


def show(o: Outcome) -> str:
    return f"{o[0]} by {o[1].ref() if o[1] is not None else 'the default'}"
