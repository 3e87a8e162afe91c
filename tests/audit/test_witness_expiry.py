"""Witness expiry: the witnesses of audit directories that are gone leave the key
directory's walk, and a trail cut back or restored from an older copy is still caught.

The attack: a trail's directory is moved away (so it is gone when the expiry runs),
then put back as an older copy, two sessions short.  The older copy is a consistent,
sealed trail: only the witness knows more was sealed there.  Each attack test also
runs with expired.jsonl removed (the witness dropped instead of moved, the protection
off) and shows verify then passes: the record moved by the expiry is what catches it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from audit_helpers import Trail, fill, trail_fixture  # noqa: F401

from sandbox.audit import expiry, verify_trail
from sandbox.audit.expiry import EXPIRE_ABOVE, EXPIRE_EVERY, expire_witnesses, maybe_expire
from sandbox.audit.paths import load_key, prepare_trail_dirs
from sandbox.audit.witness import EXPIRED_NAME, load_witness, witness_file


def verify(t: Trail):
    return verify_trail(t.dir, key_directory=t.keys)


def expire(t: Trail):
    return expire_witnesses(t.keys)


def witness_files(t: Trail) -> list[Path]:
    return sorted((t.keys / "witness").glob("dir-*.json"))


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
    (trail.keys / "witness" / EXPIRED_NAME).unlink()
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
    archive = trail.keys / "witness" / EXPIRED_NAME
    archive.write_bytes(b"\ndir-" + b"0" * 32 + b'.json {"dir": "/x", "se')
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
    assert maybe_expire(trail.keys, now=1e9) is None  # at the threshold: not run
    gone = Trail(tmp_path / "gone", trail.keys)
    fill(gone, 2)
    shutil.rmtree(gone.dir)
    result = maybe_expire(trail.keys, now=1e9)
    assert result is not None and result.moved == 1
    fill(gone, 2)
    shutil.rmtree(gone.dir)
    assert maybe_expire(trail.keys, now=1e9 + EXPIRE_EVERY - 1) is None  # too soon
    result = maybe_expire(trail.keys, now=1e9 + EXPIRE_EVERY)
    assert result is not None and result.moved == 1


def test_launch_preparation_runs_the_expiry(trail: Trail, tmp_path: Path) -> None:
    """prepare_trail_dirs (run before every launch's plan) moves the gone ones."""
    gone = [Trail(tmp_path / f"gone{i}", trail.keys) for i in range(EXPIRE_ABOVE + 1)]
    for t in gone:
        fill(t, 1)
        shutil.rmtree(t.dir)
    assert len(witness_files(trail)) == EXPIRE_ABOVE + 1
    prepare_trail_dirs(trail.dir, trail.keys)
    assert witness_files(trail) == []


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
