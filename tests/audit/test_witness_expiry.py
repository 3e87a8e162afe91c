"""Witness expiry: the witnesses of audit directories that are gone leave the key
directory's walk, and a trail cut back or restored from an older copy is still caught.

The attack: a trail's directory is moved away (so it is gone when the expiry runs),
then put back as an older copy, two sessions short.  The older copy is a consistent,
sealed trail: only the witness knows more was sealed there.  Each attack test also
runs with the archive removed (the witness dropped instead of moved, the protection
off) and shows verify then passes: the record moved by the expiry is what catches it.

The archive is 16 shard files (a lookup reads one); an earlier version's single
expired.jsonl is split into them and read until it is.  The expiry runs on a thread
of the writer once its session has started, not while the launch prepares.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from audit_helpers import Trail, fill, trail_fixture  # noqa: F401

from sandbox.audit import expiry, verify_trail
from sandbox.audit.expiry import EXPIRE_ABOVE, EXPIRE_EVERY, expire_witnesses, maybe_expire
from sandbox.audit.paths import load_key, prepare_trail_dirs
from sandbox.audit.witness import (
    EXPIRED_NAME,
    expired_record,
    expired_shard,
    load_witness,
    witness_file,
)
from sandbox.errors import AuditError


def verify(t: Trail):
    return verify_trail(t.dir, key_directory=t.keys)


def expire(t: Trail):
    return expire_witnesses(t.keys)


def witness_files(t: Trail) -> list[Path]:
    return sorted((t.keys / "witness").glob("dir-*.json"))


def archive(t: Trail) -> list[Path]:
    """The archive's files: the shards, and an earlier version's expired.jsonl."""
    return sorted((t.keys / "witness").glob("expired*.jsonl"))


def drop_archive(t: Trail) -> None:
    """The protection off: the moved witnesses dropped."""
    for path in archive(t):
        path.unlink()


def _older_copy_restored(trail: Trail, tmp_path: Path) -> int:
    """Seal a session, keep a copy, seal another, move the directory away, run the
    expiry, put the copy back.  Returns the seq the witness had sealed."""
    fill(trail, 10)
    old = tmp_path / "old-copy"
    shutil.copytree(trail.dir, old)
    fill(trail, 10)
    sealed = verify(trail).last_checkpoint_seq
    trail.dir.rename(tmp_path / "away")
    result = expire(trail)
    assert (result.moved, witness_files(trail)) == (1, [])
    shutil.rmtree(tmp_path / "away")
    old.rename(trail.dir)
    return sealed


def test_older_copy_restored_after_the_expiry_is_caught(trail: Trail, tmp_path: Path) -> None:
    sealed = _older_copy_restored(trail, tmp_path)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated"), r.summary()
    assert f"checkpoint at seq {sealed} was witnessed" in r.message
    # Protection off: without the moved record the older copy passes as a whole trail.
    drop_archive(trail)
    assert verify(trail).ok


def test_older_copy_restored_and_continued_is_recorded_by_the_writer(
    trail: Trail, tmp_path: Path
) -> None:
    """The next session in the restored directory finds the expired witness too."""
    sealed = _older_copy_restored(trail, tmp_path)
    fill(trail, 1)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated"), r.summary()
    assert f"seq {sealed}" in r.message


def test_directory_deleted_expired_then_reused_is_caught(trail: Trail) -> None:
    fill(trail, 10)
    shutil.rmtree(trail.dir)
    assert expire(trail).moved == 1
    fill(trail, 3)
    r = verify(trail)
    assert (r.ok, r.kind, r.first_bad_seq) == (False, "reused", 1), r.summary()


def test_trail_cut_in_place_keeps_its_witness(trail: Trail) -> None:
    """A directory that exists keeps its witness file, whatever its trail looks like."""
    fill(trail, 10)
    fill(trail, 10)
    lines = trail.lines()
    cut = next(i for i, x in enumerate(lines) if b'"session_end"' in x) + 2  # first seal
    trail.write_lines(lines[:cut])
    assert (expire(trail).kept, expire(trail).moved) == (1, 0)
    assert witness_files(trail) == [witness_file(trail.keys, trail.dir)]
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated"), r.summary()


def test_restored_copy_that_is_whole_verifies(trail: Trail, tmp_path: Path) -> None:
    """The allowed twin: the directory moved away and back unchanged is intact."""
    fill(trail, 10)
    trail.dir.rename(tmp_path / "away")
    assert expire(trail).moved == 1
    (tmp_path / "away").rename(trail.dir)
    r = verify(trail)
    assert r.ok, r.summary()
    fill(trail, 3)  # and the next session continues it, its witness a file again
    assert verify(trail).ok
    assert witness_files(trail) == [witness_file(trail.keys, trail.dir)]


def test_expiry_moves_only_the_gone(trail: Trail, tmp_path: Path) -> None:
    live = [Trail(tmp_path / f"live{i}", trail.keys) for i in range(3)]
    gone = [Trail(tmp_path / f"gone{i}", trail.keys) for i in range(4)]
    for t in live + gone:
        fill(t, 2)
    for t in gone:
        shutil.rmtree(t.dir)
    result = expire(trail)
    assert (result.kept, result.moved) == (3, 4)
    assert witness_files(trail) == sorted(witness_file(t.keys, t.dir) for t in live)
    key = load_key(trail.keys, create=False)
    for t in gone:  # each still found, by its directory
        w = load_witness(key, t.keys, t.dir)
        assert w is not None and w.dir == os.path.realpath(t.dir)
    assert expire(trail).moved == 0  # a second pass has nothing to do


def test_a_witness_that_does_not_authenticate_is_moved_and_still_reported(
    trail: Trail, tmp_path: Path
) -> None:
    """Moving changes no lookup: a witness that does not authenticate (edited, or made
    under an old key) is moved like any other and is still reported as forged if its
    directory comes back; its twin, the untouched witness, verifies."""
    fill(trail, 2)
    trail.dir.rename(tmp_path / "away")
    path = witness_file(trail.keys, trail.dir)
    whole = path.read_bytes()
    path.write_bytes(whole.replace(b'"seq": ', b'"seq": 1'))
    assert expire(trail).moved == 1 and not path.exists()
    (tmp_path / "away").rename(trail.dir)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "forged"), r.summary()
    assert "does not authenticate" in r.message
    path.write_bytes(whole)  # the twin: the witness as landgate wrote it
    assert verify(trail).ok


def test_what_is_not_a_witness_is_left_alone(trail: Trail) -> None:
    wdir = trail.keys / "witness"
    wdir.mkdir(parents=True)
    odd = {
        "not json": b"not json",
        "no string dir": b'{"dir": 5}',
        "relative": b'{"dir": "relative/gone"}',
        "not an object": b"[]",
        "two lines": b'{"dir":\n "/gone/x"}\n',  # one record could not hold it whole
    }
    for i, data in enumerate(odd.values()):
        (wdir / f"dir-{i:032x}.json").write_bytes(data)
    assert (expire(trail).kept, expire(trail).moved) == (len(odd), 0)


def test_torn_record_does_not_hide_the_next(trail: Trail, tmp_path: Path) -> None:
    """A crash mid-append leaves a torn record; the next record is still found whole."""
    fill(trail, 2)
    shard = trail.keys / "witness" / expired_shard(witness_file(trail.keys, trail.dir).name)
    shard.write_bytes(b"\ndir-" + b"0" * 32 + b'.json {"dir": "/x", "se')
    trail.dir.rename(tmp_path / "away")
    assert expire(trail).moved == 1
    (tmp_path / "away").rename(trail.dir)
    assert verify(trail).ok
    key = load_key(trail.keys, create=False)
    assert load_witness(key, trail.keys, trail.dir) is not None


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


def _gone_trails(trail: Trail, tmp_path: Path, n: int) -> list[Trail]:
    """n trails filled and deleted, their witnesses left in place: the sessions that fill
    them do not run the expiry (a fresh stamp, removed after)."""
    stamp = trail.keys / "witness" / expiry.STAMP_NAME
    prepare_trail_dirs(trail.dir, trail.keys)
    stamp.touch()
    gone = [Trail(tmp_path / f"gone{i}", trail.keys) for i in range(n)]
    for t in gone:
        fill(t, 1)
        shutil.rmtree(t.dir)
    stamp.unlink()
    return gone


def test_launch_preparation_does_not_run_the_expiry(trail: Trail, tmp_path: Path) -> None:
    """prepare_trail_dirs (run before every launch's plan) moves nothing: off the launch."""
    _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    prepare_trail_dirs(trail.dir, trail.keys)
    assert len(witness_files(trail)) == EXPIRE_ABOVE + 1


def test_a_session_runs_the_expiry_once_it_has_started(trail: Trail, tmp_path: Path) -> None:
    """The writer's session moves the gone ones, after its start entry; close() waits for
    the pass (every witness moved by then), and what was moved is still found."""
    gone = _gone_trails(trail, tmp_path, EXPIRE_ABOVE + 1)
    w = trail.writer()
    assert len(witness_files(trail)) == EXPIRE_ABOVE + 1  # opening the trail moved nothing
    w.start_session({"mode": "enforce", "argv": ["agent"], "cwd": "/ws"})
    w.end_session(0)
    w.close()
    assert w.expiry_error is None
    assert witness_files(trail) == [witness_file(trail.keys, trail.dir)]  # the live one
    key = load_key(trail.keys, create=False)
    assert all(load_witness(key, t.keys, t.dir) is not None for t in gone)


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
    assert w.expiry_error is None
    assert listed and "start" not in listed, listed
    assert witness_files(trail) == [witness_file(trail.keys, trail.dir)]  # the live one
    key = load_key(trail.keys, create=False)
    assert all(load_witness(key, t.keys, t.dir) is not None for t in gone)


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


def test_a_lookup_reads_one_shard(trail: Trail, tmp_path: Path) -> None:
    """A directory without a witness file is looked up in its shard alone: the other 15
    (here made unreadable: directories) are never opened.  Its twin: its own shard is
    read (made a directory, the lookup fails)."""
    fill(trail, 2)
    trail.dir.rename(tmp_path / "away")
    assert expire(trail).moved == 1
    (tmp_path / "away").rename(trail.dir)
    name = witness_file(trail.keys, trail.dir).name
    own = trail.keys / "witness" / expired_shard(name)
    for digit in "0123456789abcdef":
        other = trail.keys / "witness" / f"expired-{digit}.jsonl"
        if other != own:
            other.mkdir()
    key = load_key(trail.keys, create=False)
    assert load_witness(key, trail.keys, trail.dir) is not None
    assert verify(trail).ok
    own.rename(tmp_path / "own-shard")
    own.mkdir()
    with pytest.raises(AuditError, match="cannot read audit witness"):
        load_witness(key, trail.keys, trail.dir)


def _old_archive(trail: Trail, records: list[tuple[str, bytes]], tail: bytes = b"") -> Path:
    """expired.jsonl as an earlier version wrote it."""
    path = trail.keys / "witness" / EXPIRED_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(expired_record(n, d) for n, d in records) + tail)
    return path


