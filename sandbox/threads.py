"""Reusable worker threads for the per-session threads of a `sandbox.run` (issue 19).

A session starts several long-lived helper threads (the supervisor's decision loop and
its event drainer, the DNS view, the thread that joins the sandbox's network namespace).
`threading.Thread.start()` creates an OS thread and then waits for it to run (its
start-up handshake): ~0.15-0.2 ms each on the 2-vCPU machines, paid on the launch path
before the agent is released.  `run()` hands the job to an idle worker instead, kept from
an earlier session, and returns without waiting for it to run.

Every worker is an ordinary `threading.Thread` (a daemon), named after the job it runs:
`threading.current_thread()` in a job (a user's `on_event`, logging's thread name) is a
real Thread, never a `_DummyThread`.

Bounded: at most MAX_IDLE workers wait for a job; one that finishes while that many
already wait ends.  A job that raises ends its worker (threading.excepthook is told, as
for a Thread's own exception), and so does one that said its thread is no longer fit for
reuse (`retire_current`: e.g. it left the thread in another network namespace).
Fork-safe: a forked child starts with no idle workers (they do not exist in it).
Standard library only (rank 0 in tests/contract/test_imports.py).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

MAX_IDLE = 8
IDLE_NAME = "landgate-idle"


class _Idle:
    """The idle workers and their lock (remade in a forked child: _forget_after_fork)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []
        self.busy = 0  # jobs handed over and not yet ended
        self.ended = threading.Condition(self.lock)  # notified as busy drops


_pool = _Idle()


class Job:
    """A job handed to a worker: `join` waits for it to end, as Thread.join does."""

    __slots__ = ("_done", "counted", "name")

    def __init__(self, name: str, counted: bool = True) -> None:
        self.name = name
        self.counted = counted  # in wait_idle's count (see run)
        self._done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        return not self._done.is_set()


class _Worker(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name=IDLE_NAME, daemon=True)
        # Released once per job handed over (a lock as a binary semaphore: cheaper
        # than a Condition, and a release before the worker waits is not lost).
        self._go = threading.Lock()
        self._go.acquire()
        self._fn: Callable[[], object] | None = None
        self._job: Job | None = None
        self.retire = False

    def hand(self, fn: Callable[[], object], job: Job) -> None:
        self._fn, self._job = fn, job
        self.name = job.name  # named from the hand-over on, as a Thread is from its start
        self._go.release()

    def run(self) -> None:
        while True:
            self._go.acquire()
            fn, job = self._fn, self._job
            self._fn = self._job = None
            if fn is None or job is None:
                return
            failed = False
            try:
                fn()
            except BaseException:  # noqa: BLE001 - told to threading.excepthook, as a Thread would
                failed = True
                _tell_excepthook(self)
            finally:
                self.name = IDLE_NAME
                # Before the job counts as ended: a caller that joins it and starts the
                # next session finds this worker idle again.
                keep = _end_job(self, park=not failed and not self.retire, counted=job.counted)
                job._done.set()
            if not keep:
                return


def _end_job(worker: _Worker, park: bool, counted: bool = True) -> bool:
    """A job ended: uncount it and, when `park`, put its worker back among the idle ones;
    whether it was (False when enough wait already: the worker ends)."""
    with _pool.lock:
        if counted:
            _pool.busy -= 1
            _pool.ended.notify_all()
        if not park or len(_pool.workers) >= MAX_IDLE:
            return False
        _pool.workers.append(worker)
        return True


def _tell_excepthook(thread: threading.Thread) -> None:
    exc_type, exc, tb = sys.exc_info()
    threading.excepthook(threading.ExceptHookArgs([exc_type, exc, tb, thread]))


def run(fn: Callable[[], object], name: str, *, counted: bool = True) -> Job:
    """Run `fn()` on a worker thread named `name`; returns at once (the job may not have
    started yet).  Raises RuntimeError, as Thread.start does, when no thread can be made.

    `counted=False`: a service that lives as long as the object it serves (an open audit
    writer's flusher, stopped by its close()), not a piece of work that ends by itself:
    wait_idle does not wait for it.  Its worker is busy all the same (idle_count)."""
    job = Job(name, counted)
    with _pool.lock:
        worker = _pool.workers.pop() if _pool.workers else None
    if worker is None:
        worker = _Worker()
        worker.start()  # the one handshake, paid by the first session that needs it
    if counted:
        with _pool.lock:
            _pool.busy += 1
    worker.hand(fn, job)
    return job


def wait_idle(timeout: float) -> bool:
    """Wait up to `timeout` seconds for every (counted) job handed out to end (e.g. a
    context freed after its session); True when none runs."""
    with _pool.lock:
        return _pool.ended.wait_for(lambda: _pool.busy == 0, timeout)


def idle_count() -> int:
    """How many workers wait for a job (threads that run nothing and hold nothing)."""
    with _pool.lock:
        return len(_pool.workers)


def only_idle_workers_besides_caller() -> bool:
    """True when every thread but the caller is an idle worker: a short exit (os._exit)
    loses nothing then.  A writer's flusher is a job until its close(), so an unclosed
    trail keeps the ordinary exit."""
    return threading.active_count() - idle_count() == 1


def retire_current() -> None:
    """Called from a job: its worker ends when the job does, never to be reused."""
    current = threading.current_thread()
    if isinstance(current, _Worker):
        current.retire = True


def _forget_after_fork() -> None:
    _pool.__init__()  # type: ignore[misc]  # the workers do not exist in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
