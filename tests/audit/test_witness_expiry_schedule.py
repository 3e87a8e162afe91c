"""Witness expiry, when a pass runs: above EXPIRE_ABOVE witness files and at most hourly
(a stamp; one from the future does not hold it off), a batch per launch while a backlog
lasts, never while the launch prepares, on a thread of the writer once its session has
started (or at close for a short session), and never silently when it fails.  What a
pass moves and what is then still caught is test_witness_expiry.py's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from audit_helpers import Trail, fill, trail_fixture  # noqa: F401
from expiry_helpers import _gone_trails, _old_archive, verify, witness_files
from helpers.cli import landgate

from sandbox.audit import AuditWriter, expiry
from sandbox.audit.expiry import EXPIRE_ABOVE, EXPIRE_EVERY, maybe_expire
from sandbox.audit.paths import load_key, prepare_trail_dirs
from sandbox.audit.witness import expired_shard, load_witness, witness_file


def test_maybe_expire_runs_above_the_threshold_at_most_hourly(trail: Trail, tmp_path: Path) -> None:
    prepare_trail_dirs(trail.dir, trail.keys)
    wdir = trail.keys / "witness"
    data = b'{"not": "a witness"}\n'
    for i in range(EXPIRE_ABOVE):  # names it counts; not witnesses: kept
        (wdir / f"dir-{i:032x}.json").write_bytes(data)
    stamp = wdir / expiry.STAMP_NAME
    assert maybe_expire(trail.keys, now=1e9) is None  # at the threshold: not run
    assert stamp.stat().st_mtime == 1e9  # but counted: a pass, the next in an hour
    gone = Trail(tmp_path / "gone", trail.keys)
    fill(gone, 2)
    shutil.rmtree(gone.dir)
    os.utime(stamp, (1e9, 1e9))  # fill's own session stamped by the real clock
    assert maybe_expire(trail.keys, now=1e9 + EXPIRE_EVERY - 1) is None  # too soon
    result = maybe_expire(trail.keys, now=1e9 + EXPIRE_EVERY)
    assert result is not None and result.moved == 1
    fill(gone, 2)
    shutil.rmtree(gone.dir)
    os.utime(stamp, (1e9 + EXPIRE_EVERY, 1e9 + EXPIRE_EVERY))
    assert maybe_expire(trail.keys, now=1e9 + 2 * EXPIRE_EVERY - 1) is None  # too soon
    result = maybe_expire(trail.keys, now=1e9 + 2 * EXPIRE_EVERY)
    assert result is not None and result.moved == 1


def test_launch_preparation_does_not_run_the_expiry(trail: Trail, tmp_path: Path) -> None:
    """prepare_trail_dirs (run before every launch's plan) moves nothing: off the launch."""
    _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    prepare_trail_dirs(trail.dir, trail.keys)
    assert len(witness_files(trail)) == EXPIRE_ABOVE + 1


def _assert_moved_and_still_found(w: AuditWriter, trail: Trail, gone: list[Trail]) -> None:
    """After a session's close: its pass failed on nothing, only the live trail's witness
    is left a file, and every gone trail's witness is still found (moved, not lost)."""
    assert w.expiry_error is None
    assert witness_files(trail) == [witness_file(trail.keys, trail.dir)]  # the live one
    key = load_key(trail.keys, create=False)
    assert all(load_witness(key, t.keys, t.dir) is not None for t in gone)


def test_a_session_runs_the_expiry_once_it_has_started(trail: Trail, tmp_path: Path) -> None:
    """The writer's session moves the gone ones, after its start entry; close() waits for
    the pass (every witness moved by then), and what was moved is still found."""
    gone = _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    w = trail.writer()
    assert len(witness_files(trail)) == EXPIRE_ABOVE + 1  # opening the trail moved nothing
    w.start_session({"mode": "enforce", "argv": ["agent"], "cwd": "/ws"})
    w.end_session(0)
    w.close()
    _assert_moved_and_still_found(w, trail, gone)


def test_a_pass_is_due_above_the_threshold_unless_recent_or_to_split(
    trail: Trail, tmp_path: Path
) -> None:
    """What the writer asks before it starts a thread: no pass in the last hour (the
    pass counts the files, not `due`), or an old archive to split, whatever the stamp."""
    prepare_trail_dirs(trail.dir, trail.keys)
    assert expiry.due(trail.keys)  # never a pass: the thread counts
    assert maybe_expire(trail.keys) is None  # nothing there: counted, stamped
    assert not expiry.due(trail.keys)  # a pass in the last hour
    _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    assert expiry.due(trail.keys)  # _gone_trails removed the stamp
    stamp = trail.keys / "witness" / expiry.STAMP_NAME
    stamp.touch()
    assert not expiry.due(trail.keys)  # a pass in the last hour
    assert expiry.due(trail.keys, now=time.time() + EXPIRE_EVERY)
    _old_archive(trail, [])
    assert expiry.due(trail.keys)  # an old archive to split: at once


def test_a_session_start_does_not_list_the_witness_directory(
    trail: Trail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a backlog lasts (no stamp), start_session asks `due` (two stats) and neither
    lists the witness directory (thousands of names) nor starts a thread: the pass starts
    later, on a thread of its own, or at close() for a session too short for that.  It
    still moves every gone witness, and each is still found."""
    gone = _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    listed: list[str] = []
    phase = ["before"]
    real_listdir = os.listdir

    def listdir(path: object = ".") -> list[str]:
        if Path(str(path)).name == "witness":
            listed.append(phase[0])
        return real_listdir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(expiry.os, "listdir", listdir)
    w = trail.writer()
    phase[0] = "start"
    threads = threading.active_count()
    w.start_session({"mode": "enforce", "argv": ["agent"], "cwd": "/ws"})
    assert threading.active_count() == threads  # no thread started
    phase[0] = "after"
    w.end_session(0)
    w.close()
    assert listed and "start" not in listed, listed
    _assert_moved_and_still_found(w, trail, gone)


def test_a_longer_session_runs_the_expiry_on_its_own_thread_meanwhile(
    trail: Trail, tmp_path: Path
) -> None:
    """A session that lives on: the pass starts on its own thread soon after the start
    and has moved the gone witnesses before the session ends."""
    gone = _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["agent"], "cwd": "/ws"})
    files = [witness_file(t.keys, t.dir) for t in gone]
    deadline = time.monotonic() + 30
    while any(f.exists() for f in files) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert w._expiry is not None and w._expiry.name == "landgate-witness-expiry"
    assert not any(f.exists() for f in files)  # moved before the session's end
    w.end_session(0)
    w.close()
    key = load_key(trail.keys, create=False)
    assert all(load_witness(key, t.keys, t.dir) is not None for t in gone)


def test_no_thread_when_nothing_is_due(trail: Trail) -> None:
    """Once a pass has counted the files (at most hourly), a session's writer with
    nothing to expire starts no thread (a tool-level session pays two stats, not a
    thread).  The twin: the first session, with no pass yet, starts one (it counts)."""
    fill(trail, 1)  # its session's pass counted one witness file and stamped
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["agent"], "cwd": "/ws"})
    time.sleep(0.2)  # past _EXPIRY_DELAY and a flusher wake
    assert w._expiry is None and w._expiry_at is None
    w.close()
    (trail.keys / "witness" / expiry.STAMP_NAME).unlink()
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["agent"], "cwd": "/ws"})
    assert w._expiry_at is not None  # due: it counts (on its thread, or at close)
    w.close()
    assert not expiry.due(trail.keys)


def test_a_failed_expiry_moves_nothing_and_the_session_goes_on(
    trail: Trail, tmp_path: Path
) -> None:
    """An archive shard that cannot be appended to: the pass fails before any unlink
    (every witness still in its file), the session's trail is whole, the reason kept."""
    fill(trail, 3)  # the live trail first: its witness is a file, no shard is read for it
    gone = _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    for t in gone:  # every shard those witnesses would go to is a directory
        (trail.keys / "witness" / expired_shard(witness_file(t.keys, t.dir).name)).mkdir(
            exist_ok=True
        )
    before = witness_files(trail)
    assert len(before) == EXPIRE_ABOVE + 2  # the gone ones and the live one
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["agent"], "cwd": "/ws"})
    w.end_session(0)
    w.close()
    assert w.expiry_error is not None and "cannot append to" in w.expiry_error
    assert witness_files(trail) == before
    assert verify(trail).ok


