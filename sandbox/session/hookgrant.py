"""What the session's hook channel adds to the policy in force (sandbox.session.report).

The hook runs inside the sandbox: it must reach the channel's socket, read landgate's own
install and run the `landgate` entry point, and nothing else of what the session holds.
`grant_hook` returns the policy with exactly that, as rules of origin "baseline" (listed
by `plan`, never the user's), and the entry point it found.  Apart from the channel
(sockets and threads) because this is policy: which paths the sandbox is given, and why.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from sandbox.host.fsutil import which
from sandbox.policy.destinations import parse_destination
from sandbox.policy.model import Policy, Rule, SourceRef
from sandbox.policy.patterns import parse_path_pattern

_SOURCE = SourceRef(file="<session hook channel>", line=0, column=0)


def grant_hook(
    policy: Policy, socket_path: str, environ: Mapping[str, str]
) -> tuple[Policy, str | None]:
    """The policy with what the hook needs, origin baseline, exactly: a network allow
    for the socket at `socket_path` (nothing else of its directory); reading landgate's
    own install (its package, the virtualenv, the interpreter's tree: public code, no user
    data); executing exactly the `landgate` entry point and the interpreter file.  Which
    command lines run is still shell_exec's (the claude-code preset allows `landgate
    hook claude-code`).  Also the entry point found on environ's PATH (None: none)."""
    from sandbox.record import replace  # the model's classes are Records (not dataclasses)

    blocks = dict(policy.blocks)
    net = [(f"unix:{socket_path}", False, "the session's hook channel")]
    reads = [(p, x, "landgate's own install (the hook)") for p, x in _install()]
    # The hook loads the policy in force: its file and the files it extends (only
    # written-protected, but the planner's carve-out leaves them out of the read grant).
    for f in (policy.path, *policy.parents):
        if _plain(str(f)):
            reads.append((str(f), False, "the policy in force (the hook)"))
    entry = which("landgate", environ.get("PATH", ""))
    if entry is not None and _plain(entry):
        reads.append((entry, True, "the landgate entry point (the hook)"))
    for action, items in (("network", net), ("file_read", reads)):
        block = blocks[action]
        rules = list(block.rules)
        for pattern, execute, why in items:
            rules.append(_baseline_rule(policy, action, len(rules) + 1, pattern, why, execute))
        blocks[action] = replace(block, rules=tuple(rules))
    # The policy in force is the one the hook's requests are decided by.  Its glob
    # programs from the policy cache carry over: each is looked up by its exact inputs
    # (sandbox.policy.compiled), so the rules added here are compiled afresh.
    programs = policy.cache.get("programs")
    cache = {"programs": programs} if programs is not None else {}
    return replace(policy, blocks=blocks, cache=cache), entry


def _baseline_rule(
    policy: Policy, action: str, index: int, pattern: str, why: str, execute: bool
) -> Rule:
    """An allow rule of origin baseline that grant() adds: a network destination for the
    report socket, else a path (exact or a tree) read, and executed when `execute`."""
    network = action == "network"
    return Rule(
        action=action,
        index=index,
        effect="allow",
        pattern=pattern,
        source=_SOURCE,
        origin="baseline",
        path=None
        if network
        else parse_path_pattern(pattern, workspace=str(policy.workspace), home=str(policy.home)),
        destination=parse_destination(pattern) if network else None,
        comment=why,
        execute=execute,
    )


def _install() -> list[tuple[str, bool]]:
    """(path pattern, executable) for landgate's own install, each only when it is a plain
    path (no glob character): its package tree, the virtualenv, the interpreter's tree,
    the interpreter file itself (executable)."""
    import sandbox

    out: list[tuple[str, bool]] = []
    trees = {os.path.dirname(os.path.abspath(sandbox.__file__)), sys.prefix, sys.base_prefix}
    home = os.path.realpath(os.path.expanduser("~"))
    for tree in sorted(trees):
        real = os.path.realpath(tree)
        # Never a tree that holds the home directory (an install with --prefix=~ would
        # otherwise grant reading all of it): the package and interpreter trees then stay
        # what the policy grants.
        if real == home or home.startswith(real.rstrip("/") + "/"):
            continue
        if real not in ("/", "/usr") and _plain(real):
            out.append((real.rstrip("/") + "/", False))
    exe = os.path.realpath(sys.executable)
    if sys.executable and _plain(exe):
        out.append((exe, True))
    return out


def _plain(path: str) -> bool:
    return path.startswith("/") and not any(c in path for c in "*?[]{}\\")
