"""The session's audit writer, opened on a worker while the child is forked (issue 19).

Opening the trail (the chain's head and Merkle frontier, the key, the witness, the
flusher) is ~0.3 ms of file reads that need nothing from the launch, and the launch's
fork leaves this process's CPU idle (lg_spawn releases the GIL).  So the writer is
opened on a reused worker (sandbox.threads) from just before the spawn, and `writer()`
waits for it where the session's start entry is written.  That is before the agent is
released, so the promise is the one an up-front open kept: an unwritable trail refuses
the session (LaunchError, exit 125) and nothing of the agent's runs unrecorded (the
child, held before its execve, is killed instead of released).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sandbox import threads
from sandbox.audit.trail_io import Durability
from sandbox.audit.writer import AuditWriter
from sandbox.errors import LandgateError, LaunchError


class OpeningWriter:
    """An AuditWriter being opened (see the module); `writer()` is the writer or raises."""

    def __init__(
        self, audit_dir: Path, durability: Durability, on_failure: Callable[[str], None]
    ) -> None:
        self._dir = audit_dir
        self._writer: AuditWriter | None = None
        self._error: BaseException | None = None

        def open_trail() -> None:
            try:
                self._writer = AuditWriter(
                    audit_dir,
                    durability=durability,
                    on_failure=on_failure,
                    dirs_prepared=True,  # the session made them before its plan
                )
            except BaseException as exc:  # noqa: BLE001 - raised again by writer()
                self._error = exc

        try:
            self._job: threads.Job | None = threads.run(open_trail, "landgate-trail-open")
        except RuntimeError:
            # No thread could be made: opened here, as before (an error raised by writer()).
            self._job = None
            open_trail()

    def writer(self) -> AuditWriter:
        """The open writer, once the worker is done; LaunchError when the trail cannot be
        opened (the session must not run)."""
        if self._job is not None:
            self._job.join()
        if self._writer is not None:
            return self._writer
        exc = self._error
        if isinstance(exc, LandgateError):
            raise LaunchError(f"audit trail {self._dir}: {exc}") from exc
        if exc is not None:
            raise exc
        raise LaunchError(f"audit trail {self._dir}: the writer was not opened")  # unreachable

    def settled(self) -> AuditWriter | None:
        """After the worker is done: the writer, or None when it could not be opened (its
        error was, or will never be, raised by writer(): the session did not run)."""
        if self._job is not None:
            self._job.join()
        return self._writer
