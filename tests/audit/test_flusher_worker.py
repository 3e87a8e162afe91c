"""The writer's flusher runs on a reused worker (sandbox.threads, issue 19) and still keeps
batch durability's promise: appends fdatasynced within the window, everything on close."""

from __future__ import annotations

import os
import threading
import time

from audit_helpers import (  # noqa: F401 - the `trail` fixture
    Trail,
    event,
    trail_fixture,
)

from sandbox import threads
from sandbox.audit import verify_trail


def _flusher_thread(w) -> threading.Thread:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 5
    while w._flusher_ident is None and time.monotonic() < deadline:
        time.sleep(0.005)
    found = [t for t in threading.enumerate() if t.ident == w._flusher_ident]
    assert len(found) == 1
    return found[0]


def test_the_flusher_is_a_reused_named_thread(trail: Trail) -> None:
    """A second writer's flusher takes the first one's worker once the first writer is
    closed: no thread start on the second launch.  The worker is a real Thread, named
    after the flusher while it runs, idle again after close."""
    w = trail.writer()
    first = _flusher_thread(w)
    assert isinstance(first, threading.Thread) and first.daemon
    assert first.name == "landgate-audit-flush"
    w.close()
    assert not w._flusher.is_alive()  # close waited for the job to end
    assert first.name == threads.IDLE_NAME and first.is_alive()  # parked, not ended
    w = trail.writer()
    assert _flusher_thread(w) is first
    w.close()


def test_batch_appends_are_synced_by_the_flusher_within_the_window(trail: Trail) -> None:
    """The flusher job does the flush: a batch append leaves the trail dirty and the
    flusher, on its worker, fdatasyncs it without any call into the writer."""
    synced: list[int] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(threading.get_ident())
        real(fd)

    w = trail.writer()
    ident = _flusher_thread(w).ident
    os.fdatasync = fdatasync  # type: ignore[assignment]
    try:
        w.start_session({"mode": "enforce"})
        w.append(event(1))
        deadline = time.monotonic() + 5
        while (w._dirty or ident not in synced) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.fdatasync = real
    assert ident in synced and not w._dirty
    w.end_session(0)
    w.close()
    assert verify_trail(trail.dir, key_directory=trail.keys).ok


def test_close_from_the_flusher_thread_does_not_wait_for_itself(trail: Trail) -> None:
    """on_failure runs on whichever thread met the failure, the flusher's included; a
    close() reached from there must not join its own job (it would wait forever)."""
    w = trail.writer()
    _flusher_thread(w)
    done = threading.Event()
    w._flush_once = lambda: (w.close(), done.set())  # type: ignore[method-assign]
    assert done.wait(5)
    assert w._closed
