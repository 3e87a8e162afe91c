"""The one line a simulation session prints at exit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _denied(counts: Mapping[str, Any]) -> int:
    """Would-deny count from the writer's counts ({"deny": n, ...}) or a per-action map."""
    for key in ("deny", "denied", "would_deny"):
        v = counts.get(key)
        if isinstance(v, int):
            return v
    total = 0
    for v in counts.values():
        if isinstance(v, Mapping):
            total += _denied(v)
    return total


def simulate_summary(
    counts: Mapping[str, Any], session: str, directory: Path | str | None = None
) -> str:
    """`landgate: simulate: 7 actions would have been denied (landgate audit show ...)`.

    `directory` is added to the suggested command when the trail is not the default one.
    """
    n = _denied(counts)
    where = ""
    if directory is not None:
        from sandbox.audit.paths import default_audit_dir

        if Path(directory).resolve() != default_audit_dir().resolve():
            import shlex  # only here: not on every launch

            where = " " + shlex.quote(str(directory))
    if n == 0:
        return (
            f"landgate: simulate: no action would have been denied "
            f"(landgate audit show --session {session}{where})"
        )
    noun = "action" if n == 1 else "actions"
    return (
        f"landgate: simulate: {n} {noun} would have been denied "
        f"(landgate audit show --session {session} --denied{where})"
    )
