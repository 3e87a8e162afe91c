"""landgate: kernel-enforced action gating for AI agents on Linux.

Import name `sandbox`, command `landgate`.  The public Python API
(`sandbox.run`, `sandbox.Policy`) is exported lazily so that importing the
package costs nothing until it is used.
"""

from __future__ import annotations

from sandbox._version import __version__
from sandbox.errors import LandgateError, LaunchError, PolicyError, UsageError

# `typing` costs ~2 ms to import, paid by every `landgate` command (the Claude Code hook
# runs one per tool call): the annotation below needs it only for mypy, which reads a
# name TYPE_CHECKING as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Denial",
    "LandgateError",
    "LaunchError",
    "Policy",
    "PolicyError",
    "Session",
    "UsageError",
    "__version__",
    "run",
    "run_async",
]


def __getattr__(name: str) -> Any:
    if name == "Policy":
        from sandbox.policy import Policy

        return Policy
    if name in ("run", "run_async", "Denial", "Session"):
        import sandbox.api

        return getattr(sandbox.api, name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