def test_a_backlog_is_moved_a_batch_per_launch(
    trail: Trail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass moves at most EXPIRE_BATCH witnesses; until the backlog is gone each
    launch's pass goes on (no stamp), then the hourly rhythm resumes."""
    gone = [Trail(tmp_path / f"gone{i}", trail.keys) for i in range(5)]
    for t in gone:
        fill(t, 1)
        shutil.rmtree(t.dir)
    monkeypatch.setattr(expiry, "EXPIRE_BATCH", 2)
    monkeypatch.setattr(expiry, "EXPIRE_ABOVE", 0)
    key = load_key(trail.keys, create=False)
    moved = []
    for _ in range(3):
        result = expiry.maybe_expire(trail.keys, now=1e9)
        assert result is not None, moved
        moved.append((result.moved, result.more))
    assert moved == [(2, True), (2, True), (1, False)]
    assert witness_files(trail) == []
    assert expiry.maybe_expire(trail.keys, now=1e9) is None  # stamped: an hour's rest
    for t in gone:
        assert load_witness(key, t.keys, t.dir) is not None


def test_a_stamp_from_the_future_does_not_hold_expiry_off(trail: Trail, tmp_path: Path) -> None:
    """The clock set back past the last pass: the next pass still runs."""
    gone = [Trail(tmp_path / f"gone{i}", trail.keys) for i in range(EXPIRE_ABOVE + 1)]
    for t in gone:
        fill(t, 1)
        shutil.rmtree(t.dir)
    stamp = trail.keys / "witness" / expiry.STAMP_NAME
    stamp.touch()
    os.utime(stamp, (2e9, 2e9))
    assert maybe_expire(trail.keys, now=2e9 + 1) is None  # within the hour: rest
    result = maybe_expire(trail.keys, now=1e9)
    assert result is not None and result.moved == EXPIRE_ABOVE + 1


def _run_cli(trail: Trail) -> subprocess.CompletedProcess[str]:
    argv = ["run", "--policy", "read-only", "--audit", str(trail.dir), "--", "/bin/true"]
    return landgate(*argv, timeout=120)


@pytest.mark.parametrize("failing", [True, False])
def test_landgate_run_says_when_the_expiry_failed(
    trail: Trail, tmp_path: Path, failing: bool
) -> None:
    """A failed pass is not silent: `landgate run` prints it as a warning (its twin, a pass
    that succeeds, prints nothing), and the session's own trail is whole either way."""
    fill(trail, 3)
    gone = _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    if failing:
        for t in gone:
            shard = expired_shard(witness_file(t.keys, t.dir).name)
            (trail.keys / "witness" / shard).mkdir(exist_ok=True)
    proc = _run_cli(trail)
    assert proc.returncode == 0, proc.stderr
    assert ("warning: witness expiry" in proc.stderr) == failing, proc.stderr
    assert verify(trail).ok
