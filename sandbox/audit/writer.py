"""The audit writer: one hash-chained, checkpointed trail per directory.

It takes event dicts and does not care who made them (the supervisor, the
network layer, a test).  Every append happens under `flock` on the trail's lock
file, so writers in separate processes (concurrent sessions) extend one chain:
under the lock a writer compares the segment's size with what it last saw and,
if another writer appended meanwhile, reads just those new lines to bring its
seq, chain head and Merkle frontier up to date (O(new entries), usually zero).
The write path itself is `sandbox.audit.trail_io`, the flusher and the witness
expiry `sandbox.audit.flusher`; this module is the public API over them.

Durability:
- strict: append() returns only after the line is written and fdatasync'ed;
- batch (default): written at once (a crash of landgate loses nothing that
  append() returned for; a power loss loses at most the fsync window), and a
  background flusher fdatasyncs at least every FLUSH_WINDOW_MS.
If the trail becomes unwritable (disk full, I/O error), `failed` is set, the
half-written line is cut back off, `on_failure` is called, strict appends
raise AuditError and batch appends return -1: the launcher must stop the
sandboxed command.  Nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sandbox import threads
from sandbox.audit.chain import Chain
from sandbox.audit.entries import (
    count_decision,
    decision_entry,
    new_session_id,
    session_start_entry,
)
from sandbox.audit.flusher import FLUSH_WINDOW_MS, BackgroundFlush
from sandbox.audit.paths import (
    LOCK_NAME,
    WITNESS_DIR,
    default_audit_dir,
    key_dir,
    load_key,
    prepare_trail_dirs,
)
from sandbox.audit.trail_io import Durability
from sandbox.audit.witness import WITNESS_LOCK
from sandbox.errors import AuditError

# typing costs ~2 ms at import (issue 19); annotations are never evaluated;
# the checker sees the Protocol, run time a plain class
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object

__all__ = ["FLUSH_WINDOW_MS", "AuditWriter", "Durability", "RecordSource"]


class RecordSource(Protocol):
    """What `append_records` takes (sandbox.supervise.records.RecordBatch)."""

    n: int
    codes: bytes  # each rendered record's action code, appended by render()

    @property
    def actions(self) -> list[str]:
        """The action name of each code's action part."""

    def render(
        self, start: int, count: int, seq: int, prev: str, session: str, key: bytes
    ) -> tuple[bytes, list[bytes]] | None: ...

    def entries(self) -> list[dict[str, Any]]: ...


