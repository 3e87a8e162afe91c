"""What `sandbox.run` and `Session.run` return: a CompletedProcess plus the decisions.

In the session layer (not the API's module) so that `sandbox.Session` can build one
without importing the API above it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.policy.denial import Denial

if TYPE_CHECKING:
    from sandbox.audit.event import DecisionEvent

__all__ = ["RunResult"]


@dataclass
class RunResult:
    """What `sandbox.run` returns: a CompletedProcess plus the session's decisions."""

    args: list[str]
    returncode: int
    stdout: bytes | None = None
    stderr: bytes | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    session: str | None = None  # the audit trail's session id
    audit_dir: str | None = None
    warnings: list[str] = field(default_factory=list)  # what the CLI prints as "warning:"
    notices: list[str] = field(default_factory=list)  # what the CLI prints as "landgate: ..."
    events: list[DecisionEvent] = field(default_factory=list)  # the typed decisions
    denials: list[Denial] = field(default_factory=list)

    @property
    def denied(self) -> list[Denial]:
        """Every denial of the session (under simulation: what would have been denied),
        whichever layer made it, with the rule and a reason a model can act on."""
        return list(self.denials)

    def check_returncode(self) -> None:
        if self.returncode:
            raise subprocess.CalledProcessError(
                self.returncode, self.args, self.stdout, self.stderr
            )

    def __repr__(self) -> str:
        parts = [f"args={self.args!r}", f"returncode={self.returncode!r}"]
        if self.stdout is not None:
            parts.append(f"stdout={self.stdout!r}")
        if self.stderr is not None:
            parts.append(f"stderr={self.stderr!r}")
        parts.append(f"decisions=<{len(self.decisions)} entries, {len(self.denied)} denied>")
        return f"RunResult({', '.join(parts)})"
