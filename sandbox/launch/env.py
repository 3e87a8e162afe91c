"""The agent's environment (DESIGN §3): secret-looking names removed unless listed."""
from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any


def _passes(env: Any, name: str) -> bool:
    if hasattr(env, "passes"):
        return bool(env.passes(name))
    # Same order as Environment.passes: deny > allow > secret-looking > default.
    if any(fnmatchcase(name, p) for p in env.deny):
        return False
    if any(fnmatchcase(name, p) for p in env.allow):
        return True
    if not env.pass_by_default:
        return False
    upper = name.upper()
    return not any(fnmatchcase(upper, p.upper()) for p in env.secret_patterns)


def filter_environment(env: Any, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that reach the agent, with the policy's `set` applied."""
    out = {k: v for k, v in environ.items() if _passes(env, k)}
    out.update(dict(env.set))
    return out
