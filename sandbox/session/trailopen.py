"""The session's audit writer, opened while the child builds its sandbox (issue 19).

Opening the trail (the chain's head and Merkle frontier, the key, the witness, the
flusher) is ~0.3 ms of file reads that need nothing from the launch.  The launch's
main thread, once the supervisor's tables are compiled, waits for the child to finish
building its sandbox on the other CPU (~0.3 ms of `pending.wait()`): the writer is
opened there instead (run_child's `while_child_builds`), on the same thread, so the
open costs the session nothing it did not already spend waiting.

The promise is the one an up-front open kept: the open comes before the child is
ready, hence before the agent is released, and a trail that cannot be opened refuses
the session (LaunchError, exit 125) and the held child is aborted, never released.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sandbox.audit.trail_io import Durability
from sandbox.audit.writer import AuditWriter
from sandbox.errors import LandgateError, LaunchError


class OpeningWriter:
    """The session's AuditWriter, opened by `open()` (where the launch waits for the
    child) or at the latest by `writer()`."""

    def __init__(
        self, audit_dir: Path, durability: Durability, on_failure: Callable[[str], None]
    ) -> None:
        self._dir = audit_dir
        self._durability: Durability = durability
        self._on_failure = on_failure
        self._writer: AuditWriter | None = None

    def open(self) -> None:
        """Open the writer (once); LaunchError when the trail cannot be opened (the
        session must not run)."""
        if self._writer is not None:
            return
        try:
            self._writer = AuditWriter(
                self._dir,
                durability=self._durability,
                on_failure=self._on_failure,
                dirs_prepared=True,  # the session made them before its plan
            )
        except LandgateError as exc:
            raise LaunchError(f"audit trail {self._dir}: {exc}") from exc

    def writer(self) -> AuditWriter:
        """The open writer (opened now if it was not yet), or LaunchError as open()."""
        self.open()
        if self._writer is None:  # open() returned without one: never
            raise LaunchError(f"audit trail {self._dir}: not opened")
        return self._writer

    def settled(self) -> AuditWriter | None:
        """The writer if it was opened (None: the session did not run)."""
        return self._writer
