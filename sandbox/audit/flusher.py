"""The audit writer's background work: the flusher thread that keeps batch durability's
promise (fdatasync at least every FLUSH_WINDOW_MS, a checkpoint every checkpoint_seconds)
and the witness expiry pass it starts off the launch's path (sandbox.audit.expiry).

Like `TrailIO`, `BackgroundFlush` holds no state of its own: the writer's __init__ sets
the attributes declared here and starts the flusher thread on `_flush_loop`.
"""

from __future__ import annotations

import os
import threading
import time

from sandbox.audit import expiry
from sandbox.audit.trail_io import TrailIO
from sandbox.errors import AuditError

__all__ = ["FLUSH_WINDOW_MS", "BackgroundFlush"]

FLUSH_WINDOW_MS = 100
_FLUSH_INTERVAL = 0.05  # half the promised window: the fsync itself takes time
# A due witness expiry pass starts this long after its session's start (the flusher starts
# it), or at close(), whichever comes first: never while the launch releases the agent.
_EXPIRY_DELAY = 0.02


class BackgroundFlush(TrailIO):
    """The flusher's wake-up and the witness expiry scheduling (see the module)."""

    checkpoint_seconds: float
    _expiry: threading.Thread | None
    _expiry_at: float | None  # when a due pass starts (monotonic), if due
    expiry_error: str | None  # why the last expiry pass failed, if it did
    _stop: threading.Event
    _flusher_ident: int | None  # the flusher's thread, once it runs (close never joins it)

    def _start_expiry(self) -> None:
        """Here, not before the plan; and only asked here (two stats whatever the backlog,
        the pass counts the files): a pass that is due (hourly, or while a backlog lasts:
        up to EXPIRE_BATCH moves, ~45 ms) starts _EXPIRY_DELAY later on a thread of its
        own (the flusher starts it), so it overlaps the agent instead of delaying its
        release, neither a listing nor a thread on the launch's path.  close() runs it
        if it has not started, and waits for it.  Nothing when the last pass is recent
        (a tool-level session's writer, any session within the hour after a pass)."""
        try:
            if not expiry.due(self.key_directory):
                return
        except AuditError as exc:
            self.expiry_error = f"witness expiry in {self.key_directory}: {exc}"
            return
        self._expiry_at = time.monotonic() + _EXPIRY_DELAY

    def _expiry_tick(self) -> None:
        """The flusher, at each wake: start a due pass once its time has come."""
        with self._tlock:
            at = self._expiry_at
            if at is None or time.monotonic() < at or self._closed:
                return
            self._expiry_at = None
            self._expiry = threading.Thread(
                target=self._expire, name="landgate-witness-expiry", daemon=True
            )
        self._expiry.start()

    def _expire(self) -> None:
        """The expiry thread.  A failed pass leaves every witness where it was (moves are
        crash-safe) and the next session's pass tries again; the trail is not affected,
        so the session goes on, and the reason is kept in expiry_error."""
        try:
            expiry.maybe_expire(self.key_directory)
        except Exception as exc:  # noqa: BLE001 - a thread must not die with a traceback
            self.expiry_error = f"witness expiry in {self.key_directory}: {exc}"

    def _flush_loop(self) -> None:
        self._flusher_ident = threading.get_ident()
        while not self._stop.wait(_FLUSH_INTERVAL):
            try:
                self._flush_once()
                self._expiry_tick()
            except Exception as exc:  # noqa: BLE001 - a thread must not die with a traceback
                with self._tlock:
                    self._fail(f"audit flusher failed: {exc}")
                return

    def _flush_once(self) -> None:
        with self._tlock:
            if self._failed is not None or self._closed:
                return
            if (
                self._since_checkpoint > 0
                and time.monotonic() - self._last_checkpoint_time >= self.checkpoint_seconds
            ):
                self._checkpoint(final=False)
            if not self._dirty and self._pending_witness is None:
                return
            # fsync a duplicate outside the lock: appends go on while the disk works.
            fd = os.dup(self._chain.seg_fd)
            self._dirty = False
            pending = self._pending_witness
        try:
            os.fdatasync(fd)
            if pending is not None:
                with self._tlock:
                    if self._pending_witness is pending:
                        self._publish_witness()
        except OSError as exc:
            with self._tlock:
                self._fail(
                    f"cannot sync audit trail in {self.directory}: {exc.strerror}; "
                    "stopping the sandboxed command"
                )
        finally:
            os.close(fd)
