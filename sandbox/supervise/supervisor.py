"""The Python side of the seccomp user-notification supervisor (DESIGN §4).

The decision loop is C (csrc/supervise*.c): it receives each notification,
decides from the compiled tables and answers the kernel.  Python starts it on
a thread (cffi releases the GIL for the call), drains its fixed-size event
records on a second thread and hands each one, as a typed
`sandbox.audit.event.DecisionEvent`, to `on_event`
(the audit trail).  Python is never between the kernel's question and the
answer, except in strict durability, where an allowed action waits until
`on_event` returned for its record.

Fail closed: the supervisor owns the listener fd and closes it when the loop
ends; from then on the kernel fails every supervised syscall (ENOSYS).  If
`on_event` raises, the supervisor stops (closing the listener) and `join`
re-raises.

This module is the loop's start, the drainer and the C context's lifetime (join
frees it only once the loop and the drainer have ended); a drained record's bytes
become a DecisionEvent in eventdecode.py.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from functools import cached_property

from sandbox import threads
from sandbox._supervise import ffi, lib
from sandbox.audit.event import DecisionEvent
from sandbox.errors import LaunchError

from .records import RecordBatch, Renderer
from .tabletypes import Tables

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_COUNTS = [
    "notifications",
    "allow",
    "deny",
    "exec",
    "connect",
    "send",
    "open",
    "slow_path",
    "exec_race",
    "gone",
    "errors",
    "ring_waits",
    "workers",
]
_DRAIN_BATCH = 256
_EV_SIZE = ffi.sizeof("struct lg_event")
_BATCH_SECONDS = 0.005


class Supervisor:
    """Run the C decision loop over `listener_fd` (ownership passes to the supervisor)."""

    def __init__(
        self,
        listener_fd: int,
        tables: Tables,
        *,
        root_pid: int,
        simulate: bool = False,
        on_event: Callable[[DecisionEvent], None] | None = None,
        stderr_fd: int = 2,
        strict: bool = False,
    ) -> None:
        self._fd = listener_fd
        self._tables = tables
        self.root_pid = root_pid
        self.simulate = simulate
        self.strict = strict
        self._on_event = on_event
        self._stderr_fd = stderr_fd
        self._ctx: Any = None
        self._loop: threads.Job | None = None
        self._drainer: threads.Job | None = None
        self._started = threading.Event()  # the loop's thread made the context (or failed)
        self._start_error: str | None = None
        self._stop_requested = False
        self._loop_done = threading.Event()
        self._loop_error: str | None = None
        self._callback_error: BaseException | None = None
        self._final_counts: dict[str, int] | None = None
        self._lock = threading.Lock()
        self._freed = False
        # One consumer of the ring at a time (the drainer, or flush() on its caller's
        # thread): records are delivered in the ring's order.
        self._drain_lock = threading.Lock()
        self._flush_buf: Any = None
        self._drained_all = False  # the drainer has delivered the last record and ended
        self._mode = "simulate" if simulate else "enforce"
        self._rule_cache: dict[int, tuple[Any, ...]] = {}
        self._renderer: Renderer | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Create the C context and start the loop; returns once it is ready."""
        self.begin()
        self.wait_started()

    def begin(self) -> None:
        """Begin making the C context (its buffers, the first opener thread and its
        Landlock restriction: lg_sup_new_begin, a C thread of its own, without the GIL)
        and hand the loop to a worker, which runs it once the context exists; returns at
        once.  Meanwhile the caller does its own work (the trail's start entry, the
        network's attach; issue 19: ~0.4 ms that was serial on the launch path).
        `wait_started` says whether the context could be made: call it before the
        sandbox is released.  The listener is closed by the loop's thread when it ends,
        whether or not the context could be made (fail closed)."""
        if not self._tables.bound:
            # Its ruleset fd, writable trees and namespace would be the zeroed defaults.
            raise LaunchError("supervisor: tables not bound to the sandbox (Tables.bind)")
        if self._loop is not None:
            raise LaunchError("supervisor: started twice")
        err = ffi.new("char[]", lib.LG_ERR_MAX)
        flags = (lib.LG_SUP_SIMULATE if self.simulate else 0) | (
            lib.LG_SUP_STRICT if self.strict else 0
        )
        pending = lib.lg_sup_new_begin(
            self._fd, self._tables.c, self.root_pid, flags, self._stderr_fd, err, lib.LG_ERR_MAX
        )
        if pending == ffi.NULL:
            raise LaunchError(f"supervisor: {ffi.string(err).decode(errors='replace')}")
        try:
            self._loop = threads.run(lambda: self._run_loop(pending), "landgate-supervise")
        except BaseException:
            # No loop will wait for the making: wait here, and free what it made.
            ctx = lib.lg_sup_new_wait(pending, err, lib.LG_ERR_MAX)
            if ctx != ffi.NULL:
                lib.lg_sup_free(ctx)
            os.close(self._fd)  # nobody will answer it: fail closed
            raise

    def wait_started(self, timeout: float | None = None) -> None:
        """Return once the loop runs on a C context; LaunchError if it could not be made
        (the listener is closed then: every supervised syscall fails)."""
        if self._loop is None:
            raise LaunchError("supervisor: not started (begin)")
        if not self._started.wait(timeout):
            raise LaunchError("supervisor: the decision loop did not start in time")
        if self._start_error is not None:
            raise LaunchError(f"supervisor: {self._start_error}")

    def _new_context(self, pending: Any) -> Any:
        """The C context begun by `begin`, or None (the reason in _start_error).  On the
        loop's thread."""
        err = ffi.new("char[]", lib.LG_ERR_MAX)
        ctx = lib.lg_sup_new_wait(pending, err, lib.LG_ERR_MAX)  # GIL released while it waits
        if ctx == ffi.NULL:
            self._start_error = ffi.string(err).decode(errors="replace")
            return None
        with self._lock:
            self._ctx = ctx
            if self._stop_requested:
                lib.lg_sup_stop(ctx)  # stop() came first: the loop ends at once
        self._tables.add_pinned(self.add_names)
        self._drainer = threads.run(self._drain_loop, "landgate-events")
        return ctx

    def _run_loop(self, pending: Any) -> None:
        try:
            try:
                ctx = self._new_context(pending)
            except BaseException as exc:  # noqa: BLE001 - told by wait_started, fail closed
                self._start_error = f"{type(exc).__name__}: {exc}"
                ctx = None
            finally:
                # Set once _ctx and the drainer exist, or for good without them.
                self._started.set()
            if ctx is None:
                return
            err = ffi.new("char[]", lib.LG_ERR_MAX)
            rc = lib.lg_sup_run(ctx, err, lib.LG_ERR_MAX)  # GIL released while it runs
            if rc < 0:
                self._loop_error = ffi.string(err).decode(errors="replace")
        finally:
            # Fail closed from here on: nobody answers, the kernel says ENOSYS.
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._loop_done.set()
            if self._ctx is not None:
                self._wake_drainer()

    def _wake_drainer(self) -> None:
        try:
            os.write(lib.lg_sup_event_fd(self._ctx), (1).to_bytes(8, "little"))
        except OSError:
            pass

    def _drain_loop(self) -> None:
        buf = ffi.new("struct lg_event[]", _DRAIN_BATCH)
        efd = lib.lg_sup_event_fd(self._ctx)
        while True:
            try:
                os.read(efd, 8)  # blocks until the ring went non-empty or the loop ended
            except InterruptedError:
                continue
            if not self.strict and not self._loop_done.is_set():
                # Batch: while the ring is non-empty the C side does not write the
                # eventfd again, so one wake-up per interval instead of per decision
                # (on 2 CPUs a Python wake-up per exec costs more than the decision).
                # An event, not a sleep: the loop's end cuts the wait short, so a
                # session's shutdown does not wait out the interval.
                self._loop_done.wait(_BATCH_SECONDS)
            with self._drain_lock:
                self._drain_ring(buf)
                # lg_sup_run returns only after its workers finished, so once the
                # loop is done and the ring is empty, every event has been seen.
                # (The second pass catches a record pushed while the first delivered.)
                if self._loop_done.is_set() and self._drain_ring(buf) == 0:
                    self._drained_all = True
                    return

    def _drain_ring(self, buf: Any) -> int:
        """Deliver what the ring holds, in order, until it is empty; how many.  Called
        with _drain_lock held."""
        total = 0
        while True:
            n = lib.lg_sup_drain(self._ctx, buf, _DRAIN_BATCH)
            if n == 0:
                return total
            total += n
            lib.lg_sup_ack(self._ctx, self._deliver_batch(buf, n))

    def flush(self, timeout: float | None = None) -> bool:
        """Return once every record the C loop pushed before this call has been handed to
        `on_event` (True), or when `timeout` seconds passed first (False).

        The hand-over fence of `sandbox.Session`: the loop pushes a decision's record
        before it answers the syscall, so once a command's processes have ended, all of
        their records are in the ring.  Instead of waiting out the drainer's batch
        interval, the caller drains the ring itself (one consumer at a time, so the
        records keep their order; a pass the drainer has under way is finished first)."""
        if self._drainer is None or self._ctx is None:
            return True
        if not self._drain_lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            if self._drained_all or self._freed:
                return True  # the drainer delivered everything and ended
            if self._flush_buf is None:
                self._flush_buf = ffi.new("struct lg_event[]", _DRAIN_BATCH)
            self._drain_ring(self._flush_buf)
            return True
        finally:
            self._drain_lock.release()

    def _deliver_batch(self, buf: Any, n: int) -> int:
        """Hand the first `n` records of `buf` to on_event, in order; the last seq.

        An on_event with a `records` attribute (the session's Recorder) gets the batch
        itself (RecordBatch): the writer has C render it into trail lines, and
        DecisionEvents are built only if someone asks.  In simulation (Python judges
        the opens first) or with a `many` attribute it gets the batch as one list of
        events; otherwise one event at a time.  on_event has returned for every record
        before the caller acks them (strict durability waits for that)."""
        data = ffi.buffer(buf, n * _EV_SIZE)[:]  # one copy of the batch, then bytes
        batch = RecordBatch(self, data, n)
        on_event = self._on_event
        if on_event is not None and self._callback_error is None:
            records = None if self.simulate else getattr(on_event, "records", None)
            many = getattr(on_event, "many", None)
            try:
                if records is not None:
                    records(batch)
                elif many is not None:
                    many(batch.events())
                else:
                    for ev in batch.events():
                        on_event(ev)
            except BaseException as exc:  # noqa: BLE001 - re-raised by join()
                self._callback_error = exc
                if self._ctx is not None:
                    lib.lg_sup_stop(self._ctx)
        return batch.last_seq

    def renderer(self) -> Renderer:
        """The C renderer's view of this supervisor's rules (built at the first batch)."""
        if self._renderer is None:
            self._renderer = Renderer(len(self._tables.rules), self._rule_fields, self._mode)
        return self._renderer

    def stop(self) -> None:
        """Ask the loop to end (pending syscalls then fail closed); also before the loop's
        thread has made its context (it then stops as soon as it has)."""
        with self._lock:
            self._stop_requested = True
            if self._ctx is not None and not self._freed:
                lib.lg_sup_stop(self._ctx)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the loop to end (POLLHUP or stop) and every event to be drained."""
        if self._loop is not None:
            self._loop.join(timeout)
            if self._loop.is_alive():
                raise TimeoutError("supervisor loop still running")
        if self._drainer is not None:
            self._wake_drainer()
            self._drainer.join(timeout)
            if self._drainer.is_alive():
                # The drainer still reads the context's event ring: freeing it now would
                # hand the drainer freed memory.  The caller may join again.
                raise TimeoutError("supervisor event drainer still running")
        ctx = None
        with self._lock:
            if self._ctx is not None and not self._freed:
                self._final_counts = self._read_counts()
                ctx, self._freed = self._ctx, True  # nothing here touches it from now on
        if ctx is not None:
            # Freed on a worker, off the session's return path (issue 19: ~0.19 ms of
            # munmaps and the opener threads' joins).  The loop and the drainer have ended,
            # the listener is closed: the sandbox has nobody left to ask.
            try:
                threads.run(lambda: lib.lg_sup_free(ctx), "landgate-supervise-free")
            except RuntimeError:  # no thread could be made: freed here, as before
                lib.lg_sup_free(ctx)
        if self._callback_error is not None:
            raise self._callback_error
        if self._loop_error:
            raise LaunchError(f"supervisor: {self._loop_error}")

    # -- run time ---------------------------------------------------------------

    def add_names(self, ip: str, names: tuple[str, ...] | list[str]) -> None:
        """The DNS view says `ip` stands for `names` (thread-safe).  Under the lock that
        join frees the context after: a name that arrives as the session ends is either
        added before the free or dropped, never written into a freed context."""
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        packed = socket.inet_pton(fam, ip)
        encoded = [name.lower().rstrip(".").encode("idna") for name in names]
        with self._lock:
            if self._ctx is None or self._freed:
                return
            for name in encoded:
                lib.lg_sup_add_name(self._ctx, fam, packed, name)

    @property
    def counts(self) -> dict[str, int]:
        if self._final_counts is not None:
            return dict(self._final_counts)
        if self._ctx is None:
            return dict.fromkeys(_COUNTS, 0)
        return self._read_counts()

    def _read_counts(self) -> dict[str, int]:
        out = ffi.new("unsigned long long[]", lib.LG_COUNT_MAX)
        n = lib.lg_sup_counts(self._ctx, out, lib.LG_COUNT_MAX)
        return {_COUNTS[i]: int(out[i]) for i in range(n)}

    # -- events -----------------------------------------------------------------

    def _rule_fields(self, rule: int) -> tuple[Any, ...]:
        """(info, ref, source, index, origin) of a rule index: the same for every record
        of that rule, so derived once per supervisor (the tables do not change)."""
        got = self._rule_cache.get(rule)
        if got is None:
            rules = self._tables.rules
            info = rules[rule] if 0 <= rule < len(rules) else None
            if info is None:
                got = (None, None, None, None, None)
            else:
                r = info.rule
                got = (
                    info,
                    info.ref,
                    info.source,
                    r.index if r else None,
                    r.origin if r else info.origin or "default",
                )
            self._rule_cache[rule] = got
        return got

    @cached_property
    def _event_at(self) -> Callable[[bytes, int], DecisionEvent]:
        """The record at byte `off` of a copied batch as a DecisionEvent: RecordBatch.events()
        calls it per record.  eventdecode.py is imported when a record is first decoded in
        Python (the API's on_event, simulation): `landgate run`, whose trail C renders,
        never pays for the import (issue 19).  Cached on the instance: no call between."""
        from .eventdecode import EventDecoder

        return EventDecoder(self._mode, self._rule_cache, self._rule_fields).event_at
