"""The plan's file-system-independent artefacts, reused across launches of one process.

`sandbox.run` called again with the same policy on the same host compiles the same
Landlock rules, carve-out plan and seccomp filter (~0.6 ms of a launch's ~1 ms plan,
issue 19).  They are kept here, keyed by what they are computed from, and reused only
when every input is still what it was:

- the seccomp filter is a pure function of four booleans (compile_seccomp): memoized
  by them;
- the Landlock rules and the carve-out plan are functions of the policy, the Landlock
  ABI, the pid-namespace flag, the open check and the mode, and of one thing outside
  them: the kind (missing, directory, other) of each path a grant names, which
  decides whether the grant is dropped as wholly denied (_denied_whole) and whether
  only file rights are given (_non_directory).  Those kinds are recorded with the entry
  (`landlock_fs_facts`) and stat'ed again on every hit: one different answer is a miss
  and a fresh compile.  A policy whose grants need more of the file system (a glob
  narrower than its base is granted match by match from a walk; without a pid
  namespace the /dev grant is split by a listing of /dev) is never memoized.

The policy is matched by identity first (the loader's cache returns the same object
for the same file) and by equality otherwise; the entry holds its policy, so an id is
never reused for another one.  Entries are frozen records, shared read-only between
threads; the table is bounded (MAX_ENTRIES, least recently used out) and guarded by
one lock, so sandbox.run from a thread pool is safe.  What the memo returns is what a
fresh compile returns (tests/plan/test_memo.py proves it, and that the recorded facts
cover every file-system lookup the compile makes).
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from functools import lru_cache

from sandbox.plan.carveouts import CarveOutPlan, plan_carve_outs
from sandbox.plan.landlock import (
    LandlockPlan,
    _exact_tree,
    _path_rules,
    compile_landlock_rules,
)
from sandbox.plan.seccomp import SeccompPlan, compile_seccomp
from sandbox.policy.model import Policy

MAX_ENTRIES = 16

MISSING, DIRECTORY, OTHER = 0, 1, 2

FsFacts = tuple[tuple[str, int], ...]
_Key = tuple[str, int, bool, bool, bool]
_Entry = tuple[Policy, FsFacts, LandlockPlan, CarveOutPlan]

_lock = threading.Lock()
_entries: OrderedDict[_Key, _Entry] = OrderedDict()
_keep = True  # False: nothing is memoized (one_launch)


def path_kind(path: str) -> int:
    """MISSING, DIRECTORY or OTHER, following symlinks as compile_landlock_rules does."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return MISSING
    return DIRECTORY if stat.S_ISDIR(st.st_mode) else OTHER


def landlock_fs_facts(policy: Policy, *, pid_ns: bool) -> FsFacts | None:
    """(path, kind) of every path compile_landlock_rules(policy, ..., pid_ns=pid_ns) asks
    the file system about, or None when it asks more than kinds (a walk, a listing).

    Mirrors compile_landlock_rules' grant candidates: "/" for a default allow, each
    anchored allow's base (/proc for /proc/self in a pid namespace)."""
    if not pid_ns:
        return None  # the /dev grant may be split by a listing of /dev (plan/devices.py)
    paths: dict[str, None] = {}
    for action in ("file_read", "file_write"):
        block = policy.block(action)
        if block.default_effect == "allow":
            paths["/"] = None
        for rule in _path_rules(block.rules, "allow"):
            pp = rule.path
            if pp is None or not pp.anchored or pp.base is None:
                continue  # not granted at all: nothing asked
            base = pp.base
            if base in ("/proc/self", "/proc/thread-self") or base.startswith(
                ("/proc/self/", "/proc/thread-self/")
            ):
                paths["/proc"] = None
            elif _exact_tree(pp):
                paths[base] = None
            else:
                return None  # granted match by match from a walk of its base
    return tuple((p, path_kind(p)) for p in paths)


@lru_cache(maxsize=16)
def seccomp_plan(
    *, notify_open: bool, notify_reads: bool, refuse_truncate: bool, notify_fsop: bool
) -> SeccompPlan:
    """compile_seccomp, once per combination of its arguments (it reads nothing else).
    build_plan calls it as `sandbox.plan.seccomp_plan`: the seam tests replace to run a
    launch with a protection off."""
    return compile_seccomp(
        notify_open=notify_open,
        notify_reads=notify_reads,
        refuse_truncate=refuse_truncate,
        notify_fsop=notify_fsop,
    )


def landlock_and_carve_outs(
    policy: Policy, abi: int, *, pid_ns: bool, open_check: bool, enforce: bool
) -> tuple[LandlockPlan, CarveOutPlan]:
    """compile_landlock_rules + plan_carve_outs, reused while the inputs are unchanged."""
    facts = landlock_fs_facts(policy, pid_ns=pid_ns) if _keep else None
    if facts is None:
        ll = compile_landlock_rules(policy, abi, pid_ns=pid_ns)
        return ll, plan_carve_outs(policy, ll, open_check=open_check, enforce=enforce)
    key: _Key = (policy.sha256, abi, pid_ns, open_check, enforce)
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
    if entry is not None:
        cached_policy, cached_facts, ll, co = entry
        if (cached_policy is policy or cached_policy == policy) and cached_facts == facts:
            return ll, co
    ll = compile_landlock_rules(policy, abi, pid_ns=pid_ns)
    co = plan_carve_outs(policy, ll, open_check=open_check, enforce=enforce)
    # Kept only when the facts were the same before and after the compile: a path that
    # changed while it ran (and may change back) could otherwise pair old facts with a
    # compile that saw new ones.
    if landlock_fs_facts(policy, pid_ns=pid_ns) != facts:
        return ll, co
    with _lock:
        _entries[key] = (policy, facts, ll, co)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return ll, co


def one_launch() -> None:
    """This process launches once (`landgate run`): compile, keep nothing.  The memo
    would never be asked again, and its file-system facts, stat'ed before and after the
    compile, cost ~0.2 ms of a fresh process's launch (issue 19)."""
    global _keep  # noqa: PLW0603  a setting of the process (see one_launch)
    _keep = False


def clear() -> None:
    """Forget every entry, and memoize again (tests)."""
    global _keep  # noqa: PLW0603  a setting of the process (see one_launch)
    _keep = True
    with _lock:
        _entries.clear()
    seccomp_plan.cache_clear()