class AuditWriter(BackgroundFlush):
    """Appends entries to the trail in `directory` (default: `default_audit_dir()`)."""

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        durability: Durability = "batch",
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 5.0,
        segment_max_bytes: int = 64 << 20,
        key_directory: Path | str | None = None,
        on_failure: Callable[[str], None] | None = None,
        dirs_prepared: bool = False,
    ) -> None:
        """`on_failure(message)` is called once, from whichever thread met the failure,
        with the writer's lock held: it should signal (kill the agent's process group,
        set an event), not call back into the writer.  `dirs_prepared`: the caller has just
        made the directories and the key (prepare_trail_dirs, as a session does before its
        plan); they are not made again here (~70 us).  One removed since fails the open
        below (the key, the lock files), as a trail that cannot be written does."""
        if durability not in ("batch", "strict"):
            raise AuditError(f"unknown audit durability {durability!r} (batch or strict)")
        if checkpoint_every < 1 or segment_max_bytes < 1:
            raise AuditError("checkpoint_every and segment_max_bytes must be positive")
        self.directory = Path(directory) if directory is not None else default_audit_dir()
        self.durability: Durability = durability
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.segment_max_bytes = segment_max_bytes
        self.key_directory = Path(key_directory) if key_directory is not None else key_dir()
        self._on_failure = on_failure
        if not dirs_prepared:
            prepare_trail_dirs(self.directory, self.key_directory)
        self._key = load_key(self.key_directory, create=False)

        # One thread lock for this object: flock() excludes other processes only
        # (it is per open file description, shared by our threads).
        self._tlock = threading.Lock()
        self._failed: str | None = None
        self._closed = False
        self._chain = Chain(self.directory, self._key)
        self._dirty = False
        self._pending_witness: tuple[int, str, str] | None = None  # seq, digest, root
        self._since_checkpoint = 0
        self._last_checkpoint_time = time.monotonic()
        self._session: str | None = None
        self._session_mode = "enforce"
        self._counts: dict[str, Any] = {}
        try:
            self._lock_fd = os.open(
                self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            wl = self.key_directory / WITNESS_DIR / WITNESS_LOCK
            self._witness_lock_fd = os.open(wl, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(f"cannot open audit lock in {self.directory}: {exc.strerror}") from exc
        try:
            with self._tlock, self._flock():
                self._chain.open(self.key_directory)
                self._chain.record_findings()  # what the trail or the witness contradicts
        except OSError as exc:
            self._release()
            raise AuditError(f"cannot open audit trail in {self.directory}: {exc}") from exc
        except AuditError:
            self._release()
            raise
        # The witness expiry (expiry.py), started with the first session: off the launch.
        self._expiry: threading.Thread | None = None
        self._expiry_asked = False
        self._expiry_at: float | None = None  # when a due pass starts (monotonic), if due
        self.expiry_error: str | None = None  # why the last expiry pass failed, if it did
        self._stop = threading.Event()
        # A reused worker (sandbox.threads), not a Thread of its own: a Thread's start waits
        # for the new thread to run (~0.2-0.4 ms on the launch path, issue 19).  The job
        # records its thread's ident first thing (close() must not join itself).
        self._flusher_ident: int | None = None
        try:
            # Not counted by threads.wait_idle: it lives as long as the writer is open.
            self._flusher = threads.run(self._flush_loop, "landgate-audit-flush", counted=False)
        except RuntimeError as exc:  # no thread could be made: no batch durability either
            self._release()
            raise AuditError(f"cannot start the audit flusher for {self.directory}: {exc}") from exc

    # ----------------------------------------------------------------- public API

    @property
    def failed(self) -> str | None:
        """Why the trail became unwritable, or None.  Once set, it stays set."""
        return self._failed

    @property
    def session(self) -> str | None:
        return self._session

    @property
    def trail_id(self) -> str:
        return self._chain.trail_id

    @property
    def window_ms(self) -> int:
        return 0 if self.durability == "strict" else FLUSH_WINDOW_MS

    def counts(self) -> dict[str, Any]:
        """This session's decisions so far: allow, deny, by_action {action: {allow, deny}}."""
        with self._tlock:
            counts: dict[str, Any] = json.loads(json.dumps(self._counts))
            return counts

    def start_session(self, info: dict[str, Any]) -> str:
        """Write the session start entry; returns the new session id."""
        with self._tlock:
            self._check_usable()
            if self._session is not None:
                raise AuditError(f"audit session {self._session} is still open")
            sid = new_session_id()
            entry = session_start_entry(info, sid, self.durability, self.window_ms)
            mode = info.get("mode")
            self._session_mode = mode if mode in ("enforce", "simulate") else "enforce"
            self._counts = {"allow": 0, "deny": 0, "by_action": {}}
            self._session = self._chain.session = sid
            self._write_entry(entry)
            if not self._expiry_asked:
                self._expiry_asked = True
                self._start_expiry()
            return sid

    def append(self, event: dict[str, Any]) -> int:
        """Record one decision; returns its seq (-1 in batch mode once the trail failed).

        Thread-safe.  strict: returns after fdatasync; raises AuditError on failure.
        The line and checkpoints are `append_many([event])`'s, by a shorter path: one
        call per decision is the supervisor's common case (bench/bench_audit.py).
        """
        entry = decision_entry(event)
        with self._tlock:
            session = self._append_session()
            if session is None:
                return -1
            entry["session"] = session
            if "mode" not in entry:
                entry["mode"] = self._session_mode
            seq = self._write_one(entry)
            if seq < 0:
                return seq
            count_decision(self._counts, entry)
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every:
                self._checkpoint(final=False)
            return seq

    def append_many(self, events: list[dict[str, Any]]) -> int:
        """Record decisions in order; returns the last one's seq (-1 as for `append`).

        The same lines as one `append` per event, checkpoints included at the same
        places (after every `checkpoint_every` decisions), written with one flock and
        one write() per run between checkpoints.  The durability promise is append's,
        for all of them at once: written (batch) or fdatasync'ed (strict) on return."""
        entries = [decision_entry(e) for e in events]
        with self._tlock:
            session = self._append_session()
            if session is None:
                return -1
            mode = self._session_mode
            for entry in entries:
                entry["session"] = session
                if "mode" not in entry:
                    entry["mode"] = mode
            return self._append_runs(len(entries), partial(self._entries_locked, entries))

    def append_records(self, batch: RecordSource) -> int:
        """Record a drained batch of supervisor records, in order: the same lines,
        checkpoints and durability as `append_many` of their entries (-1 and raises as
        there), rendered by C under the lock (`batch.render`, chained to the head the
        lock guarantees).  The Python path (`batch.entries`) takes any run C cannot
        render, and the first run after a torn line (its entry reports the cut)."""
        with self._tlock:
            session = self._append_session()
            if session is None:
                return -1
            return self._append_runs(batch.n, partial(self._records_locked, batch, session))

    def _append_session(self) -> str | None:
        """The open session an append goes to (_tlock held); None when the trail failed
        in batch durability (the append returns -1); raises as `append` documents."""
        if self._failed is not None or self._closed:
            if self.durability == "strict" or self._closed:
                raise AuditError(self._failed or "audit writer is closed")
            return None
        if self._session is None:
            raise AuditError("audit append before start_session")
        return self._session

    def _append_runs(self, n: int, write_run: Callable[[int, int], int]) -> int:
        """Write n decisions as runs between checkpoints (_tlock held): `write_run(start,
        count)` appends and counts records [start, start + count) under flock.  The last
        seq, or -1 as for `append`."""
        seq = self._chain.seq
        done = 0
        while done < n:
            run = min(self.checkpoint_every - self._since_checkpoint, n - done)
            seq = self._write_with(partial(write_run, done, run))
            if seq < 0:
                return seq
            done += run
            self._since_checkpoint += run
            if self._since_checkpoint >= self.checkpoint_every:
                self._checkpoint(final=False)
                if self._failed is not None and done < n:
                    return -1  # as the next append would (strict raised already)
        return seq

    def _entries_locked(self, entries: list[dict[str, Any]], start: int, count: int) -> int:
        """Seal and write entries [start, start + count) (flock held) and count them."""
        run = entries[start : start + count]
        seq = self._chain.write_many(run)
        for entry in run:
            count_decision(self._counts, entry)
        return seq

    def _records_locked(self, batch: RecordSource, session: str, start: int, count: int) -> int:
        """Write records [start, start + count) of `batch` (flock held) and count them."""
        chain = self._chain
        got = None
        if not chain.torn_bytes:
            got = batch.render(start, count, chain.seq, chain.last_hash, session, self._key)
        if got is None:
            entries = [decision_entry(e) for e in batch.entries()[start : start + count]]
            for entry in entries:
                entry["session"] = session
                if "mode" not in entry:
                    entry["mode"] = self._session_mode
            return self._entries_locked(entries, 0, count)
        seq = chain.write_rendered(*got)
        # The session's counts, from each record's action code (action << 1 | denied).
        counts, names = self._counts, batch.actions
        by_action = counts["by_action"]
        for code, k in Counter(batch.codes[-count:]).items():
            result = "deny" if code & 1 else "allow"
            counts[result] += k
            per = by_action.get(names[code >> 1])
            if per is None:
                per = by_action[names[code >> 1]] = {"allow": 0, "deny": 0}
            per[result] += k
        return seq

    def end_session(self, exit_status: int, counts: dict[str, Any] | None = None) -> None:
        """Write the session end entry and, right after it under the same lock, the
        final checkpoint (fsynced, witnessed): a session that ended is always sealed
        by the very next entry, so verify can tell a removed seal from a killed session."""
        with self._tlock:
            if self._session is None:
                raise AuditError("audit end_session without a session")
            if self._failed is not None:
                self._session = self._chain.session = None  # reported through `failed`
                return
            entry = {
                "type": "session_end",
                "session": self._session,
                "exit_status": exit_status,
                "counts": counts if counts is not None else self._counts,
                "ts": time.time(),
            }
            try:
                self._checkpoint(final=True, after=entry)
            finally:
                self._session = self._chain.session = None
            if self._failed is not None and self.durability == "strict":
                raise AuditError(self._failed)

    def checkpoint(self) -> None:
        """Write a checkpoint now (fsynced and witnessed before returning)."""
        with self._tlock:
            self._check_usable()
            self._checkpoint(final=True)

    def closing(self) -> None:
        """Say that close() follows this session's end: the flusher is told to stop now,
        so that its wake-up and exit overlap the seal's fsyncs instead of close() waiting
        for them.  Nothing is left unsynced: the end entry's final checkpoint is fsynced
        and witnessed, and close() syncs and publishes whatever the flusher has not."""
        self._stop.set()

    def close(self) -> None:
        """Flush and release.  A session left open stays unsealed, as after a crash."""
        if self._closed:
            return
        self._stop.set()
        if self._flusher_ident != threading.get_ident():
            # Its last wake-up flushes nothing (close syncs below), but it must have ended:
            # it takes _tlock and the segment's fd, both released here.
            self._flusher.join()
        with self._tlock:
            run_now = self._expiry_at is not None and self._expiry is None
            self._expiry_at = None
        if run_now:
            # Due, and the session was too short for the flusher to start it: here, so
            # a backlog is worked off by short sessions too.
            self._expire()
        if self._expiry is not None and self._expiry is not threading.current_thread():
            # Its moves are crash-safe (appended and fsynced before the unlink), but one cut
            # short by the process's exit would be appended again by the next pass.
            self._expiry.join()
        with self._tlock:
            if self._failed is None:
                try:
                    if self._dirty:
                        os.fdatasync(self._chain.seg_fd)
                        self._dirty = False
                    self._publish_witness()
                except OSError as exc:
                    self._fail(f"cannot sync audit trail in {self.directory}: {exc.strerror}")
            self._closed = True
            self._release()

    def __enter__(self) -> AuditWriter:  # noqa: PYI034 - not meant to be subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