def test_an_old_archive_is_read_and_then_split(trail: Trail, tmp_path: Path) -> None:
    """A witness an earlier version moved into expired.jsonl is found there, and after the
    next pass in its shard, bytes unchanged; the older copy restored is caught either way
    (and passes without the archive: the protection off)."""
    sealed = _older_copy_restored(trail, tmp_path)
    name = witness_file(trail.keys, trail.dir).name
    shard = trail.keys / "witness" / expired_shard(name)
    record = shard.read_bytes()
    shard.unlink()
    torn = b"\ndir-0123"  # a record torn before its name was whole: no lookup finds it
    other = ("0" if name[4] != "0" else "1") * 32  # a name in another shard
    old = _old_archive(trail, [(f"dir-{other}.json", b'{"dir": "/elsewhere"}')], torn)
    old.write_bytes(old.read_bytes() + record)  # the moved witness, last
    key = load_key(trail.keys, create=False)
    before = load_witness(key, trail.keys, trail.dir)
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated") and f"seq {sealed}" in r.message
    assert maybe_expire(trail.keys, now=1e9) is None  # below the threshold: only the split
    assert not old.exists()
    assert shard.read_bytes() == record  # this name's shard: its record alone, unchanged
    assert load_witness(key, trail.keys, trail.dir) == before
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated") and f"seq {sealed}" in r.message
    drop_archive(trail)
    assert verify(trail).ok


