"""The plan memo (sandbox/plan/memo.py): a repeated launch reuses the Landlock rules, the
carve-out plan and the seccomp filter only while everything they were computed from holds.

The security claim: a grant decided from a path's kind (a file wholly denied is not
granted; a directory is) follows the path when its kind changes between launches.
test_kind_change_is_seen_between_launches fails with the re-check off (the facts
comparison in memo.landlock_and_carve_outs removed: checked when it was written).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import sandbox.plan.landlock as landlock
from sandbox.host.probe import probe_host
from sandbox.plan import build_plan, memo
from sandbox.plan.carveouts import plan_carve_outs
from sandbox.plan.landlock import compile_landlock_rules
from sandbox.policy import load_policy
from sandbox.policy.locate import choose_policy


@pytest.fixture(autouse=True)
def _fresh_memo():
    memo.clear()
    yield
    memo.clear()


def _policy_text(ws: Path, thing: Path, extra: str = "") -> str:
    return f"""version: 1
workspace: {ws}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "{thing}", effect: deny }}
      - {{ path: "{thing}", effect: allow }}
      - {{ path: "{ws}/", effect: allow }}
{extra}"""


def _preset(world, name: str):
    path, _label = choose_policy(name, world.workspace)
    return load_policy(path, cwd=world.workspace, home=world.home)


def _load(world, text: str):
    return load_policy(world.write_policy(text), cwd=world.workspace, home=world.home)


def _granted(plan, path: Path) -> bool:
    return any(r.path == str(path) for r in plan.landlock.rules)


def test_hit_returns_what_a_fresh_compile_returns(world):
    pol = _preset(world, "read-only")
    host = probe_host()
    first = build_plan(pol, host, environ={})
    second = build_plan(pol, host, environ={})
    assert second.landlock is first.landlock  # reused, not recompiled
    assert second.carve_outs is first.carve_outs
    assert second.seccomp is first.seccomp
    fresh = compile_landlock_rules(pol, host.landlock_abi, pid_ns=first.use_namespaces)
    assert second.landlock == fresh
    assert second.carve_outs == plan_carve_outs(
        pol, fresh, open_check=first.supervisor.open_check, enforce=True
    )


def test_kind_change_is_seen_between_launches(world):
    """Denied as a file, granted as a directory: the memo must follow the change both ways
    (the attack: a directory granted at one launch replaced by a denied file)."""
    thing = world.workspace.parent / "thing"
    thing.mkdir()
    pol = _load(world, _policy_text(world.workspace, thing))
    host = probe_host()
    assert _granted(build_plan(pol, host, environ={}), thing)
    thing.rmdir()
    thing.write_text("secret\n")
    assert not _granted(build_plan(pol, host, environ={}), thing)  # the deny removes it
    thing.unlink()
    thing.mkdir()
    assert _granted(build_plan(pol, host, environ={}), thing)  # its allowed twin


def test_changed_policy_misses(world):
    thing = world.workspace.parent / "thing"
    thing.mkdir()
    host = probe_host()
    a = build_plan(_load(world, _policy_text(world.workspace, thing)), host, environ={})
    other = world.workspace.parent / "other"
    other.mkdir()
    extra = f'      - {{ path: "{other}/", effect: allow }}\n'
    b = build_plan(_load(world, _policy_text(world.workspace, thing, extra)), host, environ={})
    assert not _granted(a, other) and _granted(b, other)


def test_facts_cover_every_lookup_the_compile_makes(world, monkeypatch):
    """Every path compile_landlock_rules stats, lists or walks is one the memo re-checks
    (or the memo declines the policy): a new lookup in the compiler fails here."""
    seen: list[str] = []
    real_stat, real_isdir = os.stat, os.path.isdir

    def stat(path, *a, **k):
        seen.append(os.fspath(path))
        return real_stat(path, *a, **k)

    def isdir(path):
        seen.append(os.fspath(path))
        return real_isdir(path)

    def listing(path="."):
        seen.append("LIST " + os.fspath(path))
        raise AssertionError("a listing: the memo must decline this policy")

    thing = world.workspace.parent / "thing"
    thing.write_text("x\n")
    policies = [_preset(world, name) for name in ("read-only", "coding-agent", "ci", "offline")] + [
        _load(world, _policy_text(world.workspace, thing))
    ]
    for pol in policies:
        facts = memo.landlock_fs_facts(pol, pid_ns=True)
        assert facts is not None, pol.path
        seen.clear()
        with monkeypatch.context() as m:  # the module's os is every module's os
            m.setattr(landlock.os, "stat", stat)
            m.setattr(landlock.os.path, "isdir", isdir)
            m.setattr(landlock.os, "scandir", listing)
            compile_landlock_rules(pol, 7, pid_ns=True)
        asked = {p for p, _ in facts}
        assert set(seen) <= asked, (pol.path, set(seen) - asked)


def test_walked_glob_and_no_pid_namespace_are_not_memoized(world):
    ws = world.workspace
    (ws / "src").mkdir(exist_ok=True)
    extra = f'      - {{ path: "{ws}/src/*.py", effect: allow }}\n'
    narrow = _load(world, _policy_text(ws, ws / "x", extra))
    assert memo.landlock_fs_facts(narrow, pid_ns=True) is None  # granted from a walk
    plain = _load(world, _policy_text(ws, ws / "x"))
    assert memo.landlock_fs_facts(plain, pid_ns=False) is None  # /dev may be listed
    assert memo.landlock_fs_facts(plain, pid_ns=True) is not None
    host = probe_host()
    first = build_plan(narrow, host, environ={})
    (ws / "src" / "new.py").write_text("")
    again = build_plan(narrow, host, environ={})
    assert _granted(again, ws / "src" / "new.py") and not _granted(first, ws / "src" / "new.py")


def test_bounded(world):
    host = probe_host()
    for i in range(memo.MAX_ENTRIES + 5):
        d = world.workspace.parent / f"d{i}"
        d.mkdir()
        build_plan(_load(world, _policy_text(world.workspace, d)), host, environ={})
    assert len(memo._entries) == memo.MAX_ENTRIES


def test_eight_threads_at_once(world):
    pol = _preset(world, "coding-agent")
    host = probe_host()
    want = build_plan(pol, host, environ={})
    memo.clear()
    got: list[object] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(20):
                got.append(build_plan(pol, host, environ={}))
        except BaseException as exc:  # noqa: BLE001  reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == 160
    assert all(p.landlock == want.landlock and p.seccomp == want.seccomp for p in got)


def test_one_launch_compiles_and_keeps_nothing(world, monkeypatch):
    """`landgate run` (one launch per process) asks no file-system facts and keeps no
    entry; what it gets is a fresh compile.  The twin: by default the second build is
    the memo's.  clear() (between tests) memoizes again."""
    pol = _preset(world, "read-only")
    host = probe_host()
    asked: list[bool] = []
    real = memo.landlock_fs_facts

    def counted(*a, **k):
        asked.append(True)
        return real(*a, **k)

    monkeypatch.setattr(memo, "landlock_fs_facts", counted)
    memo.one_launch()
    first = build_plan(pol, host, environ={})
    second = build_plan(pol, host, environ={})
    assert asked == [] and len(memo._entries) == 0
    assert second.landlock is not first.landlock  # compiled again, not reused
    fresh = compile_landlock_rules(pol, host.landlock_abi, pid_ns=first.use_namespaces)
    assert first.landlock == fresh == second.landlock
    memo.clear()
    third = build_plan(pol, host, environ={})
    assert build_plan(pol, host, environ={}).landlock is third.landlock  # the twin: reused
    assert asked and len(memo._entries) == 1
