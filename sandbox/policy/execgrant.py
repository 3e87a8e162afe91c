"""May a program beneath a path be executed (Landlock EXECUTE)?  For `explain` and `check`.

The same rule the planner applies (sandbox.plan.landlock.rights_for): a file_read
allow that says `exec: true` and matches the path (the baseline's program trees
say it), a default allow of file_read, or the workspace; and the read itself must
be allowed (deny wins).  Which command line runs is shell_exec's decision.
"""

from __future__ import annotations

from sandbox.policy.model import Policy


def _beneath(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def execute_grant(policy: Policy, path: str) -> str | None:
    """Why programs at `path` may run (a rule reference), or None when they may not."""
    from sandbox.policy.evaluate import decide
    from sandbox.policy.patterns import match_path

    read = decide(policy, "file_read", path)
    if read.effect != "allow":
        return None
    target = read.target
    for rule in policy.block("file_read").rules:
        ok = rule.execute and rule.effect == "allow" and rule.path is not None
        if ok and rule.path is not None and match_path(rule.path, target):
            return f"{rule.ref()} (exec: true)"
    if policy.block("file_read").default_effect == "allow":
        return "the default allow of file_read"
    if _beneath(target, str(policy.workspace)):
        return f"the workspace {policy.workspace}"
    return None
