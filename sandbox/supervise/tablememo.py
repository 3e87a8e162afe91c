"""The supervisor tables' policy rows, compiled once per process (issue 19).

What the tables say follows from two kinds of facts.  The policy and the plan's
settings (which checks are on, the sandbox's uid, landgate's own services, the
working directory the rule references are shown relative to) give the rule rows:
exec, network, file-system-operation and reference rows, ~1 ms a launch.  The file
system gives the rest (the identities of denied files and of the key and audit
directory trees, denied programs found in PATH, host names pinned at launch): those
change between two sessions of one process, so sessionrows.session_rows looks them up
again for every session, on the copy this module hands out.  Nothing here reads the
file system, so nothing here can go stale.

The memo lives in the policy's own cache (a policy object stands for one text: the
loader re-reads and re-hashes the file before it hands a cached one out), a few
entries per policy, behind a lock: sandbox.run is called from thread pools.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping

from sandbox.policy.model import Policy

from .tabletypes import Tables

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# plan_info keys the policy rows do not read: set per session by Tables.bind, or read by
# sessionrows.session_rows.  Every other key (a new one too) is part of the memo's key.
SESSION_KEYS = frozenset(
    {
        "landlock_ruleset_fd",
        "write_trees",
        "private_netns",
        "bind_later",
        "carve_outs",
        "path_env",
        "resolve_hosts",
    }
)
PER_POLICY = 4  # settings remembered per policy (a process uses one or two)
_CACHE_KEY = "supervise.tables"
_lock = threading.Lock()


def memo_key(info: Mapping[str, Any]) -> tuple[str | None, str]:
    """What the policy rows depend on besides the policy: the plan's settings (by value,
    in key order) and the working directory (rule references name files relative to it)."""
    try:
        cwd: str | None = os.getcwd()
    except OSError:
        cwd = None  # removed: references name the paths as the policy does
    return cwd, repr(sorted((k, v) for k, v in info.items() if k not in SESSION_KEYS))


def memo_tables(
    policy: Policy,
    info: Mapping[str, Any],
    compile_rows: Callable[[Policy, Mapping[str, Any]], Tables],
) -> Tables:
    """A fresh, unbound Tables holding the policy rows `compile_rows` gives for `info`
    (compiled at the first call, copied after); the caller adds the session's rows."""
    key = memo_key(info)
    with _lock:
        memo = policy.cache.get(_CACHE_KEY)
        if not isinstance(memo, dict):
            memo = policy.cache[_CACHE_KEY] = {}
        rows = memo.get(key)
    if rows is None:
        # Compiled outside the lock (other sessions go on); two first calls both compile,
        # the same rows, and the later one is kept.
        rows = compile_rows(policy, info)
        with _lock:
            memo[key] = rows
            while len(memo) > PER_POLICY:
                memo.pop(next(iter(memo)))  # the oldest
    return rows.unbound_copy()
