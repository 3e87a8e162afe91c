"""The writer on a session's launch path (issue 19): its flusher runs on a reused worker
(sandbox.threads) and still keeps batch durability's promise (appends fdatasynced within
the window, everything on close); a session's writer does not make the directories the
session made just before (dirs_prepared), and fails closed when one is gone."""

from __future__ import annotations

import os
import threading
import time

import pytest
from audit_helpers import (  # noqa: F401 - the `trail` fixture
    Trail,
    event,
    trail_fixture,
)

from sandbox import threads
from sandbox.audit import AuditWriter, verify_trail
from sandbox.audit.paths import prepare_trail_dirs
from sandbox.errors import AuditError


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


def test_prepared_directories_are_used_as_they_are(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The allowed twin: directories and key made by prepare_trail_dirs, then a writer
    that does not make them again writes a trail that verifies."""
    audit, keys = tmp_path / "audit", tmp_path / "keys"
    prepare_trail_dirs(audit, keys)
    w = AuditWriter(audit, key_directory=keys, dirs_prepared=True)
    w.start_session({"mode": "enforce"})
    w.end_session(0)
    w.close()
    assert verify_trail(audit, key_directory=keys).ok


@pytest.mark.parametrize("gone", ["audit", "witness", "key"])
def test_a_prepared_directory_removed_since_fails_closed(tmp_path, gone: str) -> None:  # type: ignore[no-untyped-def]
    """Removed between the preparation and the writer's open: the writer refuses (the
    session then refuses to run, exit 125) instead of writing nowhere or making a
    directory the plan did not protect."""
    import shutil

    audit, keys = tmp_path / "audit", tmp_path / "keys"
    prepare_trail_dirs(audit, keys)
    victim = {"audit": audit, "witness": keys / "witness", "key": keys / "audit.key"}[gone]
    if victim.is_dir():
        shutil.rmtree(victim)
    else:
        victim.unlink()
    with pytest.raises(AuditError):
        AuditWriter(audit, key_directory=keys, dirs_prepared=True)
    assert not victim.exists()  # not made again behind the plan's back


def test_closing_stops_the_flusher_and_close_still_syncs_everything(trail: Trail) -> None:
    """closing() (a session about to end and close) stops the flusher at once; a batch
    append made after it is still fdatasynced, by close(), and the trail verifies sealed."""
    synced: list[int] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    w = trail.writer()
    _flusher_thread(w)
    w.start_session({"mode": "enforce"})
    w.closing()
    w._flusher.join(5)
    assert not w._flusher.is_alive()  # stopped without close()
    w.append(event(1))
    assert w._dirty  # nobody left to sync it in the background
    os.fdatasync = fdatasync  # type: ignore[assignment]
    try:
        w.close()  # no end_session: close alone must sync the append
    finally:
        os.fdatasync = real
    assert synced and not w._dirty
    entries = trail.entries()
    assert entries[-1]["type"] == "decision"