def test_moves_after_an_old_record_win(trail: Trail, tmp_path: Path) -> None:
    """The old archive holds an earlier witness of a directory (moved there by an earlier
    version while it was gone); the directory came back, sealed more, and is gone again.
    A pass splits the old archive before it appends the new record, so the new record is
    the last one filed under the name: a copy restored from between the two is caught.
    (Appended the other way round, the earlier witness would be found, and the copy,
    younger than it, would pass.)"""
    fill(trail, 10)
    name = witness_file(trail.keys, trail.dir).name
    earlier = witness_file(trail.keys, trail.dir).read_bytes()
    fill(trail, 10)
    shutil.copytree(trail.dir, tmp_path / "copy")
    fill(trail, 10)
    sealed = verify(trail).last_checkpoint_seq
    trail.dir.rename(tmp_path / "away")
    old = _old_archive(trail, [(name, earlier)])
    assert expire(trail).moved == 1
    (tmp_path / "copy").rename(trail.dir)
    expiry.split_old_archive(trail.keys)  # nothing left to split: the move split it first
    assert not old.exists()
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated"), r.summary()
    assert f"seq {sealed}" in r.message
    drop_archive(trail)  # the protection off
    assert verify(trail).ok


def test_a_split_cut_short_leaves_lookups_alone(trail: Trail, tmp_path: Path) -> None:
    """A crash after the split appended to the shards but before it unlinked the old
    archive: both hold the record; lookups find it, and the next split appends it again
    (the last record filed under the name is still the same bytes)."""
    sealed = _older_copy_restored(trail, tmp_path)
    name = witness_file(trail.keys, trail.dir).name
    shard = trail.keys / "witness" / expired_shard(name)
    old = trail.keys / "witness" / EXPIRED_NAME
    old.write_bytes(shard.read_bytes())
    key = load_key(trail.keys, create=False)
    before = load_witness(key, trail.keys, trail.dir)
    assert expiry.split_old_archive(trail.keys) == 1
    assert not old.exists() and shard.read_bytes().count(name.encode()) == 2
    assert load_witness(key, trail.keys, trail.dir) == before
    r = verify(trail)
    assert (r.ok, r.kind) == (False, "truncated") and f"seq {sealed}" in r.message


def test_a_path_that_exists_is_not_gone(trail: Trail) -> None:
    """Only "no such file or directory" is gone: a file where the directory was is kept
    (verify reports the trail missing against it)."""
    fill(trail, 1)
    shutil.rmtree(trail.dir)
    trail.dir.write_bytes(b"")
    assert expire(trail).moved == 0
    trail.dir.unlink()
    assert expire(trail).moved == 1


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
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


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
